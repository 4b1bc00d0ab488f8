"""Doors for a concert a box office would believe: a few hundred attendees with tickets in their
wallets at four entry gates, online; then two gates lose the server and keep admitting offline;
one attendee lost their phone and has the ticket reissued at the door, and the lost phone's code
is tried at an offline gate that cannot know yet and at one whose bundle already revoked it; the
network comes back, the journals upload, and the report checks that nobody got in more often
than their ticket allows, that the old generation was refused or flagged, and the ledger.

Every part is the real one, as in the lunch rush (`rush`): the issuer server over HTTP, the
organiser's catalogue made through the admin API, `duopass.wallet` wallets that buy and show
their tickets, `duopass.terminal` agents in `entry` mode behind the TCP proxies the demo cuts.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from duopass.demo import doors_report
from duopass.demo.netcut import Mode as Link
from duopass.demo.netcut import Proxy
from duopass.demo.rush import HTTP_TIMEOUT_S, Server, _port
from duopass.demo.seed import HOLDERS
from duopass.protocol.encoding import b64u_encode
from duopass.terminal import AgentSettings, Result, TerminalAgent, enrol
from duopass.wallet import Wallet, WalletError
from duopass.wallet.device import load_key
from duopass.wallet.wallet import KEY_FILE

__all__ = ["Attendee", "Doors", "DoorsPlan", "Gate", "Tally"]

GATES = ("north", "east", "south", "west")
"""South and west are the two gates the demo cuts off."""
PASS_EVERY = 10
"""Every tenth attendee hands their ticket back over the barrier: the same ticket again."""
REENTRY_EVERY = 4
"""Every fourth attendee holds a pass with two entries."""
LINK_WAIT_S = 30.0


@dataclass(frozen=True, kw_only=True)
class DoorsPlan:
    """How big the concert is and how long the demo may wait."""

    attendees: int = 300
    pause_s: float = 0.02
    """Between two scans at one gate."""
    upload_s: float = 60.0
    """At most this long for the journals to be acknowledged after reconnecting."""
    phase_s: float = 300.0
    """At most this long for the queue of a phase to be served."""
    seed: int = 2026


@dataclass(frozen=True)
class Attendee:
    n: int
    login: str
    phone: Path
    sub: str
    entries: int
    tickets: int = 1
    """Tickets the holder held at the first sync, this one included (earlier runs' too)."""


@dataclass(frozen=True)
class Gate:
    id: str
    agent: TerminalAgent
    proxy: Proxy


@dataclass
class Tally:
    """What the gates and the lost phone's story saw, to check the server against."""

    scans: Counter[tuple[str, bool, str]] = field(default_factory=Counter)
    """(gate, online, reason) -> scans."""
    admitted: Counter[str] = field(default_factory=Counter)
    """sub -> admissions at the gates."""
    passes: Counter[str] = field(default_factory=Counter)
    """A ticket shown again at once: `admitted` (a second entry it had) or the refusal."""
    story: dict[str, Any] = field(default_factory=dict)
    """The lost phone: what was asked, what each gate said."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, gate: str, sub: str, result: Result) -> None:
        with self.lock:
            self.scans[gate, result.online, result.reason.value] += 1
            if result.ok:
                self.admitted[sub] += 1


class Doors:
    """One run of the doors; `events` receives (what, done, total) for progress bars."""

    def __init__(
        self,
        server: Server,
        work_dir: Path,
        plan: DoorsPlan,
        events: Callable[[str, int, int], None] = lambda *_: None,
    ) -> None:
        self.server, self.plan, self.events = server, plan, events
        self.tag = f"{int(time.time()) % 100000:05d}"
        """Venue, event and gate ids of this run (a server outlives many demo runs)."""
        self.rng = random.Random(f"{plan.seed}-{self.tag}")
        """Who loses their phone: another holder at each run against the same server."""
        self.tally = Tally()
        self.http = httpx.Client(base_url=server.url, timeout=HTTP_TIMEOUT_S)
        self.dir = work_dir / f"doors-{self.tag}"
        self.line: queue.Queue[Attendee] = queue.Queue()
        self.stop = threading.Event()
        self.event = f"concert-{self.tag}"
        self.first = self.rng.randrange(0, HOLDERS - plan.attendees + 1)
        """The first demo holder at the doors (student0000 .. student0299)."""
        self.types: dict[int, int] = {}
        """entries -> ticket type id."""

    def _admin(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.http.post(path, headers=self.server.admin, json=body)
        if answer.status_code not in (200, 201):
            raise RuntimeError(f"POST {path}: {answer.status_code} {answer.text[:300]}")
        return dict(answer.json())

    # -- setting up --------------------------------------------------------------------------

    def catalogue(self) -> None:
        """A hall on campus (its network includes 127.0.0.0/8, where the demo's phones are:
        at the venue), a concert whose doors opened a minute ago, two ticket types."""
        venue = f"hall-{self.tag}"
        self._admin(
            "/v1/admin/venues",
            {
                "id": venue,
                "name": f"Concert hall {self.tag}",
                "lat_e6": 31_200_000,
                "lon_e6": 121_400_000,
                "networks": ["127.0.0.0/8", "10.30.0.0/16"],
            },
        )
        now = int(time.time())
        self._admin(
            "/v1/admin/events",
            {
                "id": self.event,
                "name": f"Spring concert {self.tag}",
                "doors": now - 60,
                "ends": now + 4 * 3600,
                "venues": [venue],
            },
        )
        for name, price, entries in (("Standing", 1_200, 1), ("Re-entry pass", 1_800, 2)):
            kind = self._admin(
                f"/v1/admin/events/{self.event}/ticket-types",
                {"name": name, "price": price, "entries": entries, "quota": self.plan.attendees},
            )
            self.types[entries] = int(kind["id"])
        self.venue = venue

    def attendees(self) -> list[Attendee]:
        """Each attendee's phone: enrolled, the ticket bought, synced (four at a time)."""
        done = 0
        lock = threading.Lock()

        def one(n: int) -> Attendee:
            nonlocal done
            attendee = self._attendee(n)
            with lock:
                done += 1
                self.events("attendees", done, self.plan.attendees)
            return attendee

        with ThreadPoolExecutor(4) as pool:
            return list(pool.map(one, range(self.plan.attendees)))

    def _attendee(self, n: int) -> Attendee:
        login = f"student{self.first + n:04d}"
        phone = self.dir / "phones" / f"{n:04d}"
        entries = 2 if n % REENTRY_EVERY == 1 else 1
        with Wallet(phone) as wallet:
            wallet.enrol(server=self.server.url, login=login, password=self.server.holder_password)
            try:
                order = wallet.buy(self.types[entries])
            except WalletError:  # no free funds: the box office sells it, marked paid there
                order = self._counter_sale(login, self.types[entries])
            sub = str(order["tickets"][0])
            held = {t.sub: t for t in wallet.sync_tickets()}
            if held[sub].credential is None:
                raise RuntimeError(f"{login}: no credential for {sub} ({held[sub].refusal})")
        return Attendee(n, login, phone, sub, entries, len(held))

    def _counter_sale(self, login: str, type_id: int) -> dict[str, Any]:
        answer = self.http.get(
            "/v1/admin/holders", headers=self.server.admin, params={"q": login, "limit": 10}
        )
        answer.raise_for_status()
        handle = next(h["handle"] for h in answer.json()["items"] if h["login"] == login)
        return self._admin(
            f"/v1/admin/holders/{handle}/orders",
            {"ticket_type": type_id, "quantity": 1, "request_id": f"doors-{self.tag}-{login}"},
        )

    def gates(self, stack: ExitStack) -> list[Gate]:
        """Four entry gates for the concert, each behind its own proxy, enrolled and started;
        back when each holds a trust bundle."""
        out = []
        for name in GATES:
            gate_id = f"doors{self.tag}-gate-{name}"
            made = self._admin(
                "/v1/admin/terminals",
                {"terminal_id": gate_id, "mode": "entry", "venue": self.venue, "event": self.event},
            )
            proxy = Proxy(_port(self.server.url))
            stack.callback(proxy.close)
            data = self.dir / "gates" / gate_id
            enrol(data, server=proxy.url, terminal_id=gate_id, code=made["enrol_code"])
            agent = stack.enter_context(TerminalAgent(data, AgentSettings(upload_s=2.0)))
            agent.start()
            out.append(Gate(gate_id, agent, proxy))
        deadline = time.monotonic() + LINK_WAIT_S
        while any(g.agent.store.trust() is None for g in out):
            if time.monotonic() > deadline:
                raise TimeoutError("the gates got no trust bundle")
            time.sleep(0.1)
        return out

    # -- the doors ---------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        with ExitStack() as stack:
            stack.callback(self.http.close)
            trusted = doors_report.pin_ledger(self.http)
            self.catalogue()
            people = self.attendees()
            gates = self.gates(stack)
            lost = self._choose_lost(people)
            half = len(people) // 2
            workers = [threading.Thread(target=self._serve, args=(g,), daemon=True) for g in gates]
            for worker in workers:
                worker.start()
            self._phase("doors-online", [a for a in people[:half] if a is not lost])
            for gate in gates[2:]:
                gate.proxy.set(Link.SILENT)  # south and west lose the server
            for attendee in people[half:]:
                if attendee is not lost:
                    self.line.put(attendee)
            new_phone = self._lost_phone(lost, gates)
            self._phase("doors-offline", [])
            self.stop.set()
            for worker in workers:
                worker.join(timeout=30)
            for gate in gates:
                gate.proxy.set(Link.FORWARD)
            self._drain([g.agent for g in gates])
            people = [a if a is not lost else new_phone for a in people]
            return doors_report.report(self, people, gates, trusted)

    def _choose_lost(self, people: list[Attendee]) -> Attendee:
        """An attendee of the second half with a two-entry pass, not yet at the doors; one
        who holds no tickets of earlier runs if there is one (the policy sends a holder's
        many reissues to review, and a run against a server may follow many others)."""
        candidates = [a for a in people[len(people) // 2 :] if a.entries == 2]
        fewest = min(a.tickets for a in candidates)
        return self.rng.choice([a for a in candidates if a.tickets == fewest])

    def _phase(self, phase: str, arriving: list[Attendee]) -> None:
        """Let `arriving` in line and wait (bounded) until the line is served."""
        for attendee in arriving:
            self.line.put(attendee)
        total = max(1, self.line.unfinished_tasks)
        deadline = time.monotonic() + self.plan.phase_s
        while self.line.unfinished_tasks:
            self.events(phase, total - self.line.unfinished_tasks, total)
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {phase} line was not served in time")
            time.sleep(0.2)
        self.events(phase, total, total)

    def _serve(self, gate: Gate) -> None:
        """One gate's line: the next attendee shows their ticket; every tenth hands it back
        over the barrier and it is shown again at once."""
        while not self.stop.is_set():
            try:
                attendee = self.line.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                first = self._scan(gate, attendee.phone, attendee.sub)
                if first.ok and attendee.n % PASS_EVERY == 3:
                    again = self._scan(gate, attendee.phone, attendee.sub)
                    with self.tally.lock:
                        self.tally.passes[
                            f"{attendee.entries}:{'admitted' if again.ok else again.reason.value}"
                        ] += 1
            finally:
                self.line.task_done()
            time.sleep(self.plan.pause_s)

    def _scan(self, gate: Gate, phone: Path, sub: str) -> Result:
        with Wallet(phone) as wallet:
            text = wallet.show_ticket(sub).text(wallet.now())
        result = gate.agent.scan_path.scan(text)
        self.tally.record(gate.id, sub, result)
        return result

    # -- the lost phone ----------------------------------------------------------------------

    def _lost_phone(self, lost: Attendee, gates: list[Gate]) -> Attendee:
        """At the doors while south and west are cut off: a new phone signs in and reports the
        old one lost; the old phone's code is tried at west (offline, its bundle from before
        the loss: admitted, it cannot know), at south after a moment online for its bundle
        (refused), the new phone's code at north (online), and the old one there after it."""
        north, south, west = gates[0], gates[2], gates[3]
        story = self.tally.story
        story["sub"] = lost.sub
        phone = self.dir / "phones" / f"{lost.n:04d}-new"
        with Wallet(phone) as wallet:
            wallet.enrol(
                server=self.server.url, login=lost.login, password=self.server.holder_password
            )
            story["lost"] = self._report_lost(wallet, phone)
            held = {t.sub: t for t in wallet.sync_tickets()}[lost.sub]
            story["new_gen"] = held.info.gen
        moved = Attendee(lost.n, lost.login, phone, lost.sub, lost.entries)
        if held.credential is None:  # the policy did not allow it: the checks say so
            return moved
        with Wallet(lost.phone) as old:
            cred = {t.sub: t for t in old.tickets.all()}[lost.sub].credential
        assert cred is not None, "the old phone synced its ticket"
        story["old_cti"] = b64u_encode(cred.claims.cti)
        self._after(lost.phone, held.credential.claims.iat)
        story["before_bundle"] = self._scan(west, lost.phone, lost.sub)
        south.proxy.set(Link.FORWARD)  # a moment online: the bundle that revokes the old code
        try:
            story["south_bundle"] = south.agent.bundles.sync().seq
        finally:
            south.proxy.set(Link.SILENT)
        story["after_bundle"] = self._scan(south, lost.phone, lost.sub)
        story["new_code"] = self._scan(north, phone, lost.sub)
        story["old_after_new"] = self._scan(north, lost.phone, lost.sub)
        return moved

    def _after(self, phone: Path, moment: int) -> None:
        """Until the phone's clock is past `moment` (bounded): the old phone turns up after the
        reissue, by its own clock too (a code's `ts` is whole seconds, and the server judges
        "after the reissue" by it)."""
        deadline = time.monotonic() + LINK_WAIT_S
        while time.monotonic() < deadline:
            with Wallet(phone) as wallet:
                if wallet.now() > moment:
                    return
            time.sleep(0.2)

    def _report_lost(self, wallet: Wallet, phone: Path) -> dict[str, Any]:
        """`POST /v1/me/lost` from the new phone, signed in with the password just now."""
        device_key = b64u_encode(load_key(phone / KEY_FILE).public)

        def call(_client: Any, token: str) -> dict[str, Any]:
            answer = self.http.post(
                "/v1/me/lost",
                headers={"Authorization": f"Bearer {token}"},
                json={"device_key": device_key},
            )
            if answer.status_code != 200:
                raise RuntimeError(f"POST /v1/me/lost: {answer.status_code} {answer.text[:300]}")
            return dict(answer.json())

        return wallet.online(call)

    def _drain(self, agents: list[TerminalAgent]) -> None:
        """Reconnected: every journal uploaded and acknowledged (bounded)."""
        end = time.monotonic() + self.plan.upload_s
        while time.monotonic() < end:
            left = sum(a.store.entries() for a in agents)
            self.events("upload", 0 if left else 1, 1)
            if not left:
                return
            for agent in agents:
                agent.try_upload()
            time.sleep(0.5)
        raise TimeoutError("the journals were not all acknowledged in time")
