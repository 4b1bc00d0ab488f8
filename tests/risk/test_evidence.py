"""The evidence rules of §4.4, §4.5 and §5.2, as pure functions."""

from __future__ import annotations

from duopass import risk
from duopass.risk import Acceptance, AlertKind, Earlier, batch_evidence, duplicate_kind, evidence


def _acceptance(**changes) -> Acceptance:
    base = {
        "ctr": 3,
        "ts": 1_000,
        "past_uses": False,
        "mark": None,
        "revoked_in_bundle": False,
        "earlier": None,
        "free_funds_after": 0,
        "freshness_s": 60,
    }
    return Acceptance(**{**base, **changes})


def test_an_honest_acceptance_is_no_evidence():
    assert evidence(_acceptance()) == []


def test_each_rule_names_its_evidence_in_order():
    assert evidence(_acceptance(past_uses=True)) == [AlertKind.USES_EXCEEDED]
    assert evidence(_acceptance(mark=2)) == [AlertKind.ABOVE_MARK]
    assert evidence(_acceptance(mark=3)) == []
    assert evidence(_acceptance(ctr=None, mark=0)) == []
    assert evidence(_acceptance(revoked_in_bundle=True)) == [AlertKind.REVOKED_ACCEPTED]
    first = Earlier(ts=990, terminal_id="till-1", seq=4)
    assert evidence(_acceptance(earlier=first)) == [AlertKind.RELAY_SUSPECTED]
    clone = evidence(_acceptance(earlier=Earlier(ts=100, terminal_id="t", seq=1), past_uses=True))
    assert clone == [AlertKind.USES_EXCEEDED, AlertKind.CLONE]
    broke = evidence(_acceptance(earlier=first, free_funds_after=-1))
    assert broke == [AlertKind.RELAY_SUSPECTED, AlertKind.NEGATIVE_FUNDS]
    assert evidence(_acceptance(free_funds_after=-1)) == []  # only a duplicate's overdraw counts


def test_a_duplicate_within_freshness_looks_like_a_relay_and_beyond_it_like_a_clone():
    assert duplicate_kind(1_060, 1_000, 60) is AlertKind.RELAY_SUSPECTED
    assert duplicate_kind(940, 1_000, 60) is AlertKind.RELAY_SUSPECTED
    assert duplicate_kind(1_061, 1_000, 60) is AlertKind.CLONE


def test_a_batch_past_what_is_held_or_off_its_chain_is_a_gap():
    assert batch_evidence(acked_seq=10, first=11, chained=True) == []
    assert len(batch_evidence(acked_seq=10, first=13, chained=True)) == 1
    assert len(batch_evidence(acked_seq=10, first=13, chained=False)) == 2


def test_suspending_evidence_is_what_section_4_5_lists():
    assert {
        AlertKind.CLONE,
        AlertKind.USES_EXCEEDED,
        AlertKind.ABOVE_MARK,
        AlertKind.REVOKED_ACCEPTED,
        AlertKind.NEGATIVE_FUNDS,
    } == risk.SUSPENDING
