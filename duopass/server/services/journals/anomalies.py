"""Anomalies in offline journals: each batch's accepted entries judged against their holder's
and their terminal's habits (`duopass.risk.anomaly`), the baselines updated, and an entry far off
raised as a `journal_anomaly` alert for review with its evidence (the entry, the baseline as it
was, the score).

One pass a batch, after its entries settled: one read of every baseline the batch names, the
entries judged in seq order against the baselines as the batch found them (`BatchJudge`: the
limits worked out once a key), the entries folded in grouped by key, one statement writing the
baselines back. The holders' rows are changed under the locks the batch holds on their
accounts, the terminal's under its row's, so concurrent batches never lose an update. At most
one alert per key a batch (its most-off entry; the evidence counts the others) and `ALERTS_MAX`
in all.

The terminal is also compared with its venue's other tills (`duopass.risk.venue_peers`): the
venue's row (`venue:<id>`, its tills' latest paying entries, each marked when at exactly its
credential's offline cap) is read in the same statement, the batch's amounts added, the rule
judged once a batch, the row written with the baselines; a till above its peers (or clipping at
the cap) raises a `journal_anomaly` on its latest entry. An offline payment above its venue's
price ceiling for its meal period (`venue_ceilings`) raises one at once (it still books).
Two tills of one venue settling at the same moment both write the row: the later one's wins (a
few entries missing from a sample of the venue, not a wrong figure).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from duopass.protocol.verify import Mode
from duopass.risk import AlertKind
from duopass.risk.anomaly import Holds, Score
from duopass.risk.baselines import Baseline, Use
from duopass.risk.batch_judge import BatchJudge
from duopass.risk.venue_peers import PEERS, VenuePeers
from duopass.server.domain import Outcome
from duopass.server.services import alerts, venue_ceilings
from duopass.server.services.journals.lookups import Item
from duopass.server.services.journals.settling import Settling
from duopass.server.store import sql
from duopass.server.store.risk import holder_key, terminal_key, venue_key
from duopass.server.store.tables import Holder

__all__ = ["ALERTS_MAX", "OBSERVED", "observe_batch"]

ALERTS_MAX = 20
"""Most anomaly alerts one batch raises (one per key at most)."""
OBSERVED = frozenset({Outcome.BOOKED.value, Outcome.DUPLICATE.value, Outcome.CONFIRMED.value})
"""The entries a baseline learns from: acceptances the server booked or confirmed."""

_READ = "SELECT key, state FROM journal_baselines WHERE key IN ({keys})"
_WRITE = sql.statement(
    "INSERT INTO journal_baselines (key, state, entries, updated_at) "
    "VALUES (:key, :state, :entries, :updated_at) "
    "ON CONFLICT (key) DO UPDATE SET state = excluded.state, entries = excluded.entries, "
    "updated_at = excluded.updated_at"
)


class _Flagged:
    """A key's most-off entry of the batch, and how many of its entries were flagged."""

    def __init__(self, item: Item, use: Use, found: Score, baseline: dict[str, Any]) -> None:
        self.item, self.use, self.score, self.baseline = item, use, found, baseline
        self.count = 0


class _Flags(dict[str, _Flagged]):
    """The keys flagged so far in the batch."""

    def judge(self, key: str, judge: BatchJudge, item: Item, use: Use) -> None:
        """Judge the entry; keep it if it is the key's most-off one yet."""
        flags = judge.flags(use)
        if not flags:
            return
        found = judge.explained(use, flags)  # rare: every part of the score, for the evidence
        was = self.get(key)
        if was is None or found.weight > was.score.weight:
            count = 0 if was is None else was.count
            was = self[key] = _Flagged(item, use, found, judge.baseline.summary())
            was.count = count
        was.count += 1


def observe_batch(st: Settling, items: dict[int, Item]) -> int:
    """Judge the batch's accepted entries (`st.entries`, their `items`), write the baselines
    back, raise the alerts; returns how many it raised."""
    uses = _uses(st, items)
    if not uses:
        return 0
    till = terminal_key(st.terminal_id)
    venue = venue_key(st.terminal.venue) if st.terminal.venue else ""
    stored = _read(st.unit.session, {till, *(key for _, _, key in uses), *([venue] * bool(venue))})
    peers = VenuePeers.restore(json.loads(stored.pop(venue))) if venue in stored else VenuePeers()
    baselines = {
        key: Baseline.restore(json.loads(stored[key])) if key in stored else Baseline()
        for key in sorted({till, *(key for _, _, key in uses)})
    }
    terminal = baselines[till]
    judges = {till: BatchJudge(terminal, Holds.TERMINAL)}
    for key, baseline in baselines.items():
        if key != till:
            judges[key] = BatchJudge(baseline, Holds.HOLDER, context=terminal)
    flagged, till_judge = _Flags(), judges[till]
    for item, use, key in uses:
        flagged.judge(key, judges[key], item, use)
        flagged.judge(till, till_judge, item, use)
    for judge in judges.values():
        judge.finish()
    rows = [
        {"key": key, "state": json.dumps(b.state()), "entries": b.n, "updated_at": st.unit.now}
        for key, b in sorted(baselines.items())
    ]
    beside = _beside_peers(st, peers, uses) if venue else None
    if venue:
        state, kept = json.dumps(peers.state()), sum(map(len, peers.tills.values()))
        rows.append({"key": venue, "state": state, "entries": kept})
        rows[-1]["updated_at"] = st.unit.now
    sql.raw(st.unit.session).many(_WRITE, rows)
    raised = _raise(st, flagged) + (_raise_beside(st, *beside) if beside else 0)
    return raised + (_above_ceiling(st, uses) if venue else 0)


