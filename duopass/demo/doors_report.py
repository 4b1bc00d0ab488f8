"""The doors' report (`doors`): what the gates saw, and the checks against the server's own
record, each asked the way its owner would: the attendees' wallets for their tickets' entries
used, the box office for the check-in list, the alerts and the books, and an auditor for the
ledger (its checkpoint pinned before the doors opened, then every entry, the root and the
consistency of the two)."""

from __future__ import annotations

import base64
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from duopass.ledger import NoteVerifier
from duopass.ledger.audit import Consistency, Report, audit_log
from duopass.protocol.reasons import Reason
from duopass.terminal import Result
from duopass.wallet import Wallet

if TYPE_CHECKING:
    from duopass.demo.doors import Attendee, Doors, Gate

__all__ = ["Pinned", "pin_ledger", "report"]

LEDGER_PAGE = 1000
"""Entries per request (the server's page)."""
ALERT_WAIT_S = 15.0
EXPECTED_ALERTS = frozenset({"old_generation"})
"""The only alert the doors should raise: the lost phone admitted where the gate could not know."""


class _Ledger:
    """The auditor endpoints (§8) as `duopass.ledger.audit` reads a log."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def _get(self, path: str, params: dict[str, int] | None = None) -> httpx.Response:
        answer = self.http.get(path, params=params)
        answer.raise_for_status()
        return answer

    def checkpoint(self) -> bytes:
        return self._get("/v1/ledger/checkpoint").content

    def entries(self, start: int, count: int, /) -> Sequence[bytes]:
        items = self._get("/v1/ledger/entries", {"start": start, "count": count}).json()
        return [base64.b64decode(item, validate=True) for item in items["entries"]]

    def consistency(self, old: int, new: int, /) -> Sequence[bytes]:
        proof = self._get("/v1/ledger/proofs/consistency", {"old": old, "new": new}).json()
        return [base64.b64decode(item, validate=True) for item in proof["proof"]]


@dataclass(frozen=True)
class Pinned:
    """The ledger as an auditor found it before the doors opened."""

    verifier: NoteVerifier
    report: Report


def pin_ledger(http: httpx.Client) -> Pinned:
    """The verifier key (trusted on first use: a demo) and an audit of the log as it is now."""
    verifier = NoteVerifier.parse(http.get("/v1/ledger/key").text.strip())
    source = _Ledger(http)
    first = audit_log(source.checkpoint(), source, verifier, page=LEDGER_PAGE)
    if not first.ok:
        raise RuntimeError(f"the ledger fails its audit before the doors: {first.findings}")
    return Pinned(verifier, first)


def report(
    doors: Doors, people: list[Attendee], gates: list[Gate], pinned: Pinned
) -> dict[str, Any]:
    """Figures and checks; `ok` when every check passed."""
    tally, story = doors.tally, doors.tally.story
    used = _entries_used(people)
    admitted = sum(tally.admitted.values())
    over = sum(1 for a in people if used[a.sub] > a.entries)
    alerts = _alerts(doors, {g.id for g in gates}, story.get("old_cti"), gates[3].id)
    flagged = [
        a for a in alerts if a["kind"] == "old_generation" and a["cti"] == story.get("old_cti")
    ]
    kinds = Counter(a["kind"] for a in alerts)
    entered = _entered(doors)
    ledger, ledger_ok, ledger_note = _audit(doors.http, pinned)
    books = doors.http.get("/v1/admin/books", headers=doors.server.admin).json()
    figures = _figures(doors, people, gates)
    checks = [
        (
            "every attendee in at most their entries",
            f"{len(people)} tickets, {over} over",
            over == 0 and len(used) == len(people),
        ),
        (
            "admitted at gates / entries on the server",
            f"{admitted} / {sum(used.values())}",
            admitted == sum(used.values()),
        ),
        (
            "tickets admitted / entered on the list",
            f"{len(tally.admitted)} / {entered}",
            len(tally.admitted) == entered,
        ),
        _passback(tally.passes),
        _cut(tally.scans, [g.id for g in gates[2:]]),
        *_story(story, len(flagged)),
        ("journals reconciled", "every entry acknowledged", True),
        (
            "alerts on these gates",
            ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) or "none",
            set(kinds) <= EXPECTED_ALERTS,
        ),
        ("ledger verified", ledger_note, ledger_ok),
        (
            "sum of all balances (closed loop)",
            f"{books['sum_of_balances']}",
            books["sum_of_balances"] == 0,
        ),
    ]
    figures.append(("ledger events of the doors", ledger))
    return {"figures": figures, "checks": checks, "ok": all(ok for _, _, ok in checks)}


def _figures(doors: Doors, people: list[Attendee], gates: list[Gate]) -> list[tuple[str, str]]:
    scans = doors.tally.scans
    online = sum(n for (_, on, _), n in scans.items() if on)
    reasons: Counter[str] = Counter()
    for (_, _, reason), n in scans.items():
        reasons[reason] += n
    two = sum(1 for a in people if a.entries == 2)
    rows = [
        ("attendees (one entry / re-entry pass)", f"{len(people) - two} / {two}"),
        ("gates (two cut off midway)", f"{len(gates)}"),
        ("scans decided online / offline", f"{online} / {sum(scans.values()) - online}"),
    ]
    rows += [(f"  verdict {reason}", f"{n}") for reason, n in sorted(reasons.items())]
    return rows


def _passback(passes: Counter[str]) -> tuple[str, str, bool]:
    """A one-entry ticket handed back over the barrier and shown again: refused, online by the
    server, offline by the gate's own count (check 19)."""
    tried = sum(n for key, n in passes.items() if key.startswith("1:"))
    refused = passes[f"1:{Reason.ALREADY_USED.value}"]
    again = passes["2:admitted"]
    value = f"{refused} of {tried} refused ({again} re-entry pass(es) let in again)"
    return ("one-entry ticket shown twice", value, tried > 0 and refused == tried)


