"""Online payment scans over HTTP against the same server's empty endpoint (`GET /v1/ping`),
driven by one load generator in the same run. Goal: scans >= 0.5x the empty rate, p99 < 50 ms.

Each scan is a real, durable payment: a distinct counter of a distinct code, signed by an
enrolled till, booked double-entry with its ledger leaf in one transaction. The generator is a
lean asyncio HTTP/1.1 client over keep-alive connections, bounded by a request count; requests
are made and signed before the clock starts.

    python -m bench.online [--quick] [--postgres [--workers N]] [--connections N]

`--connections N`: the generator's keep-alive connections (8 unless given), the same for the
empty endpoint and the payments: how many tills at once. Each row also prints how many cores
the server's processes and the database's used during the measured run (CPU a request times the
rate: 1.0 is one core busy the whole run) and, on PostgreSQL, the scans a commit (units per
group-commit batch, from `pg_stat_database`), and the cores the load generator itself used (this
process's CPU time: it shares the machine with them).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from collections import Counter

import httpx

from bench.cpu import usage
from bench.load import Result, run
from bench.online_server import BENCH_ADMIN_PASSWORD, TIERS, commits, served
from bench.timing import parser
from duopass.protocol import SigningKey, make_code
from duopass.protocol.encoding import b64u_decode, b64u_encode
from duopass.protocol.signed_requests import (
    device_enrolment_message,
    enrolment_message,
    sign_request,
)

PRETIX_CHECKINS_PER_S = 54  # pretix on this kind of machine (DOMAIN.md)


def setup(
    http: httpx.Client, holders: int
) -> tuple[SigningKey, str, list[tuple[bytes, SigningKey]]]:
    """A till and `holders` wallets with 1,000-use credentials: (till key, till id, wallets)."""
    token = http.post(
        "/v1/admin/session", json={"login": "admin", "password": BENCH_ADMIN_PASSWORD}
    ).json()
    admin = {"Authorization": f"Bearer {token['token']}"}
    merchant = http.post("/v1/admin/merchants", json={"name": "bench"}, headers=admin).json()[
        "account_id"
    ]
    code = http.post(
        "/v1/admin/terminals",
        headers=admin,
        json={
            "terminal_id": "bench-till",
            "mode": "pay",
            "venue": "canteen",
            "merchant_account_id": merchant,
            "currency": "CNY",
        },
    ).json()["enrol_code"]
    till = SigningKey.generate()
    proof = till.sign(enrolment_message("bench-till", code, till.public))
    assert (
        http.post(
            "/v1/terminal/enrol",
            json={
                "terminal_id": "bench-till",
                "enrol_code": code,
                "public_key": b64u_encode(till.public),
                "proof": b64u_encode(proof),
            },
        ).status_code
        == 200
    )
    wallets = []
    for n in range(holders):
        login = f"bench{n}"
        created = http.post(
            "/v1/admin/holders",
            headers=admin,
            json={
                "login": login,
                "name": f"Bench {n}",
                "number": f"B{n:06d}",
                "email": f"{login}@bench.example",
                "password": "bench-password",
            },
        ).json()
        http.post(
            f"/v1/admin/holders/{created['handle']}/topups",
            headers=admin,
            json={"amount": 1_000 * 100, "request_id": uuid.uuid4().hex},
        )
        auth = {
            "Authorization": "Bearer "
            + http.post("/v1/session", json={"login": login, "password": "bench-password"}).json()[
                "token"
            ]
        }
        device = SigningKey.generate()
        proof = device.sign(device_enrolment_message(login, device.public))
        device_id = http.post(
            "/v1/me/devices",
            headers=auth,
            json={"public_key": b64u_encode(device.public), "proof": b64u_encode(proof)},
        ).json()["device_id"]
        synced = http.post(
            "/v1/wallet/sync",
            headers=auth,
            json={"device_id": device_id, "request_id": uuid.uuid4().hex},
        ).json()
        assert synced["uses"] == 1000, synced
        wallets.append((b64u_decode(synced["credential"]), device))
    return till, "bench-till", wallets


def scan_requests(
    till: SigningKey,
    terminal_id: str,
    wallets: list[tuple[bytes, SigningKey]],
    count: int,
    first_ctr: int,
) -> list[bytes]:
    """`count` signed POSTs, each a new counter: ready-made bytes for the generator."""
    now = int(time.time())
    requests = []
    for i in range(count):
        l1, device = wallets[i % len(wallets)]
        ctr = first_ctr + i // len(wallets)
        body = json.dumps(
            {
                "code": make_code(l1, device, ctr=ctr, ts=now),
                "mode": "pay",
                "amount": 50,
                "terminal_id": terminal_id,
                "seq": first_ctr * 10_000 + i,
                "scanned_at": now,
            }
        ).encode()
        headers = sign_request(
            till, terminal_id, method="POST", target="/v1/terminal/scans", time=now, body=body
        )
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        requests.append(
            f"POST /v1/terminal/scans HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{head}\r\n".encode()
            + body
        )
    return requests


def charged(port: int, requests: list[bytes], connections: int) -> tuple[Result, float, float]:
    """`run`, with the milliseconds of CPU each request cost the server's processes and the
    database's (0 for SQLite, which is inside the server)."""
    tiers = TIERS[port]
    server_before, db_before = tiers.read()
    own = time.process_time()
    result = run(port, requests, connections)
    GENERATOR_MS[port] = (time.process_time() - own) * 1000 / len(requests)
    server_after, db_after = tiers.read()
    n = len(requests)
    return result, (server_after - server_before) * 1000 / n, (db_after - db_before) * 1000 / n


