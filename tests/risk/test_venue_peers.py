"""A till compared with its venue's other tills (`duopass.risk.venue_peers`): honest tills
charging one menu are seldom flagged, a till journalling its prices inflated is flagged once, with
the figures a reviewer reads; the evidence builds up over batches, a dear payment among the peers
moves the reference by one place only, ties count against the till, entries clipped at the
credential's cap flag on their own, and nothing is judged before both sides have enough entries."""

from __future__ import annotations

import math
import random

from duopass.risk.venue_peers import PEERS, PER_TILL, TILLS_KEPT, PeerLimits, VenuePeers, _Window

CAP = 3_000


def _lunch(rng: random.Random) -> int:
    return rng.randint(80, 250) * 10


def _service(
    rng: random.Random, rogue_factor: float | None, *, batch: int = 1
) -> tuple[VenuePeers, list[str]]:
    """A lunch service at six honest tills (and a rogue one journalling its prices times
    `rogue_factor`, at most `CAP`): each till uploads every `batch` entries and is judged then;
    the tills flagged."""
    venue, flagged = VenuePeers(), []
    tills = [f"till-{n}" for n in range(6)] + (["rogue"] if rogue_factor else [])
    waiting = dict.fromkeys(tills, 0)
    for n in range(120):
        till = rng.choice(tills)
        amount = _lunch(rng)
        if till == "rogue" and rogue_factor:
            amount = min(round(amount * rogue_factor / 10) * 10, CAP)
        venue.add(1_000 + n * 50, till, amount, amount == CAP)
        waiting[till] += 1
        if waiting[till] < batch:
            continue
        waiting[till] = 0
        venue.trim()
        found = venue.judge(till)
        if found is not None and found.flagged:
            flagged.append(till)
    return venue, flagged


def test_honest_tills_of_one_menu_are_seldom_flagged():
    """An honest till is above its peers' top tenth about one entry in ten: the evidence
    seldom builds up (4 of these 600 till-services of about 20 entries each)."""
    flagged = [_service(random.Random(seed), None)[1] for seed in range(100)]
    assert sum(len(tills) for tills in flagged) <= 6


def test_a_till_journalling_half_as_much_again_is_flagged_on_most_services():
    caught = sum("rogue" in _service(random.Random(seed), 1.5)[1] for seed in range(100))
    assert caught >= 93


def test_the_evidence_builds_up_across_batches_as_within_one():
    """Uploaded one entry a batch or eight, the rogue is caught as often, and once every entry
    is in the figures are the same: the run's entries are kept, not each batch's verdict."""
    caught = [0, 0]
    for seed in range(10):
        one, flagged_one = _service(random.Random(seed), 1.5)
        eight, flagged_eight = _service(random.Random(seed), 1.5, batch=8)
        eight.trim()
        last_one, last_eight = one.judge("rogue"), eight.judge("rogue")
        assert last_one is not None and last_eight is not None
        assert last_one.evidence == last_eight.evidence and last_one.above == last_eight.above
        caught[0] += "rogue" in flagged_one
        caught[1] += "rogue" in flagged_eight
    assert min(caught) >= 8, caught


def test_a_till_journalling_twice_the_price_is_flagged_once_with_its_figures():
    venue, flagged = _service(random.Random(3), 2.0)
    assert flagged == ["rogue"]  # once an episode
    assert venue.flagged == ["rogue"]
    found = venue.judge("rogue")
    assert found is not None and not found.flagged  # the episode goes on, not raised again
    explained = found.explained(PEERS)
    assert explained["evidence"] >= PEERS.evidence or found.capped >= PEERS.capped_min
    assert explained["terminal"]["above_venue_high"] > explained["terminal"]["compared"] / 2
    assert explained["rule"]["evidence_at_least"] == PEERS.evidence
    assert explained["venue"]["entries"] >= PEERS.peers_min


def _crowd(rng: random.Random, limits: PeerLimits, rogues: int, honest: int) -> int:
    """A breakfast at `honest` honest tills and `rogues` rogue ones journalling 1.5 times the
    price: how many rogue tills are flagged."""
    venue, flagged = VenuePeers(), set()
    tills = [f"till-{n}" for n in range(honest)] + [f"rogue-{n}" for n in range(rogues)]
    for n in range(100):
        till = rng.choice(tills)
        amount = rng.randint(30, 90) * 10
        if till.startswith("rogue"):
            amount = round(amount * 1.5 / 10) * 10
        venue.add(n * 60, till, amount)
        venue.trim()
        found = venue.judge(till, limits)
        if found is not None and found.flagged:
            flagged.add(till)
    assert not any(till.startswith("till") for till in flagged)
    return len(flagged)


def test_rogue_tills_beside_one_another_are_measured_without_the_others():
    """Three rogue tills beside four honest ones: each measured against all the others, their
    dear entries make the venue's top tenth; the tills suspected (or flagged) left out of the
    others' peers, most are caught."""
    alone = sum(_crowd(random.Random(seed), PEERS, 3, 4) for seed in range(30))
    together = PeerLimits(suspect_evidence=math.inf)
    mixed = sum(_crowd(random.Random(seed), together, 3, 4) for seed in range(30))
    assert alone >= 54 and mixed <= 36, (alone, mixed)  # of 90


