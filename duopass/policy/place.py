"""Place plausibility, the `place` section of the input document: which network a request came
from (the event's venues' own ranges, the campus's, or outside), and how far a position the
holder's device claims is from the nearest of the event's venues (haversine, whole metres).

A claimed position is a claim: it only ever weighs toward a step-up or a review in a policy,
never alone toward allowing.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable, Sequence
from typing import Final

__all__ = ["EARTH_RADIUS_M", "distance_m", "network_of", "place"]

EARTH_RADIUS_M: Final = 6_371_009
"""The mean radius (IUGG), in metres."""
E6: Final = 1_000_000
"""Coordinates are integer micro-degrees (`lat_e6`, `lon_e6`): 0.11 m at most."""
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def place(
    ip: str | None,
    venue_networks: Iterable[str],
    campus_networks: Iterable[str],
    claimed: tuple[int, int] | None,
    venue_coords: Sequence[tuple[int, int]],
) -> tuple[str, bool, int]:
    """`(network, position_given, distance_m)`: `network` is venue, campus, outside or unknown
    (no address, or one that does not parse); `distance_m` is -1 when no position was claimed
    or the venues have no coordinates. Networks are CIDR texts (a ValueError if one is not)."""
    network = network_of(ip, venue_networks, campus_networks)
    if claimed is None:
        return network, False, -1
    distances = [distance_m(claimed, venue) for venue in venue_coords]
    return network, True, min(distances) if distances else -1


def network_of(
    ip: str | None, venue_networks: Iterable[str], campus_networks: Iterable[str]
) -> str:
    venues, campus = _networks(venue_networks), _networks(campus_networks)
    if ip is None:
        return "unknown"
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:10.1.2.3, as a dual-stack socket reports it
    if any(address in network for network in venues):
        return "venue"
    if any(address in network for network in campus):
        return "campus"
    return "outside"


def _networks(texts: Iterable[str]) -> list[_Network]:
    return [ipaddress.ip_network(text, strict=False) for text in texts]


def distance_m(a: tuple[int, int], b: tuple[int, int]) -> int:
    """The great-circle distance between two (lat_e6, lon_e6) points, in whole metres
    (a ValueError for a latitude past ±90 or a longitude past ±180 degrees)."""
    for lat, lon in (a, b):
        if abs(lat) > 90 * E6 or abs(lon) > 180 * E6:
            raise ValueError(f"not a position: ({lat}, {lon}) micro-degrees")
    lat1, lon1, lat2, lon2 = (math.radians(value / E6) for value in (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return round(2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h))))
