"""A lunch rush a card office would believe: wallets paying at tills and showing their card at
gates, online; midway the tills lose the server and carry on offline within one scan; one
wallet's key is cloned onto a second phone; the network comes back, the journals upload, and
the report shows every payment applied exactly once, money conserved and the clone caught.

Every part is the real one: the issuer server over HTTP, `duopass.terminal` agents with their
SQLite journals behind a TCP proxy that the demo cuts, and `duopass.wallet` wallets with their
own data directories. Only the clone is hand-made: it signs the copied key's counters itself,
as a cloned phone would, ignoring the wallet's counter discipline.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from duopass.demo.netcut import Mode as Link
from duopass.demo.netcut import Proxy
from duopass.protocol.code import make_code
from duopass.protocol.encoding import b64u_encode
from duopass.protocol.keys import SigningKey
from duopass.terminal import AgentSettings, TerminalAgent, enrol
from duopass.wallet import Wallet, WalletError
from duopass.wallet.device import load_key
from duopass.wallet.wallet import KEY_FILE

FRESHNESS_S = 60
"""§3's default: a counter seen twice with `ts` further apart than this is a clone."""
HTTP_TIMEOUT_S = 30.0


@dataclass(frozen=True, kw_only=True)
class Plan:
    """How big and how long the rush is."""

    wallets: int = 200
    online_s: float = 20.0
    """Scanning with the server reachable."""
    offline_s: float = 50.0
    """Scanning with the tills cut off; long enough that the clone's reuse is over a minute
    after the original's (a clone, not an honest double scan, §4.4)."""
    pause_s: float = 0.15
    """Between two scans at one terminal (a busy till)."""
    upload_s: float = 60.0
    """At most this long for the journals to be acknowledged after reconnecting."""
    seed: int = 2026


@dataclass
class Tally:
    """What the terminals saw, and what the demo needs to check the server against."""

    scans: Counter[tuple[str, bool, str]] = field(default_factory=Counter)
    """(terminal, online, reason) -> scans."""
    paid: Counter[str] = field(default_factory=Counter)
    """terminal -> accepted payment amounts, as the terminals recorded them."""
    payments: Counter[str] = field(default_factory=Counter)
    first_offline_s: dict[str, float] = field(default_factory=dict)
    """terminal -> seconds from scan to verdict of its first scan after the cut."""
    clone_cti: str = ""
    clone_accepted: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, terminal: str, result: Any, amount: int | None) -> None:
        with self.lock:
            self.scans[terminal, result.online, result.reason.value] += 1
            if result.ok and amount is not None:
                self.paid[terminal] += amount
                self.payments[terminal] += 1


@dataclass(frozen=True)
class Server:
    url: str
    admin: dict[str, str]
    """The Authorization header of a card-office session."""
    holder_password: str
    merchants: dict[str, int]


