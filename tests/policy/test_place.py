"""Place plausibility: the request's network against the venues' and the campus's ranges, and
a claimed position's distance to the nearest venue (haversine, whole metres)."""

from __future__ import annotations

import pytest

from duopass.policy import distance_m, place

VENUE = ["10.20.0.0/16", "2001:db8:20::/48"]
CAMPUS = ["10.0.0.0/8"]
GYM = (31_030_000, 121_440_000)  # lat, lon in micro-degrees
LIBRARY = (31_025_000, 121_435_000)


@pytest.mark.parametrize(
    ("ip", "network"),
    [
        ("10.20.1.2", "venue"),
        ("::ffff:10.20.1.2", "venue"),
        ("2001:db8:20::5", "venue"),
        ("10.1.1.1", "campus"),
        ("203.0.113.9", "outside"),
        (None, "unknown"),
        ("not an address", "unknown"),
    ],
)
def test_the_network_is_the_venue_the_campus_or_outside(ip, network):
    assert place(ip, VENUE, CAMPUS, None, [GYM]) == (network, False, -1)


def test_a_claimed_position_is_measured_to_the_nearest_venue():
    assert place("10.1.1.1", VENUE, CAMPUS, GYM, [GYM]) == ("campus", True, 0)
    network, given, metres = place("10.1.1.1", VENUE, CAMPUS, LIBRARY, [GYM, (0, 0)])
    assert (network, given) == ("campus", True) and 700 < metres < 740
    assert place(None, [], [], GYM, []) == ("unknown", True, -1)


def test_haversine_in_whole_metres():
    assert distance_m((0, 0), (0, 1_000_000)) == 111_195  # one degree of the equator
    assert distance_m((90_000_000, 0), (-90_000_000, 0)) == 20_015_115
    with pytest.raises(ValueError, match="not a position"):
        distance_m((91_000_000, 0), (0, 0))
    with pytest.raises(ValueError, match="does not appear to be"):
        place("10.1.1.1", ["not a network"], [], None, [])