def per_commit(
    port: int, requests: list[bytes], connections: int, *, counted: bool = True
) -> tuple[Result, float, float]:
    """`charged`, and on PostgreSQL with `counted` the requests a committed transaction, in
    `PER_COMMIT` (the database's other transactions, few in a run, count as commits too; each
    reading waits `STATS_FLUSH_S`, so `--quick` leaves it out)."""
    if not counted:
        return charged(port, requests, connections)
    before = commits(port)
    result, server_ms, db_ms = charged(port, requests, connections)
    after = commits(port)
    if before is None or after is None or after == before:
        return result, server_ms, db_ms
    PER_COMMIT[port] = len(requests) / (after - before)
    return result, server_ms, db_ms


GENERATOR_MS: dict[int, float] = {}
"""The load generator's own CPU a request (this process) in the last `charged` run, by port."""
PER_COMMIT: dict[int, float] = {}
"""Requests a commit in the last `per_commit` run, by port."""


CPU_MS: dict[str, tuple[float, float]] = {}
"""The last measurement's CPU per request by tier, per kind of request (`ping`, `scan`)."""
RUNS: dict[str, tuple[float, float]] = {}
"""The last measurement's charged runs: rate and scans a commit (0.0 unknown), by kind."""
GENERATOR_CORES: dict[str, float] = {}
"""The cores the load generator used in the last measurement's charged runs, by kind."""
CONNECTIONS_DEFAULT = 8
CONNECTIONS_MAX = 256
"""The most `--connections` takes (the generator is one asyncio loop)."""


def measure_one(
    db_kind: str, quick: bool, workers: int, connections: int | None = None
) -> tuple[float, Result, int]:
    """The empty endpoint's best rate and the best run of scans, with `workers` processes and
    `connections` at once (8, or 4 with `quick`)."""
    # Codes are fresh for 60 s (freshness_s): each run must finish well within that.
    count, holders = (200, 4) if quick else (2_000, 20)
    if connections is None:
        connections = 4 if quick else CONNECTIONS_DEFAULT
    with served(db_kind, workers) as port:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            till, terminal_id, wallets = setup(http, holders)
        ping = b"GET /v1/ping HTTP/1.1\r\nHost: bench\r\n\r\n"
        run(port, [ping] * 200, connections)  # warm-up
        empty = run(port, [ping] * count, connections)
        scans = run(
            port, scan_requests(till, terminal_id, wallets, count, first_ctr=0), connections
        )
        empty_again, *ping_cpu = charged(port, [ping] * count, connections)
        generator = {"ping": GENERATOR_MS[port]}
        again = scan_requests(till, terminal_id, wallets, count, first_ctr=500)
        scans_again, *scan_cpu = per_commit(port, again, connections, counted=not quick)
        generator["scan"] = GENERATOR_MS.pop(port)
        RUNS["ping"] = (empty_again[0], 0.0)
        RUNS["scan"] = (scans_again[0], PER_COMMIT.pop(port, 0.0))
        GENERATOR_CORES.update({kind: RUNS[kind][0] * ms / 1000 for kind, ms in generator.items()})
    CPU_MS["ping"], CPU_MS["scan"] = (ping_cpu[0], ping_cpu[1]), (scan_cpu[0], scan_cpu[1])
    reasons = Counter(json.loads(body)["reason"] for body in scans[3] + scans_again[3])
    assert reasons["OK"] == 2 * count, f"not every payment was accepted: {dict(reasons)}"
    best = max((scans, scans_again), key=lambda r: r[0])
    return max(empty[0], empty_again[0]), best, count


