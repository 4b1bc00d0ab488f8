"""Plays a labelled stream (`duopass.risk.simulate`) against a running server over HTTP only:
sets its world up through the card office's API (venues, the evening's event, tills, gates,
holders with their phones and tickets, the canteen's price ceilings from its menu), then moves the
server's test clock to each step's time and makes the step's requests from the step's own source
address, telling the tally what each met. An incident already caught or complete is not played
further. The day starts at 07:00 in the campus's time zone (`ZONE`, the server's): the stream's
meals fall in the card office's meal periods."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from duopass.cli.risk_parties import Net, Phone, Till, acted
from duopass.protocol.encoding import b64u_encode
from duopass.risk.simulate import CAMPUS_NETWORK, HONEST, Kind, Met, Step, Stream, Tally
from duopass.risk.simulate.draft import honest_config

__all__ = ["ZONE", "menu_ceilings", "play"]

CAMPUS, VENUE = CAMPUS_NETWORK, "127.21.0.0/16"
TICKET_PRICE = 2_000
FLUSH_S = 1_800
"""A till uploads its online entries within this (the late window is an hour at least)."""
START_AHEAD_S = 60
ZONE = "Asia/Shanghai"
"""The campus's time zone (the server's `timezone`): the stream's times are from 07:00 there."""
DAY_STARTS = time(7, 0)


def menu_ceilings() -> dict[str, int]:
    """The canteen's price ceilings as a card office sets them from its menu: each meal
    period's dearest price (`honest.toml`'s amount_max per meal)."""
    return {meal: int(row[4]) for meal, row in honest_config()["meals"].items()}


def _morning(at: int) -> int:
    """The first 07:00 in `ZONE` at or after `at`."""
    zone = ZoneInfo(ZONE)
    local = datetime.fromtimestamp(at, zone)
    morning = datetime.combine(local.date(), DAY_STARTS, tzinfo=zone)
    if morning.timestamp() < at:
        morning = datetime.combine(local.date() + timedelta(days=1), DAY_STARTS, tzinfo=zone)
    return int(morning.timestamp())


