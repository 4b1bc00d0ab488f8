"""The wallet's installation id: a random name this program gave itself once on this machine
for this user, the same for every data dir (every account) it runs, sent with sign-ins and
device enrolments (`Duopass-Installation`) so the issuer can count how many accounts one phone
tries. Not a secret and not an identity: the issuer reads it as a risk signal only.

Kept in `$DUOPASS_INSTALLATION_FILE`, else `$XDG_STATE_HOME/duopass/installation`, else
`~/.local/state/duopass/installation`; `DUOPASS_INSTALLATION_FILE=` (empty) sends none.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path

from duopass.protocol.limits import INSTALLATION_PATTERN
from duopass.wallet.errors import Failure, WalletError
from duopass.wallet.files import sync_directory

__all__ = ["installation_file", "installation_id"]

_READ_MAX = 128


def installation_file(environ: Mapping[str, str] = os.environ) -> Path | None:
    """Where the installation id is kept (the module says where); None: send none."""
    named = environ.get("DUOPASS_INSTALLATION_FILE")
    if named is not None:
        return Path(named).expanduser() if named else None
    state = environ.get("XDG_STATE_HOME") or str(Path("~/.local/state").expanduser())
    return Path(state) / "duopass" / "installation"


def installation_id(path: Path) -> str:
    """The id in `path`, made (and written, mode 0600) on first use; a file that holds no id
    is refused rather than replaced (another wallet of this user may have read it)."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")[:_READ_MAX].strip()
    except FileNotFoundError:
        return _create(path)
    except OSError as exc:
        raise WalletError(Failure.STATE, f"{path}: {exc.strerror}") from exc
    if re.fullmatch(INSTALLATION_PATTERN, text) is None:
        raise WalletError(Failure.STATE, f"{path} holds no installation id: remove it")
    return text


def _create(path: Path) -> str:
    """Written whole under a temporary name, then linked into place (as the device key is):
    another wallet sees no file or a complete one, and an id once made is never replaced."""
    made = secrets.token_urlsafe(24)  # 32 characters
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(made + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:  # another wallet made it meanwhile: its id is ours
            return installation_id(path)
        finally:
            temporary.unlink()
    except OSError as exc:
        raise WalletError(Failure.STATE, f"{path}: {exc.strerror}") from exc
    sync_directory(path.parent)
    return made
