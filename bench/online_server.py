"""The server the online benchmarks drive: the production path, `duopass serve --init` (access
log on, throttles on, `--workers N`), with the benchmark's settings in its environment
(credentials of 1,000 offline uses, so each holder has many counters to pay with) and a staff
login added by `duopass staff add`, as an operator does. Its log goes to a file, as a
production log goes to a pipe or a disk."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.cpu import Tiers, committed, postmaster_of
from duopass.demo.serving import free_port, wait_until_up

BENCH_ADMIN_PASSWORD = "bench-admin-password"
BENCH_SETTINGS = {
    "DUOPASS_OFFLINE_USES": "1000",
    "DUOPASS_OFFLINE_TXMAX": "100",
    "DUOPASS_REFRESH_MAX_PER_DAY": "100",
    # every client of the load generator comes from 127.0.0.1: a campus behind one NAT, which
    # a campus allowlists (else its reissues look like a farm to the risk policy)
    "DUOPASS_THROTTLE_EXEMPT_NETWORKS": '["127.0.0.0/8"]',
}


def start(db: str, data: Path, port: int, workers: int = 1) -> subprocess.Popen[bytes]:
    """`duopass serve` on `port` with its admin (login `admin`); its log in `data/../server.log`."""
    env = {**os.environ, **BENCH_SETTINGS}
    command = [sys.executable, "-m", "duopass", "serve", "--init", "--db", db]
    command += ["--data-dir", str(data), "--port", str(port), "--workers", str(workers)]
    with (data.parent / "server.log").open("ab") as log:
        server = subprocess.Popen(command, env=env, stdout=log)
    wait_until_up(server, f"http://127.0.0.1:{port}/v1/ping", timeout_s=120)
    password = data.parent / "admin-password"
    password.write_text(BENCH_ADMIN_PASSWORD + "\n")
    where = ["--password-file", str(password), "--data-dir", str(data), "--db", db]
    subprocess.run(
        [sys.executable, "-m", "duopass", "staff", "add", "admin", "--role", "admin", *where],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return server


@contextmanager
def served(db_kind: str, workers: int = 1) -> Iterator[int]:
    """The production server (`bench.online_server`: `duopass serve`, `workers` processes) on a
    fresh SQLite file or a fresh PostgreSQL database (`db_kind`), in a temporary folder;
    yields its port, and stops everything after."""
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{Path(tmp) / 'bench.db'}"
        if db_kind == "postgres":
            db = postgres_database()
        port = free_port()
        server = start(db, Path(tmp) / "data", port, workers)
        pg_port = db.rsplit(":", 1)[1].split("/")[0] if db_kind == "postgres" else None
        TIERS[port] = Tiers(server.pid, postmaster_of(int(pg_port)) if pg_port else None)
        if pg_port:
            DATABASES[port] = db
        try:
            yield port
        finally:
            del TIERS[port]
            DATABASES.pop(port, None)
            server.terminate()
            server.wait(timeout=60)


TIERS: dict[int, Tiers] = {}
"""The process trees of each running benchmark server (by port): CPU per request by tier."""


DATABASES: dict[int, str] = {}
"""The PostgreSQL database of each running benchmark server (by port)."""

_POSTGRES: list[str] = []


def commits(port: int) -> int | None:
    """Transactions committed so far in the server's PostgreSQL database (None on SQLite)."""
    url = DATABASES.get(port)
    return None if url is None else committed(url)


def postgres_database() -> str:
    """A new database on this run's PostgreSQL server (started at the first call, stopped at
    exit: `tests.pg`)."""
    from sqlalchemy import create_engine, text

    if not _POSTGRES:
        from tests.pg import start_postgres

        _POSTGRES.append(start_postgres()[0])
    name = f"bench_{uuid.uuid4().hex[:12]}"
    engine = create_engine(_POSTGRES[0], isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return _POSTGRES[0].rsplit("/", 1)[0] + f"/{name}"
