"""The risk engine's journal point (`Point.JOURNAL`): once a batch has settled, its offline
acceptances and misreported amounts are counted (one upsert of each kind for the whole batch),
then each holder whose credential it accepted is judged (where it was accepted: distinct tills,
venues, the km/h between two of them) and the batch's terminal too (what it reports). A guard
that acts is a `risk_decision` alert carrying its decision record (`risk_records`);
`suspend_offline` also suspends the holder's offline use (its `offline_suspend` ledger event).
In the batch's unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy import select

from duopass.policy.guards import Action
from duopass.risk import (
    Features,
    FeatureStore,
    Key,
    KeyKind,
    Observation,
    Pair,
    Signal,
    Window,
)
from duopass.risk.features import QUERIES_MAX, Derived, Query
from duopass.risk.geo import Sighting, kmh
from duopass.risk.points import GEOVELOCITY, Judged, Point, Subject, judge_all, queries
from duopass.server.services import policy_store, risk_engine, risk_features
from duopass.server.services.journals.settling import Settling
from duopass.server.store.tables import Holder
from duopass.server.store.tickets import Venue
from duopass.server.unit_of_work import Unit

__all__ = ["reconcile"]

SIGHTINGS_MAX = 10
"""Most venues per signal a holder's geovelocity compares with."""


def reconcile(st: Settling) -> list[Judged]:
    """Count the batch's acceptances and misreported amounts, judge its holders and its
    terminal, act; the decisions (plain allows included), for tests and tools."""
    unit, seen = st.unit, st.risk_seen
    if unit.pinned_policy is None or not unit.settings.risk_engine:
        return []
    if not seen.accepted and not seen.misreported:
        return []
    terminal = Key(KeyKind.TERMINAL, st.terminal_id)
    venue = None if st.terminal.venue is None else Key(KeyKind.VENUE, st.terminal.venue)
    event = None if st.terminal.event is None else Key(KeyKind.EVENT, st.terminal.event)
    store = risk_features.store_for(unit)
    store.record(_observations(st, terminal, venue), now=unit.now)
    latest: dict[int, int] = {}
    for holder_id, at in seen.accepted:
        latest[holder_id] = max(at, latest.get(holder_id, at))
    subjects = [Subject(risk_engine.holder_key(h), terminal=terminal, venue=venue) for h in latest]
    subjects.append(Subject(terminal=terminal, venue=venue, event=event))
    read = _read_all(store, [queries(Point.JOURNAL, subject) for subject in subjects], unit.now)
    read[:-1] = [
        features | _geovelocity(unit, store, subject, features, at)
        for subject, features, at in zip(subjects, read, latest.values(), strict=False)
    ]
    policy = policy_store.current(unit)
    decided = judge_all(policy, Point.JOURNAL, read)
    for subject, judged in zip(subjects, decided, strict=True):
        _act(unit, subject, judged)
    return decided


def _observations(st: Settling, terminal: Key, venue: Key | None) -> list[Observation]:
    """One observation an acceptance, counted per terminal and venue (no feature counts a
    holder's: its distinct tills and venues are its pairs, made once a holder), one a mismatch."""
    places = (terminal,) if venue is None else (terminal, venue)
    made: dict[int, Observation] = {}
    found = []
    for holder_id, at in st.risk_seen.accepted:
        alike = made.get(holder_id)
        if alike is None:
            account = risk_engine.holder_key(holder_id)
            pairs = tuple(Pair(account, place) for place in places)
            alike = made[holder_id] = Observation(at, Signal.OFFLINE_ACCEPTANCE, places, pairs)
        found.append(alike.at_time(at))
    mismatch = Signal.AMOUNT_MISMATCH
    return found + [Observation(at, mismatch, (terminal,)) for at in st.risk_seen.misreported]


def _read_all(store: FeatureStore, groups: Sequence[list[Query]], now: int) -> list[Features]:
    """Each group's features, read `QUERIES_MAX` queries a statement (named by their place in
    the read, as subjects' features share names)."""
    flat = [(n, query) for n, group in enumerate(groups) for query in group]
    values: list[int | None] = []
    for first in range(0, len(flat), QUERIES_MAX):
        chunk = flat[first : first + QUERIES_MAX]
        renamed = [replace(query, name=f"q{first + k}") for k, (_, query) in enumerate(chunk)]
        values += store.read(renamed, now=now).values()
    read: list[list[tuple[Query | Derived, int | None]]] = [[] for _ in groups]
    for (n, query), value in zip(flat, values, strict=True):
        read[n].append((query, value))
    return [Features(pairs) for pairs in read]


def _geovelocity(
    unit: Unit, store: FeatureStore, subject: Subject, features: Features, at: int
) -> Features:
    """The km/h from the holder's latest sighting at another venue (offline or online, in the
    hour) to this batch's venue at `at`; 0 when there is none or a venue has no coordinates.
    Read only for a holder seen at two venues or more (rarely: one `seen_with` per signal)."""
    account, venue = subject.account, subject.venue
    assert account is not None
    derived = Derived(account, GEOVELOCITY)
    offline = features["account.offline_acceptance.distinct_venue.1h"] or 0
    online = features["account.online_scan.distinct_venue.1h"] or 0
    if venue is None or offline + online < 2:
        return Features([(derived, 0)])
    others: dict[str, int] = {}
    for signal in (Signal.OFFLINE_ACCEPTANCE, Signal.ONLINE_SCAN):
        for key, last in store.seen_with(
            account, signal, KeyKind.VENUE, window=Window.HOUR, now=unit.now, limit=SIGHTINGS_MAX
        ):
            if key != venue:
                others[key.value] = max(last, others.get(key.value, last))
    places = _coordinates(unit, [venue.value, *others])
    here = places.get(venue.value)
    if here is None:
        return Features([(derived, 0)])
    speeds = [
        kmh(Sighting(*places[other], last), Sighting(*here, at))
        for other, last in others.items()
        if other in places
    ]
    return Features([(derived, max(speeds, default=0))])


def _coordinates(unit: Unit, venues: list[str]) -> dict[str, tuple[int, int]]:
    rows = unit.session.execute(
        select(Venue.id, Venue.lat_e6, Venue.lon_e6).where(Venue.id.in_(venues))
    )
    return {id_: (lat, lon) for id_, lat, lon in rows if lat is not None and lon is not None}


def _act(unit: Unit, subject: Subject, judged: Judged) -> None:
    """Record a decision that is not a plain allow (`risk_engine.record`: an action a person
    sees is a `risk_decision` alert naming the holder or the terminal, once while one is open);
    for suspend_offline, the holder's offline use suspended."""
    assessment = judged.assessment
    if assessment.action is Action.ALLOW and assessment.score == 0:
        return
    risk_engine.record(unit, subject, judged)
    if subject.account is not None and assessment.action is Action.SUSPEND_OFFLINE:
        holder = unit.session.get(Holder, int(subject.account.value.split(":")[1]))
        risk_engine.suspend(unit, judged, holder)
