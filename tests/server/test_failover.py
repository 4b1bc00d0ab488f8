"""The database primary lost under load, and the issuer rides it out (issue 17).

A real pg_auto_failover formation (`tests.failover`: a monitor, a primary and its synchronous
standby) behind a real server on the two-host URL. Two tills scan payments online, the card
office tops up through the API, the tills' journals upload in the background; then the
primary's node is killed (keeper and server, SIGKILL), the monitor promotes the standby, and
the load goes on. The books must hold everything that was acknowledged, exactly once: every
top-up the API answered 200 (those answered 503 sent again with the same request id), every
payment a till accepted, online or offline (its journal settles it); `duopass audit` extends a
checkpoint it trusted before the kill (no fork); the terminals went offline and came back by
themselves; the server's threads lived through it. The gap (first failed write to the first
successful one after it) is measured and printed."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from duopass.cli.app import app as cli
from duopass.protocol.reasons import Reason
from duopass.server.store.tables import JournalEntry, Transaction
from duopass.terminal import AgentSettings, TerminalAgent, enrol
from tests import tsa
from tests.failover import Formation, formation
from tests.server.harness import Admin, Running, Wallet, ready_wallet, running_server
from tests.terminal.conftest import till_code, wait_for

pytestmark = pytest.mark.slow

USES = 1000
"""A credential's offline uses (the most the settings allow): more than a payer makes here."""
TXMAX = 500
"""The offline cap a payment: with `BALANCE`, a credential good for `USES` scans."""
BALANCE = USES * TXMAX
AMOUNTS = (120, 250, 380)
TOP_UP = 500
TILLS = ("till-1", "till-2")
PAYERS_PER_TILL = 2
BEFORE_OPS = 20
"""Writes acknowledged before the kill."""
AFTER_OPS = 20
"""Writes acknowledged after the first one that succeeded again."""
OPS_MAX = 800
"""The most operations the load makes, whatever happens."""
LOAD_S_MAX = 100.0
"""The longest the load runs after the kill, whatever happens (a broken failover fails)."""
PAUSE_S = 0.1
ANCHOR_S = 0.5
TERMINAL = AgentSettings(timeout_s=0.3, upload_s=1.0, upload_timeout_s=2.0, probe_s=0.5)


@dataclass
class Event:
    at: float
    """`time.monotonic()` when the operation started."""
    who: str
    """A till's terminal id, or `topup`."""
    ok: bool
    """A write acknowledged by the server (a top-up's 200, a scan's online verdict)."""
    ended: float
    """When its answer (or the terminal's own verdict) came."""


@dataclass
class Load:
    """What the clients did and were told, shared by their threads."""

    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    events: list[Event] = field(default_factory=list)
    paid: list[tuple[str, str, int, bool]] = field(default_factory=list)
    """(till, payer's login, amount, online) of every payment a till accepted."""
    topups: dict[str, tuple[str, int]] = field(default_factory=dict)
    """request id: (holder handle, amount) of every top-up sent."""
    acked: set[str] = field(default_factory=set)
    refusals: set[str] = field(default_factory=set)
    """The problem codes of the top-ups refused."""
    errors: list[str] = field(default_factory=list)

    def record(self, event: Event) -> None:
        with self.lock:
            self.events.append(event)
            if len(self.events) >= OPS_MAX:
                self.stop.set()

    def acknowledged_since(self, since: float) -> int:
        with self.lock:
            return sum(1 for event in self.events if event.ok and event.at >= since)


def _till(load: Load, till: TerminalAgent, payers: list[Wallet]) -> None:
    for n in itertools.count():
        if load.stop.is_set():
            return
        payer, amount = payers[n % len(payers)], AMOUNTS[n % len(AMOUNTS)]
        started = time.monotonic()
        try:
            result = till.scan_path.scan(payer.code(int(time.time())), amount=amount)
        except Exception as exc:  # a scan must always end in a verdict
            load.errors.append(f"{till.client.terminal_id}: {exc!r}")
            return
        if result.reason is Reason.OK:
            with load.lock:
                load.paid.append((till.client.terminal_id, payer.login, amount, result.online))
        load.record(Event(started, till.client.terminal_id, result.online, time.monotonic()))
        time.sleep(PAUSE_S)


