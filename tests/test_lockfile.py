"""`duopass.lockfile`: a held lock refuses another process at once; `locked` holds one for a
block and lets it go however the block ends."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from duopass.lockfile import hold, locked

_TRY = "import sys, pathlib; from duopass.lockfile import hold; hold(pathlib.Path(sys.argv[1]))"


def _other_process_can_hold(path: Path) -> bool:
    """Whether another process may take the lock now: True, or False when it is refused as
    held (any other failure of the child fails the test)."""
    tried = subprocess.run(
        [sys.executable, "-c", _TRY, str(path)], capture_output=True, text=True, timeout=60
    )
    assert tried.returncode == 0 or "lockfile.Held" in tried.stderr, tried.stderr
    return tried.returncode == 0


def test_locked_holds_the_lock_for_the_block_only(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with locked(path):
        assert path.stat().st_mode & 0o777 == 0o600
        assert not _other_process_can_hold(path)
    assert _other_process_can_hold(path)


def test_locked_lets_go_when_the_block_raises(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with pytest.raises(ValueError, match="inside"), locked(path):
        raise ValueError("inside")
    assert _other_process_can_hold(path)


def test_hold_refuses_while_held_and_is_released_by_closing(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    fd = hold(path)
    assert not _other_process_can_hold(path)
    os.close(fd)
    assert _other_process_can_hold(path)
    with locked(path):
        child = subprocess.run(
            [sys.executable, "-c", _TRY, str(path)], capture_output=True, text=True, timeout=60
        )
    assert child.returncode != 0 and "Held" in child.stderr
