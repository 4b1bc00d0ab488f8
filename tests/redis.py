"""A real Redis server for the tests, started by the test run itself (`scripts/redis.sh`), as
tests/pg.py starts PostgreSQL.

A test module that needs it imports the session fixture and takes it by name::

    from tests.redis import redis_url_fixture  # noqa: F401

    def test_something(redis_url: str) -> None:
        client = redis.Redis.from_url(redis_url)

`redis_url` is `redis://127.0.0.1:PORT/0`. With `$DUOPASS_TEST_REDIS_URL` set, the tests use that
server and start nothing; otherwise one server (keeping nothing on disk) is started for the whole
run, however many modules and pytest-xdist workers ask for it, and stopped at its end (and by a
watchdog if the run dies first), through the folder tests/pg.py's server is shared by. Tests keep
apart by key prefix. `OwnRedis` is a test's own server, with an append-only file, that it can
restart. When a server cannot be started the test fails with the script's own messages: it never
skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from duopass.demo.serving import free_port
from tests import servers
from tests.pg import PORT_TAKEN, RUN_PID_ENV, SHARE_ENV

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "redis.sh"
URL_ENV = "DUOPASS_TEST_REDIS_URL"
START_TIMEOUT = 600  # seconds; a first run may install Redis from Debian
STOP_TIMEOUT = 60


class RedisError(RuntimeError):
    """`scripts/redis.sh` could not start a server; the message holds its stderr."""


def _script(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def _start(directory: str, *, persistent: bool, port: int | None = None, attempts: int = 3) -> str:
    """Starts a server with its files in `directory` on `port` (by default a free one, another
    if it was taken meanwhile) and returns its URL."""
    mode = ["persistent"] if persistent else []
    for attempt in range(1, attempts + 1):
        result = _script("start", str(port or free_port()), directory, *mode, timeout=START_TIMEOUT)
        if result.returncode == 0:
            return result.stdout.strip()
        if result.returncode != PORT_TAKEN or port is not None or attempt == attempts:
            raise RedisError(
                f"{SCRIPT.name} start failed (exit status {result.returncode}):\n"
                f"{result.stderr.rstrip()}"
            )
    raise AssertionError("unreachable")


def _stop(directory: str) -> None:
    _script("stop", directory, timeout=STOP_TIMEOUT)
    shutil.rmtree(directory, ignore_errors=True)


def _watchdog(directory: str, pid: int) -> subprocess.Popen[bytes]:
    """A process that stops the server should process `pid` die without cleaning up."""
    return servers.watchdog(SCRIPT, "duopass-redis-watchdog", directory, pid)


_WATCHDOGS: list[subprocess.Popen[bytes]] = []
"""The shared server's watchdogs, running when this process ends, by design."""


class OwnRedis:
    """A test's own server, every write in an append-only file, that it restarts on the same
    port and files: what a deployment's Redis with `appendonly yes` keeps."""

    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="duopass-redis-", dir="/tmp")
        self._watchdog: subprocess.Popen[bytes] | None = None
        try:
            self.url = _start(self.directory, persistent=True)
        except BaseException:
            _stop(self.directory)
            raise
        self._watchdog = _watchdog(self.directory, os.getpid())

    def restart(self) -> None:
        """Shuts the server down (as a service manager stops it) and starts it again."""
        import redis  # the client waits until a test asks for it (a quarter of a second)

        client = redis.Redis.from_url(self.url)
        client.shutdown()
        client.close()
        port = int(self.url.rsplit(":", 1)[1].split("/")[0])
        assert _start(self.directory, persistent=True, port=port) == self.url

    def close(self) -> None:
        if self._watchdog is not None:
            servers.end_watchdog(self._watchdog.pid)
            self._watchdog.wait()
        _stop(self.directory)

    def __enter__(self) -> OwnRedis:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


_RECORD = servers.Record(lock="redis.lock", record="redis.json")


def shared_url(share: Path) -> str:
    """The URL of the run's shared server, started by whichever process asks first; its
    watchdog follows the run's main process, which stops it (`stop_shared`)."""

    def start() -> tuple[str, str, int]:
        directory = tempfile.mkdtemp(prefix="duopass-redis-", dir="/tmp")
        try:
            url = _start(directory, persistent=False)
        except BaseException:
            _stop(directory)
            raise
        watchdog = _watchdog(directory, int(os.environ[RUN_PID_ENV]))
        _WATCHDOGS.append(watchdog)
        return url, directory, watchdog.pid

    return _RECORD.url(share, start)


def stop_shared(share: Path) -> None:
    """Stops the run's shared server if a process started one; for the run's main process."""
    _RECORD.stop(share, _stop)


class _Shared:
    """The one server of a test process (pytest makes a fixture of each import: the state
    lives here)."""

    url: str | None = None
    directory: str | None = None
    failure: str | None = None

    @classmethod
    def get(cls) -> str:
        if cls.url is None and cls.failure is None:
            share = os.environ.get(SHARE_ENV)
            try:
                if share:  # the run's server: its main process stops it
                    cls.url = shared_url(Path(share))
                else:  # this process's: stopped at the end of its session
                    cls.directory = tempfile.mkdtemp(prefix="duopass-redis-", dir="/tmp")
                    _WATCHDOGS.append(_watchdog(cls.directory, os.getpid()))
                    cls.url = _start(cls.directory, persistent=False)
            except (RedisError, OSError, subprocess.TimeoutExpired) as error:
                cls.failure = f"could not start Redis for the tests: {error}"
        if cls.url is None:
            pytest.fail(cls.failure or "no Redis server", pytrace=False)
        return cls.url

    @classmethod
    def stop(cls) -> None:
        if cls.directory is not None:
            _stop(cls.directory)
            cls.directory = cls.url = None


@pytest.fixture(scope="session", name="redis_url")
def redis_url_fixture() -> Iterator[str]:
    """The URL of the tests' Redis server: `$DUOPASS_TEST_REDIS_URL`, or one started for this
    run and stopped at its end."""
    external = os.environ.get(URL_ENV)
    if external:
        yield external
        return
    yield _Shared.get()
    _Shared.stop()
