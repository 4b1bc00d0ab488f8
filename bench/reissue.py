"""Ticket reissues end to end over HTTP (the policy's decision, its ledger leaf, the new
credential and the old one's revocation: a request and its confirmation), against the same
server's empty endpoint (`GET /v1/ping`) in the same run; and the policy's evaluation alone,
against one Ed25519 signature check (what verifying a code costs) in the same process.

The field report's peak is 23,000 reissues a minute (383/s): the figure printed says how many
server processes (one core each) that needs at the measured rate.

    python -m bench.reissue [--quick] [--postgres]
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx

from bench.load import run
from bench.online_server import BENCH_ADMIN_PASSWORD, TIERS, served
from bench.timing import best_of, parser, us
from duopass.policy import DEFAULT_POLICY, bench_inputs, decide, load
from duopass.protocol import SigningKey
from duopass.protocol.encoding import b64u_encode
from duopass.protocol.keys import verify_signature
from duopass.protocol.signed_requests import device_enrolment_message

PEAK_PER_S = 23_000 / 60
DAY = 86_400


def _admin(http: httpx.Client) -> dict[str, str]:
    token = http.post(
        "/v1/admin/session", json={"login": "admin", "password": BENCH_ADMIN_PASSWORD}
    ).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def _event(http: httpx.Client, admin: dict[str, str], quota: int) -> int:
    doors = int(time.time()) + 2 * DAY  # far from the doors: the default policy allows
    http.post("/v1/admin/venues", headers=admin, json={"id": "hall", "name": "Hall"})
    made = http.post(
        "/v1/admin/events",
        headers=admin,
        json={
            "id": "gig",
            "name": "Gig",
            "doors": doors,
            "ends": doors + 4 * 3600,
            "venues": ["hall"],
        },
    )
    assert made.status_code == 201, made.text
    kind = http.post(
        "/v1/admin/events/gig/ticket-types",
        headers=admin,
        json={"name": "Standing", "price": 0, "quota": quota},
    )
    return int(kind.json()["id"])


def _holder(http: httpx.Client, admin: dict[str, str], n: int, type_id: int) -> dict[str, Any]:
    """A holder signed in with the password, a ticket (sold at the counter), and two enrolled
    phones: the ticket is on the first and each reissue moves it to the other."""
    login = f"fan{n}"
    created = http.post(
        "/v1/admin/holders",
        headers=admin,
        json={
            "login": login,
            "name": f"Fan {n}",
            "number": f"F{n:06d}",
            "email": f"{login}@bench.example",
            "password": "bench-password",
        },
    ).json()
    order = http.post(
        f"/v1/admin/holders/{created['handle']}/orders",
        headers=admin,
        json={"ticket_type": type_id, "quantity": 1, "request_id": uuid.uuid4().hex},
    ).json()
    token = http.post("/v1/session", json={"login": login, "password": "bench-password"}).json()
    auth = {"Authorization": f"Bearer {token['token']}"}
    phones = []
    for _ in range(2):
        key = SigningKey.generate()
        proof = key.sign(device_enrolment_message(login, key.public))
        device = http.post(
            "/v1/me/devices",
            headers=auth,
            json={"public_key": b64u_encode(key.public), "proof": b64u_encode(proof)},
        ).json()["device_id"]
        phones.append((key, device))
    synced = http.post("/v1/wallet/tickets", headers=auth, json={"device_id": phones[0][1]}).json()
    assert synced["tickets"][0]["credential"], synced
    return {"auth": auth, "sub": order["tickets"][0], "keys": [k for k, _ in phones]}


def _raw(method: str, path: str, auth: dict[str, str], body: dict[str, Any] | None) -> bytes:
    data = b"" if body is None else json.dumps(body).encode()
    head = "".join(f"{k}: {v}\r\n" for k, v in auth.items())
    return (
        f"{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n{head}\r\n".encode()
        + data
    )


def reissues(port: int, holders: list[dict[str, Any]], to: int) -> tuple[float, int]:
    """Every holder's ticket to phone `to`: all the requests, then all the confirmations;
    the rate is reissues (request and confirmation) per second."""
    asks = [
        _raw(
            "POST",
            f"/v1/me/tickets/{h['sub']}/reissue",
            h["auth"],
            {"device_key": b64u_encode(h["keys"][to].public)},
        )
        for h in holders
    ]
    rate_asks, _, _, bodies = run(port, asks, 4)
    answers = [json.loads(body) for body in bodies]
    allowed = [a["request_id"] for a in answers if a.get("outcome") == "allow"]
    assert len(allowed) == len(holders), answers[:3]
    by_sub = {h["sub"]: h for h in holders}  # answers come in the order they finish
    by_id = {a["request_id"]: by_sub[a["sub"]] for a in answers}
    confirms = [
        _raw("POST", f"/v1/me/reissues/{rid}/confirm", by_id[rid]["auth"], None) for rid in allowed
    ]
    rate_confirms, _, _, done = run(port, confirms, 4)
    assert all(json.loads(b).get("state") == "done" for b in done), [
        b for b in done if b"done" not in b
    ][:2]
    seconds = len(asks) / rate_asks + len(confirms) / rate_confirms
    return len(holders) / seconds, len(holders)


def measure_http(db_kind: str, quick: bool) -> float:
    count = 20 if quick else 200
    with served(db_kind) as port:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            admin = _admin(http)
            type_id = _event(http, admin, count)
            holders = [_holder(http, admin, n, type_id) for n in range(count)]
        ping = b"GET /v1/ping HTTP/1.1\r\nHost: bench\r\n\r\n"
        run(port, [ping] * 200, 4)
        empty = run(port, [ping] * (2 * count), 4)[0]
        first, _ = reissues(port, holders, to=1)
        empty_again = run(port, [ping] * (2 * count), 4)[0]
        before = TIERS[port].read()
        second, _ = reissues(port, holders, to=0)
        after = TIERS[port].read()
    app_ms, db_ms = ((a - b) * 1000 / count for a, b in zip(after, before, strict=True))
    empty_rate, rate = max(empty, empty_again), max(first, second)
    ratio = rate / (empty_rate / 2)  # a reissue is two requests
    print(f"ticket reissues over HTTP, {db_kind}, {count} holders x2 reissues, 4 connections")
    print(f"  empty endpoint      {empty_rate:8.0f} req/s")
    print(
        f"  reissues            {rate:8.1f} /s (request + confirm) = {ratio:.3f}x two empty calls"
    )
    print(
        f"  the report's peak   {PEAK_PER_S:.0f}/s needs {PEAK_PER_S / rate:.1f} server processes"
        " (one core each) at this rate"
    )
    print(f"  CPU a reissue       server {app_ms:.1f} ms, database {db_ms:.1f} ms")
    print(f"RATIO reissue_{db_kind}_vs_empty_pair {ratio:.3f}")
    return rate


def measure_policy(quick: bool) -> None:
    policy = load(DEFAULT_POLICY.read_text(encoding="utf-8"))
    inputs = bench_inputs()
    key = SigningKey.generate()
    message = b"x" * 64
    signature = key.sign(message)
    items = 200 if quick else 5_000

    def decisions() -> None:
        for _ in range(items):
            decide(policy, inputs)

    def signatures() -> None:
        for _ in range(items):
            verify_signature(key.public, message, signature)

    best = best_of(
        {"policy": decisions, "ed25519": signatures},
        items,
        rounds=3 if quick else 7,
    )
    ratio = best["policy"] / best["ed25519"]
    print(f"policy evaluation alone ({len(policy.rules)} rules, first match the last)")
    print(f"  decide              {us(best['policy'])} per decision")
    print(f"  ed25519 verify      {us(best['ed25519'])} per signature")
    print(f"RATIO policy_vs_ed25519 {ratio:.3f}")


def main() -> None:
    parse = parser(__doc__)
    parse.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    args = parse.parse_args()
    measure_policy(args.quick)
    measure_http("postgres" if args.postgres else "sqlite", args.quick)


if __name__ == "__main__":
    main()