class Driver:
    def __init__(self, net: Net, stream: Stream) -> None:
        self.net, self.stream = net, stream
        self.phones: dict[str, Phone] = {}
        self.clones: dict[str, Phone] = {}
        self.subs: dict[str, list[str]] = {}
        self.tills: dict[str, Till] = {}
        self.seen_alerts: set[int] = set()
        self.start = 0

    def setup(self) -> None:
        world, net = self.stream.world, self.net
        self.start = _morning(net.now() + START_AHEAD_S)
        net.move_to(self.start - START_AHEAD_S)
        for venue, network in (("canteen", CAMPUS), ("hall", VENUE)):
            made = net.admin("POST", "/v1/admin/venues", _venue(venue, network))
            _ok(made)
        ceilings = {"ceilings": menu_ceilings()}
        _ok(net.admin("PUT", "/v1/admin/venues/canteen/ceilings", ceilings))
        event = {
            "id": "gala",
            "name": "Gala",
            "doors": self.start + world.doors_s,
            "ends": self.start + world.ends_s,
            "venues": ["hall"],
        }
        _ok(net.admin("POST", "/v1/admin/events", event))
        kind = {"name": "Standing", "price": TICKET_PRICE, "entries": 1, "quota": 10_000}
        self.ticket_type = int(
            _ok(net.admin("POST", "/v1/admin/events/gala/ticket-types", kind))["id"]
        )
        merchant = int(
            _ok(net.admin("POST", "/v1/admin/merchants", {"name": "canteen"}))["account_id"]
        )
        for n, name in enumerate(world.tills + world.rogue_tills):
            self._terminal(Till(name, f"127.20.0.{n + 10}"), merchant_account_id=merchant)
        for n, name in enumerate(world.gates):
            self._terminal(
                Till(name, f"127.21.0.{n + 10}", mode="entry", venue="hall"), event="gala"
            )
        for holder in world.holders:
            self._holder(holder.login, holder.address, holder.balance or 10_000, holder.tickets)

    def _terminal(self, till: Till, **fields: Any) -> None:
        body = {"terminal_id": till.terminal_id, "mode": till.mode, "venue": till.venue, **fields}
        if till.mode == "pay":
            body["currency"] = "CNY"
        code = _ok(self.net.admin("POST", "/v1/admin/terminals", body))["enrol_code"]
        till.enrol(self.net, code)
        self.tills[till.terminal_id] = till

    def _holder(self, login: str, address: str, balance: int, tickets: int) -> None:
        password = f"pw-{login}-secret"
        body = {
            "login": login,
            "name": f"Holder {login}",
            "number": f"N-{uuid.uuid4().hex[:12]}",
            "email": f"{login}@example.edu",
            "password": password,
            "overdraft": 0,
        }
        handle = _ok(self.net.admin("POST", "/v1/admin/holders", body))["handle"]
        top_up = {"amount": balance, "request_id": uuid.uuid4().hex}
        _ok(self.net.admin("POST", f"/v1/admin/holders/{handle}/topups", top_up))
        phone = Phone(login, password, address)
        _ok(phone.sign_in(self.net))
        _ok(phone.enrol(self.net))
        if tickets:  # before the purse's first credential: its holds would keep the funds
            order = {
                "ticket_type": self.ticket_type,
                "quantity": tickets,
                "request_id": uuid.uuid4().hex,
            }
            http = self.net.client(address)
            self.subs[login] = _ok(http.post("/v1/me/orders", headers=phone.auth, json=order))[
                "tickets"
            ]
            _ok(phone.sync_tickets(self.net))
        _ok(phone.sync(self.net))
        self.phones[login] = phone

    def step(self, step: Step) -> Met:
        self.net.move_to(self.start + step.at)
        self._flush()
        return {
            Kind.SIGN_IN: self._sign_in,
            Kind.STUFF: self._stuff,
            Kind.PAY_ONLINE: self._pay_online,
            Kind.PAY_OFFLINE: self._pay_offline,
            Kind.COPY: self._copy,
            Kind.ENTER: self._enter,
            Kind.LOST: self._lost,
            Kind.REISSUE: self._reissue,
        }[step.kind](step)

    def _flush(self) -> None:
        for till in self.tills.values():
            if till.pending and self.net.now() - till.oldest > FLUSH_S:
                till.upload(self.net)

    def _sign_in(self, step: Step) -> Met:
        phone = self.phones[step.actor]
        answers = [phone.sign_in(self.net, f"a-typo-{n}") for n in range(step.typos)]
        answers.append(phone.sign_in(self.net, phone.password))
        return _met(answers, "sign_in", succeeded=answers[-1].status_code == 200)

    def _stuff(self, step: Step) -> Met:
        password = f"pw-{step.login}-secret" if step.right else "leaked-but-changed"
        body = {"login": step.login, "password": password}
        answer = self.net.client(step.address).post("/v1/session", json=body)
        return _met([answer], "sign_in", succeeded=answer.status_code == 200)

    def _pay_online(self, step: Step) -> Met:
        phone, till = self.phones[step.actor], self.tills[step.till]
        met = _scanned(till.scan(self.net, phone.code(self.net), step.amount))
        alerted = tuple(self._alerted(step.actor, step.till))  # raised at the scan: this step's
        if not alerted:
            return met
        return Met(met.requests, 1, met.succeeded, ("scan",), notes=met.notes + alerted)

    def _pay_offline(self, step: Step) -> Met:
        phone = (self.clones if step.clone else self.phones)[step.actor]
        till = self.tills[step.till]
        till.accept_offline(self.net, phone.code(self.net), step.reported or step.amount)
        answer = till.upload(self.net)
        assert answer is not None
        rejected = [f"rejected:{item}" for item in answer.json()["rejected"]]
        notes = tuple(rejected + self._alerted(step.actor, step.till))
        friction = int(bool(notes))
        return Met(1, friction, not friction, ("journal",) if friction else (), notes=notes)

    def _alerted(self, login: str, terminal: str) -> list[str]:
        """The kinds of the new open alerts naming this holder or this till."""
        found: list[str] = []
        cursor = None
        while True:
            params = {"state": "open", "limit": 200, **({"cursor": cursor} if cursor else {})}
            page = _ok(self.net.admin("GET", "/v1/admin/alerts", **params))
            for alert in page["items"]:
                if alert["id"] in self.seen_alerts:
                    continue
                self.seen_alerts.add(alert["id"])
                if alert["holder_login"] == login or alert["terminal_id"] == terminal:
                    found.append(f"alert:{alert['kind']}{_rules(alert)}")
            cursor = page.get("next_cursor")
            if not cursor:
                return found

    def _copy(self, step: Step) -> Met:
        self.clones[step.actor] = self.phones[step.actor].copy()
        return Met(succeeded=True)

    def _enter(self, step: Step) -> Met:
        phone = self.phones[step.actor]
        if not phone.tickets:
            return Met()
        sub = next(iter(phone.tickets))
        return _scanned(self.tills[step.till].scan(self.net, phone.code(self.net, sub), None))

    def _new_phone(self, step: Step) -> tuple[Phone, list[Any]]:
        """The actor on a new phone: signed in with the password, its key enrolled."""
        old = self.phones[step.actor]
        phone = Phone(step.actor, old.password, step.address)
        answers = [phone.sign_in(self.net)]
        if answers[-1].status_code == 200:
            answers.append(phone.enrol(self.net))
        return phone, answers

    def _lost(self, step: Step) -> Met:
        phone, answers = self._new_phone(step)
        if phone.device_id is None:
            return _met(answers, "reissue", succeeded=False)
        body = {"device_key": b64u_encode(phone.key.public)}
        http = self.net.client(step.address)
        answers.append(http.post("/v1/me/lost", headers=phone.auth, json=body))
        outcomes = []
        if answers[-1].status_code == 200:
            outcomes = [t["outcome"] for t in answers[-1].json()["tickets"] if "outcome" in t]
            answers += [phone.sync(self.net), phone.sync_tickets(self.net)]
            self.phones[step.actor] = phone
        met = _met(answers, "reissue", succeeded=answers[2].status_code == 200)
        return _with_outcomes(met, outcomes)

    def _reissue(self, step: Step) -> Met:
        phone, answers = self._new_phone(step)
        subs = self.subs.get(step.actor, [])
        if phone.device_id is None or not subs:
            return _met(answers, "reissue", succeeded=False)
        sub = subs[step.ticket % len(subs)]
        http = self.net.client(step.address)
        body = {"device_key": b64u_encode(phone.key.public)}
        answers.append(http.post(f"/v1/me/tickets/{sub}/reissue", headers=phone.auth, json=body))
        outcome = answers[-1].json().get("outcome") if answers[-1].status_code == 201 else None
        done = False
        if outcome == "allow":
            request_id = answers[-1].json()["request_id"]
            answers.append(http.post(f"/v1/me/reissues/{request_id}/confirm", headers=phone.auth))
            done = answers[-1].status_code == 200
        if done and step.label == HONEST:
            answers += [phone.sync(self.net), phone.sync_tickets(self.net)]
            self.phones[step.actor] = phone
        met = _met(answers, "reissue", succeeded=done)
        return _with_outcomes(met, [outcome] if outcome else [])


