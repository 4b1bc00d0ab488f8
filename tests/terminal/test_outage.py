"""A whole server outage, ridden out (issue 17): an entry gate and a till, enrolled and holding a
fresh trust bundle, lose their server for 12 hours on the injectable clock (the server's
`ManualClock`, which the terminal agents read too). They keep accepting codes offline (tickets
at the gate, purse payments at the till) and journaling them, refusals included. Then the
server comes back (a new server on the same database and data directory), the journals
upload, and the books reconcile exactly: every payment booked once for its amount at its scan
time, every check-in counted once, a batch whose answer was lost and a batch sent again change
nothing, and `duopass audit` passes over the ledger signed before and after the outage.

12 hours is within the defaults: a bundle lives `bundle_max_age_s` = 24 h (§3 check 3), a
purse credential `credential_lifetime_s` = 24 h, and §5.5 stops offline payments only when
the oldest unacknowledged entry is older than the late window (72 h) minus 12 h."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from duopass.cli.app import app as cli
from duopass.demo.netcut import Mode, Proxy
from duopass.protocol.encoding import b64u_encode
from duopass.protocol.reasons import Reason
from duopass.server.settings import Settings
from duopass.server.store.tables import JournalEntry, Posting, Transaction
from duopass.terminal import AgentSettings, TerminalAgent, enrol
from duopass.terminal.client import Unreachable
from tests.server.harness import Admin, ManualClock, Running, Wallet, ready_wallet, running_server
from tests.server.ticketing import TicketWallet, entrance, event_on_sale, ticket_wallet
from tests.terminal.conftest import server_acked, till_code, wait_for

HOUR = 3600
OUTAGE_S = 12 * HOUR
BALANCE = 30_000
AMOUNTS = (1250, 880, 2999)
"""What each payer pays at the till, once every three hours (each at most `txmax`, 30.00)."""
OFFLINE = AgentSettings(timeout_s=0.3, upload_timeout_s=1.0)
_JOURNAL = b"POST /v1/terminal/journal"


@dataclass
class Site:
    """The issuer's server (replaced when it comes back), the proxy the terminals talk through,
    and what the test did, to be found again in the books."""

    clock: ManualClock
    tmp: Path
    proxy: Proxy
    stack: ExitStack = field(default_factory=ExitStack)
    server: Running = field(init=False)
    merchant: int = 0
    payers: list[Wallet] = field(default_factory=list)
    fans: list[tuple[TicketWallet, str]] = field(default_factory=list)
    paid: list[tuple[str, int, int]] = field(default_factory=list)
    """(payer's login, scan time, amount) of every payment the till accepted."""
    entered: list[str] = field(default_factory=list)
    """The tickets the gate let in."""
    scans: Counter[str] = field(default_factory=Counter)
    """Scans per terminal (each one journal entry)."""

    def up(self) -> None:
        """A server process on the issuer's database and data directory, behind the proxy."""
        self.stack = ExitStack()
        self.server = self.stack.enter_context(
            running_server(
                f"sqlite:///{self.tmp / 'duopass.db'}", self.tmp / "server", clock=self.clock
            )
        )
        self.proxy.upstream_port = int(self.server.url.rsplit(":", 1)[1])
        self.proxy.set(Mode.FORWARD)

    def down(self) -> None:
        """The server gone: stopped (its HTTP server and database connections closed), its
        address refusing connections."""
        self.proxy.set(Mode.REFUSE)
        self.stack.close()

    def admin(self) -> Admin:
        return self.server.admin()

    def agent(self, name: str) -> TerminalAgent:
        return TerminalAgent(self.tmp / name, OFFLINE, clock=self.clock)


@pytest.fixture
def site(tmp_path) -> Iterator[Site]:
    found = Site(ManualClock(float(int(time.time()))), tmp_path, Proxy(0))  # whole seconds: a
    # `Date` (whole seconds) then gives the terminals a clock offset of 0, not -1
    try:
        found.up()
        yield found
    finally:
        found.stack.close()
        found.proxy.close()


def _prepare(site: Site) -> None:
    """Before the outage: a till and a gate enrolled with a fresh bundle, three payers with a
    purse credential, four fans with a ticket each."""
    admin, now = site.admin(), int(site.clock.now)
    code, site.merchant = till_code(admin)
    enrol(
        site.tmp / "till", server=site.proxy.url, terminal_id="till-1", code=code, clock=site.clock
    )
    sale = event_on_sale(admin, doors=now - 60, ends=now + OUTAGE_S + 2 * HOUR)
    gate = admin.terminal("gate-1", mode="entry", venue="hall-a", event=sale.event)
    enrol(
        site.tmp / "gate", server=site.proxy.url, terminal_id="gate-1", code=gate, clock=site.clock
    )
    http = site.server.http
    site.payers = [
        ready_wallet(http, admin, name, balance=BALANCE) for name in ("ana", "ben", "cy")
    ]
    for name in ("dan", "eve", "fei", "gus"):
        fan = ticket_wallet(http, admin, name, balance=10_000)
        bought = fan.buy(sale)
        assert bought.status_code == 201, bought.text
        assert fan.sync().status_code == 200
        site.fans.append((fan, bought.json()["tickets"][0]))
    for name in ("till", "gate"):
        with site.agent(name) as terminal:
            terminal.bundles.sync()
            assert terminal.client.offset == 0  # its clock is the server's


def _pay(site: Site, till: TerminalAgent, hour: int) -> None:
    payer, amount = site.payers[hour % 3], AMOUNTS[hour % 3]
    now = int(site.clock.now)
    code = payer.code(now)
    paid = till.scan_path.scan(code, amount=amount)
    assert (paid.reason, paid.online) == (Reason.OK, False), (hour, paid)
    site.paid.append((payer.login, now, amount))
    site.scans["till-1"] += 1
    if hour == 6:  # the same code shown twice: refused offline, journaled, never booked
        again = till.scan_path.scan(code, amount=amount)
        assert (again.reason, again.online) == (Reason.REPLAY, False)
        site.scans["till-1"] += 1


def _enter(site: Site, gate: TerminalAgent, hour: int) -> None:
    if hour <= len(site.fans):
        fan, sub = site.fans[hour - 1]
        entered = gate.scan_path.scan(fan.code(sub, int(site.clock.now)))
        assert (entered.reason, entered.online) == (Reason.OK, False), (hour, entered)
        site.entered.append(sub)
        site.scans["gate-1"] += 1
    if hour == 9:  # the first fan again: this gate remembers the ticket is used
        fan, sub = site.fans[0]
        again = gate.scan_path.scan(fan.code(sub, int(site.clock.now)))
        assert (again.reason, again.online) == (Reason.ALREADY_USED, False)
        site.scans["gate-1"] += 1


def _outage(site: Site) -> None:
    """Twelve hours without a server: a payment every hour, a check-in every hour until every
    fan is in, and a replay and a second entry refused."""
    with site.agent("till") as till, site.agent("gate") as gate:
        trust = till.store.trust()
        assert trust is not None and trust.max_age_s == 86_400  # the default, unchanged
        started = int(site.clock.now)
        for hour in range(1, OUTAGE_S // HOUR + 1):
            site.clock.advance(HOUR)
            _pay(site, till, hour)
            _enter(site, gate, hour)
        assert int(site.clock.now) - started == OUTAGE_S
        assert int(site.clock.now) < trust.issued_at + trust.max_age_s  # check 3 holds
        with pytest.raises(Unreachable):
            till.uploader.upload()
        for terminal, name in ((till, "till-1"), (gate, "gate-1")):  # journaled, unacknowledged
            assert terminal.store.entries() == site.scans[name] > 0
            assert terminal.store.acked_seq == 0


def _upload(site: Site) -> None:
    """The server back: the till's first upload is booked but its answer lost (the proxy holds
    it), so the same batch goes again; then that batch once more by hand, and the gate's."""
    site.proxy.set(Mode.FORWARD, hold_prefix=_JOURNAL)
    with site.agent("till") as till:
        with pytest.raises(Unreachable):
            till.uploader.upload()
        stored = till.store.stored_batch()
        assert stored is not None and stored.first == 1
        booked = site.scans["till-1"]
        wait_for(lambda: server_acked(site.server, "till-1") == booked, "the first upload booked")
        site.proxy.set(Mode.FORWARD)
        assert till.uploader.upload()
        body = json.dumps({"batch": b64u_encode(stored.data)}).encode()
        again = till.client.request("POST", "/v1/terminal/journal", body=body, timeout=10)
        assert again.json()["acked_seq"] == site.scans["till-1"]
    with site.agent("gate") as gate:
        assert gate.uploader.upload()
        assert gate.store.entries() == 0  # acknowledged: deleted
    assert server_acked(site.server, "till-1") == site.scans["till-1"]
    assert server_acked(site.server, "gate-1") == site.scans["gate-1"]


def _books(site: Site) -> tuple[list[tuple[int, int]], Counter[tuple[str, str]]]:
    """The merchant's takings from the till (scan time, amount), and the journal's outcomes."""

    def read(unit: Any) -> tuple[list[tuple[int, int]], Counter[tuple[str, str]]]:
        takings = unit.session.execute(
            select(Transaction.occurred_at, Posting.amount)
            .join(Posting, Posting.transaction_id == Transaction.id)
            .where(Transaction.terminal_id == "till-1", Posting.account_id == site.merchant)
            .order_by(Transaction.occurred_at)
        ).all()
        outcomes = Counter(
            (row.terminal_id, row.outcome) for row in unit.session.scalars(select(JournalEntry))
        )
        return [(int(at), int(amount)) for at, amount in takings], outcomes

    result: tuple[list[tuple[int, int]], Counter[tuple[str, str]]] = site.server.ctx.run(read)
    return result


def _reconciled(site: Site) -> None:
    admin = site.admin()
    takings, outcomes = _books(site)
    assert takings == sorted((at, amount) for _, at, amount in site.paid)
    for payer in site.payers:
        spent = sum(amount for login, _, amount in site.paid if login == payer.login)
        assert admin.account(payer.account_id)["balance"] == BALANCE - spent, payer.login
    assert admin.account(site.merchant)["balance"] == sum(a for _, _, a in site.paid)
    assert admin.books() == 0
    assert outcomes == {  # the refusals are recorded, nothing booked for them
        ("till-1", "booked"): len(site.paid),
        ("till-1", "recorded"): 1,
        ("gate-1", "booked"): len(site.entered),
        ("gate-1", "recorded"): 1,
    }
    alerts = admin.http.get("/v1/admin/alerts", headers=admin.auth).json()["items"]
    assert alerts == []  # nothing late (the late window is 72 h), nothing in doubt
    for fan, sub in site.fans:
        fan.wallet.http = site.server.http
        fan.wallet.sign_in()
        mine = fan.http.get(f"/v1/me/tickets/{sub}", headers=fan.wallet.auth).json()
        assert mine["entries_used"] == 1, (sub, mine)
    status = admin.http.get(
        f"/v1/admin/checkin-lists/{entrance(admin, 'concert')}/status", headers=admin.auth
    ).json()
    assert status["entered"] == len(site.entered) == len(site.fans), status


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


def test_a_gate_and_a_till_ride_out_twelve_hours_without_a_server(site):
    defaults = Settings.model_fields
    assert defaults["bundle_max_age_s"].default >= OUTAGE_S + HOUR  # no setting changed
    assert defaults["credential_lifetime_s"].default >= OUTAGE_S + HOUR
    _prepare(site)
    assert "first audit" in _audit(site)
    site.down()
    _outage(site)
    site.up()
    _upload(site)
    _reconciled(site)
    assert "extends the trusted checkpoint" in _audit(site)
