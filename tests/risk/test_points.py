"""The risk engine's points (issue 15, "Rules and score"): which features each point reads for a
request's keys, all of them in the risk document; and a judgement on counts from the reference
store: credential stuffing held, the same counts behind an allowlisted campus network not."""

from __future__ import annotations

from duopass.policy import DEFAULT_POLICY, load
from duopass.policy.guards import FEATURE_NAMES, Action
from duopass.risk import Key, KeyKind, MemoryFeatureStore, Observation, Pair, Signal
from duopass.risk.points import Point, Subject, judge, judge_all, queries

T0 = 1_800_000_000
POLICY = load(DEFAULT_POLICY.read_text())
ACCOUNT = Key(KeyKind.ACCOUNT, "holder:7")
FULL = Subject(ACCOUNT, Key(KeyKind.DEVICE, "3"), "10.1.2.3")


def test_every_point_reads_features_of_the_document_only_for_keys_it_has():
    for point in Point:
        names = [query.feature for query in queries(point, FULL)]
        assert set(names) <= set(FEATURE_NAMES), point
        assert len(set(names)) == len(names)
    assert [q.feature for q in queries(Point.SIGN_IN, FULL)] == [
        "account.sign_in_failure.1m",
        "account.sign_in_failure.1h",
        "account.sign_in_failure.1d",
        "address.sign_in_failure.1m",
        "network.sign_in_failure.1h",
        "network.sign_in_failure.distinct_account.1h",
        "network.sign_in.1h",
    ]
    assert [q.feature for q in queries(Point.SIGN_IN, Subject(ACCOUNT))] == [
        "account.sign_in_failure.1m",
        "account.sign_in_failure.1h",
        "account.sign_in_failure.1d",
    ]
    assert FULL.keys() == [
        "account:holder:7",
        "device:3",
        "network:10.1.2.0/24",
        "address:10.1.2.3",
    ]


def test_stuffing_is_held_unless_the_network_is_allowlisted():
    store = MemoryFeatureStore()
    accounts = [Key(KeyKind.ACCOUNT, f"login:{n:024x}") for n in range(25)]
    network = Key(KeyKind.NETWORK, "10.1.2.0/24")
    failures = [
        Observation(T0 + n, Signal.SIGN_IN_FAILURE, (account, network), (Pair(network, account),))
        for n, account in enumerate(accounts)
    ]
    store.record(failures, now=T0 + 30)
    subject = Subject(accounts[0], None, "10.1.2.99")
    features = store.read(queries(Point.SIGN_IN, subject), now=T0 + 60)
    held = judge(POLICY, Point.SIGN_IN, features, {"allowlisted": False})
    assert (held.assessment.guard, held.assessment.action) == (
        "credential_stuffing",
        Action.RATE_LIMIT,
    )
    assert held.version == POLICY.version and held.sha256 == POLICY.sha256
    explained = {row["feature"]: (row["key"], row["value"]) for row in held.explained()}
    assert explained["network.sign_in_failure.distinct_account.1h"] == ("network:10.1.2.0/24", 25)
    campus = judge(POLICY, Point.SIGN_IN, features, {"allowlisted": True})
    assert (campus.assessment.action, campus.assessment.score) == (Action.ALLOW, 0)
    later = store.read(queries(Point.SIGN_IN, subject), now=T0 + 3700)
    assert judge(POLICY, Point.SIGN_IN, later).assessment.action is Action.ALLOW


def test_judging_a_batchs_holders_together_decides_each_as_alone():
    """`judge_all` scores features of the same values once: each holder still gets the decision
    `judge` gives it alone, with its own features (a cloned key at three tills is held, the
    holders seen at one till are not)."""
    store = MemoryFeatureStore()
    tills = [Key(KeyKind.TERMINAL, f"till-{n}") for n in range(3)]
    holders = [Key(KeyKind.ACCOUNT, f"holder:{n}") for n in range(6)]
    seen = [
        Observation(T0 + n, Signal.OFFLINE_ACCEPTANCE, (till,), (Pair(holder, till),))
        for n, (holder, till) in enumerate(
            [(holders[0], till) for till in tills] + [(holder, tills[0]) for holder in holders]
        )
    ]
    store.record(seen, now=T0 + 60)
    read = [
        store.read(queries(Point.JOURNAL, Subject(holder, terminal=tills[0])), now=T0 + 60)
        for holder in holders
    ]
    together = judge_all(POLICY, Point.JOURNAL, read)
    alone = [judge(POLICY, Point.JOURNAL, features) for features in read]
    assert together == alone
    assert together[0].assessment != together[1].assessment  # the clone is judged apart
    assert len({judged.assessment for judged in together[1:]}) == 1
    assert [judged.features for judged in together] == read