def _top_ups(load: Load, url: str, auth: dict[str, str], handles: list[str]) -> None:
    with httpx.Client(base_url=url, timeout=30) as http:
        admin = Admin(http, auth)
        for n in itertools.count():
            if load.stop.is_set():
                return
            request_id, handle = uuid.uuid4().hex, handles[n % len(handles)]
            with load.lock:
                load.topups[request_id] = (handle, TOP_UP)
            started = time.monotonic()
            answer = admin.top_up(handle, TOP_UP, request_id)
            if answer.status_code == 200:
                load.acked.add(request_id)
            else:
                load.refusals.add(str(answer.json().get("code")))
            load.record(Event(started, "topup", answer.status_code == 200, time.monotonic()))
            time.sleep(PAUSE_S)


@dataclass
class Site:
    pg: Formation
    server: Running
    tmp: Path
    admin: Admin
    tills: dict[str, TerminalAgent] = field(default_factory=dict)
    payers: dict[str, list[Wallet]] = field(default_factory=dict)
    merchants: dict[str, int] = field(default_factory=dict)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with (
        formation() as pg,
        tsa.serving(tsa.make_authority(tmp_path / "tsa")) as tsa_url,
        running_server(
            pg.url,
            tmp_path / "server",
            webhook_delivery=True,  # its thread polls the database
            anchor_tsa_url=tsa_url,  # the anchoring thread too, every ANCHOR_S
            anchor_interval_s=ANCHOR_S,
            offline_uses=USES,
            offline_txmax=TXMAX,
        ) as server,
    ):
        found = Site(pg, server, tmp_path, server.admin())
        try:
            for name in TILLS:
                code, found.merchants[name] = till_code(found.admin, name)
                enrol(tmp_path / name, server=server.url, terminal_id=name, code=code)
                found.payers[name] = [
                    ready_wallet(server.http, found.admin, f"{name}-payer-{n}", balance=BALANCE)
                    for n in range(PAYERS_PER_TILL)
                ]
                till = TerminalAgent(tmp_path / name, TERMINAL)
                found.tills[name] = till
                assert till.bundles.sync()
            yield found
        finally:
            for till in found.tills.values():
                till.close()


def _audit(site: Site) -> str:
    """`duopass audit` over HTTP, trusting what the last audit checked (`audit.json`)."""
    site.server.http.get("/v1/ledger/checkpoint")  # the server signs when asked
    done = CliRunner().invoke(
        cli,
        [
            "audit",
            "--url",
            site.server.url,
            "--key",
            site.server.ctx.keyring.ledger.verifier.vkey(),
            "--state",
            str(site.tmp / "audit.json"),
        ],
    )
    assert done.exit_code == 0 and done.output.endswith("audit passed\n"), done.output
    return str(done.output)


def _anchored(site: Site) -> None:
    """The checkpoint the server signs now is timestamped by the anchoring thread."""
    note = site.server.http.get("/v1/ledger/checkpoint").text
    size = int(note.splitlines()[1])

    def anchored() -> bool:
        return bool(site.server.http.get("/v1/ledger/anchors").json().get("size") == size)

    wait_for(anchored, "the checkpoint after the failover anchored")


def _gap(events: list[Event], killed: float) -> tuple[float, float]:
    """When the first write after the kill failed, and when the first one after that was
    acknowledged (each when its answer came)."""
    after = sorted((e for e in events if e.at >= killed), key=lambda e: e.ended)
    failed = next(e.ended for e in after if not e.ok)
    back = next(e.ended for e in after if e.ok and e.at > failed)
    return failed, back


def _run_load(site: Site, load: Load) -> tuple[float, float]:
    """The load, the kill in its middle; (when the primary was killed, seconds until the
    monitor had promoted the standby)."""
    threads = [
        threading.Thread(target=_till, args=(load, site.tills[name], site.payers[name]))
        for name in TILLS
    ]
    handles = [wallet.handle for wallets in site.payers.values() for wallet in wallets]
    threads.append(
        threading.Thread(target=_top_ups, args=(load, site.server.url, site.admin.auth, handles))
    )
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: load.acknowledged_since(0) >= BEFORE_OPS, "writes before the kill")
        killed = time.monotonic()
        site.pg.kill("a")
        promoted = site.pg.wait_for_primary("b", timeout_s=LOAD_S_MAX)
        deadline = killed + LOAD_S_MAX

        def recovered() -> bool:
            with load.lock:
                failed = [e.at for e in load.events if e.at > killed and not e.ok]
            first = min(failed, default=None)
            return first is not None and load.acknowledged_since(first) >= AFTER_OPS

        while not (recovered() or load.stop.is_set() or time.monotonic() > deadline):
            time.sleep(0.1)
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not load.errors, load.errors
    return killed, promoted


