"""The ledger key that signs now: the one the latest `ledger_keys` row names (the key the
server was created with while there is none), read under the ledger's append lock before every
checkpoint is signed, so that every server process on one data dir switches at the rotation
that row records (`services.ledger_rotation`) and a retired key never signs again.

A process holds the key it loaded at start (`Keyring.ledger`); when the database names another,
it reads `ledger.key` again (or `ledger.key.next`, where a rotation stopped between its commit
and the file's rename, which it then completes). A key named but found in neither file is 503
`ledger_key_missing`: nothing is signed with any other. A process whose ledger key is in an HSM
(`server.hsm`) reads no key file: it loads the token key `ledger-label` names (or
`ledger-next-label`, the rename then completed: `server.ledger_token`), and the database naming a
key neither names is 503 `ledger_key_missing` too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from duopass.ledger import Checkpoint, LedgerError, NoteSigner, NoteVerifier, open_checkpoint
from duopass.server import ledger_token
from duopass.server.keyring import load_ledger_key
from duopass.server.problems import Problem, ProblemCode
from duopass.server.store.ledger_keys import LedgerKey
from duopass.server.unit_of_work import Unit

__all__ = ["KEYS_MAX", "NEXT", "chain", "current_vkey", "keys", "open_ours", "signer", "verifier"]

NEXT: Final = "ledger.key.next"
"""The new key, written before the rotation commits and renamed to `ledger.key` after."""
KEYS_MAX: Final = 1000
"""Rotations a log may have: `chain` and `GET /v1/ledger/keys` list them all."""
_LOADED: dict[str, NoteSigner] = {}
"""Keys read again since start, by vkey (a vkey names one key: its public half)."""
_LOADED_MAX: Final = 8


def current_vkey(session: Session) -> str | None:
    """The vkey of the key that signs now, None when the ledger key never rotated."""
    return session.scalars(select(LedgerKey.vkey).order_by(LedgerKey.leaf.desc()).limit(1)).first()


def chain(session: Session) -> list[LedgerKey]:
    """Every rotation, oldest first."""
    return list(session.scalars(select(LedgerKey).order_by(LedgerKey.leaf).limit(KEYS_MAX)))


def verifier(unit: Unit) -> NoteVerifier:
    """The verifier key of the key that signs now."""
    vkey = current_vkey(unit.session)
    return unit.keyring.ledger.verifier if vkey is None else NoteVerifier.parse(vkey)


def keys(unit: Unit) -> list[NoteVerifier]:
    """Every ledger key: the one that signs now first, back to the first, then the one this
    process loaded at start if it is none of them (a database restored from before a rotation)."""
    rows = chain(unit.session)
    found = [NoteVerifier.parse(row.vkey) for row in reversed(rows)]
    found += [NoteVerifier.parse(rows[0].previous)] if rows else []
    held = unit.keyring.ledger.verifier
    return found if held in found else [*found, held]


def open_ours(unit: Unit, note: bytes) -> Checkpoint:
    """A checkpoint signed by any of this log's keys (one kept outside the database may be from
    before a rotation). Raises `LedgerError` as `open_checkpoint` does with the key of now."""
    refused: LedgerError | None = None
    for key in keys(unit):
        try:
            return open_checkpoint(note, key).checkpoint
        except LedgerError as exc:
            refused = refused or exc
    assert refused is not None
    raise refused


def signer(unit: Unit) -> NoteSigner:
    """The key that signs now (call it holding the append lock, `tlog.size(lock=True)`)."""
    vkey = current_vkey(unit.session)
    held = unit.keyring.ledger
    if vkey is None or held.verifier.vkey() == vkey:
        return held
    token = ledger_token.token_key(held)
    if token is not None:
        found = ledger_token.find(unit.settings.data_dir, token, held.name, vkey)
        if found is None:
            raise Problem(
                ProblemCode.LEDGER_KEY_MISSING,
                f"the ledger key {vkey.split('+')[1]} the database names is not the token key"
                f" {ledger_token.LABEL_FILE} (or {ledger_token.NEXT_LABEL_FILE}) names",
            )
        return found
    found = _LOADED.get(vkey) or _reload(unit.settings.data_dir, vkey)
    if found is None:
        raise Problem(
            ProblemCode.LEDGER_KEY_MISSING,
            f"the ledger key {vkey.split('+')[1]} the database names is not in the data dir",
        )
    return found


def _reload(data_dir: Path, vkey: str) -> NoteSigner | None:
    """The key named `vkey` from `ledger.key`, or from `ledger.key.next` (then renamed)."""
    for name in ("ledger.key", NEXT):
        try:
            key = load_ledger_key(data_dir / name)
        except (OSError, ValueError):
            continue
        if key.verifier.vkey() != vkey:
            continue
        if name == NEXT:  # the rotation committed, its rename did not happen: finish it
            os.replace(data_dir / NEXT, data_dir / "ledger.key")
        while len(_LOADED) >= _LOADED_MAX:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[vkey] = key
        return key
    return None