def _scanned(found: dict[str, Any]) -> Met:
    if found["ok"]:
        return Met(1, 0, True)
    return Met(1, 1, False, ("scan",), notes=(f"scan:{found['reason']}",))


def _with_outcomes(met: Met, outcomes: list[str]) -> Met:
    refused = [f"policy:{outcome}" for outcome in outcomes if outcome != "allow"]
    friction = met.friction + len(refused)
    points = ("reissue",) if friction else ()
    notes = met.notes + tuple(refused)
    return Met(met.requests, friction, met.succeeded, points, tuple(outcomes), notes)


def _met(answers: list[Any], point: str, *, succeeded: bool) -> Met:
    notes = tuple(answer.json()["code"] for answer in answers if acted(answer))
    return Met(len(answers), len(notes), succeeded, (point,) if notes else (), notes=notes)


def _rules(alert: dict[str, Any]) -> str:
    """A journal anomaly's rules (`:venue`, `:ceiling`, ...), for the trace."""
    score = alert.get("evidence", {}).get("score", {})
    rules = score.get("rules") if isinstance(score, dict) else None
    return ":" + "+".join(rules) if rules else ""


def _venue(name: str, network: str) -> dict[str, Any]:
    return {
        "id": name,
        "name": name.title(),
        "lat_e6": 31_200_000,
        "lon_e6": 121_400_000,
        "networks": [network],
    }


def _ok(answer: Any) -> Any:
    if answer.status_code >= 300:
        raise RuntimeError(
            f"{answer.request.method} {answer.request.url.path}: {answer.status_code} {answer.text}"
        )
    return answer.json() if answer.content else None


def play(net: Net, stream: Stream, trace: Callable[[str], None] | None = None) -> Tally:
    """Set the stream's world up on the server, then play it; the tally of what it met.
    `trace` is told of every step that met friction."""
    driver = Driver(net, stream)
    driver.setup()
    tally = Tally(stream)
    for step in stream.steps:
        if tally.decided(step):
            continue
        met = driver.step(step)
        tally.record(step, met)
        if trace is not None and met.friction:
            where = f"#{step.incident}" if step.incident >= 0 else ""
            trace(
                f"{step.at:>6}s {step.label}{where} {step.kind} {step.actor}: {' '.join(met.notes)}"
            )
    return tally