def measure(db_kind: str, quick: bool, most_workers: int, connections: int | None) -> None:
    cores = sorted(os.sched_getaffinity(0))
    print(
        f"online payment scans over HTTP, {db_kind}, production `duopass serve` (access log and"
        f" throttles on); load generator: this process, one asyncio loop (one core at most),"
        f" not pinned, sharing cores {cores} with the server"
    )
    print(
        "  workers   empty req/s   scans req/s   ratio (goal >= 0.5x)   p50 ms   p99 ms"
        "   vs pretix 54/s"
    )
    ratio = 0.0
    for workers in range(1, most_workers + 1):
        empty_rate, best, count = measure_one(db_kind, quick, workers, connections)
        rate, p50, p99 = best[0], best[1] * 1000, best[2] * 1000
        ratio = rate / empty_rate
        print(
            f"  {workers:7d}   {empty_rate:11.0f}   {rate:11.0f}   {ratio:20.2f}x"
            f"   {p50:6.1f}   {p99:6.1f}   {rate / PRETIX_CHECKINS_PER_S:13.1f}x"
        )
        (ping_app, ping_db), (scan_app, scan_db) = CPU_MS["ping"], CPU_MS["scan"]
        print(
            f"           CPU a request, server / database: empty {ping_app:.2f} / {ping_db:.2f}"
            f" ms, scan {scan_app:.2f} / {scan_db:.2f} ms"
        )
        (ping_rate, _), (scan_rate, scans_a_commit) = RUNS["ping"], RUNS["scan"]
        used_empty, used_scans = (
            usage(ping_rate, ping_app, ping_db),
            usage(scan_rate, *CPU_MS["scan"]),
        )
        print(
            "           cores used in the charged runs, server / database:"
            f" empty {used_empty}, scans {used_scans}"
            + (f"; {scans_a_commit:.1f} scans a commit" if scans_a_commit else "")
        )
        print(
            "           cores the load generator used: empty"
            f" {GENERATOR_CORES['ping']:.2f}, scans {GENERATOR_CORES['scan']:.2f}"
        )
    shown = connections or (4 if quick else CONNECTIONS_DEFAULT)
    print(
        f"  ({count} requests a run over {shown} connections, the better of two; p99 goal < 50 ms;"
        " pretix goal 20x)"
    )
    print(f"RATIO online_{db_kind}_scan_vs_empty {ratio:.3f}")


def connections_option(parse: argparse.ArgumentParser) -> None:
    parse.add_argument(
        "--connections",
        type=int,
        default=None,
        help=f"the generator's connections at once ({CONNECTIONS_DEFAULT}; 4 with --quick)",
    )


def main() -> None:
    parse = parser(__doc__)
    parse.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    parse.add_argument(
        "--workers", type=int, default=1, help="measure 1 to N server processes (PostgreSQL)"
    )
    connections_option(parse)
    args = parse.parse_args()
    if args.workers > 1 and not args.postgres:
        parse.error("--workers above 1 needs --postgres: SQLite has one writer process")
    if args.connections is not None and not 1 <= args.connections <= CONNECTIONS_MAX:
        parse.error(f"--connections must be 1 to {CONNECTIONS_MAX}")
    os.environ.setdefault("PYTHONHASHSEED", "0")
    measure("postgres" if args.postgres else "sqlite", args.quick, args.workers, args.connections)


if __name__ == "__main__":
    main()
