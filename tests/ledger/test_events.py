"""The ledger's event catalogue: every type's body checked on append, encoded once."""

from __future__ import annotations

import pytest

from duopass.ledger import LedgerError, LedgerReason
from duopass.ledger.events import CATALOGUE, EventType, event
from duopass.ledger.leaf import parse_leaf


def test_every_event_type_has_its_fields():
    assert set(CATALOGUE) == set(EventType)


def test_an_event_round_trips_through_its_leaf():
    body = {"holder": b"\x01" * 32, "amount": 500, "transaction": 7}
    leaf = parse_leaf(event(EventType.TOPUP, 1_790_000_000, "demo-univ", body))
    assert (leaf.type, leaf.time, leaf.iss, leaf.body) == (
        "topup",
        1_790_000_000,
        "demo-univ",
        body,
    )


@pytest.mark.parametrize(
    "body",
    [
        {"holder": b"", "amount": 1},  # a required field missing
        {"holder": b"", "amount": 1, "transaction": 2, "student_number": "2024001"},  # unknown
    ],
)
def test_a_body_off_the_catalogue_is_refused(body):
    with pytest.raises(LedgerError) as refused:
        event(EventType.TOPUP, 0, "demo-univ", body)
    assert refused.value.reason is LedgerReason.MALFORMED
