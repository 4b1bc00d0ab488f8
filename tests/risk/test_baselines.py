"""The per-key baselines of journal entries and the rules that flag an entry far off them, as
pure functions: bounded, mergeable, deterministic; each rule with its warm-up."""

from __future__ import annotations

import copy
import json
import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from duopass.risk.anomaly import RULES, Holds, Rule, judge, score
from duopass.risk.baselines import FADE_EVERY, HOURS_CAP, VENUES_KEPT, Baseline, Use
from duopass.risk.batch_judge import BatchJudge

VENUES = [f"venue-{n}" for n in range(12)]

uses = st.builds(
    Use,
    at=st.just(0),
    day=st.integers(0, 3),
    hour=st.integers(0, 23),
    venue=st.sampled_from(VENUES),
    amount=st.one_of(st.none(), st.integers(1, 100_000)),
)


def _fold(items: list[Use]) -> Baseline:
    baseline = Baseline()
    for use in items:
        baseline.observe(use)
    return baseline


def _meal(amount: int | None = 200, *, day: int = 0, hour: int = 12, venue: str = "north") -> Use:
    return Use(day * 86400 + hour * 3600, day, hour, venue, amount)


@settings(max_examples=60, deadline=None)
@given(st.lists(uses, max_size=60), st.lists(uses, max_size=60))
def test_a_merge_is_the_baseline_of_both_parts(first, second):
    first = sorted(first, key=lambda u: u.day)
    second = [u for u in sorted(second, key=lambda u: u.day) if not first or u.day > first[-1].day]
    whole, merged = _fold(first + second), _fold(first).merge(_fold(second))
    assert (merged.n, merged.amounts, merged.hours) == (whole.n, whole.amounts, whole.hours)
    assert math.isclose(merged.mean, whole.mean, abs_tol=1e-9)
    assert math.isclose(merged.var, whole.var, rel_tol=1e-6, abs_tol=1e-9)
    assert merged.days + bool(merged.today) == whole.days + bool(whole.today)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(VENUES), max_size=200), st.lists(st.sampled_from(VENUES)))
def test_the_venues_kept_are_the_frequent_ones_folded_or_merged(first, second):
    """Misra-Gries: at most VENUES_KEPT counters, each low by at most n / (VENUES_KEPT + 1),
    so any venue of more than that share is kept."""
    places = first + second
    whole = _fold([_meal(venue=v) for v in places])
    merged = _fold([_meal(venue=v) for v in first]).merge(_fold([_meal(venue=v) for v in second]))
    for summary in (whole.venues, merged.venues):
        assert len(summary) <= VENUES_KEPT
        for venue in VENUES:
            true = places.count(venue)
            assert true - len(places) / (VENUES_KEPT + 1) <= summary.get(venue, 0) <= true


@settings(max_examples=60, deadline=None)
@given(st.lists(uses, max_size=80), st.lists(uses, max_size=80))
def test_a_fold_is_each_entry_observed(before, items):
    one_by_one, folded = _fold(before), _fold(before)
    for use in items:
        one_by_one.observe(use)
    folded.fold(items)
    assert folded == one_by_one


@settings(max_examples=30, deadline=None)
@given(st.lists(uses, max_size=80))
def test_the_state_is_stored_and_read_back_whole(items):
    baseline = _fold(items)
    again = Baseline.restore(json.loads(json.dumps(baseline.state())))
    assert again == baseline
    assert _fold(items) == baseline  # the same entries give the same state


@settings(max_examples=60, deadline=None)
@given(st.lists(uses, max_size=80), uses, st.booleans())
def test_the_hot_path_flags_as_the_full_score_does(items, use, terminal):
    holds = Holds.TERMINAL if terminal else Holds.HOLDER
    context = _fold(items[::2])
    baseline = _fold(items)
    full = score(baseline, use, holds, context=context)
    lean = score(baseline, use, holds, context=context, full=False)
    assert lean.flags == full.flags and set(full.flags) <= set(RULES[holds])


@settings(max_examples=100, deadline=None)
@given(st.lists(uses, max_size=80), uses, st.booleans())
def test_a_batch_of_one_is_judged_as_the_score_judges_it(items, use, terminal):
    holds = Holds.TERMINAL if terminal else Holds.HOLDER
    context, baseline = _fold(items[::2]), _fold(items)
    sequential = copy.deepcopy(baseline)
    found = judge(sequential, use, holds, context=context)
    batch = BatchJudge(baseline, holds, context=context)
    assert batch.flags(use) == found.flags
    batch.finish()
    assert baseline == sequential


