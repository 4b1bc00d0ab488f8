"""The server half of `bench.memory`: resident memory of a server process on a SQLite database
holding 100,000 holders and 1,000,000 ledger entries, after a few requests (a trust bundle, the
checkpoint, an inclusion proof, a holder lookup).

The database is filled in bulk with SQL in this process, not over HTTP (a million requests would
take hours): holders with their accounts and card-office rows, and `holder_create` leaves with
the tree's perfect-subtree nodes, hashed by `duopass.ledger` as the server would. Then the
server starts on it in its own process (`--serve`), and its VmRSS is read from /proc/PID/status.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import uvicorn
from argon2 import PasswordHasher

from bench.online import setup
from bench.online_server import BENCH_ADMIN_PASSWORD
from bench.timing import table
from duopass.demo.serving import free_port, wait_until_up
from duopass.ledger import CompactRange, hash_leaf
from duopass.ledger.events import EventType, event
from duopass.ledger.tree import NodeId
from duopass.protocol.signed_requests import sign_request
from duopass.server.app import create_app
from duopass.server.keyring import Keyring
from duopass.server.runner import uvicorn_config
from duopass.server.settings import Settings
from duopass.server.store.access import Staff

_CHUNK = 20_000


def _settings(db: Path, data: Path) -> Settings:
    return Settings(db_url=f"sqlite:///{db}", data_dir=data)


def prepare(db: Path, data: Path) -> None:
    """Migrate the schema, make today's keys and the benchmark's admin (in this process)."""
    app = create_app(_settings(db, data), keyring=Keyring.create(data, origin="bench/memory"))
    app.state.context.run(
        lambda u: u.session.add(
            Staff(
                login="admin",
                password_hash=PasswordHasher().hash(BENCH_ADMIN_PASSWORD),
                role="admin",
            )
        )
    )


def fill_holders(con: sqlite3.Connection, count: int) -> None:
    for first in range(0, count, _CHUNK):
        rows = range(first, min(first + _CHUNK, count))
        con.executemany(
            "INSERT INTO accounts (kind, name, currency, balance, overdraft, held, "
            "unconfirmed_released) VALUES ('holder', ?, 'CNY', 10000, 0, 0, 0)",
            [(f"holder:h-bench{n:08d}",) for n in rows],
        )
        con.executemany(
            "INSERT INTO holders (handle, login, person_digest, password_hash, account_id, "
            "frozen, offline_suspended) SELECT ?, ?, ?, 'x', id, 0, 0 FROM accounts WHERE name = ?",
            [
                (f"h-bench{n:08d}", f"bench{n}", os.urandom(32), f"holder:h-bench{n:08d}")
                for n in rows
            ],
        )
        con.executemany(
            "INSERT INTO holder_people (holder_id, name, number, email, person_key) "
            "SELECT id, ?, ?, ?, ? FROM holders WHERE handle = ?",
            [
                (
                    f"Bench {n}",
                    f"B{n:08d}",
                    f"bench{n}@bench.example",
                    os.urandom(32),
                    f"h-bench{n:08d}",
                )
                for n in rows
            ],
        )
        con.commit()


class _Nodes:
    def __init__(self, con: sqlite3.Connection) -> None:
        self.con = con

    def read_nodes(self, ids: Sequence[NodeId], /) -> Sequence[bytes]:
        query = 'SELECT hash FROM ledger_nodes WHERE level = ? AND "index" = ?'
        return [self.con.execute(query, (n.level, n.index)).fetchone()[0] for n in ids]


def fill_ledger(con: sqlite3.Connection, count: int) -> int:
    """Append `count` holder_create leaves after those the server wrote; returns the size."""
    row = con.execute("SELECT value FROM meta WHERE name = 'ledger_size'").fetchone()
    size = int(row[0]) if row else 0
    if row is None:
        con.execute("INSERT INTO meta (name, value) VALUES ('ledger_size', 0)")
    tail = CompactRange.read(_Nodes(con), size)
    now = int(time.time())
    for first in range(0, count, _CHUNK):
        leaves: list[tuple[int, bytes]] = []
        nodes: list[tuple[int, int, bytes]] = []
        for _ in range(min(_CHUNK, count - first)):
            body = {"holder": os.urandom(32), "person": os.urandom(32)}
            data = event(EventType.HOLDER_CREATE, now, "demo-univ", body)
            appended = tail.append(hash_leaf(data))
            leaves.append((tail.size, data))
            tail = appended.compact
            nodes.extend((n.node.level, n.node.index, n.hash) for n in appended.stored)
        con.executemany('INSERT INTO ledger_leaves ("index", data) VALUES (?, ?)', leaves)
        con.executemany('INSERT INTO ledger_nodes (level, "index", hash) VALUES (?, ?, ?)', nodes)
        con.execute("UPDATE meta SET value = ? WHERE name = 'ledger_size'", (tail.size,))
        con.commit()
    return tail.size


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _requests(http: httpx.Client, size: int) -> list[tuple[str, int]]:
    """The few requests: a holder lookup, the checkpoint, an inclusion proof, a whole bundle."""
    token = http.post(
        "/v1/admin/session", json={"login": "admin", "password": BENCH_ADMIN_PASSWORD}
    ).json()["token"]
    admin = {"Authorization": f"Bearer {token}"}
    till, till_id, _ = setup(http, 0)
    target = "/v1/terminal/bundle?since=0"
    signed = sign_request(
        till, till_id, method="GET", target=target, time=int(time.time()), body=b""
    )
    checkpoint = http.get("/v1/ledger/checkpoint")
    tree = int(checkpoint.text.splitlines()[1])
    answers = [
        http.get("/v1/admin/holders/h-bench00000007", headers=admin),
        checkpoint,
        http.get(f"/v1/ledger/proofs/inclusion?index={size // 2}&size={tree}"),
        http.get(target, headers=signed),
    ]
    return [(answer.url.path, answer.status_code) for answer in answers]


def server(*, quick: bool) -> None:
    holders, leaves = (1_000, 10_000) if quick else (100_000, 1_000_000)
    with tempfile.TemporaryDirectory() as tmp:
        db, data = Path(tmp) / "server.db", Path(tmp) / "data"
        prepare(db, data)
        started = time.perf_counter()
        with sqlite3.connect(db) as con:
            fill_holders(con, holders)
            size = fill_ledger(con, leaves)
        filled = time.perf_counter() - started
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.memory_server", "--serve", str(db), str(data), str(port)]
        )
        try:
            wait_until_up(proc, f"http://127.0.0.1:{port}/v1/ping", timeout_s=120)
            idle = _rss_kib(proc.pid)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
                answers = _requests(http, size)
            after = _rss_kib(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        db_mib = sum(p.stat().st_size for p in Path(tmp).glob("server.db*")) / 2**20
    print(
        f"server: SQLite, {holders:,} holders and {size:,} ledger entries ({db_mib:.0f} MiB "
        f"file, filled in {filled:.0f} s); VmRSS of the server process from /proc/PID/status"
    )
    table(
        [
            ("started, no request yet", f"{idle / 1024:7.1f} MiB"),
            (
                "after a holder lookup, the checkpoint, a proof, a bundle",
                f"{after / 1024:7.1f} MiB",
            ),
        ]
    )
    assert all(status == 200 for _, status in answers), answers
    print(f"RATIO server_rss_after_vs_started {after / idle:.3f}")


def serve() -> None:
    parse = argparse.ArgumentParser()
    parse.add_argument("--serve", nargs=3, metavar=("DB", "DATA", "PORT"), required=True)
    db, data, port = parse.parse_args().serve
    app = create_app(_settings(Path(db), Path(data)), keyring=Keyring.load(Path(data)))
    config = uvicorn_config(
        app, host="127.0.0.1", port=int(port), log_level="warning", access_log=False
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    serve()