class Rush:
    """One run of the rush; `events` receives (what, done, total) for progress bars."""

    def __init__(
        self,
        server: Server,
        work_dir: Path,
        plan: Plan,
        events: Callable[[str, int, int], None] = lambda *_: None,
    ) -> None:
        self.server, self.dir, self.plan, self.events = server, work_dir, plan, events
        self.rng = random.Random(plan.seed)
        self.tally = Tally()
        self.http = httpx.Client(base_url=server.url, timeout=HTTP_TIMEOUT_S)
        self.tag = f"{int(time.time()) % 100000:05d}"
        """TerminalAgent ids of this run (a server outlives many demo runs)."""
        self.line: queue.Queue[Path] = queue.Queue()
        """Wallets waiting to be served; a terminal takes the next one and puts it back."""
        self.cut, self.stop = threading.Event(), threading.Event()
        self._started: dict[str, float] = {}

    # -- setting up --------------------------------------------------------------------------

    def wallets(self) -> list[Path]:
        """Demo holders sign in on a new phone each, enrol its key and sync a credential; a
        phone is its wallet's data directory (opened by whichever thread serves it)."""
        out = []
        start = self.rng.randrange(0, 300 - self.plan.wallets + 1)
        for n in range(self.plan.wallets):
            phone = self.dir / "wallets" / f"{n:04d}"
            with Wallet(phone) as wallet:
                wallet.enrol(
                    server=self.server.url,
                    login=f"student{start + n:04d}",
                    password=self.server.holder_password,
                )
                wallet.sync()
            out.append(phone)
            self.events("wallets", n + 1, self.plan.wallets)
        return out

    def terminals(self, proxy: Proxy, stack: ExitStack) -> list[tuple[str, TerminalAgent, bool]]:
        """Four tills and two gates, created by the card office and enrolled through the proxy
        (the network the demo cuts); (id, terminal, is a till)."""
        places = [("north", "canteen-north"), ("north", "canteen-north")]
        places += [("south", "canteen-south"), ("shop", "campus-shop")]
        made: list[tuple[str, str, str, str | None]] = []
        for n, (short, shop) in enumerate(places, 1):
            made.append((f"rush{self.tag}-till-{short}-{n}", "pay", shop, shop))
        made += [(f"rush{self.tag}-gate-library", "identity", "library", None)]
        made += [(f"rush{self.tag}-gate-gym", "identity", "gym", None)]
        out = []
        for terminal_id, mode, venue, merchant in made:
            answer = self.http.post(
                "/v1/admin/terminals",
                headers=self.server.admin,
                json={
                    "terminal_id": terminal_id,
                    "mode": mode,
                    "venue": venue,
                    "merchant_account_id": self.server.merchants[merchant] if merchant else None,
                    "currency": "CNY" if mode == "pay" else None,
                },
            )
            answer.raise_for_status()
            data = self.dir / "terminals" / terminal_id
            enrol(data, server=proxy.url, terminal_id=terminal_id, code=answer.json()["enrol_code"])
            terminal = stack.enter_context(TerminalAgent(data, AgentSettings(upload_s=2.0)))
            terminal.start()
            out.append((terminal_id, terminal, mode == "pay"))
        return out

    # -- the rush ----------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        with ExitStack() as stack:
            proxy = Proxy(_port(self.server.url))
            stack.callback(proxy.close)
            wallets = self.wallets()
            terminals = self.terminals(proxy, stack)
            victim, clone = self._clone(wallets)
            for phone in wallets:
                self.line.put(phone)
            before = self._books()
            workers = [
                threading.Thread(
                    target=self._serve, args=(terminal_id, terminal, till), daemon=True
                )
                for terminal_id, terminal, till in terminals
            ]
            tills = [(tid, t) for tid, t, till in terminals if till]
            self._pay(tills[0], victim, count=2)  # the victim pays twice, online, at once
            clone_at = time.monotonic() + FRESHNESS_S + 5  # a minute on: a clone, not a relay
            for worker in workers:
                worker.start()
            online_end = time.monotonic() + self.plan.online_s
            self._wait("online", online_end, until=online_end)
            proxy.set(Link.SILENT)  # the tills' network stops answering
            self.cut.set()
            offline_end = time.monotonic() + self.plan.offline_s
            self._wait("offline", offline_end, until=clone_at)
            self._clone_pays(clone, tills[1:3])
            self._wait("offline", offline_end, until=offline_end)
            self.stop.set()
            for worker in workers:
                worker.join(timeout=30)
            proxy.set(Link.FORWARD)
            self._drain([t for _, t, _ in terminals])
            return self._report(before, [tid for tid, _ in tills])

    def _serve(self, terminal_id: str, terminal: TerminalAgent, till: bool) -> None:
        """One terminal's queue: the next wallet in line shows a code and is served."""
        rng = random.Random(f"{self.plan.seed}-{terminal_id}")
        first_after_cut = True
        while not self.stop.wait(self.plan.pause_s):
            try:
                phone = self.line.get(timeout=self.plan.pause_s)
            except queue.Empty:
                continue
            text = self._show(phone)
            if text is None:  # this phone is done for the day (refresh limit): it leaves the line
                continue
            amount = rng.randrange(300, 2_600, 50) if till else None
            was_cut = self.cut.is_set()
            started = time.perf_counter()
            try:
                result = terminal.scan_path.scan(text, amount=amount)
            finally:
                self.line.put(phone)
            if was_cut and first_after_cut:
                first_after_cut = False
                self.tally.first_offline_s[terminal_id] = time.perf_counter() - started
            self.tally.record(terminal_id, result, amount)

    def _show(self, phone: Path) -> str | None:
        """The phone's next code; a wallet out of offline uses refreshes (phones keep their own
        signal, only the tills were cut off)."""
        with Wallet(phone) as wallet:
            for _ in range(2):
                try:
                    display = wallet.show()
                    return display.text(wallet.now())
                except WalletError:
                    try:
                        wallet.sync()
                    except WalletError:
                        return None
        return None

    def _pay(self, till: tuple[str, TerminalAgent], phone: Path, *, count: int) -> None:
        terminal_id, terminal = till
        for _ in range(count):
            text = self._show(phone)
            assert text is not None, "the victim has a fresh credential"
            self.tally.record(terminal_id, terminal.scan_path.scan(text, amount=500), 500)

    def _clone(self, phones: list[Path]) -> tuple[Path, tuple[bytes, SigningKey]]:
        """The victim's phone, and what a clone copied off it: the credential and the key."""
        victim = phones.pop(0)
        with Wallet(victim) as wallet:
            held = wallet.state.read().held
        assert held is not None, "synced"
        key = load_key(victim / KEY_FILE)  # what a clone steals
        self.tally.clone_cti = b64u_encode(held.credential.claims.cti)
        return victim, (held.l1, key)

    def _clone_pays(
        self, clone: tuple[bytes, SigningKey], tills: list[tuple[str, TerminalAgent]]
    ) -> None:
        """The second phone pays offline with the counters the victim used over a minute ago."""
        l1, key = clone
        for ctr, (terminal_id, terminal) in enumerate(tills):
            text = make_code(l1, key, ctr=ctr, ts=int(time.time()))
            result = terminal.scan_path.scan(text, amount=900)
            self.tally.record(terminal_id, result, 900)
            if result.ok:
                self.tally.clone_accepted += 1

    def _wait(self, phase: str, end: float, *, until: float) -> None:
        """Sleep until `until`, reporting progress towards the phase's `end` (monotonic)."""
        total = max(1, round(end - self._phase_start(phase)))
        while (left := until - time.monotonic()) > 0:
            self.events(phase, total - max(0, round(end - time.monotonic())), total)
            time.sleep(min(0.5, left))
        self.events(phase, total - max(0, round(end - time.monotonic())), total)

    def _phase_start(self, phase: str) -> float:
        return self._started.setdefault(phase, time.monotonic())

    def _drain(self, terminals: list[TerminalAgent]) -> None:
        """Reconnected: every journal uploaded and acknowledged (bounded)."""
        end = time.monotonic() + self.plan.upload_s
        while time.monotonic() < end:
            left = sum(t.store.entries() for t in terminals)
            self.events("upload", 0 if left else 1, 1)
            if not left:
                return
            for terminal in terminals:
                terminal.try_upload()
            time.sleep(0.5)
        raise TimeoutError("the journals were not all acknowledged in time")

    # -- the report --------------------------------------------------------------------------

    def _reasons(self) -> Counter[str]:
        reasons: Counter[str] = Counter()
        for (_, _, reason), n in self.tally.scans.items():
            reasons[reason] += n
        return reasons

    def _books(self) -> dict[int, int]:
        return {m: self._balance(m) for m in self.server.merchants.values()}

    def _balance(self, account: int) -> int:
        answer = self.http.get(f"/v1/admin/accounts/{account}", headers=self.server.admin)
        answer.raise_for_status()
        return int(answer.json()["balance"])

    def _alerts(self) -> list[dict[str, Any]]:
        """The whole review queue, page after page."""
        alerts: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 200}
        while True:
            answer = self.http.get("/v1/admin/alerts", headers=self.server.admin, params=params)
            answer.raise_for_status()
            page = answer.json()
            alerts += page["items"]
            if page["next_cursor"] is None:
                return alerts
            params["cursor"] = page["next_cursor"]

    def _report(self, before: dict[int, int], tills: list[str]) -> dict[str, Any]:
        admin = self.server.admin
        credited = sum(self._balance(m) - b for m, b in before.items())
        books = self.http.get("/v1/admin/books", headers=admin).json()["sum_of_balances"]
        alerts = self._alerts()
        caught = [a for a in alerts if a["cti"] == self.tally.clone_cti and a["kind"] == "clone"]
        online = sum(n for (_, on, _), n in self.tally.scans.items() if on)
        offline = sum(n for (_, on, _), n in self.tally.scans.items() if not on)
        return {
            "scans_online": online,
            "scans_offline": offline,
            "by_reason": dict(self._reasons()),
            "payments": sum(self.tally.payments[t] for t in tills),
            "paid_at_tills": sum(self.tally.paid[t] for t in tills),
            "credited_to_merchants": credited,
            "sum_of_balances": books,
            "first_offline_verdict_s": self.tally.first_offline_s,
            "clone_accepted_offline": self.tally.clone_accepted,
            "clone_alerts": len(caught),
        }


def connect(url: str, document: dict[str, Any]) -> Server:
    """A running server and its `demo.json` (admin password, holder password, merchants)."""
    with httpx.Client(base_url=url, timeout=HTTP_TIMEOUT_S) as http:
        answer = http.post("/v1/admin/session", json=document["admin"])
        answer.raise_for_status()
    return Server(
        url=url,
        admin={"Authorization": f"Bearer {answer.json()['token']}"},
        holder_password=document["holders"]["password"],
        merchants=dict(document["merchants"]),
    )


def _port(url: str) -> int:
    """The port the tills' cuttable link forwards to (on 127.0.0.1, where the demo runs)."""
    port = urlsplit(url).port  # ASCII digits only: a ValueError for anything else
    if port is None:
        raise ValueError(f"the server URL {url} names no port")
    return port
