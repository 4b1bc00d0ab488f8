"""The PostgreSQL the tests start for themselves (tests/pg.py, scripts/pg.sh): reachable through
SQLAlchemy and psycopg, durable as configured by default, and on 127.0.0.1 only."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.pg import URL_ENV, postgres_url_fixture, start_postgres  # noqa: F401

EXTERNAL = bool(os.environ.get(URL_ENV))
ours_only = pytest.mark.skipif(
    EXTERNAL, reason=f"${URL_ENV} names a server these tests did not configure"
)


@pytest.fixture
def engine(postgres_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(postgres_url)
    yield engine
    engine.dispose()


def listening(port: int) -> set[str]:
    """The local addresses with a TCP socket listening on `port`, from /proc/net/tcp{,6}."""
    addresses = set()
    for name, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        table = Path("/proc/net") / name
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)  # host-order 32-bit words
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            addresses.add(socket.inet_ntop(family, raw))
    return addresses


def test_version(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        version = connection.execute(sa.text("select version()")).scalar_one()
        database = connection.execute(sa.text("select current_database()")).scalar_one()
    assert version.startswith("PostgreSQL ")
    assert database == make_url(engine.url).database


def test_durable_round_trip(postgres_url: str, engine: sa.Engine) -> None:
    table = f"harness_round_trip_{uuid.uuid4().hex}"
    rows = [(i, f"row {i} ✓") for i in range(100)]
    with engine.begin() as connection:
        connection.execute(sa.text(f"create table {table} (id int primary key, body text)"))
        connection.execute(
            sa.text(f"insert into {table} values (:id, :body)"),
            [{"id": i, "body": body} for i, body in rows],
        )
    try:
        # read back through a connection that shares nothing with the writer's
        reader = sa.create_engine(postgres_url, poolclass=sa.pool.NullPool)
        try:
            with reader.connect() as connection:
                got = connection.execute(sa.text(f"select id, body from {table} order by id"))
                assert [tuple(row) for row in got] == rows
        finally:
            reader.dispose()
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f"drop table {table}"))


@ours_only
def test_durability_settings_are_the_defaults(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        result = connection.execute(
            sa.text(
                "select name, setting from pg_settings where name in"
                " ('fsync', 'synchronous_commit', 'full_page_writes', 'max_connections')"
            )
        )
        settings: dict[str, str] = dict(result.all())
    assert settings == {
        "fsync": "on",
        "synchronous_commit": "on",
        "full_page_writes": "on",
        "max_connections": "200",
    }


@ours_only
def test_listens_on_loopback_only(postgres_url: str, engine: sa.Engine) -> None:
    url = make_url(postgres_url)
    assert url.host == "127.0.0.1" and url.port is not None
    with engine.connect() as connection:
        assert connection.execute(sa.text("show listen_addresses")).scalar_one() == "127.0.0.1"
        assert connection.execute(sa.text("select host(inet_server_addr())")).scalar_one() == (
            "127.0.0.1"
        )
    assert listening(url.port) == {"127.0.0.1"}
    with pytest.raises(ConnectionRefusedError):  # loopback, but not the bound address
        socket.create_connection(("127.0.0.2", url.port), timeout=5).close()


@ours_only
def test_stop_ends_the_server_and_removes_its_files() -> None:
    url, stop = start_postgres()
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            data = Path(connection.execute(sa.text("show data_directory")).scalar_one())
        pid = int((data / "postmaster.pid").read_text().split()[0])
    finally:
        engine.dispose()
        stop()
    port = make_url(url).port
    assert port is not None
    assert not data.parent.exists()
    stat = Path(f"/proc/{pid}/stat")
    assert not stat.exists() or stat.read_text().split(") ")[1][0] == "Z"  # gone, or unreaped
    assert listening(port) == set()
    stop()  # a second stop is harmless