def _menu(venue: VenuePeers, tills: int, count: int, amount: int = 1_000, at: int = 0) -> None:
    for n in range(count):
        venue.add(at + n, f"till-{n % tills}", amount + 10 * (n % 7))


def test_nothing_is_judged_before_both_sides_have_enough_entries():
    venue = VenuePeers()
    for n in range(8):
        venue.add(n, "rogue", 2_000)
    assert venue.judge("rogue") is None  # no peers yet
    _menu(venue, 3, PEERS.peers_min - 1)
    assert venue.judge("rogue") is None
    _menu(venue, 3, 1, at=100)
    found = venue.judge("rogue")
    assert found is not None and found.flagged and found.above == 8


def test_a_till_beside_one_other_is_not_judged():
    venue = VenuePeers()
    _menu(venue, 1, PEERS.peers_min)
    for n in range(8):
        venue.add(n, "rogue", 2_000)
    assert venue.judge("rogue") is None  # which of the two is odd?
    venue.add(0, "till-1", 1_000)
    assert venue.judge("rogue") is not None


def test_peers_from_another_meal_period_are_not_compared():
    venue = VenuePeers()
    _menu(venue, 2, PEERS.peers_min, amount=500)  # breakfast
    for n in range(8):
        venue.add(20_000 + n, "rogue", 2_000)  # lunch, hours later
    assert venue.judge("rogue") is None


def test_a_dear_payment_among_the_peers_moves_the_reference_by_one_place():
    venue = VenuePeers()
    _menu(venue, 4, 30)
    venue.add(5, "till-0", 9_900)  # one dear payment: ranks, not amounts
    for n in range(6):
        venue.add(n, "rogue", 1_500)
    found = venue.judge("rogue")
    assert found is not None and found.flagged and found.peers_high < 9_900


def test_ties_count_against_the_till():
    """Tills charging one fixed price are never above one another."""
    venue = VenuePeers()
    for n in range(200):
        venue.add(n, f"till-{n % 5}", 1_000)
    for till in range(5):
        found = venue.judge(f"till-{till}")
        assert found is not None and found.above == 0 and not found.flagged


def test_entries_at_the_cap_flag_without_peers():
    venue = VenuePeers()
    for n in range(PEERS.capped_min - 1):
        venue.add(n, "rogue", CAP, True)
    found = venue.judge("rogue")
    assert found is not None and not found.flagged and found.capped == PEERS.capped_min - 1
    venue.add(10, "rogue", CAP, True)
    found = venue.judge("rogue")
    assert found is not None and found.flagged


def test_a_low_till_is_not_flagged():
    """One-sided: a till journalling less than its peers is no one's loss."""
    venue = VenuePeers()
    _menu(venue, 4, 40)
    for n in range(16):
        venue.add(n, "cheap", 500)
    found = venue.judge("cheap")
    assert found is not None and found.evidence == 0.0 and not found.flagged


def test_the_state_round_trips_and_stays_bounded():
    venue = VenuePeers()
    for n in range(PER_TILL + 10):
        venue.add(n, "till-0", 100 + n)
    for n in range(TILLS_KEPT + 3):
        venue.add(1_000 + n, f"other-{n}", 500, n % 2 == 0)
    venue.flagged = ["till-0"]
    venue.trim()
    back = VenuePeers.restore(venue.state())
    assert back == venue
    assert len(back.tills) == TILLS_KEPT and "till-0" not in back.tills  # its latest is oldest
    assert back.flagged == []
    assert all(len(kept) <= PER_TILL for kept in back.tills.values())


def test_the_earlier_form_of_the_state_is_read():
    """A venue's row written before the entries were kept by till: one list."""
    state = {"entries": [[n, f"till-{n % 2}", 1_000 + n] for n in range(100)], "flagged": []}
    back = VenuePeers.restore(state)
    assert sorted(back.tills) == ["till-0", "till-1"]
    assert len(back.tills["till-0"]) == PER_TILL and back.tills["till-0"][-1] == (98, 1_098, False)


def test_the_sliding_window_counts_as_a_sort_would():
    """`_Window` (a Fenwick tree over the amounts' ranks) against sorting each window."""
    rng = random.Random(5)
    entries = sorted(
        (rng.randint(0, 5_000), rng.randint(1, 40) * 100, f"t{rng.randint(0, 4)}")
        for _ in range(300)
    )
    window = _Window(entries)
    for at in range(0, 6_000, 97):
        window.slide(at - 600, at + 600)
        inside = [(t, a, w) for t, a, w in entries if at - 600 <= t <= at + 600]
        amounts = sorted(a for _, a, _ in inside)
        assert window.size == len(inside)
        assert set(window.tills) == {w for *_, w in inside}
        for amount in (50, 1_000, 2_050, 4_000, 4_100):
            assert window.at_least(amount) == sum(1 for a in amounts if a >= amount)
        for j in range(1, min(len(amounts), 6) + 1):
            assert window.highest(j) == amounts[-j]
