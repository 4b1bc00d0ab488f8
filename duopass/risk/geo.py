"""Geovelocity: how fast a holder would have moved between two places it was seen at, from the
places' coordinates (millionths of a degree, as venues keep them) and the two times."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["EARTH_RADIUS_KM", "Sighting", "distance_km", "kmh"]

EARTH_RADIUS_KM = 6371.0
"""The mean radius (the haversine's sphere): within half a percent of the ellipsoid."""


@dataclass(frozen=True)
class Sighting:
    """A holder seen at a place (its coordinates, in millionths of a degree) at a time."""

    lat_e6: int
    lon_e6: int
    at: int


def distance_km(a: Sighting, b: Sighting) -> float:
    """The great-circle distance between two places (haversine)."""
    lat_a, lat_b = math.radians(a.lat_e6 / 1e6), math.radians(b.lat_e6 / 1e6)
    d_lat, d_lon = lat_b - lat_a, math.radians((b.lon_e6 - a.lon_e6) / 1e6)
    h = math.sin(d_lat / 2) ** 2 + math.cos(lat_a) * math.cos(lat_b) * math.sin(d_lon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def kmh(a: Sighting, b: Sighting) -> int:
    """The speed from one sighting to the other, in whole km/h; two sightings in the same
    second count as a minute apart (times are whole seconds: a scan pair at two venues in one
    second is no slower than one a minute apart)."""
    seconds = max(60, abs(b.at - a.at))
    return int(distance_km(a, b) * 3600 / seconds)
