"""The streaming features' window arithmetic, held to its definition (`duopass.risk.windows`):
a window's count is every event from `counted_since(now)` to `now` and none other; state that
no window counts any more expires, and expiring it changes no read."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from duopass.risk import (
    Count,
    Distinct,
    Features,
    Key,
    KeyKind,
    LastSeen,
    MemoryFeatureStore,
    Observation,
    Pair,
    Signal,
    Window,
    network_of,
)
from duopass.risk.buckets import bucket_rows, pair_rows
from duopass.risk.windows import bucket_start, counted_since, expires_at

T0 = 1_800_000_000  # a whole day: every bucket of every window starts here
MIA = Key(KeyKind.ACCOUNT, "holder:1")
NET = Key(KeyKind.NETWORK, "10.1.2.0/24")
FAIL = Signal.SIGN_IN_FAILURE


def _failure(at: int, *keys: Key, pairs: tuple[Pair, ...] = ()) -> Observation:
    return Observation(at, FAIL, keys or (MIA,), pairs)


def _count(store: MemoryFeatureStore, window: Window, now: int, key: Key = MIA) -> int | None:
    return store.read([Count(key, FAIL, window)], now=now)[
        f"{key.kind}.sign_in_failure.{window.label}"
    ]


def test_each_window_counts_from_the_start_of_its_oldest_bucket():
    now = T0 + 3 * 3600 + 25 * 60 + 17
    assert counted_since(Window.MINUTE, now) == now - 59  # the last 60 seconds, exactly
    assert counted_since(Window.HOUR, now) == T0 + 2 * 3600 + 26 * 60  # 59 min 17 s back
    assert counted_since(Window.DAY, now) == T0 + 4 * 3600 - 86400  # 23 h 25 min 17 s back
    assert bucket_start(Window.HOUR, now) == T0 + 3 * 3600 + 25 * 60
    assert expires_at(Window.HOUR, T0) == T0 + 3600


@pytest.mark.parametrize("window", list(Window))
def test_an_event_is_counted_from_its_time_until_its_bucket_leaves_the_window(window):
    store = MemoryFeatureStore()
    at = T0 + window.bucket_s + window.bucket_s // 2  # inside its bucket, not at its start
    store.record([_failure(at)], now=at)
    assert _count(store, window, at) == 1
    leaves = bucket_start(window, at) + window.span_s
    assert _count(store, window, leaves - 1) == 1
    assert _count(store, window, leaves) == 0
    assert at + window.span_s - window.bucket_s <= leaves <= at + window.span_s


def test_the_minute_is_exact_to_the_second():
    store = MemoryFeatureStore()
    store.record([_failure(T0 + s) for s in range(0, 120, 7)], now=T0 + 120)
    for now in range(T0 + 119, T0 + 200):
        expected = sum(1 for s in range(0, 120, 7) if now - 60 < T0 + s <= now)
        assert _count(store, Window.MINUTE, now) == expected


events = st.lists(st.integers(min_value=0, max_value=3 * 86400), max_size=40)


@settings(max_examples=60, deadline=None)
@given(events=events, later=st.integers(min_value=0, max_value=2 * 86400))
def test_every_count_is_the_events_since_its_window_starts(events, later):
    """Against the definition, for events recorded as they happen, read at any later time;
    and expiring state at that time changes no read then or after."""
    store = MemoryFeatureStore()
    for at in sorted(events):
        store.record([_failure(T0 + at)], now=T0 + at)
    now = T0 + (max(events, default=0)) + later
    for window in Window:
        since = counted_since(window, now)
        assert _count(store, window, now) == sum(1 for at in events if since <= T0 + at <= now)
    before = store.read(_all_queries(), now=now)
    store.expire(now=now)
    assert store.read(_all_queries(), now=now) == before
    assert len(store.buckets) <= 60 + 60 + 24  # bounded: one key, one signal
    if later >= 86400:
        assert not store.buckets and not store.pairs


def _all_queries() -> list[Count | Distinct | LastSeen]:
    return [
        *(Count(MIA, FAIL, window) for window in Window),
        *(Distinct(NET, FAIL, KeyKind.ACCOUNT, window) for window in Window),
        LastSeen(MIA, FAIL),
    ]


def test_distinct_counts_remember_each_pair_to_the_second():
    store = MemoryFeatureStore()
    accounts = [Key(KeyKind.ACCOUNT, f"holder:{n}") for n in range(5)]
    for n, account in enumerate(accounts):  # one account a minute, the first one twice
        store.record(
            [_failure(T0 + 60 * n, account, NET, pairs=(Pair(NET, account),))], now=T0 + 60 * n
        )
    store.record([_failure(T0 + 300, NET, pairs=(Pair(NET, accounts[0]),))], now=T0 + 300)
    distinct = {w: Distinct(NET, FAIL, KeyKind.ACCOUNT, w) for w in Window}
    read = store.read(list(distinct.values()), now=T0 + 300)
    assert read["network.sign_in_failure.distinct_account.1m"] == 1  # holder:0 again, at 300
    assert read["network.sign_in_failure.distinct_account.1h"] == 5
    read = store.read([distinct[Window.MINUTE]], now=T0 + 359)
    assert read["network.sign_in_failure.distinct_account.1m"] == 1
    read = store.read([distinct[Window.MINUTE]], now=T0 + 360)
    assert read["network.sign_in_failure.distinct_account.1m"] == 0
    assert (
        store.read([distinct[Window.DAY]], now=T0 + 240 + 86399)[distinct[Window.DAY].feature] == 2
    )
    assert (
        store.read([Count(NET, FAIL, Window.HOUR)], now=T0 + 300)["network.sign_in_failure.1h"] == 6
    )


def test_last_seen_is_the_latest_time_within_a_day():
    store = MemoryFeatureStore()
    store.record([_failure(T0 + 10), _failure(T0 + 4000)], now=T0 + 4000)
    seen = LastSeen(MIA, FAIL)
    assert store.read([seen], now=T0 + 5000)["account.sign_in_failure.last_at"] == T0 + 4000
    assert store.read([seen], now=T0 + 3600 + 86399)[seen.feature] == T0 + 4000
    assert store.read([seen], now=T0 + 3600 + 86400)[seen.feature] is None
    assert store.read([LastSeen(NET, FAIL)], now=T0 + 5000)[LastSeen(NET, FAIL).feature] is None


def test_a_late_observation_counts_where_its_time_falls_and_a_future_one_counts_as_now():
    store = MemoryFeatureStore()
    now = T0 + 7200
    store.record([_failure(now - 120), _failure(now - 90_000), _failure(now + 500)], now=now)
    assert _count(store, Window.MINUTE, now) == 1  # the one from the future, at now
    assert _count(store, Window.HOUR, now) == 2
    assert _count(store, Window.DAY, now) == 2  # the one over a day old was never stored
    assert all(start <= now for (_, _, _, start) in store.buckets)


def test_one_observation_is_one_row_per_key_and_window_merged_and_sorted():
    device = Key(KeyKind.DEVICE, "7")
    rows = bucket_rows([_failure(T0 + 5, MIA, device), _failure(T0 + 6, MIA)], T0 + 6)
    assert rows == sorted(rows)
    assert len(rows) == 2 * 3 + 1  # MIA's two seconds are two minute buckets
    day = [row for row in rows if row.key == str(MIA) and row.span_s == 86400]
    assert [(row.events, row.last_at) for row in day] == [(2, T0 + 6)]


def test_features_are_named_unique_and_explained():
    read = Features([(Count(MIA, FAIL, Window.HOUR), 3), (LastSeen(MIA, FAIL), None)])
    assert dict(read) == {"account.sign_in_failure.1h": 3, "account.sign_in_failure.last_at": None}
    assert read.explained()[0] == {
        "feature": "account.sign_in_failure.1h",
        "key": "account:holder:1",
        "value": 3,
    }
    renamed = Features([(Count(NET, FAIL, Window.HOUR, name="from_network"), 9)])
    assert dict(read | renamed)["from_network"] == 9
    with pytest.raises(ValueError, match="same feature name"):
        Features(
            [
                (Count(MIA, FAIL, Window.HOUR), 3),
                (Count(NET, FAIL, Window.HOUR, name="account.sign_in_failure.1h"), 1),
            ]
        )


def test_keys_and_observations_are_checked():
    assert Key.parse("address:2001:db8::1") == Key(KeyKind.ADDRESS, "2001:db8::1")
    assert network_of("10.1.2.3") == "10.1.2.0/24"
    assert network_of("2001:db8::1") == "2001:db8::/64"
    assert network_of("testclient") is None
    with pytest.raises(ValueError, match="printable"):
        Key(KeyKind.ACCOUNT, "")
    with pytest.raises(ValueError, match="printable"):
        Key(KeyKind.ACCOUNT, "x" * 121)
    with pytest.raises(ValueError, match="distinct keys"):
        Observation(T0, FAIL, (MIA, MIA))
    with pytest.raises(ValueError, match="distinct keys"):
        Observation(T0, FAIL, tuple(Key(KeyKind.DEVICE, str(n)) for n in range(9)))


def test_seen_with_lists_the_latest_keys_a_distinct_count_counts():
    """The venues a holder was at in the last hour, latest first: what geovelocity reads."""
    store = MemoryFeatureStore()
    venues = [Key(KeyKind.VENUE, name) for name in ("north", "south", "library")]
    for minutes, venue in ((0, venues[0]), (20, venues[1]), (50, venues[2]), (55, venues[0])):
        at = T0 + 60 * minutes
        accepted = Observation(at, Signal.OFFLINE_ACCEPTANCE, (MIA,), (Pair(MIA, venue),))
        store.record([accepted], now=at)
    seen = store.seen_with(
        MIA, Signal.OFFLINE_ACCEPTANCE, KeyKind.VENUE, window=Window.HOUR, now=T0 + 3600, limit=2
    )
    assert seen == [(venues[0], T0 + 55 * 60), (venues[2], T0 + 50 * 60)]
    later = store.seen_with(
        MIA, Signal.OFFLINE_ACCEPTANCE, KeyKind.VENUE, window=Window.HOUR, now=T0 + 80 * 60, limit=9
    )
    assert later == [(venues[0], T0 + 55 * 60), (venues[2], T0 + 50 * 60)]  # south: 60 min ago
    with pytest.raises(ValueError, match="limit"):
        store.seen_with(MIA, FAIL, KeyKind.VENUE, window=Window.DAY, now=T0, limit=101)


def test_one_installation_trying_accounts_is_counted_per_distinct_account_and_window():
    """The accounts one wallet installation tried (`account_attempt`, paired installation ->
    account), by hand: the same account twice is one; the hour forgets an account last tried
    more than an hour ago, the day still counts it; another installation counts its own."""
    phone, other = Key(KeyKind.INSTALLATION, "a" * 24), Key(KeyKind.INSTALLATION, "b" * 24)
    store = MemoryFeatureStore()

    def tried(at: int, installation: Key, account: int) -> None:
        holder = Key(KeyKind.ACCOUNT, f"holder:{account}")
        pair = Pair(installation, holder)
        store.record([Observation(at, Signal.ACCOUNT_ATTEMPT, (installation,), (pair,))], now=at)

    def distinct(now: int, installation: Key = phone) -> tuple[int | None, ...]:
        queries = [
            Distinct(installation, Signal.ACCOUNT_ATTEMPT, KeyKind.ACCOUNT, window)
            for window in (Window.HOUR, Window.DAY)
        ]
        read = store.read(queries, now=now)
        assert list(read) == [
            "installation.account_attempt.distinct_account.1h",
            "installation.account_attempt.distinct_account.1d",
        ]
        return tuple(read.values())

    tried(T0, phone, 1)
    tried(T0 + 10, phone, 1)
    tried(T0 + 20, phone, 2)
    tried(T0 + 30, other, 3)
    assert distinct(T0 + 30) == (2, 2)
    assert distinct(T0 + 30, other) == (1, 1)
    tried(T0 + 3000, phone, 3)
    assert distinct(T0 + 3000) == (3, 3)
    assert distinct(T0 + 3620) == (1, 3)  # accounts 1 and 2 were last tried over an hour ago
    assert distinct(T0 + 86400 + 2999) == (0, 1)
    assert distinct(T0 + 86400 + 3000) == (0, 0)
    count = store.read([Count(phone, Signal.ACCOUNT_ATTEMPT, Window.HOUR)], now=T0 + 3000)
    assert count["installation.account_attempt.1h"] == 4


_TILLS = [Key(KeyKind.TERMINAL, f"till-{n}") for n in range(2)]
_HOLDERS = [Key(KeyKind.ACCOUNT, f"holder:{n}") for n in range(3)]


@st.composite
def _observations(draw: st.DrawFn) -> list[Observation]:
    """Observations as a journal batch and sign-ins make them: a few key sets and pairs, over
    and under the windows' edges, some withdrawn (-1)."""
    found = []
    for _ in range(draw(st.integers(0, 40))):
        holder, till = draw(st.sampled_from(_HOLDERS)), draw(st.sampled_from(_TILLS))
        keys = draw(st.sampled_from([(till,), (till, NET), (holder, till), ()]))
        pairs = draw(
            st.sampled_from([(), (Pair(holder, till),), (Pair(holder, till), Pair(holder, NET))])
        )
        at = T0 + draw(st.integers(-90_000, 400))
        signal = draw(st.sampled_from([FAIL, Signal.OFFLINE_ACCEPTANCE]))
        found.append(Observation(at, signal, keys, pairs, draw(st.sampled_from([1, 1, -1]))))
    return found


