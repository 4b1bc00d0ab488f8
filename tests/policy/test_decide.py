"""Deciding: first match wins, the same inputs always give the same ruling, every rule of
the packaged policy is reachable, and a rule that fails at run time denies (never raises)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from duopass.policy import (
    DEFAULT_POLICY,
    ERROR_MARK,
    Factor,
    Inputs,
    InputsError,
    Outcome,
    bench_inputs,
    decide,
    load,
    sample_inputs,
)
from duopass.policy.guards import REQUEST_FIELDS
from duopass.policy.inputs import Auth, Place, Reissues, Risk, Time, Used, field_paths

POLICY = load(DEFAULT_POLICY.read_text())
TWO_MATCH = """version = "t.1"
[[rule]]
name = "first"
when = "used.entries == 0"
outcome = "review"
[[rule]]
name = "second"
when = "used.entries == 0"
outcome = "deny"
[[rule]]
name = "allow_default"
when = "true"
outcome = "allow"
"""


def test_first_match_wins():
    ruling = decide(load(TWO_MATCH), sample_inputs())
    assert (ruling.outcome, ruling.rule) == (Outcome.REVIEW, "first")


def test_the_same_inputs_give_the_same_ruling_as_object_or_document():
    inputs = bench_inputs()
    rulings = {decide(POLICY, inputs) for _ in range(20)}
    rulings.add(decide(POLICY, inputs.to_document()))
    rulings.add(decide(load(DEFAULT_POLICY.read_text()), inputs.to_document()))
    assert len(rulings) == 1


def _with(inputs: Inputs, **sections: object) -> Inputs:
    return dataclasses.replace(inputs, **sections)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "rule", "outcome"),
    [
        ({"time": Time(to_doors_s=-7200, to_end_s=0)}, "deny_after_event", Outcome.DENY),
        ({"used": Used(entries=1, allowed=1)}, "deny_fully_used", Outcome.DENY),
        ({"reissues": Reissues(ticket=3, holder_30d=3)}, "review_many_reissues", Outcome.REVIEW),
        ({"reissues": Reissues(ticket=0, holder_30d=6)}, "review_many_reissues", Outcome.REVIEW),
        ({"risk": Risk(score=70)}, "review_risk", Outcome.REVIEW),
        (
            {"auth": Auth(method="partner", recent_s=-1, totp=False, email=True)},
            "step_up_partner",
            Outcome.STEP_UP,
        ),
        (  # a partner's request for a used ticket is refused as the holder's own
            {
                "auth": Auth(method="partner", recent_s=-1, totp=False, email=True),
                "used": Used(entries=1, allowed=1),
            },
            "deny_fully_used",
            Outcome.DENY,
        ),
        (
            {"auth": Auth(method="device", recent_s=5, totp=True, email=True)},
            "step_up_device_signin",
            Outcome.STEP_UP,
        ),
        ({"used": Used(entries=1, allowed=2)}, "step_up_partly_used", Outcome.STEP_UP),
        (
            {
                "time": Time(to_doors_s=3600, to_end_s=20_000),
                "place": Place(network="outside", position_given=False, distance_m=-1),
            },
            "step_up_near_doors_off_site",
            Outcome.STEP_UP,
        ),
        ({"action": "transfer"}, "step_up_transfer", Outcome.STEP_UP),
        ({}, "allow_default", Outcome.ALLOW),
        (  # near doors, but on campus
            {"time": Time(to_doors_s=3600, to_end_s=20_000)},
            "allow_default",
            Outcome.ALLOW,
        ),
    ],
)
def test_every_rule_of_the_packaged_policy_decides_what_it_says(change, rule, outcome):
    ruling = decide(POLICY, _with(sample_inputs(), **change))
    assert (ruling.rule, ruling.outcome) == (rule, outcome)
    if outcome is Outcome.STEP_UP:
        assert ruling.factors == (Factor.TOTP, Factor.EMAIL_OTP, Factor.PASSKEY)
    else:
        assert ruling.factors == ()


def test_a_rule_failing_at_run_time_denies_with_its_name_marked():
    document = sample_inputs().to_document()
    document["used"] = {"entries": "zero", "allowed": 1}  # past every check of the document
    ruling = decide(POLICY, document)
    assert ruling.outcome is Outcome.DENY
    assert ruling.rule == "deny_fully_used" + ERROR_MARK and ruling.error
    missing = sample_inputs().to_document()
    del missing["time"]
    assert decide(POLICY, missing).outcome is Outcome.DENY


def test_the_document_is_typed_and_reads_back():
    inputs = sample_inputs("lost")
    document = inputs.to_document()
    assert document["schema"] == 1 and document["device"]["is_new"] is True
    assert Inputs.from_document(document) == inputs
    for broken in (
        {**document, "extra": 1},
        {**document, "schema": 2},
        {**document, "action": "steal"},
        {**document, "used": {"entries": True, "allowed": 1}},  # a bool is no int
        {**document, "device": {**document["device"], "is_new": 1}},  # nor an int a bool
        {**document, "place": {**document["place"], "network": "moon"}},
        {**document, "auth": {"method": "password"}},
    ):
        with pytest.raises(InputsError):
            Inputs.from_document(broken)


def test_docs_describe_every_field_of_the_document():
    docs = (Path(__file__).parents[2] / "docs" / "policy.md").read_text()
    reissue, risk = docs.split("## The risk half", 1)
    row = re.compile(r"^\| `([a-z_.0-9]+)` \| (?:int|bool|string|map|list)[^|]*\|", re.M)
    documented = set(row.findall(reissue))
    sections = {path.split(".")[0] for path in field_paths() if "." in path}
    assert documented == field_paths() - sections
    fields = {"point", "features", "score", "signals", *(f"request.{f}" for f in REQUEST_FIELDS)}
    assert set(row.findall(risk)) == fields  # the risk document's, in its own table
