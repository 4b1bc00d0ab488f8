"""Enrolment: a new terminal key, proved to the server with the one-time enrolment code
(protocol.requests); the answer pins the issuer's root key and fixes what the terminal scans for.
Then the first trust bundle, when the server gives one."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from duopass.protocol.encoding import EncodingError, b64u_decode, b64u_encode
from duopass.protocol.keys import SigningKey
from duopass.protocol.limits import (
    ED25519_KEY_BYTES,
    EVENT_CHARS_MAX,
    ISS_CHARS_MAX,
    KEY_FILE_BYTES_MAX,
    VENUE_CHARS_MAX,
)
from duopass.protocol.signed_requests import enrolment_message
from duopass.protocol.verify import Mode
from duopass.terminal.client import Client
from duopass.terminal.issuers import (
    ISSUERS_DIR,
    ISSUERS_MAX,
    IssuerError,
    check_modes,
    issuer_dir,
    issuer_dirs,
)
from duopass.terminal.store import DB_NAME, KEY_NAME, Config, Store

__all__ = ["EnrolError", "enrol", "enrol_issuer", "load_key"]

_ENROL_TIMEOUT_S = 30.0
_ENROLLING = "enrolling"
"""Names the terminal id the key file was made for while enrolment has not succeeded."""
_ISS = re.compile(rf"[!-~]{{1,{ISS_CHARS_MAX}}}")
_CURRENCY = re.compile(r"[A-Z]{3}")


class EnrolError(Exception):
    """Enrolment refused or impossible; the message says why."""


def enrol(
    data_dir: Path,
    *,
    server: str,
    terminal_id: str,
    code: str,
    timeout_s: float = _ENROL_TIMEOUT_S,
    clock: Callable[[], float] = time.time,
) -> Config:
    """Enrol this data directory as `terminal_id`; raises EnrolError. `clock` is the
    terminal's wall clock, against which the server's `Date` gives the clock offset kept."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = Store(data_dir)
    try:
        if store.enrolled:
            raise EnrolError(f"{data_dir} already holds terminal {store.config().terminal_id}")
        key = _enrolment_key(data_dir, terminal_id)
        client = Client(server, terminal_id=terminal_id, key=key, clock=clock)
        try:
            proof = key.sign(enrolment_message(terminal_id, code, key.public))
            body = {
                "terminal_id": terminal_id,
                "enrol_code": code,
                "public_key": b64u_encode(key.public),
                "proof": b64u_encode(proof),
            }
            answer = client.request(
                "POST",
                "/v1/terminal/enrol",
                body=json.dumps(body).encode(),
                timeout=timeout_s,
                signed=False,
            )
        finally:
            client.close()
        config = _config(answer.json(), terminal_id, server)
        store.put(
            terminal_id=config.terminal_id,
            server=config.server,
            iss=config.iss,
            root_key=config.root_key,
            mode=config.mode,
            venue=config.venue,
            currency=config.currency,
            event=config.event,
            key_file=KEY_NAME,
            next_seq=1,
            acked_seq=0,
            clock_offset=answer.offset or 0,
        )
        (data_dir / _ENROLLING).unlink(missing_ok=True)
        return config
    finally:
        store.close()