def test_a_batch_is_judged_against_the_baseline_it_found_then_folded_in():
    habit = _habit(40)
    batch = BatchJudge(habit, Holds.HOLDER)
    flagged = [batch.flags(_meal(amount, day=30)) for amount in (200, 2_900, 2_900, 210)]
    assert flagged == [(), (Rule.AMOUNT,), (Rule.AMOUNT,), ()]  # the first did not teach it
    assert habit.n == 40
    batch.finish()
    assert habit.n == 44 and habit.today == 4


def test_a_baseline_stays_bounded_however_long_it_runs():
    rng = random.Random(3)
    baseline = Baseline()
    for n in range(5_000):
        baseline.observe(_meal(rng.randint(100, 900), day=n // 3, hour=rng.randrange(24)))
    assert sum(baseline.hours) <= HOURS_CAP + FADE_EVERY and len(baseline.venues) <= 1
    assert len(json.dumps(baseline.state())) < 1_000


def _habit(meals: int = 40, *, seed: int = 1) -> Baseline:
    """A holder who lunches at the north canteen for 1.50 to 2.60, two meals a day."""
    rng = random.Random(seed)
    baseline = Baseline()
    for n in range(meals):
        judge(
            baseline,
            _meal(rng.randint(150, 260), day=n // 2, hour=rng.choice((12, 18))),
            Holds.HOLDER,
        )
    return baseline


@settings(max_examples=100, deadline=None)
@given(amount=st.integers(150, 260), hour=st.sampled_from((11, 12, 13, 17, 18, 19)))
def test_honest_variation_is_not_flagged(amount, hour):
    found = score(_habit(), _meal(amount, day=20, hour=hour), Holds.HOLDER)
    assert found.flags == ()


def test_an_amount_far_off_is_flagged_once_warm():
    assert score(_habit(), _meal(2_900, day=20), Holds.HOLDER).flags == (Rule.AMOUNT,)
    assert score(_habit(), _meal(500, day=20), Holds.HOLDER).flags == ()
    assert score(_habit(19), _meal(2_900, day=10), Holds.HOLDER).flags == ()  # warming up
    assert score(_habit(), _meal(1, day=20), Holds.HOLDER).amount_z == 0  # less is no one's loss


def test_a_new_venue_at_a_strange_hour_is_flagged_where_either_alone_is_not():
    habit = _habit(200)
    assert score(habit, _meal(day=100, hour=3, venue="night-shop"), Holds.HOLDER).flagged
    assert not score(habit, _meal(day=100, hour=12, venue="night-shop"), Holds.HOLDER).flagged
    # the night shop's own hours make a holder's first late snack there less strange
    shop = Baseline()
    for n in range(300):
        shop.observe(_meal(800, day=n // 10, hour=20 + n % 3, venue="night-shop"))
    snack = score(habit, _meal(800, day=100, hour=21, venue="night-shop"), Holds.HOLDER)
    with_shop = score(
        habit, _meal(800, day=100, hour=21, venue="night-shop"), Holds.HOLDER, context=shop
    )
    at_three = score(
        habit, _meal(800, day=100, hour=3, venue="night-shop"), Holds.HOLDER, context=shop
    )
    assert with_shop.hour_bits is not None and snack.hour_bits is not None
    assert at_three.hour_bits is not None
    assert with_shop.hour_bits < snack.hour_bits < at_three.hour_bits
    assert Rule.HOUR in at_three.flags and Rule.HOUR not in with_shop.flags


def test_a_burst_is_flagged_once_when_the_day_crosses_its_limit():
    habit = _habit(40)
    flagged = [judge(habit, _meal(day=30), Holds.HOLDER).flags for _ in range(15)]
    bursts = [n for n, flags in enumerate(flagged) if Rule.BURST in flags]
    assert bursts == [6]  # two a day, at most one more a day's spread: the seventh crosses
    young = _habit(8)  # four days are too few to know a day
    assert not any(Rule.BURST in judge(young, _meal(day=30), Holds.HOLDER).flags for _ in range(15))


def test_a_till_whose_amounts_drift_up_is_flagged_once():
    rng = random.Random(5)
    till = Baseline()
    for n in range(300):
        judge(till, _meal(rng.randint(150, 900), day=n // 50), Holds.TERMINAL)
    found = [
        judge(till, _meal(round(rng.randint(150, 900) * 1.8), day=7), Holds.TERMINAL).flags
        for _ in range(100)
    ]
    assert sum(Rule.DRIFT in flags for flags in found) == 1