def _above_ceiling(st: Settling, uses: list[tuple[Item, Use, str]]) -> int:
    """The batch's offline payments above their venue's ceiling for the meal period of their
    scan time (`venue_ceilings`; online ones were judged at the scan): flagged, still booked."""
    assert st.terminal.venue is not None
    ceilings, found = venue_ceilings.Ceilings(st.unit), []
    for item, use, _ in uses:
        if not use.amount or item.entry is None or item.entry.online:
            continue
        limit = ceilings.at(st.terminal.venue, use.at)
        if limit is not None and use.amount > limit[1]:
            above = venue_ceilings.Above(
                st.terminal_id, item.seq, st.terminal.venue, use.at, use.amount, *limit, False
            )
            found.append(above)
    return venue_ceilings.flag(st.unit, found)


def _beside_peers(
    st: Settling, peers: VenuePeers, uses: list[tuple[Item, Use, str]]
) -> tuple[Item, Use, dict[str, Any]] | None:
    """Add the batch's payments to its venue's entries and judge the terminal against the
    venue's other tills: its latest payment and the evidence when it flags."""
    paid = [(item, use) for item, use, _ in uses if use.amount]  # a refusal charges nothing
    for item, use in paid:
        assert use.amount is not None and item.code is not None and item.entry is not None
        offline = not item.entry.online  # online, the server saw the amount as it was paid
        capped = offline and use.amount == item.code.credential.claims.txmax
        peers.add(use.at, st.terminal_id, use.amount, capped)
    peers.trim()
    if not paid:
        return None
    found = peers.judge(st.terminal_id)
    if found is None or not found.flagged:
        return None
    item, use = paid[-1]
    return item, use, found.explained(PEERS)


def _raise_beside(st: Settling, item: Item, use: Use, score: dict[str, Any]) -> int:
    entry = {"terminal": st.terminal_id, "seq": item.seq, "at": use.at, "hour": use.hour}
    entry.update(venue=use.venue, amount=use.amount)
    evidence = {"key": terminal_key(st.terminal_id), "score": score, "entry": entry}
    alerts.raise_alert(
        st.unit,
        AlertKind.JOURNAL_ANOMALY,
        evidence=evidence,
        terminal_id=st.terminal_id,
        seq=item.seq,
    )
    return 1


def _uses(st: Settling, items: dict[int, Item]) -> list[tuple[Item, Use, str]]:
    """The batch's accepted entries of this issuer's credentials, as the baselines see them,
    each with its holder's key."""
    zone, offsets, keys = st.unit.settings.zone, dict[int, int](), dict[int, str]()
    found = []
    for row in st.entries:
        item = items.get(row["seq"])
        if row["outcome"] not in OBSERVED or item is None or item.entry is None:
            continue
        entry, code = item.entry, item.code
        credential = st.refs.credentials.get(code.credential.claims.cti) if code else None
        if credential is None or entry.mode is Mode.IDENTITY:
            continue
        at = entry.server_time
        day, hour = _local(at, zone, offsets)
        amount = st.charged(entry) if entry.mode is Mode.PAY else None
        use = Use(at, day, hour, entry.venue or "", amount)
        key = keys.get(credential.holder_id)
        if key is None:
            key = keys[credential.holder_id] = holder_key(credential.holder_id)
        found.append((item, use, key))
    return found


def _local(at: int, zone: ZoneInfo, offsets: dict[int, int]) -> tuple[int, int]:
    """The local day number and hour of `at` in the campus's time zone (the zone's offset
    looked up once an hour of scan times)."""
    offset = offsets.get(at // 3600)
    if offset is None:
        delta = datetime.fromtimestamp(at, zone).utcoffset()
        offset = offsets[at // 3600] = int(delta.total_seconds()) if delta is not None else 0
    local = at + offset
    return local // 86400, local % 86400 // 3600


def _read(session: Session, keys: set[str]) -> dict[str, str]:
    """The stored state of each of `keys` that has one, in one statement."""
    ordered = sorted(keys)
    params = {f"k{n}": key for n, key in enumerate(ordered)}
    text = _READ.format(keys=", ".join(f":{name}" for name in params))
    return dict(sql.raw(session).all(sql.statement(text), params))


def _raise(st: Settling, flagged: _Flags) -> int:
    ranked = sorted(flagged.items(), key=lambda kv: (-kv[1].score.weight, kv[0]))
    session = st.unit.session
    for key, found in ranked[:ALERTS_MAX]:
        item, use = found.item, found.use
        assert item.entry is not None and item.code is not None
        cti = item.code.credential.claims.cti
        holder = None
        if key.startswith("holder:"):
            holder = session.get(Holder, int(key.removeprefix("holder:")))
        entry = {"terminal": st.terminal_id, "seq": item.seq, "at": use.at, "hour": use.hour}
        entry.update(venue=use.venue, amount=use.amount)
        evidence = {
            "key": key,
            "score": found.score.explained(),
            "entry": entry,
            "baseline": found.baseline,
            "flagged_in_batch": found.count,
        }
        alerts.raise_alert(
            st.unit,
            AlertKind.JOURNAL_ANOMALY,
            evidence=evidence,
            holder=holder,
            cti=cti if holder is not None else None,
            terminal_id=st.terminal_id,
            seq=item.seq,
        )
    return min(len(ranked), ALERTS_MAX)
