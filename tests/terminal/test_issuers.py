"""Several issuers at one gate (issue 17, docs/terminal.md "Several issuers"): two servers of
ours with their own issuer names and keys, one gate enrolled with both (campus cards checked for
the university, `identity`; tickets let in for a partner's event, `entry`). Each code is verified
against its own issuer's store only, journalled in that issuer's chain and uploaded to that
issuer's server only; a stale store of one issuer does not stop the other's codes; a code of an
issuer the gate does not know, and a code naming one issuer but signed with the other's key,
are refused."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from duopass.demo.netcut import Mode, Proxy
from duopass.protocol import SigningKey, make_code
from duopass.protocol.claims import Claims, Kind
from duopass.protocol.code import decode_code, mint_credential
from duopass.protocol.journal import parse_entry
from duopass.protocol.reasons import Reason
from duopass.protocol.verify import Mode as ScanMode
from duopass.server.services import signing_keys
from duopass.server.store.tables import JournalEntry
from duopass.terminal import AgentSettings, EnrolError, TerminalAgent, enrol, enrol_issuer
from duopass.terminal.issuers import IssuerError, check_modes, issuer_dir, issuer_of, pick
from tests.server.harness import ManualClock, Running, Wallet, ready_wallet, running_server
from tests.server.ticketing import TicketWallet, entrance, event_on_sale, ticket_wallet
from tests.terminal.conftest import cli, server_acked, till_code

CAMPUS, PARTNER = "demo-univ", "city-events"
HOUR = 3600
SETTINGS = AgentSettings(timeout_s=2.0, upload_timeout_s=5.0)


@dataclass
class Issuer:
    server: Running
    proxy: Proxy


@dataclass
class Gate:
    clock: ManualClock
    data: Path
    campus: Issuer
    partner: Issuer
    card: Wallet
    fans: list[tuple[TicketWallet, str]]

    def agent(self) -> TerminalAgent:
        return TerminalAgent(self.data, SETTINGS, clock=self.clock)

    def now(self) -> int:
        return int(self.clock.now)


def _issuer(stack: ExitStack, tmp: Path, name: str, clock: ManualClock, **settings: Any) -> Issuer:
    server = stack.enter_context(
        running_server(
            f"sqlite:///{tmp / name / 'duopass.db'}",
            tmp / name / "server",
            clock=clock,
            issuer=name,
            **settings,
        )
    )
    proxy = Proxy(int(server.url.rsplit(":", 1)[1]))
    stack.callback(proxy.close)
    return Issuer(server, proxy)


@pytest.fixture
def gate(tmp_path) -> Iterator[Gate]:
    """The university (bundles live two hours) and the partner (a day), and a gate enrolled with
    the university first, then with the partner."""
    clock = ManualClock(float(int(time.time())))
    with ExitStack() as stack:
        (tmp_path / CAMPUS).mkdir()
        (tmp_path / PARTNER).mkdir()
        campus = _issuer(stack, tmp_path, CAMPUS, clock, bundle_max_age_s=2 * HOUR)
        partner = _issuer(stack, tmp_path, PARTNER, clock)
        admin_c, admin_p, now = campus.server.admin(), partner.server.admin(), int(clock.now)
        card = ready_wallet(campus.server.http, admin_c, "ana", balance=1_000)
        sale = event_on_sale(admin_p, doors=now - 60, ends=now + 10 * HOUR)
        fans = []
        for name in ("dan", "eve", "fei", "gus"):
            fan = ticket_wallet(partner.server.http, admin_p, name, balance=10_000)
            bought = fan.buy(sale)
            assert bought.status_code == 201, bought.text
            assert fan.sync().status_code == 200
            fans.append((fan, bought.json()["tickets"][0]))
        data = tmp_path / "gate"
        code = admin_c.terminal("gate-u", mode="identity", venue="hall-a")
        enrol(data, server=campus.proxy.url, terminal_id="gate-u", code=code, clock=clock)
        code = admin_p.terminal("gate-p", mode="entry", venue="hall-a", event=sale.event)
        enrolled = enrol_issuer(
            data,
            issuer=PARTNER,
            server=partner.proxy.url,
            terminal_id="gate-p",
            code=code,
            clock=clock,
        )
        assert (enrolled.iss, enrolled.mode) == (PARTNER, "entry")
        found = Gate(clock, data, campus, partner, card, fans)
        with found.agent() as terminal:
            for agent in terminal.agents:
                agent.bundles.sync()
        yield found


def _entries(issuer: Issuer) -> list[tuple[str, str, str]]:
    """(terminal id, the issuer its code names, verdict) of every journal entry the server holds."""

    def read(unit: Any) -> list[tuple[str, str, str]]:
        rows = unit.session.scalars(select(JournalEntry).order_by(JournalEntry.seq))
        found = []
        for row in rows:
            entry = parse_entry(bytes(row.data))
            found.append((row.terminal_id, issuer_of(entry.code) or "", entry.verdict.value))
        return found

    result: list[tuple[str, str, str]] = issuer.server.ctx.run(read)
    return result


def _forged(gate: Gate) -> str:
    """A code naming the university, its claims copied from the holder's card, but signed with
    the partner's signing key (a partner cannot mint campus cards)."""
    claims = decode_code(gate.card.code(gate.now())).credential.claims
    partner_key = gate.partner.server.ctx.run(signing_keys.current)
    return make_code(mint_credential(claims, partner_key), gate.card.key, ctr=0, ts=gate.now())


