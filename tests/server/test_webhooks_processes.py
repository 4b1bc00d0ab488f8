"""Webhooks across processes: a server killed (SIGKILL) after its events committed and before
anything was delivered loses nothing (the next server sends all of it, in order, once per
`webhook-id`); and two servers on one PostgreSQL, two delivery workers each, share the work
(endpoints claimed with `SELECT ... FOR UPDATE SKIP LOCKED`) without sending anything twice or
out of order."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from duopass.demo.serving import free_port, wait_until_up
from tests.server.harness import Admin, running_server
from tests.server.ticketing import event_on_sale, ticket_wallet
from tests.server.webhooks import alert, client_fixture, deliver, hook, receiver_fixture

__all__ = ["client_fixture", "receiver_fixture"]  # the fixtures these tests use

DEADLINE_S = 120


def _serve(data: Path, port: int, *, deliver: bool) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "duopass", "serve", "--demo", "--data-dir", str(data)]
    env = {**os.environ, "DUOPASS_WEBHOOK_DELIVERY": "true" if deliver else "false"}
    server = subprocess.Popen(
        [*command, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return wait_until_up(server, f"http://127.0.0.1:{port}/healthz")


def test_a_server_killed_between_commit_and_delivery_delivers_after_restart(tmp_path, receiver):
    data, port = tmp_path / "data", free_port()
    server = _serve(data, port, deliver=False)  # it commits, and never gets to deliver
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        demo = json.loads((data / "demo.json").read_text())
        token = http.post("/v1/admin/session", json=demo["admin"]).json()["token"]
        admin = Admin(http, {"Authorization": f"Bearer {token}"})
        hook(admin, receiver, ["ticket.issued"])
        sale = event_on_sale(admin, "webhook-night", doors=int(time.time()) + 3600)
        fan = ticket_wallet(http, admin, "fan", balance=10_000)
        answer = fan.buy(sale, 3)
        assert answer.status_code == 201, answer.text  # committed
        subs = answer.json()["tickets"]
        os.kill(server.pid, signal.SIGKILL)
        server.wait()
        assert receiver.tried == 0
        server = _serve(data, port, deliver=True)
        deadline = time.monotonic() + DEADLINE_S
        while len(receiver.got) < len(subs) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [got.body["data"]["ticket"] for got in receiver.got] == subs
        assert len(set(receiver.ids())) == len(subs) and receiver.refused == 0
    finally:
        http.close()
        server.kill()
        server.wait()


def test_two_servers_on_one_postgresql_share_the_work(postgres_server, receiver):
    first = postgres_server
    admin = first.admin()
    endpoints = [hook(admin, receiver)["id"] for _ in range(3)]
    alert(first, 20)
    settings = first.ctx.settings
    with running_server(settings.db_url, settings.data_dir) as second:

        def work(server, owner: str) -> None:
            with httpx.Client(timeout=5, trust_env=False) as client:
                deliver(server, client, owner=owner)

        workers = [
            threading.Thread(target=work, args=(server, f"worker-{n}"))
            for n, server in enumerate([first, second, first, second])
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(DEADLINE_S)
        with httpx.Client(timeout=5, trust_env=False) as client:
            assert deliver(second, client, owner="last") == 0  # nothing was left
    for n in range(len(endpoints)):
        got = [item for item in receiver.got if item.verified_by == (n,)]
        assert [item.body["data"]["alert"] for item in got] == list(range(1, 21))
    assert len(receiver.got) == 60 and receiver.refused == 0
