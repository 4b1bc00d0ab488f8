"""The labelled stream (`duopass.risk.simulate`): the same seed makes the same stream, every
fraud family comes from its own file, and the tally decides incidents as issue 15 defines
caught (an action other than allow before the goal)."""

from __future__ import annotations

from dataclasses import replace

from duopass.risk.simulate import (
    CAMPUS_NAT,
    HONEST,
    Incident,
    Kind,
    Met,
    Step,
    Tally,
    families,
    generate,
)

FAMILIES = {
    "credential_stuffing",
    "stolen_phone",
    "cloned_keys",
    "reissue_farming",
    "ticket_tout",
    "misreporting_terminal",
}


def test_a_seed_makes_the_same_stream_and_another_seed_another():
    first, again = generate(7, holders=20, incidents=2), generate(7, holders=20, incidents=2)
    assert first == again
    other = generate(8, holders=20, incidents=2)
    assert other.steps != first.steps
    assert [step.at for step in first.steps] == sorted(step.at for step in first.steps)


def test_every_family_has_its_file_and_its_incidents():
    found = {family.name: family for family in families()}
    assert found.keys() == FAMILIES
    assert [name for name, family in found.items() if not family.catchable] == ["stolen_phone"]
    assert found["stolen_phone"].why
    stream = generate(3, holders=30, incidents=2)
    counted = dict.fromkeys(FAMILIES, 0)
    for incident in stream.incidents:
        counted[incident.family] += 1
    assert counted == dict.fromkeys(FAMILIES, 2)
    labels = {step.label for step in stream.steps}
    assert labels == FAMILIES | {HONEST}


def test_each_family_acts_from_its_own_network():
    stream = generate(5, holders=30, incidents=2)
    networks: dict[int, set[str]] = {}
    for step in stream.steps:
        if step.label in ("credential_stuffing", "reissue_farming", "ticket_tout"):
            networks.setdefault(step.incident, set()).add(step.address.rsplit(".", 1)[0])
    assert len(networks) == 6 and all(len(found) == 1 for found in networks.values())
    assert len(set().union(*networks.values())) == 6


def _one_incident(goal: int) -> Tally:
    stream = generate(1, holders=2, incidents=0)
    incident = Incident("ticket_tout", goal, ("tout-0",))
    step = Step(10, Kind.REISSUE, "tout-0", "127.88.0.9", "ticket_tout", 0, counts=True)
    stream = replace(stream, steps=(step,) * 3, incidents=(incident,))
    return Tally(stream)


def test_caught_is_friction_before_the_goal_and_decided_stops_the_incident():
    tally = _one_incident(goal=2)
    step = tally.stream.steps[0]
    tally.record(step, Met(3, 0, True))
    assert not tally.decided(step)
    tally.record(step, Met(3, 1, False, ("reissue",), ("review",)))
    assert tally.decided(step)
    figures = tally.figures()["families"]["ticket_tout"]
    assert (figures["caught"], figures["incidents"], figures["recall"]) == (1, 1, 1.0)
    late = _one_incident(goal=1)
    late.record(step, Met(3, 0, True))
    assert late.decided(step) and late.figures()["families"]["ticket_tout"]["caught"] == 0


def test_honest_friction_counts_requests_and_holders():
    stream = generate(1, holders=4, incidents=0)
    tally = Tally(stream)
    for step in stream.steps:
        tally.record(step, Met(2, 0, True))
    first = stream.steps[0]
    tally.record(first, Met(2, 1, False, ("sign_in",), notes=("throttled",)))
    honest = tally.figures()["honest"]
    assert honest["friction"] == 1 and honest["requests"] == 2 * len(stream.steps) + 2
    assert (honest["holders_met"], honest["holders"]) == (1, 4)


def test_most_honest_holders_share_the_campus_nat_the_rest_have_their_own():
    stream = generate(7, holders=200, incidents=0)
    addresses = [holder.address for holder in stream.world.holders]
    behind = addresses.count(CAMPUS_NAT)
    assert 0.5 * len(addresses) < behind < 0.7 * len(addresses)
    others = [address for address in addresses if address != CAMPUS_NAT]
    assert len(set(others)) == len(others)
    networks = {address.rsplit(".", 1)[0] for address in others}
    assert len(others) / len(networks) > 2
    typos = [step.typos for step in stream.steps if step.kind is Kind.SIGN_IN]
    assert set(typos) == {0, 1, 2}