def _settle_top_ups(site: Site, load: Load) -> None:
    """Every top-up not acknowledged sent again with its request id, until it is: applied
    once whatever happened to the first (committed before the kill, or lost with it)."""
    for request_id, (handle, amount) in load.topups.items():
        if request_id in load.acked:
            continue
        answer = site.admin.top_up(handle, amount, request_id)
        assert answer.status_code == 200, answer.text
        load.acked.add(request_id)


def _books(site: Site, load: Load) -> None:
    """Every acknowledged top-up and payment in the books exactly once."""
    ids = list(load.topups)
    found = site.server.ctx.run(
        lambda u: u.session.execute(
            select(Transaction.request_id, func.count())
            .where(Transaction.request_id.in_(ids))
            .group_by(Transaction.request_id)
        ).all()
    )
    assert dict(found) == dict.fromkeys(ids, 1)
    for name in TILLS:
        takings = sum(amount for till, _, amount, _ in load.paid if till == name)
        assert site.admin.account(site.merchants[name])["balance"] == takings, name
        for payer in site.payers[name]:
            spent = sum(amount for _, login, amount, _ in load.paid if login == payer.login)
            topped = sum(
                amount for handle, amount in load.topups.values() if handle == payer.handle
            )
            balance = site.admin.account(payer.account_id)["balance"]
            assert balance == BALANCE + topped - spent, payer.login
    assert site.admin.books() == 0
    for name in TILLS:  # one journal entry a scan, one payment transaction an accepted one
        scans = sum(1 for e in load.events if e.who == name)
        paid = sum(1 for till, *_ in load.paid if till == name)
        assert _count(site, select(func.count()).where(JournalEntry.terminal_id == name)) == scans
        assert _count(site, select(func.count()).where(Transaction.terminal_id == name)) == paid


def _count(site: Site, query: Any) -> int:
    return int(site.server.ctx.run(lambda u: u.session.scalar(query)))


def _uploaded(site: Site) -> None:
    """Each till's journal uploaded whole, by its own uploader (woken by the link's return)."""
    for till in site.tills.values():
        wait_for(lambda till=till: till.store.entries() == 0, "the journal uploaded")


def test_the_primary_killed_under_load_loses_nothing(site: Site) -> None:
    pg, ctx = site.pg, site.server.ctx
    assert pg.primary() == "a"
    assert pg.setting("a", "synchronous_standby_names").startswith("ANY 1 (")
    assert pg.setting("a", "synchronous_commit") == "on"  # a commit waits for the standby
    assert "first audit" in _audit(site)
    for till in site.tills.values():
        till.start()
    load = Load()
    killed, promoted = _run_load(site, load)
    failed, back = _gap(load.events, killed)
    scans = [e for e in load.events if e.who != "topup"]
    print(
        f"\nfailover: standby promoted {promoted:.1f} s after the kill; writes failed from"
        f" {failed - killed:.1f} s after it for {back - failed:.1f} s (the gap);"
        f" {len(load.events)} operations, {len(load.paid)} payments"
        f" ({sum(1 for p in load.paid if not p[3])} offline), {len(load.topups)} top-ups;"
        f" longest scan {max(e.ended - e.at for e in scans):.2f} s"
        f" (online timeout {TERMINAL.timeout_s} s)"
    )
    assert load.refusals <= {"store_unavailable"}, load.refusals  # fast, stable, no 500
    assert pg.primary() == "b"
    # the tills went offline during the gap and came back online by themselves
    for name in TILLS:
        mine = [e for e in scans if e.who == name and e.at > killed]
        offline = next(e.at for e in mine if not e.ok)
        assert any(e.ok and e.at > offline for e in mine), name
    _uploaded(site)
    _settle_top_ups(site, load)
    _books(site, load)
    assert ctx.store_held is None  # the outside checkpoint does not cry "rolled back"
    assert site.server.http.get("/healthz").json()["status"] == "ok"
    assert "extends the trusted checkpoint" in _audit(site)
    writer = ctx.group._writer
    assert writer is not None and writer.is_alive()
    alive = {thread.name for thread in threading.enumerate()}
    assert {"duopass-maintenance", "duopass-anchoring", "duopass-webhooks"} <= alive
    _anchored(site)
