"""Several issuers at one terminal (docs/terminal.md, "Several issuers"): one enrolment per
issuer, each a whole terminal directory of its own (key, terminal id, pinned root key, trust
store, seq chain, journal, server), the first in the data directory itself and every other in
`issuers/<the issuer's name in base64url>/` below it.

A scanned code is routed by the `iss` it names (read before any check, only to pick the
enrolment); it is then verified against that issuer's store alone, journalled in that issuer's
chain and uploaded to that issuer's server. Nothing here does I/O but listing directories.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

from duopass.protocol.cbor import MalformedError
from duopass.protocol.code import FormatError, decode_code
from duopass.protocol.encoding import b64u_encode
from duopass.protocol.limits import CODE_CHARS_MAX, ISS_CHARS_MAX
from duopass.protocol.verify import Mode

__all__ = [
    "ISSUERS_DIR",
    "ISSUERS_MAX",
    "IssuerError",
    "check_modes",
    "issuer_dir",
    "issuer_dirs",
    "issuer_of",
    "pick",
]

ISSUERS_DIR = "issuers"
ISSUERS_MAX = 8
"""Enrolments one terminal holds besides its first: each is a store, a journal and threads."""
_T = TypeVar("_T")
_ISS = re.compile(rf"[!-~]{{1,{ISS_CHARS_MAX}}}")
_DIR_NAME = re.compile(r"[A-Za-z0-9_-]{2,86}")
"""What `issuer_dir` names: an issuer's name in unpadded base64url (no `/`, no `..`)."""


class IssuerError(ValueError):
    """An issuer name or a set of enrolments a terminal cannot hold; the message says why."""


def issuer_dir(data_dir: Path, iss: str) -> Path:
    """Where the enrolment for `iss` lives (an issuer's name may hold `/` or `..`: encoded)."""
    if not _ISS.fullmatch(iss):
        raise IssuerError(f"not an issuer name: {iss!r}")
    return data_dir / ISSUERS_DIR / b64u_encode(iss.encode())


def issuer_dirs(data_dir: Path) -> list[Path]:
    """The directories of the enrolments besides the first, in name order."""
    root = data_dir / ISSUERS_DIR
    if not root.is_dir():
        return []
    found = sorted(
        path
        for path in root.iterdir()
        if _DIR_NAME.fullmatch(path.name) and (path / "terminal.db").is_file()
    )
    if len(found) > ISSUERS_MAX:
        raise IssuerError(f"{len(found)} issuers besides the first: at most {ISSUERS_MAX}")
    return found


def issuer_of(text: str) -> str | None:
    """The issuer a scanned text names (its credential's `iss`), read before any check and only
    to pick the enrolment that verifies it; None when it is no code (FORMAT or MALFORMED: the
    first enrolment decides it, as a terminal of one issuer does)."""
    if len(text) > CODE_CHARS_MAX:
        return None
    try:
        return decode_code(text).credential.claims.iss
    except (FormatError, MalformedError):
        return None


def pick(enrolments: Mapping[str, _T], first: _T, iss: str | None) -> _T | None:
    """The enrolment that decides a code naming `iss`: the issuer's own; the first for a text
    that names none; None for an issuer this terminal is not enrolled with (refused, UNKNOWN_KEY:
    no store of this terminal holds a key of it)."""
    if iss is None:
        return first
    return enrolments.get(iss)


def check_modes(modes: list[Mode]) -> None:
    """A terminal's enrolments all pay (a till: every scan needs an amount) or none does (a gate
    may check campus cards for one issuer, `identity`, and tickets for another, `entry`)."""
    pays = {mode is Mode.PAY for mode in modes}
    if len(pays) > 1:
        raise IssuerError("a till's enrolments all pay, a gate's none: modes " + ", ".join(modes))