@settings(max_examples=200, deadline=None)
@given(_observations(), st.integers(0, 300))
def test_rows_are_each_observations_added_one_by_one(observations, later):
    """Grouped by keys and pairs first (`buckets`), the rows are those of each observation
    added to its every key and window on its own, at its own time (the definition)."""
    now = T0 + later
    buckets: dict[tuple[str, str, int, int], tuple[int, int]] = {}
    pairs: dict[tuple[str, str, str, str], int] = {}
    for seen in observations:
        at = min(seen.at, now)
        for window in Window:
            start = bucket_start(window, at)
            if now - window.span_s < start <= now:
                for key in seen.keys:
                    row = (str(key), seen.signal.value, window.span_s, start)
                    events, last = buckets.get(row, (0, at))
                    buckets[row] = (events + seen.events, max(last, at))
        if now - Window.DAY.span_s < at:
            for pair in seen.pairs:
                named = (
                    str(pair.subject),
                    seen.signal.value,
                    pair.other.kind.value,
                    str(pair.other),
                )
                pairs[named] = max(pairs.get(named, at), at)
    got = [
        (r.key, r.signal, r.span_s, r.start, r.events, r.last_at)
        for r in bucket_rows(observations, now)
    ]
    assert got == [(*row, *value) for row, value in sorted(buckets.items())]
    got_pairs = [
        (r.subject, r.signal, r.kind, r.other, r.last_at) for r in pair_rows(observations, now)
    ]
    assert got_pairs == [(*row, last) for row, last in sorted(pairs.items())]


def test_an_observation_moved_in_time_is_the_one_made_at_that_time():
    seen = _failure(T0, MIA, NET, pairs=(Pair(NET, MIA),))
    moved = seen.at_time(T0 + 90)
    assert moved == _failure(T0 + 90, MIA, NET, pairs=(Pair(NET, MIA),))
    assert hash(moved) == hash(_failure(T0 + 90, MIA, NET, pairs=(Pair(NET, MIA),)))
    assert seen.at == T0  # the one it came from is unchanged