def _stranger(gate: Gate) -> str:
    """A well-signed code of an issuer the gate is not enrolled with."""
    now, device = gate.now(), SigningKey.generate()
    claims = Claims(
        iss="metro-card", sub="m-1", iat=now - 60, exp=now + HOUR, cti=b"metro-card-0001",
        kind=Kind.IDENTITY, device_key=device.public, uses=10,
    )  # fmt: skip
    return make_code(mint_credential(claims, SigningKey.generate()), device, ctr=0, ts=now)


def _both(gate: Gate, mode: Mode) -> None:
    gate.campus.proxy.set(mode)
    gate.partner.proxy.set(mode)


def test_one_gate_two_issuers_each_code_to_its_own_issuer(gate):
    with gate.agent() as terminal:
        assert [agent.iss for agent in terminal.agents] == [CAMPUS, PARTNER]
        card = terminal.scan(gate.card.code(gate.now()))
        fan, sub = gate.fans[0]
        ticket = terminal.scan(fan.code(sub, gate.now()))
        assert (card.reason, card.online, card.iss, card.seq) == (Reason.OK, True, CAMPUS, 1)
        assert (ticket.reason, ticket.online, ticket.iss, ticket.seq) == (
            Reason.OK,
            True,
            PARTNER,
            1,
        )
        forged = terminal.scan(_forged(gate))  # online: the university's server refuses it
        assert (forged.reason, forged.online) == (Reason.UNKNOWN_KEY, True)

        gate.campus.proxy.set(Mode.REFUSE)  # the university's server gone: its codes only
        card = terminal.scan(gate.card.code(gate.now()))  # go offline
        fan, sub = gate.fans[1]
        ticket = terminal.scan(fan.code(sub, gate.now()))
        assert (card.reason, card.online, card.tried, card.seq) == (Reason.OK, False, True, 3)
        assert (ticket.reason, ticket.online, ticket.seq) == (Reason.OK, True, 2)
        assert [agent.link.online for agent in terminal.agents] == [False, True]

        _both(gate, Mode.REFUSE)  # both servers gone: each store decides its issuer's codes
        card = terminal.scan(gate.card.code(gate.now()))
        fan, sub = gate.fans[2]
        ticket = terminal.scan(fan.code(sub, gate.now()))
        assert (card.reason, card.online, card.seq) == (Reason.OK, False, 4)
        assert (ticket.reason, ticket.online, ticket.seq) == (Reason.OK, False, 3)
        forged = terminal.scan(_forged(gate))  # the partner's kid is not under demo-univ
        assert (forged.reason, forged.online, forged.seq) == (Reason.UNKNOWN_KEY, False, 5)
        stranger = terminal.scan(_stranger(gate))  # no store of this gate: refused, not asked
        assert (stranger.reason, stranger.tried, stranger.iss) == (
            Reason.UNKNOWN_KEY,
            False,
            "metro-card",
        )
        assert stranger.seq == 6  # journalled in the first enrolment's chain

        gate.clock.advance(3 * HOUR)  # the university's bundle (2 h) is stale, the partner's not
        card = terminal.scan(gate.card.code(gate.now()))
        fan, sub = gate.fans[3]
        ticket = terminal.scan(fan.code(sub, gate.now()))
        assert (card.reason, card.online) == (Reason.TRUST_STALE, False)
        assert (ticket.reason, ticket.online) == (Reason.OK, False)

        _both(gate, Mode.FORWARD)
        assert terminal.try_upload_all()
        assert [agent.store.entries() for agent in terminal.agents] == [0, 0]
    assert server_acked(gate.campus.server, "gate-u") == 7
    assert server_acked(gate.partner.server, "gate-p") == 4
    ok, forged_no, stale = Reason.OK.value, Reason.UNKNOWN_KEY.value, Reason.TRUST_STALE.value
    assert _entries(gate.campus) == [
        ("gate-u", CAMPUS, ok),
        ("gate-u", CAMPUS, forged_no),
        ("gate-u", CAMPUS, ok),
        ("gate-u", CAMPUS, ok),
        ("gate-u", CAMPUS, forged_no),
        ("gate-u", "metro-card", forged_no),
        ("gate-u", CAMPUS, stale),
    ]
    assert _entries(gate.partner) == [("gate-p", PARTNER, ok)] * 4
    admin = gate.partner.server.admin()
    status = admin.http.get(
        f"/v1/admin/checkin-lists/{entrance(admin, 'concert')}/status", headers=admin.auth
    ).json()
    assert status["entered"] == 4, status


