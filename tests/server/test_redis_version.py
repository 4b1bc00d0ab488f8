"""The Redis risk store needs Redis 6.2 (`ZADD GT`): an older one is refused by name, when the
server starts and when a process first reaches it, rather than failing request by request. Old
servers are stood in for by a few lines that answer `HELLO` as Redis 5 (unknown command) or 6.0
(its version) do; the tests' real Redis is accepted."""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
from collections.abc import Iterator

import pytest
import redis

from duopass.demo.serving import free_port
from duopass.server.services.risk_redis import RedisTooOld, check_version
from tests.redis import redis_url_fixture  # noqa: F401
from tests.server.harness import ADMIN_PASSWORD, running_server


def _answer(command: list[bytes], version: str | None) -> bytes:
    if command[0].upper() != b"HELLO":
        return b"+OK\r\n"
    if version is None:  # Redis 5: no HELLO
        return b"-ERR unknown command 'HELLO'\r\n"
    resp3 = command[1:] == [b"3"]
    fields = {b"server": b"+redis", b"version": b"+" + version.encode()}
    fields[b"proto"] = b":3" if resp3 else b":2"
    parts = [b"%" if resp3 else b"*", str(len(fields) * (1 if resp3 else 2)).encode(), b"\r\n"]
    for name, value in fields.items():
        parts += [b"+", name, b"\r\n", value, b"\r\n"]
    return b"".join(parts)


def _serve(connection: socket.socket, version: str | None) -> None:
    with connection, connection.makefile("rb") as incoming:
        while head := incoming.readline():
            command = []
            for _ in range(int(head[1:])):
                size = int(incoming.readline()[1:])
                command.append(incoming.read(size + 2)[:-2])
            connection.sendall(_answer(command, version))


@contextlib.contextmanager
def _old_redis(version: str | None, port: int = 0) -> Iterator[str]:
    """A listener on `port` (a free one by default) answering as a Redis of `version`."""
    listener = socket.create_server(("127.0.0.1", port))

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = listener.accept()
                threading.Thread(target=_serve, args=(connection, version), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    finally:
        listener.close()


OLD = [(None, "before 6.0 (it has no HELLO)"), ("6.0.16", "6.0.16")]


@pytest.mark.parametrize(("version", "named"), OLD)
def test_a_redis_older_than_6_2_stops_the_server_at_start(sqlite_schema, tmp_path, version, named):
    shutil.copyfile(sqlite_schema, tmp_path / "duopass.db")
    url = f"sqlite:///{tmp_path / 'duopass.db'}"
    with (
        _old_redis(version) as old,
        pytest.raises(RedisTooOld) as refused,
        running_server(url, tmp_path / "data", risk_store="redis", redis_url=old),
    ):
        pass
    assert f"the risk store's Redis is {named}: it needs 6.2 or later" in str(refused.value)


def test_an_old_redis_first_reached_after_the_start_is_refused_by_name(sqlite_schema, tmp_path):
    shutil.copyfile(sqlite_schema, tmp_path / "duopass.db")
    port = free_port()
    url, later = f"sqlite:///{tmp_path / 'duopass.db'}", f"redis://127.0.0.1:{port}/0"
    with running_server(url, tmp_path / "data", risk_store="redis", redis_url=later) as server:
        sign_in = {"login": "admin", "password": ADMIN_PASSWORD}
        assert server.http.post("/v1/admin/session", json=sign_in).status_code == 503  # down
        with _old_redis("6.0.16", port):
            answer = server.http.post("/v1/admin/session", json=sign_in)
        assert answer.status_code == 500, answer.text
        assert answer.json()["code"] == "internal"
        assert "Redis is 6.0.16: it needs 6.2 or later" in answer.json()["detail"]


def test_the_tests_redis_is_recent_enough(redis_url):
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        major, minor = map(int, check_version(client).split(".")[:2])
    assert (major, minor) >= (6, 2)