def enrol_issuer(
    data_dir: Path,
    *,
    issuer: str,
    server: str,
    terminal_id: str,
    code: str,
    timeout_s: float = _ENROL_TIMEOUT_S,
    clock: Callable[[], float] = time.time,
) -> Config:
    """Enrol the terminal in `data_dir` (enrolled already) with one more issuer, `issuer` at
    `server`, as `terminal_id` (that issuer's id for it): a key, trust store and journal of its
    own, in `issuers/` below (docs/terminal.md, "Several issuers"); raises EnrolError."""
    try:
        where = issuer_dir(data_dir, issuer)
        held = [data_dir, *issuer_dirs(data_dir)]
    except IssuerError as exc:
        raise EnrolError(str(exc)) from exc
    configs = []
    for path in held:
        store = Store(path) if (path / DB_NAME).is_file() else None
        try:
            if store is None or not store.enrolled:
                raise EnrolError(f"{data_dir} holds no terminal: enrol it first, without --issuer")
            configs.append(store.config())
        finally:
            if store is not None:
                store.close()
    if len(configs) > ISSUERS_MAX:
        raise EnrolError(f"{data_dir} holds {ISSUERS_MAX} issuers besides the first already")
    if any(config.iss == issuer for config in configs):
        raise EnrolError(f"{data_dir} is enrolled with {issuer} already")
    (data_dir / ISSUERS_DIR).mkdir(mode=0o700, exist_ok=True)
    config = enrol(
        where, server=server, terminal_id=terminal_id, code=code, timeout_s=timeout_s, clock=clock
    )
    try:
        if config.iss != issuer:
            raise EnrolError(f"the server speaks for {config.iss}, not {issuer}")
        check_modes([Mode(c.mode) for c in (*configs, config)])
    except (EnrolError, IssuerError) as exc:
        shutil.rmtree(where)  # the card office retires the terminal id the server bound
        raise EnrolError(f"{exc}; {terminal_id} is not kept: retire it at {server}") from exc
    return config


def _enrolment_key(data_dir: Path, terminal_id: str) -> SigningKey:
    """The key left by an earlier attempt to enrol this same terminal id (its answer may have
    been lost after the server bound the key: the server answers a retry with the same code and
    key again), or a new one."""
    marker = data_dir / _ENROLLING
    try:
        if marker.read_text() == terminal_id:
            return load_key(data_dir)
    except (OSError, ValueError):
        pass
    key = SigningKey.generate()
    _write_key(data_dir / KEY_NAME, key)
    with os.fdopen(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        out.write(terminal_id)
    return key


def load_key(data_dir: Path) -> SigningKey:
    path = data_dir / KEY_NAME
    with path.open("rb") as handle:
        return SigningKey.from_jwk(handle.read(KEY_FILE_BYTES_MAX + 1))


def _write_key(path: Path, key: SigningKey) -> None:
    """The key file, mode 0600, replacing one left by an enrolment that failed."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.to_jwk())
        handle.flush()
        os.fsync(handle.fileno())


def _config(doc: object, terminal_id: str, server: str) -> Config:
    """The enrolment answer, checked like any input."""
    if not isinstance(doc, dict):
        raise EnrolError("enrolment answer is not an object")
    try:
        root = b64u_decode(str(doc.get("root_key", "")))
    except EncodingError as exc:
        raise EnrolError("root_key is not unpadded base64url") from exc
    iss, mode = doc.get("iss"), doc.get("mode")
    venue, currency, event = doc.get("venue"), doc.get("currency"), doc.get("event")
    if len(root) != ED25519_KEY_BYTES:
        raise EnrolError("root_key is not a 32-byte Ed25519 key")
    if not isinstance(iss, str) or not _ISS.fullmatch(iss):
        raise EnrolError("iss")
    if mode not in {m.value for m in Mode}:
        raise EnrolError("mode")
    if venue is not None and not (isinstance(venue, str) and 1 <= len(venue) <= VENUE_CHARS_MAX):
        raise EnrolError("venue")
    if mode == Mode.PAY and not (isinstance(currency, str) and _CURRENCY.fullmatch(currency)):
        raise EnrolError("a till needs a currency")
    if mode == Mode.ENTRY and not (isinstance(event, str) and 1 <= len(event) <= EVENT_CHARS_MAX):
        raise EnrolError("a gate needs an event")
    if doc.get("terminal_id") != terminal_id:
        raise EnrolError("the answer names another terminal")
    return Config(
        terminal_id=terminal_id,
        server=server,
        iss=iss,
        root_key=root,
        mode=str(mode),
        venue=venue,
        currency=currency if mode == Mode.PAY else None,
        event=event if mode == Mode.ENTRY else None,
    )
