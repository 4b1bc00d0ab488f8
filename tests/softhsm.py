"""SoftHSM tokens for the tests, made by the test run itself (`scripts/softhsm.sh`, which installs
Debian's softhsm2 when absent), in a temporary directory: nothing outside it is touched.

A test module takes the session fixture by name::

    from tests.softhsm import softhsm_fixture  # noqa: F401

    def test_something(softhsm: SoftHsm) -> None: ...

This process reads its SoftHSM configuration once, when the module is first loaded, and sees the
tokens made before then only: `softhsm.shared` is one such token, made first, for tests that sign
in this process (each with keys of its own labels); `softhsm.token()` makes a new one, for a
server or command run as another process (`softhsm.env`). When SoftHSM cannot be installed or a
token made, the test fails with the script's own messages: it never skips.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from duopass.server.hsm import HsmConfig

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "softhsm.sh"
TIMEOUT = 600  # seconds; a first run may install SoftHSM from Debian


@dataclass(frozen=True)
class SoftHsm:
    module: Path
    directory: Path
    pin: str
    so_pin: str
    shared: str
    """A token this process can use (made before it loaded the module)."""

    @property
    def env(self) -> dict[str, str]:
        """What a process needs to see these tokens."""
        return {"SOFTHSM2_CONF": str(self.directory / "softhsm2.conf")}

    def token(self) -> str:
        """A new token (for other processes only), its label; the PIN is `pin`."""
        label = f"t-{uuid.uuid4().hex[:16]}"
        _script("token", str(self.directory), label, pin=self.pin, so_pin=self.so_pin)
        return label

    def config(
        self, token: str, *, root: str | None = None, ledger: str | None = None
    ) -> HsmConfig:
        return HsmConfig(self.module, token, self.pin, root, ledger)


def _script(*args: str, pin: str = "", so_pin: str = "") -> str:
    env = {**os.environ, "SOFTHSM_PIN": pin, "SOFTHSM_SO_PIN": so_pin}
    done = subprocess.run(
        [str(SCRIPT), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT,
        env=env,
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/softhsm.sh {args[0]} failed: {done.stderr}", pytrace=False)
    return done.stdout.strip()


_made: list[SoftHsm] = []
"""The one `SoftHsm` of this process: each module that imports the fixture has a definition of
its own, and a second SoftHSM directory would be one this process cannot see."""


@pytest.fixture(scope="session", name="softhsm")
def softhsm_fixture() -> Iterator[SoftHsm]:
    if _made:  # made by another module's definition, which stops it last
        yield _made[0]
        return
    directory = Path(tempfile.mkdtemp(prefix="duopass-softhsm-"))
    pin, so_pin = f"user-{secrets.token_hex(8)}", f"so-{secrets.token_hex(8)}"
    shared = "shared"
    module = Path(_script("token", str(directory), shared, pin=pin, so_pin=so_pin))
    before = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(directory / "softhsm2.conf")
    _made.append(SoftHsm(module, directory, pin, so_pin, shared))
    try:
        yield _made[0]
    finally:
        _made.clear()
        if before is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = before
        _script("stop", str(directory))
