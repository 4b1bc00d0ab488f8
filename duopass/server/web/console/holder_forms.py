"""The holder page's forms, checked field by field before a service sees them: each refused
field gets a code that `_holder_macros.html` puts beside it in the page's language, and the
page comes back (422) with what was typed. The services check again (and refuse what only the
database knows: funds, a merchant's takings, an erasure done already)."""

from __future__ import annotations

import re
from typing import Final

from duopass.server.limits import AMOUNT_MAX, REASON_CHARS_MAX
from duopass.server.web.console.forms import TypedForm

__all__ = ["AMOUNT_TYPED_MAX", "REASON_TYPED_MAX", "HolderForm", "amount_refusal", "minor_units"]

AMOUNT_TYPED_MAX: Final = 64
"""What the server reads of a typed amount; longer is refused before the field is looked at."""
REASON_TYPED_MAX: Final = 4 * REASON_CHARS_MAX
"""What the server reads of a typed reason (one longer than REASON_CHARS_MAX is `too_long`)."""
_NUMBER: Final = re.compile(r"^([0-9]+)(?:\.([0-9]*))?$")
_YUAN_DIGITS_MAX: Final = len(str(AMOUNT_MAX // 100))


def amount_refusal(yuan: str) -> tuple[int, str | None]:
    """`12.5` → (1250, None): an amount in yuan as typed, in minor units, or 0 and why not:
    `required`, `not_number`, `too_many_decimals`, `zero` or `too_big` (over AMOUNT_MAX)."""
    text = yuan.strip()
    if not text:
        return 0, "required"
    match = _NUMBER.match(text)
    if match is None or text.endswith("."):
        return 0, "not_number"
    whole, cents = match.group(1), match.group(2) or ""
    if len(cents) > 2:
        return 0, "too_many_decimals"
    if len(whole.lstrip("0")) > _YUAN_DIGITS_MAX:
        return 0, "too_big"
    amount = int(whole) * 100 + int(cents.ljust(2, "0"))
    if amount == 0:
        return 0, "zero"
    return (amount, None) if amount <= AMOUNT_MAX else (0, "too_big")


def minor_units(yuan: str) -> int | None:
    """`12.5` → 1250: an amount in yuan typed in a form, in minor units; None unless valid."""
    amount, refusal = amount_refusal(yuan)
    return None if refusal is not None else amount


class HolderForm(TypedForm):
    """What was typed (shown again) and each refused field's code."""

    def amount(self, name: str) -> int:
        amount, refusal = amount_refusal(self.typed.get(name, ""))
        if refusal is not None:
            self.errors[name] = refusal
        return amount

    def reason(self, name: str) -> str:
        return self.text(name, REASON_CHARS_MAX)

    def choice(self, name: str, allowed: set[int]) -> int:
        """One of `allowed` (ids the page offered), else `choose`."""
        value = self.typed.get(name, "").strip()
        if not value.isdigit() or len(value) > 19 or int(value) not in allowed:
            self.errors[name] = "choose"
            return 0
        return int(value)

    def same_as(self, name: str, expected: str) -> None:
        """A confirmation typed again: it must be `expected` exactly (`mismatch` otherwise)."""
        value = self.typed.get(name, "").strip()
        if not value:
            self.errors[name] = "required"
        elif value != expected:
            self.errors[name] = "mismatch"
