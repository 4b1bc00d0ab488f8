"""The money rules of PROTOCOL §4 and §6, as pure functions."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from duopass.server.domain import (
    HoldTerms,
    amend,
    free_funds,
    hold_of,
    holds,
    lost_split,
    payable,
    refresh_release,
    size,
)

LIVE = HoldTerms(offline=True, uses=10, txmax=3_000, release_mark=None, holds_released=False)


def test_a_counter_holds_while_within_uses_and_not_released():
    assert [holds(LIVE, c) for c in (-1, 0, 9, 10)] == [False, True, True, False]
    refreshed = HoldTerms(True, 10, 3_000, release_mark=4, holds_released=False)
    assert [holds(refreshed, c) for c in (4, 5)] == [True, False]
    swept = HoldTerms(True, 10, 3_000, release_mark=None, holds_released=True)
    online_only = HoldTerms(False, 1, 1, release_mark=None, holds_released=False)
    assert not holds(swept, 0) and not holds(online_only, 0)
    assert hold_of(LIVE, 3) == 3_000 and hold_of(refreshed, 7) == 0


def test_free_funds_and_what_an_online_payment_may_take():
    free = free_funds(balance=10_000, overdraft=500, held=9_000)
    assert free == 1_500
    assert payable(4_500, hold=3_000, free=free)
    assert not payable(4_501, hold=3_000, free=free)


def test_a_credential_is_sized_to_the_free_funds():
    assert size(100_000, uses_max=10, txmax_max=3_000, suspended=False) == (10, 3_000, True)
    assert size(7_000, uses_max=10, txmax_max=3_000, suspended=False) == (2, 3_000, True)
    assert size(500, uses_max=10, txmax_max=3_000, suspended=False) == (1, 500, True)
    assert size(0, uses_max=10, txmax_max=3_000, suspended=False) == (1, 1, False)
    # §4.5: suspended offline use is the online-only form, whatever the funds
    assert size(100_000, uses_max=10, txmax_max=3_000, suspended=True) == (1, 1, False)


def test_a_refresh_releases_above_the_mark_within_the_overdraft():
    everything = refresh_release(LIVE, mark=2, seen=(), room=10**9)
    assert everything == (2, 2, 7 * 3_000)
    capped = refresh_release(LIVE, mark=2, seen=(), room=2 * 3_000 + 100)
    assert capped == (2, 7, 2 * 3_000)  # counters 3-7 stay held, 8 and 9 go
    nothing = refresh_release(LIVE, mark=2, seen=(), room=2_999)
    assert nothing.released == 0 and nothing.release_mark == 9
    no_mark = refresh_release(LIVE, mark=None, seen=(), room=10**9)
    assert no_mark == (9, 9, 0)


def test_seen_counters_above_the_mark_never_stretch_a_release_past_the_overdraft():
    """Counters 3 and 4 were already accepted (a lying or cloned wallet's mark is 2): only
    unseen holds count, so the overdraft's two holds are all that is released."""
    release = refresh_release(LIVE, mark=2, seen={3, 4}, room=2 * 3_000)
    assert release.released == 2 * 3_000
    assert release.release_mark == 7


@given(
    uses=st.integers(1, 30),
    txmax=st.integers(1, 5_000),
    mark=st.one_of(st.none(), st.integers(-3, 40)),
    seen=st.sets(st.integers(0, 35)),
    room=st.integers(-5_000, 200_000),
)
def test_a_refresh_release_is_exactly_the_unseen_holds_above_its_release_mark(
    uses, txmax, mark, seen, room
):
    terms = HoldTerms(True, uses, txmax, release_mark=None, holds_released=False)
    release = refresh_release(terms, mark=mark, seen=seen, room=room)
    assert release.released <= max(0, room)
    assert -1 <= release.wallet_mark <= release.release_mark <= uses - 1
    above = [c for c in range(release.release_mark + 1, uses) if c not in seen]
    assert release.released == len(above) * txmax
    between = [c for c in range(release.wallet_mark + 1, release.release_mark + 1) if c not in seen]
    fit = max(0, room) // txmax
    assert len(above) == min(len(above) + len(between), fit)  # as many as fit, the highest


def test_an_amended_amount_is_capped_by_what_was_approved_or_txmax():
    assert amend(approved=1_000, journalled=1_200, txmax=3_000) == (1_200, 0)
    assert amend(approved=1_000, journalled=800, txmax=3_000) == (800, 0)
    assert amend(approved=1_000, journalled=5_000, txmax=3_000) == (3_000, 2_000)
    assert amend(approved=4_000, journalled=5_000, txmax=3_000) == (4_000, 1_000)


def test_a_lost_credential_costs_the_holder_at_most_its_hold():
    assert lost_split(2_500, hold=3_000, after_loss_report=True) == (2_500, 0)
    assert lost_split(2_500, hold=0, after_loss_report=True) == (0, 2_500)
    assert lost_split(2_500, hold=0, after_loss_report=False) == (2_500, 0)
