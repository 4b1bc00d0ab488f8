"""The risk half of a policy file (issue 15, "Rules and score"): `[[signal]]` and `[[guard]]`
tables load with the same rigour as rules (refusals at the file's line and column, names checked
against the risk document, samples run, limits), the SHA-256 pins the whole file, and a decision
scores the signals that hold and lets the first guard of the point act."""

from __future__ import annotations

import hashlib

import pytest

from duopass.policy import DEFAULT_POLICY, PolicyError, load
from duopass.policy.guards import FEATURE_NAMES, POINTS, Action, assess, risk_document

HEAD = 'version = "t.1"\n[[rule]]\nname = "allow_default"\nwhen = "true"\noutcome = "allow"\n'
STUFFING = 'features["network.sign_in_failure.distinct_account.1h"]'


def refused(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        load(text)
    return caught.value


def at(text: str, line: int, column: int) -> str:
    return text.splitlines()[line - 1][column - 1 :]


def test_the_packaged_policy_has_signals_and_guards_and_one_pin():
    text = DEFAULT_POLICY.read_text()
    policy = load(text)
    assert policy.sha256 == hashlib.sha256(text.encode()).digest()  # the risk half included
    assert [g.name for g in policy.guards] == [
        "credential_stuffing",
        "account_under_attack",
        "stuffing_suspected",
        "phone_on_many_accounts",
        "phone_enrolling_many_accounts",
        "cloned_key_at_tills",
        "impossible_travel",
        "terminal_misreporting",
        "partner_rate_limit",
    ]
    assert {w.name for w in policy.weights} >= {"network_stuffing", "reissue_many_devices"}
    described = policy.describe()
    assert described["guards"][0] == {
        "name": "credential_stuffing",
        "points": ["sign_in"],
        "when": 'signals.exists(s, s == "network_stuffing")',
        "action": "rate_limit",
        "factors": [],
        "retry_after_s": 900,
    }


def test_an_age_not_known_is_minus_one_and_the_young_signals_read_only_known_ones():
    """`device.age_s` and `account.age_s` absent or None read -1 (never 0, "this second"): the
    packaged young-device and young-account signals hold for a known young age at their point
    only."""
    policy = load(DEFAULT_POLICY.read_text())
    unknown = risk_document("reissue", {"device.age_s": None}, {})["features"]
    assert (unknown["device.age_s"], unknown["account.age_s"]) == (-1, -1)

    def signals(point: str, **ages: int | None) -> tuple[str, ...]:
        features = {f"{name}.age_s": age for name, age in ages.items()}
        return assess(policy, risk_document(point, features, {})).signals

    assert signals("reissue", device=0) == ("young_device_reissue",)
    assert signals("reissue", device=3599) == ("young_device_reissue",)
    assert signals("reissue", device=3600) == ()
    assert signals("reissue", device=None) == ()
    assert signals("wallet_sync", device=10) == ()  # read there, no signal of that point
    assert signals("refund", account=59) == ("young_account_refund",)
    assert signals("refund", account=None, device=5) == ()
    assert signals("top_up", account=59) == ()


def test_a_score_sums_the_weights_that_hold_and_the_first_guard_of_the_point_acts():
    text = HEAD + (
        f"[[signal]]\nname = \"stuffing\"\nwhen = '{STUFFING} >= 5'\nweight = 70\n"
        '[[signal]]\nname = "big"\nwhen = "request.amount > 1000"\nweight = 60\n'
        '[[guard]]\nname = "hold"\npoints = ["top_up"]\nwhen = "score >= 100"\naction = "review"\n'
        '[[guard]]\nname = "slow"\npoints = ["sign_in", "top_up"]\nwhen = "score >= 60"\n'
        'action = "rate_limit"\nretry_after_s = 60\n'
    )
    policy = load(text)
    quiet = assess(policy, risk_document("sign_in", {}, {}))
    assert (quiet.score, quiet.signals, quiet.guard, quiet.action) == (0, (), None, Action.ALLOW)
    features = {"network.sign_in_failure.distinct_account.1h": 5}
    both = assess(policy, risk_document("top_up", features, {"amount": 5000}))
    assert (both.score, both.signals) == (100, ("stuffing", "big"))  # 130, at most 100
    assert (both.guard, both.action) == ("hold", Action.REVIEW)
    signing_in = assess(policy, risk_document("sign_in", features, {}))
    assert (signing_in.guard, signing_in.action, signing_in.retry_after_s) == (
        "slow",
        Action.RATE_LIMIT,
        60,
    )
    elsewhere = assess(policy, risk_document("refund", features, {"amount": 5000}))
    assert (elsewhere.score, elsewhere.action) == (100, Action.ALLOW)  # no guard of refunds


@pytest.mark.parametrize(
    ("table", "where", "why"),
    [
        (
            '[[signal]]\nname = "s"\nwhen = \'features["account.nope.1h"] > 1\'\nweight = 5\n',
            "'features",
            "no feature 'account.nope.1h'",
        ),
        ('[[signal]]\nname = "s"\nwhen = "request.amont > 1"\nweight = 5\n', "amont", "no field"),
        ('[[signal]]\nname = "s"\nwhen = "device.is_new"\nweight = 5\n', "device", "no input"),
        ('[[signal]]\nname = "s"\nwhen = "score > 1"\nweight = 101\n', "101", "weight"),
        ('[[signal]]\nname = "s"\nwhen = "request.amount"\nweight = 5\n', '"request', "bool"),
        (
            '[[guard]]\nname = "g"\npoints = ["gate"]\nwhen = "true"\naction = "deny"\n',
            '["gate"]',
            "points",
        ),
        (
            '[[guard]]\nname = "g"\npoints = ["reissue"]\nwhen = "true"\naction = "deny"\n',
            '["reissue"]',
            "[[rule]]s",
        ),
        (
            '[[guard]]\nname = "g"\npoints = ["sign_in"]\nwhen = "true"\naction = "rate_limit"\n',
            '"rate_limit"',
            "retry_after_s",
        ),
        (
            '[[guard]]\nname = "g"\npoints = ["sign_in"]\nwhen = "true"\naction = "step_up"\n',
            '"step_up"',
            "factors",
        ),
        (
            '[[guard]]\nname = "g"\npoints = ["sign_in"]\nwhen = "true"\naction = "ban"\n',
            '"ban"',
            "action",
        ),
        (
            '[[guard]]\nname = "g"\npoints = ["sign_in"]\nwhen = "true"\naction = "deny"\n'
            "colour = 1\n",
            "colour",
            "unknown key",
        ),
    ],
)
def test_a_bad_signal_or_guard_is_refused_where_it_is_wrong(table, where, why):
    text = HEAD + table
    error = refused(text)
    assert why in error.message
    assert at(text, error.line, error.column).startswith(where), (error, where)


def test_a_second_guard_of_one_name_and_too_many_are_refused():
    guard = '[[guard]]\nname = "g"\npoints = ["sign_in"]\nwhen = "true"\naction = "deny"\n'
    assert "second guard" in refused(HEAD + guard + guard).message
    many = "".join(f'[[signal]]\nname = "s{n}"\nwhen = "true"\nweight = 1\n' for n in range(101))
    assert "at most 100" in refused(HEAD + many).message


def test_the_risk_document_is_every_feature_and_checked():
    document = risk_document("sign_in", {"account.sign_in_failure.1h": 3}, {"staff": True})
    assert set(document["features"]) == set(FEATURE_NAMES)
    assert document["features"]["account.sign_in_failure.1h"] == 3
    assert document["features"]["network.sign_in_failure.1h"] == 0
    assert document["request"] == {
        "amount": 0,
        "staff": True,
        "allowlisted": False,
        "device": False,
        "calls_per_minute": 0,
    }
    for wrong in (
        lambda: risk_document("gate", {}, {}),
        lambda: risk_document("sign_in", {"x.y.1h": 1}, {}),
        lambda: risk_document("sign_in", {}, {"amount": "5"}),
    ):
        with pytest.raises(ValueError, match=r"point|feature|request"):
            wrong()
    assert "reissue" in POINTS and "journal" in POINTS


def test_only_the_features_a_policy_names_are_handed_to_cel():
    named = load(HEAD + f"[[signal]]\nname = \"s\"\nwhen = '{STUFFING} >= 5'\nweight = 9\n")
    assert named.feature_reads == frozenset({"network.sign_in_failure.distinct_account.1h"})
    features = {"network.sign_in_failure.distinct_account.1h": 5}
    assert assess(named, risk_document("sign_in", features, {})).score == 9
    anyhow = load(HEAD + '[[signal]]\nname = "s"\nwhen = "size(features) > 3"\nweight = 9\n')
    assert anyhow.feature_reads is None  # read otherwise: every feature goes
    assert assess(anyhow, risk_document("sign_in", {}, {})).score == 9
