"""The check-in rules of a list (duopass.tickets.checkin), as pure functions."""

from __future__ import annotations

import pytest

from duopass.tickets.checkin import (
    ListRules,
    Past,
    Refusal,
    decide,
    entries_used,
    inside,
)

DOOR = ListRules(list_id=1, ticket_types=None, allow_reentry=False, entry_limit=None)
REENTRY = ListRules(list_id=2, ticket_types=None, allow_reentry=True, entry_limit=None)


def _decide(rules=DOOR, *, history=(), type="entry", entries=1, ticket_type=7, cancelled=False):
    return decide(
        rules,
        ticket_type=ticket_type,
        cancelled=cancelled,
        entries_allowed=entries,
        history=list(history),
        type=type,
    )


def test_a_first_entry_uses_one_entry_and_a_second_is_already_used():
    first = _decide()
    assert first.ok and first.counted
    again = _decide(history=[Past(1, "entry", True)])
    assert (again.refusal, again.counted) == (Refusal.ALREADY_USED, False)
    assert again.refusal == "ALREADY_USED"  # the §3 code, as a string


def test_a_ticket_of_two_entries_enters_twice_without_leaving():
    assert _decide(history=[Past(1, "entry", True)], entries=2).ok
    assert not _decide(history=[Past(1, "entry", True)] * 2, entries=2).ok


def test_entries_count_across_lists():
    other = [Past(9, "entry", True)]
    assert _decide(history=other).refusal is Refusal.ALREADY_USED
    assert _decide(history=other, entries=2).ok


def test_reentry_after_an_exit_is_free_only_where_the_list_allows_it():
    history = [Past(2, "entry", True), Past(2, "exit", False)]
    back = _decide(REENTRY, history=history)
    assert back.ok and not back.counted
    history = [Past(1, "entry", True), Past(1, "exit", False)]
    assert _decide(history=history).refusal is Refusal.RULES


def test_an_exit_needs_the_ticket_inside_on_the_list():
    assert _decide(type="exit").refusal is Refusal.RULES
    out = _decide(type="exit", history=[Past(1, "entry", True)])
    assert out.ok and not out.counted
    # inside on another list is not inside on this one
    assert _decide(type="exit", history=[Past(9, "entry", True)]).refusal is Refusal.RULES
    twice = [Past(1, "entry", True), Past(1, "exit", False)]
    assert _decide(type="exit", history=twice).refusal is Refusal.RULES


def test_a_list_admits_its_ticket_types_only():
    vip = ListRules(3, frozenset({5}), allow_reentry=False, entry_limit=None)
    assert _decide(vip, ticket_type=7).refusal is Refusal.PRODUCT
    assert _decide(vip, ticket_type=5).ok


def test_a_list_limit_caps_entries_on_the_list_only():
    limited = ListRules(4, None, allow_reentry=False, entry_limit=1)
    assert _decide(limited, entries=5).ok
    used_here = [Past(4, "entry", True)]
    assert _decide(limited, history=used_here, entries=5).refusal is Refusal.ALREADY_USED
    assert _decide(limited, history=[Past(9, "entry", True)], entries=5).ok


def test_a_cancelled_ticket_is_refused_first():
    vip = ListRules(3, frozenset({5}), allow_reentry=False, entry_limit=None)
    assert _decide(vip, cancelled=True).refusal is Refusal.CANCELED
    assert _decide(type="exit", cancelled=True).refusal == "canceled"


def test_counting_and_inside():
    history = [
        Past(2, "entry", True),
        Past(2, "exit", False),
        Past(2, "entry", False),
        Past(9, "entry", True),
    ]
    assert entries_used(history) == 2 and entries_used(history, 2) == 1
    assert inside(history, 2) and inside(history, 9) and not inside(history, 1)


def test_only_entries_and_exits():
    with pytest.raises(ValueError, match="entry or an exit"):
        _decide(type="sideways")
