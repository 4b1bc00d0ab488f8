"""Check-ins over HTTP through the pretix-style `POST /v1/checkin/redeem`, against the same
server's empty endpoint (`GET /v1/ping`) in the same run, beside pretix's 54 check-ins/s on this
kind of machine (DOMAIN.md).

Each check-in is real and durable: a scanning terminal's signed request (an entry terminal of
the event; `--staff`: a staff phone's bearer token instead, whose session is read in a unit of
its own) with a fresh code (a new counter) of a ticket, on a list with re-entry; tickets go in
and out in turns (an entry, then an exit, then a free re-entry ...), each a check-in row, a
consumed counter and a ledger leaf in one transaction. Requests are made before the clock
starts; the load is bounded by a request count.

    python -m bench.checkin [--quick] [--postgres] [--staff] [--connections N]

`--connections N`: the generator's connections at once (8 unless given), the same for the empty
endpoint and the check-ins; it also prints the cores each tier used during the measured run and,
on PostgreSQL, the check-ins a commit.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter
from typing import Any

import httpx

from bench.cpu import usage
from bench.load import run
from bench.online import (
    CONNECTIONS_DEFAULT,
    CONNECTIONS_MAX,
    PER_COMMIT,
    PRETIX_CHECKINS_PER_S,
    connections_option,
    per_commit,
)
from bench.online_server import BENCH_ADMIN_PASSWORD, served
from bench.timing import parser
from duopass.protocol import SigningKey, make_code
from duopass.protocol.encoding import b64u_decode, b64u_encode
from duopass.protocol.signed_requests import (
    device_enrolment_message,
    enrolment_message,
    sign_request,
)

HOUR = 3600
SCANNER = "bench-scanner"
SCANNER_KEY = SigningKey.generate()
TARGET = "/v1/checkin/redeem"
ORDER_MAX = 20  # tickets per order (server limit)


def _ok(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code < 300, answer.text
    return dict(answer.json())


def setup(
    http: httpx.Client, holders: int, per_holder: int
) -> tuple[str, int, list[tuple[bytes, SigningKey]]]:
    """An event on now, a re-entry list, and `holders` wallets of `per_holder` tickets each:
    (staff token, list id, [(ticket credential, device key)])."""
    token = _ok(
        http.post("/v1/admin/session", json={"login": "admin", "password": BENCH_ADMIN_PASSWORD})
    )["token"]
    admin = {"Authorization": f"Bearer {token}"}
    now = int(time.time())
    _ok(http.post("/v1/admin/venues", json={"id": "arena", "name": "Arena"}, headers=admin))
    event = {"id": "gig", "name": "Gig", "doors": now - 60, "ends": now + 4 * HOUR}
    _ok(http.post("/v1/admin/events", json={**event, "venues": ["arena"]}, headers=admin))
    kind = _ok(
        http.post(
            "/v1/admin/events/gig/ticket-types",
            json={"name": "Standing", "price": 100, "quota": 100_000},
            headers=admin,
        )
    )["id"]
    lounge = _ok(
        http.post(
            "/v1/admin/events/gig/checkin-lists",
            json={"name": "Hall", "allow_reentry": True},
            headers=admin,
        )
    )["id"]
    code = _ok(
        http.post(
            "/v1/admin/terminals",
            headers=admin,
            json={"terminal_id": SCANNER, "mode": "entry", "venue": "arena", "event": "gig"},
        )
    )["enrol_code"]
    proof = SCANNER_KEY.sign(enrolment_message(SCANNER, code, SCANNER_KEY.public))
    enrol = {
        "terminal_id": SCANNER,
        "enrol_code": code,
        "public_key": b64u_encode(SCANNER_KEY.public),
    }
    _ok(http.post("/v1/terminal/enrol", json={**enrol, "proof": b64u_encode(proof)}))
    tickets = []
    for n in range(holders):
        login = f"fan{n}"
        handle = _ok(
            http.post(
                "/v1/admin/holders",
                headers=admin,
                json={
                    "login": login,
                    "name": f"Fan {n}",
                    "number": f"F{n:06d}",
                    "email": f"{login}@bench.example",
                    "password": "bench-password",
                },
            )
        )["handle"]
        for first in range(0, per_holder, ORDER_MAX):
            order = {"ticket_type": kind, "quantity": min(ORDER_MAX, per_holder - first)}
            order["request_id"] = uuid.uuid4().hex
            _ok(http.post(f"/v1/admin/holders/{handle}/orders", json=order, headers=admin))
        session = _ok(http.post("/v1/session", json={"login": login, "password": "bench-password"}))
        auth = {"Authorization": f"Bearer {session['token']}"}
        device = SigningKey.generate()
        proof = device.sign(device_enrolment_message(login, device.public))
        device_id = _ok(
            http.post(
                "/v1/me/devices",
                headers=auth,
                json={"public_key": b64u_encode(device.public), "proof": b64u_encode(proof)},
            )
        )["device_id"]
        synced = _ok(
            http.post(
                "/v1/wallet/tickets", headers=auth, json={"device_id": device_id, "exhausted": []}
            )
        )
        tickets += [(b64u_decode(t["credential"]), device) for t in synced["tickets"]]
    assert len(tickets) == holders * per_holder
    return token, lounge, tickets


def redeem_requests(
    token: str | None, list_id: int, tickets: list[tuple[bytes, SigningKey]], rounds: range
) -> list[bytes]:
    """Every ticket once a round, in turns entry, exit, entry ...: a new counter each time;
    signed by the scanner, or with the staff `token`."""
    now = int(time.time())
    requests = []
    for ctr in rounds:
        for l1, device in tickets:
            body = json.dumps(
                {
                    "secret": make_code(l1, device, ctr=ctr, ts=now),
                    "lists": [list_id],
                    "type": "entry" if ctr % 2 == 0 else "exit",
                    "nonce": uuid.uuid4().hex,
                    "source_type": "barcode",
                }
            ).encode()
            if token is None:
                signed = sign_request(
                    SCANNER_KEY, SCANNER, method="POST", target=TARGET, time=now, body=body
                )
            else:
                signed = {"Authorization": f"Bearer {token}"}
            head = "".join(f"{k}: {v}\r\n" for k, v in signed.items())
            requests.append(
                f"POST {TARGET} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n{head}\r\n".encode()
                + body
            )
    return requests


def measure(db_kind: str, quick: bool, staff: bool, connections: int | None = None) -> None:
    # a ticket has 16 codes (`uses`): two runs of `rounds` each; codes are fresh for 60 s
    holders, per_holder, rounds = (2, 20, 5) if quick else (10, 25, 8)
    if connections is None:
        connections = 4 if quick else CONNECTIONS_DEFAULT
    count = holders * per_holder * rounds
    with served(db_kind) as port:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            token, list_id, tickets = setup(http, holders, per_holder)
        caller = token if staff else None
        ping = b"GET /v1/ping HTTP/1.1\r\nHost: bench\r\n\r\n"
        run(port, [ping] * 200, connections)  # warm-up
        empty = run(port, [ping] * count, connections)
        first = run(port, redeem_requests(caller, list_id, tickets, range(rounds)), connections)
        empty_again = run(port, [ping] * count, connections)
        second, app_ms, db_ms = per_commit(
            port,
            redeem_requests(caller, list_id, tickets, range(rounds, 2 * rounds)),
            connections,
            counted=not quick,
        )
        a_commit = PER_COMMIT.pop(port, 0.0)
    statuses = Counter(json.loads(body)["status"] for body in first[3] + second[3])
    assert statuses["ok"] == 2 * count, f"not every check-in succeeded: {dict(statuses)}"
    empty_rate = max(empty[0], empty_again[0])
    best = max((first, second), key=lambda r: r[0])
    ratio = best[0] / empty_rate
    who = "staff token" if staff else "signed terminal"
    print(
        f"check-ins over HTTP (redeem, {who}), {db_kind}, {count} requests x2, {connections} conns"
    )
    print(f"  empty endpoint      {empty_rate:8.0f} req/s")
    print(f"  check-ins           {best[0]:8.0f} req/s  = {ratio:.2f}x the empty endpoint")
    print(f"  check-in latency    p50 {best[1] * 1000:.1f} ms, p99 {best[2] * 1000:.1f} ms")
    print(f"  vs pretix check-in  {best[0] / PRETIX_CHECKINS_PER_S:8.1f}x its 54/s")
    print(f"  CPU a check-in      server {app_ms:.2f} ms, database {db_ms:.2f} ms")
    print(
        f"  cores used          server / database {usage(second[0], app_ms, db_ms)}"
        f" (the charged run, {second[0]:.0f}/s)"
        + (f"; {a_commit:.1f} check-ins a commit" if a_commit else "")
    )
    print(f"RATIO checkin_{db_kind}{'_staff' if staff else ''}_vs_empty {ratio:.3f}")


def main() -> None:
    parse = parser(__doc__)
    parse.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    parse.add_argument("--staff", action="store_true", help="a staff token, not a terminal")
    connections_option(parse)
    args = parse.parse_args()
    if args.connections is not None and not 1 <= args.connections <= CONNECTIONS_MAX:
        parse.error(f"--connections must be 1 to {CONNECTIONS_MAX}")
    os.environ.setdefault("PYTHONHASHSEED", "0")
    measure("postgres" if args.postgres else "sqlite", args.quick, args.staff, args.connections)


if __name__ == "__main__":
    main()