def test_enrolling_another_issuer_refuses_what_a_terminal_cannot_hold(gate):
    with pytest.raises(EnrolError, match="already"):  # before any request
        enrol_issuer(
            gate.data, issuer=CAMPUS, server=gate.campus.proxy.url, terminal_id="x", code="y"
        )
    with pytest.raises(EnrolError, match="not an issuer name"):
        enrol_issuer(
            gate.data, issuer="a b", server=gate.campus.proxy.url, terminal_id="x", code="y"
        )
    admin = gate.partner.server.admin()
    code, _ = till_code(admin, "till-p")
    with pytest.raises(EnrolError, match="speaks for city-events, not elsewhere"):
        enrol_issuer(
            gate.data, issuer="elsewhere", server=gate.partner.proxy.url, terminal_id="till-p",
            code=code, clock=gate.clock,
        )  # fmt: skip
    assert not issuer_dir(gate.data, "elsewhere").exists()
    check_modes([ScanMode.IDENTITY, ScanMode.ENTRY])  # a gate may check cards and let tickets in
    with pytest.raises(IssuerError, match="a till's enrolments all pay"):
        check_modes(
            [ScanMode.PAY, ScanMode.ENTRY]
        )  # a till asks every scan for an amount, a gate never
    lone = gate.data.parent / "lone"
    with pytest.raises(EnrolError, match="holds no terminal"):
        enrol_issuer(lone, issuer=PARTNER, server=gate.partner.proxy.url, terminal_id="x", code="y")


def test_the_commands_with_two_issuers(gate):
    """`status` shows both enrolments, `sync` and `upload` serve each from its own server, and a
    second `enrol --issuer` for an issuer held is refused."""
    with gate.agent() as terminal:
        fan, sub = gate.fans[0]
        assert terminal.scan(fan.code(sub, gate.now())).ok
    shown = cli("status", "--data-dir", str(gate.data))
    assert shown.returncode == 0, shown.stderr
    assert "terminal_id        gate-u" in shown.stdout
    assert f"issuer {PARTNER}" in shown.stdout and "  terminal_id      gate-p" in shown.stdout
    synced = cli("sync", "--data-dir", str(gate.data))
    assert synced.returncode == 0, synced.stderr
    assert (
        synced.stdout.startswith("trust bundle seq")
        and f"\n{PARTNER}: trust bundle seq" in synced.stdout
    )
    sent = cli("upload", "--data-dir", str(gate.data))
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout == f"acked_seq 0, unsent 0\n{PARTNER}: acked_seq 1, unsent 0\n"
    again = cli(
        "enrol", "--server", gate.partner.proxy.url, "--id", "gate-q", "--code", "c",
        "--issuer", PARTNER, "--data-dir", str(gate.data),
    )  # fmt: skip
    assert again.returncode == 1 and "enrolled with city-events already" in again.stderr
    shutil.rmtree(issuer_dir(gate.data, PARTNER))  # back to one issuer: as before
    alone = cli("upload", "--data-dir", str(gate.data))
    assert alone.stdout == "acked_seq 0, unsent 0\n", alone.stdout
    code = gate.partner.server.admin().terminal(
        "gate-q", mode="entry", venue="hall-a", event="concert"
    )
    added = cli(
        "enrol", "--server", gate.partner.proxy.url, "--id", "gate-q", "--code", code,
        "--issuer", PARTNER, "--data-dir", str(gate.data),
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("enrolled gate-q: entry at hall-a for city-events; trust bundle")
    fan, sub = gate.fans[1]
    lines = f"{gate.card.code(gate.now())}\n{fan.code(sub, gate.now())}\n"
    ran = cli("run", "--json", "--data-dir", str(gate.data), stdin=lines)
    assert ran.returncode == 0, ran.stderr
    verdicts = [json.loads(line) for line in ran.stdout.splitlines()]
    assert [(v["reason"], v["mode"], v["iss"], v["seq"]) for v in verdicts] == [
        ("OK", "online", CAMPUS, 1),
        ("OK", "online", PARTNER, 1),
    ]
    assert server_acked(gate.partner.server, "gate-q") == 1  # uploaded at the end of run


def test_routing_reads_the_issuer_only_to_pick_a_store(tmp_path):
    """The pure parts: the issuer a text names (None for no code), the enrolment it picks, and
    an issuer's directory, whatever its name holds."""
    device, now = SigningKey.generate(), int(time.time())
    claims = Claims(
        iss="../x", sub="s", iat=now, exp=now + HOUR, cti=b"cti-0000", kind=Kind.IDENTITY,
        device_key=device.public, uses=1,
    )  # fmt: skip
    code = make_code(mint_credential(claims, SigningKey.generate()), device, ctr=0, ts=now)
    assert issuer_of(code) == "../x"
    assert issuer_of("hello") is None and issuer_of("DP1:%%%") is None
    assert issuer_of("DP1:" + "A" * 1300) is None
    held = {"a": 1, "b": 2}
    assert (pick(held, 1, "b"), pick(held, 1, None), pick(held, 1, "c")) == (2, 1, None)
    where = issuer_dir(tmp_path, "../x")
    assert where.parent == tmp_path / "issuers" and where.name == "Li4veA"
    with pytest.raises(IssuerError):
        issuer_dir(tmp_path, "")
