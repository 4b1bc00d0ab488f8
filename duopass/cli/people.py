"""How the command line shows money and times to people: `183.00 CNY` (minor units with two
decimals, the currencies duopass serves have two) and `2026-12-05 18:41 CST` (local time, the
zone's abbreviation). `--json` keeps the raw numbers."""

from __future__ import annotations

from datetime import datetime

__all__ = ["count", "local_time", "money"]


def money(minor: int, currency: str | None) -> str:
    """`183.00 CNY`; `-5.20 CNY` for a debt."""
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    return f"{sign}{whole}.{cents:02d}" + (f" {currency}" if currency else "")


def count(number: int, noun: str, plural: str | None = None) -> str:
    """`1 code`, `6 codes`, `0 codes`."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def local_time(epoch: int | float) -> str:
    """`2026-12-05 18:41 CST`: the time zone of this machine."""
    return datetime.fromtimestamp(epoch).astimezone().strftime("%Y-%m-%d %H:%M %Z")
