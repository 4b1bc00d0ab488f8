"""The device key file: created once (mode 0600, never overwritten), read back with checks.

The key never leaves the data dir: the server gets the public key and a proof of possession.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from duopass.protocol.keys import KeyFileError, SigningKey
from duopass.protocol.limits import KEY_FILE_BYTES_MAX
from duopass.wallet.errors import Failure, WalletError
from duopass.wallet.files import sync_directory

__all__ = ["load_key", "load_or_create_key"]


def load_key(path: Path) -> SigningKey:
    """The device key; refuses a file other users may read, as ssh does."""
    try:
        with path.open("rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            data = handle.read(KEY_FILE_BYTES_MAX + 1)
    except FileNotFoundError as exc:
        raise WalletError(
            Failure.STATE,
            f"{path} is missing: this wallet cannot sign; enrol again in an empty --data-dir",
        ) from exc
    except OSError as exc:
        raise WalletError(Failure.STATE, f"{path}: {exc.strerror}") from exc
    if stat.S_IMODE(mode) & 0o077:
        raise WalletError(Failure.STATE, f"{path}: other users may read the device key (chmod 600)")
    try:
        return SigningKey.from_jwk(data)
    except KeyFileError as exc:
        raise WalletError(Failure.STATE, f"{path}: {exc}") from exc


def load_or_create_key(path: Path) -> SigningKey:
    """The device key, created on first use; an enrolment retried after a lost answer reuses
    it (the server answers a repeated enrolment of the same key with the same device)."""
    if path.exists():
        return load_key(path)
    key = SigningKey.generate()
    # Written whole under a temporary name, then linked into place: another instance sees no
    # key file or a complete one, and a key file is never replaced.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.to_jwk())
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return load_key(path)
        finally:
            temporary.unlink()
    except OSError as exc:
        raise WalletError(Failure.STATE, f"{path}: {exc.strerror}") from exc
    sync_directory(path.parent)
    return key