def _cut(scans: Counter[tuple[str, bool, str]], cut: list[str]) -> tuple[str, str, bool]:
    offline = sum(n for (gate, on, _), n in scans.items() if gate in cut and not on)
    return ("the cut gates kept admitting offline", f"{offline} scans", offline > 0)


def _story(story: dict[str, Any], flagged: int) -> list[tuple[str, str, bool]]:
    """The lost phone: reissued at the door; its old code admitted where the gate could not
    know (then flagged), refused where it could."""
    lost = story.get("lost") or {}
    ours = [t for t in lost.get("tickets", []) if t.get("sub") == story["sub"]]
    moved = [t for t in ours if t.get("state") == "done"]
    outcome = ", ".join(f"{t.get('outcome')} ({t.get('rule')})" for t in ours)
    before, after = story.get("before_bundle"), story.get("after_bundle")
    new, old = story.get("new_code"), story.get("old_after_new")

    def said(result: Result | None) -> str:
        if result is None:
            return "not tried"
        return f"{result.reason.value} {'online' if result.online else 'offline'}"

    def was(result: Result | None, reason: Reason, *, online: bool) -> bool:
        return result is not None and result.reason is reason and result.online is online

    return [
        (
            "lost phone reissued at the door",
            f"{outcome or 'nothing moved'}, generation {story.get('new_gen')}",
            bool(moved) and story.get("new_gen", 0) >= 1,
        ),
        (
            "old code, cut gate, bundle from before",
            f"{said(before)}, then {flagged} old_generation alert(s)",
            was(before, Reason.OK, online=False) and flagged >= 1,
        ),
        (
            "old code, cut gate, after its bundle",
            f"{said(after)} (bundle seq {story.get('south_bundle')})",
            was(after, Reason.REVOKED, online=False),
        ),
        ("new phone's code, online gate", said(new), was(new, Reason.OK, online=True)),
        (
            "old code there after the new one",
            said(old),
            old is not None and old.reason is Reason.REVOKED,
        ),
    ]


def _entries_used(people: list[Attendee]) -> dict[str, int]:
    """Each attendee's wallet asks the server for its tickets: entries used of ours."""

    def one(attendee: Attendee) -> tuple[str, int]:
        with Wallet(attendee.phone) as wallet:
            held = {t.sub: t for t in wallet.sync_tickets()}
        return attendee.sub, held[attendee.sub].info.entries_used

    with ThreadPoolExecutor(4) as pool:
        return dict(pool.map(one, people))


def _entered(doors: Doors) -> int:
    answer = doors.http.get(
        f"/v1/admin/events/{doors.event}/checkin-lists", headers=doors.server.admin
    )
    answer.raise_for_status()
    return sum(int(item["entered"]) for item in answer.json()["items"])


def _alerts(doors: Doors, gates: set[str], old_cti: str | None, west: str) -> list[dict[str, Any]]:
    """The alerts raised on this run's gates, once the old generation's has come (bounded)."""
    deadline = time.monotonic() + ALERT_WAIT_S
    while True:
        ours = [a for a in _all_alerts(doors) if a["terminal_id"] in gates]
        if any(a["cti"] == old_cti and a["terminal_id"] == west for a in ours):
            return ours
        if time.monotonic() > deadline:
            return ours
        time.sleep(0.5)


def _all_alerts(doors: Doors) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 200}
    while True:
        answer = doors.http.get("/v1/admin/alerts", headers=doors.server.admin, params=params)
        answer.raise_for_status()
        page = answer.json()
        alerts += page["items"]
        if page["next_cursor"] is None:
            return alerts
        params["cursor"] = page["next_cursor"]


def _audit(http: httpx.Client, pinned: Pinned) -> tuple[str, bool, str]:
    """Every entry of the log, its root against a new checkpoint, and that checkpoint
    consistent with the one pinned before the doors: (what the doors added, ok, summary)."""
    source = _Ledger(http)
    audit = audit_log(
        source.checkpoint(),
        source,
        pinned.verifier,
        trusted=pinned.report.checkpoint,
        page=LEDGER_PAGE,
    )
    before, after = Counter(dict(pinned.report.types)), Counter(dict(audit.types))
    added = after - before
    wanted = ("order_paid", "decision", "credential_revoke", "checkin", "journal_batch", "alert")
    doors_added = ", ".join(f"{k} +{added[k]}" for k in wanted if added[k])
    consistent = audit.consistency in (Consistency.EXTENDS, Consistency.SAME)
    size = audit.checkpoint.size if audit.checkpoint is not None else 0
    note = f"{size} entries, signature and root ok, extends the pinned checkpoint"
    if not audit.ok or not consistent:
        note = "; ".join(f.message for f in audit.findings) or f"consistency {audit.consistency}"
    return doors_added or "none", audit.ok and consistent, note
