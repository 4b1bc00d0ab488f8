"""The ledger key as it rotates inside its HSM token (docs/server.md, "The ledger key rotates";
docs/deploy.md, "Keys in an HSM"): the data dir names the token key, it never holds one.

    ledger-label       the token label of the ledger key that signs now (absent: the configured
                       one, `DUOPASS_HSM_LEDGER_KEY`)
    ledger-next-label  only while a rotation is under way: the new key's label

`duopass keys rotate-ledger` generates the new key in the same token (sensitive, never
extractable) labelled `<configured label>.<n>`, `n` the rotation's number (`demo-univ/ledger.1`,
`.2`...), writes ledger-next-label, commits the rotation (the `ledger_keys` row: the commit point)
and renames ledger-next-label over ledger-label: the order of the file case (`ledger.key.next`,
commit, rename), and the same reader (`services.ledger_key.signer`) finishes a rename a crash left
undone. The database says which key signs; the pointer says where that key is in the token, so a
process started later loads the current key (`Keyring.load`), never the retired one.

The token label differs from the signed-note key name: every key of the log is named after the
log's origin, the configured label (`<issuer>/ledger`), which never changes across a rotation
(a checkpoint's origin line, its signatures' key name and the vkeys in `ledger_keys` all keep it).

A key a rotation generated and never committed (it failed before its commit, or stopped there) is
taken by the next rotation, which wants the same label: a key that passes `hsm.load_key` was made
in the token, and nobody has seen its private half. One the log ever named is refused
(`ledger_rotation.rotate`).
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Final

from duopass.ledger import LedgerError, NoteSigner
from duopass.server import hsm, roots
from duopass.server.hsm import HsmConfig, HsmError, HsmKey, HsmReason

__all__ = [
    "LABEL_FILE",
    "NEXT_LABEL_FILE",
    "LedgerTokenError",
    "find",
    "load",
    "new_key",
    "propose",
    "token_key",
]

LABEL_FILE: Final = "ledger-label"
NEXT_LABEL_FILE: Final = "ledger-next-label"
_loaded: dict[tuple[Path, str, str], NoteSigner] = {}
"""Ledger keys loaded from tokens by (module, token, label): each is checked once per process."""
_loaded_lock = threading.Lock()


class LedgerTokenError(RuntimeError):
    """A pointer file that cannot be read, or a token key that cannot be loaded or made."""


def token_key(signer: NoteSigner) -> HsmKey | None:
    """The token key `signer` signs with, None for a key in memory (a key file)."""
    key = signer.key
    return key if isinstance(key, HsmKey) else None


def load(config: HsmConfig, data_dir: Path) -> NoteSigner:
    """The ledger key that signs now, for `Keyring.load`: the one ledger-label names, or the
    configured one before any rotation; named after the configured label (the log's origin)."""
    assert config.ledger_key is not None
    return _signer(config, config.ledger_key, _label(data_dir / LABEL_FILE) or config.ledger_key)


def find(data_dir: Path, held: HsmKey, origin: str, vkey: str) -> NoteSigner | None:
    """The key named `vkey` (the one the database names) in `held`'s token: the one ledger-label
    names, or ledger-next-label (a rotation committed and stopped before its rename, which this
    then finishes); None if neither is it."""
    for name in (LABEL_FILE, NEXT_LABEL_FILE):
        label = _label(data_dir / name)
        if label is None:
            continue
        try:
            found = _signer(held.config, origin, label)
        except LedgerTokenError:
            continue
        if found.verifier.vkey() != vkey:
            continue
        if name == NEXT_LABEL_FILE:  # another process may have renamed it first
            with contextlib.suppress(FileNotFoundError):
                os.replace(data_dir / NEXT_LABEL_FILE, data_dir / LABEL_FILE)
                roots.sync_dir(data_dir)
        return found
    return None


def new_key(held: HsmKey, origin: str, number: int) -> NoteSigner:
    """The key of rotation `number` in `held`'s token, `<configured label>.<number>`: generated,
    or taken as a rotation that never committed left it."""
    label = f"{held.config.ledger_key or origin}.{number}"
    if len(label) > hsm.LABEL_CHARS_MAX:
        detail = f"the new ledger key's label {label!r} is over {hsm.LABEL_CHARS_MAX} characters"
        raise LedgerTokenError(detail)
    try:
        try:
            hsm.generate_key(held.config, label)
        except HsmError as exc:
            if exc.reason is not HsmReason.KEY_EXISTS:
                raise
    except HsmError as exc:
        raise LedgerTokenError(f"cannot make the new ledger key in the token: {exc}") from exc
    return _signer(held.config, origin, label)


def propose(data_dir: Path, key: NoteSigner) -> None:
    """Write ledger-next-label naming `key`'s token label, before the rotation commits."""
    found = token_key(key)
    assert found is not None
    roots.replace_file(data_dir / NEXT_LABEL_FILE, (found.label + "\n").encode(), data_dir)


def _signer(config: HsmConfig, origin: str, label: str) -> NoteSigner:
    with _loaded_lock:
        signer = _loaded.get((config.module, config.token, label))
    if signer is None:
        try:
            signer = NoteSigner.from_signer(origin, hsm.load_key(config, label))
        except HsmError as exc:
            raise LedgerTokenError(f"the ledger key {label!r}: {exc}") from exc
        except LedgerError as exc:  # an origin that is no note key name
            raise LedgerTokenError(f"the ledger key's name {origin!r}: {exc}") from exc
        with _loaded_lock:
            _loaded[(config.module, config.token, label)] = signer
    if signer.name != origin:
        raise LedgerTokenError(f"the token key {label!r} is loaded as another log's key")
    return signer


def _label(path: Path) -> str | None:
    try:
        return roots.read_label(path)
    except roots.RootError as exc:
        raise LedgerTokenError(str(exc)) from exc
