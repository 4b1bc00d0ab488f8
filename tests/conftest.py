"""The test run's main process: how many pytest-xdist workers, and the one PostgreSQL server
(tests/pg.py) and one Redis server (tests/redis.py) they share, stopped when the run ends."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests import redis as test_redis
from tests.pg import RUN_PID_ENV, SHARE_ENV, URL_ENV, stop_shared

WORKERS_MAX = 2
"""Workers beside one another: each test also runs servers, terminals and PostgreSQL, which need
cores of their own (CI has 2)."""


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    return max(1, min(WORKERS_MAX, len(os.sched_getaffinity(0))))


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER") or os.environ.get(URL_ENV):
        return  # a worker uses its main process's folder; an external server needs none
    share = tempfile.mkdtemp(prefix="duopass-pg-share-")
    os.environ[SHARE_ENV] = share
    os.environ[RUN_PID_ENV] = str(os.getpid())
    config.stash[_SHARE] = Path(share)


def pytest_unconfigure(config: pytest.Config) -> None:
    share = config.stash.get(_SHARE, None)
    if share is None:
        return
    stop_shared(share)
    test_redis.stop_shared(share)
    shutil.rmtree(share, ignore_errors=True)
    del os.environ[SHARE_ENV], os.environ[RUN_PID_ENV]


_SHARE = pytest.StashKey[Path]()


@pytest.fixture(autouse=True)
def _root_logging_restored():
    """A command run in process (`CliRunner`) may point the root logger at its own output,
    which is closed when it returns; the next test's log records must not go there."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(autouse=True)
def _own_installation(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test's CLI wallets keep their installation id in the test's folder, not the home of
    whoever runs the tests (`duopass.wallet.installation`)."""
    monkeypatch.setenv("DUOPASS_INSTALLATION_FILE", str(tmp_path / "installation"))
