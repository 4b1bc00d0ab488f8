"""A till compared with its venue's other tills (`duopass.risk.venue_peers`): honest tills
charging one menu are seldom flagged, a till journalling its prices inflated is flagged once, with
the figures a reviewer reads, and nothing is judged before both sides have enough entries."""

from __future__ import annotations

import random

from duopass.risk.venue_peers import KEPT, PEERS, VenuePeers


def _lunch(rng: random.Random) -> int:
    return rng.randint(80, 250) * 10


def _service(rng: random.Random, rogue_factor: float | None) -> tuple[VenuePeers, list[str]]:
    """A lunch service at six honest tills (and a rogue one): every till judged after each of
    its entries; the tills flagged."""
    venue, flagged = VenuePeers(), []
    tills = [f"till-{n}" for n in range(6)] + (["rogue"] if rogue_factor else [])
    for n in range(120):
        till = rng.choice(tills)
        amount = _lunch(rng)
        if till == "rogue" and rogue_factor:
            amount = round(amount * rogue_factor)
        venue.add(1_000 + n * 50, till, amount)
        venue.trim()
        found = venue.judge(till)
        if found is not None and found.flagged:
            flagged.append(till)
    return venue, flagged


def test_honest_tills_of_one_menu_are_seldom_flagged():
    """1.5 times a price is within a menu's own spread: an honest till's run of dear lunches
    could be flagged now and then (none in these 300 till-services)."""
    flagged = [_service(random.Random(seed), None)[1] for seed in range(50)]
    assert sum(len(tills) for tills in flagged) <= 3


def test_a_till_journalling_twice_the_price_is_flagged_once_with_its_figures():
    venue, flagged = _service(random.Random(3), 2.0)
    assert flagged == ["rogue"]  # once an episode
    assert venue.flagged == ["rogue"]
    found = venue.judge("rogue")
    assert found is not None and not found.flagged  # the episode goes on, not raised again
    explained = found.explained(PEERS)
    assert explained["ratio"] >= PEERS.ratio
    assert explained["terminal"]["amount_typical"] > explained["venue"]["amount_typical"]
    assert explained["rule"]["ratio_at_least"] == PEERS.ratio


def test_an_inflated_till_is_flagged_on_most_services():
    caught = sum("rogue" in _service(random.Random(seed), 1.5)[1] for seed in range(50))
    assert caught >= 45


def test_nothing_is_judged_before_both_sides_have_enough_entries():
    venue = VenuePeers()
    for n in range(PEERS.own_min):
        venue.add(n, "rogue", 9_000)
    assert venue.judge("rogue") is None  # no peers yet
    for n in range(PEERS.peers_min):
        venue.add(0, f"till-{n % 3}", 1_000)
    found = venue.judge("rogue")
    assert found is not None and found.flagged and found.own_above == PEERS.own_min


def test_a_till_beside_one_other_is_not_judged():
    venue = VenuePeers()
    for _ in range(PEERS.peers_min):
        venue.add(0, "till-0", 1_000)
    for _ in range(PEERS.own_min):
        venue.add(0, "rogue", 9_000)
    assert venue.judge("rogue") is None  # which of the two is odd?
    venue.add(0, "till-1", 1_000)
    assert venue.judge("rogue") is not None


def test_peers_from_another_meal_period_are_not_compared():
    venue = VenuePeers()
    for n in range(PEERS.peers_min):
        venue.add(n, f"till-{n % 2}", 500)  # breakfast
    for n in range(PEERS.own_min):
        venue.add(20_000 + n, "rogue", 2_000)  # lunch, hours later
    assert venue.judge("rogue") is None


def test_the_state_round_trips_and_stays_bounded():
    venue = VenuePeers()
    for n in range(KEPT + 10):
        venue.add(n, "till-0", 100 + n)
    venue.trim()
    venue.flagged = ["till-0"]
    back = VenuePeers.restore(venue.state())
    assert back == venue and len(back.entries) == KEPT
