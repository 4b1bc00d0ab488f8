"""The terms of purse limits that the server, the wallet and the command line check alike, named
once (pure: the wallet imports them without the server): the payment PIN's form, the largest
amount and meal count a limit names, and the meal periods' names and local times."""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "CLOCK",
    "LIMIT_AMOUNT_MAX",
    "MEAL_COUNT_MAX",
    "MEAL_NAME_CHARS_MAX",
    "MEAL_PERIODS_MAX",
    "PIN_DIGITS",
    "PIN_PATTERN",
    "is_pin",
]

PIN_DIGITS: Final = 6
"""A holder's payment PIN: exactly six ASCII digits, as campus card PINs are."""
PIN_PATTERN: Final = rf"^[0-9]{{{PIN_DIGITS}}}$"
"""The PIN's form as a pattern (request models use it; `is_pin` tests a text)."""
_PIN: Final = re.compile(PIN_PATTERN)
LIMIT_AMOUNT_MAX: Final = 10**9
"""Largest amount in minor units a limit or a payment names (10 million in a 2-decimal
currency)."""
MEAL_COUNT_MAX: Final = 100
"""Largest count of payments per meal period a bound or a holder may set."""
MEAL_PERIODS_MAX: Final = 8
"""Meal periods the card office defines (breakfast, lunch, dinner, ...)."""
MEAL_NAME_CHARS_MAX: Final = 32
CLOCK: Final = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
"""A meal period's local time, `HH:MM` (00:00 to 23:59)."""


def is_pin(text: str) -> bool:
    """Whether `text` is a PIN's form (six ASCII digits, nothing else)."""
    return _PIN.fullmatch(text) is not None
