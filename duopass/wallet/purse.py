"""The holder's purse limits and payment PIN on the server (docs/wallet.md, "Purse limits"): read
and set within the card office's bounds, each answer checked like every other the wallet reads.
The PIN itself is never stored here: the holder types it at the till when the server asks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from duopass.protocol.purse import (
    CLOCK,
    LIMIT_AMOUNT_MAX,
    MEAL_COUNT_MAX,
    MEAL_NAME_CHARS_MAX,
    MEAL_PERIODS_MAX,
)
from duopass.wallet.errors import Failure, WalletError
from duopass.wallet.wallet import Wallet

__all__ = ["PurseLimits", "limits", "set_limits", "set_pin"]

_NAMES = ("daily", "meal", "confirm_above")


@dataclass(frozen=True)
class PurseLimits:
    own: dict[str, int | None]
    """What the holder set (None: the office's default)."""
    effective: dict[str, int | None]
    """What applies (None: no limit)."""
    bounds: dict[str, int | None]
    """The office's bounds: `daily_max`, `meal_max`, `confirm_max`."""
    meals: list[tuple[str, str, str]]
    """The office's meal periods: (name, start, end), local `HH:MM`."""
    pin_set: bool


def _bad(name: str) -> WalletError:
    return WalletError(Failure.BAD_ANSWER, f"the server's purse limits have a bad {name}")


def _value(doc: object, name: str, high: int) -> int | None:
    if not isinstance(doc, dict):
        raise _bad(name)
    value = doc.get(name)
    if value is None:
        return None
    if type(value) is not int or not 1 <= value <= high:
        raise _bad(name)
    return value


def _meals(items: object) -> list[tuple[str, str, str]]:
    if not isinstance(items, list) or len(items) > MEAL_PERIODS_MAX:
        raise _bad("meals")
    meals = []
    for item in items:
        fields = [item.get(k) if isinstance(item, dict) else None for k in ("name", "start", "end")]
        if not all(isinstance(f, str) and 0 < len(f) <= MEAL_NAME_CHARS_MAX for f in fields):
            raise _bad("meal")
        name, start, end = (str(f) for f in fields)
        if not (CLOCK.fullmatch(start) and CLOCK.fullmatch(end)) or not name.isprintable():
            raise _bad("meal")
        meals.append((name, start, end))
    return meals


def _limits(doc: dict[str, Any]) -> PurseLimits:
    highs = {"daily": LIMIT_AMOUNT_MAX, "meal": MEAL_COUNT_MAX, "confirm_above": LIMIT_AMOUNT_MAX}
    own = {name: _value(doc.get("own"), name, highs[name]) for name in _NAMES}
    effective = {name: _value(doc.get("effective"), name, highs[name]) for name in _NAMES}
    bounds = {
        f"{name}_max": _value(doc.get("bounds"), f"{name}_max", high)
        for name, high in (
            ("daily", LIMIT_AMOUNT_MAX),
            ("meal", MEAL_COUNT_MAX),
            ("confirm", LIMIT_AMOUNT_MAX),
        )
    }
    pin_set = doc.get("pin_set")
    if not isinstance(pin_set, bool):
        raise _bad("pin_set")
    return PurseLimits(own, effective, bounds, _meals(doc.get("meals")), pin_set)


def limits(wallet: Wallet) -> PurseLimits:
    """The holder's limits as the server holds them."""
    return _limits(
        wallet.online(
            lambda client, token: client.call("GET", "/v1/wallet/limits", None, token=token)
        )
    )


def set_limits(wallet: Wallet, own: dict[str, int | None]) -> PurseLimits:
    """Set the holder's own limits (`daily`, `meal`, `confirm_above`; None: the office's
    default); one above the office's bound is refused (REFUSED, `limit_above_bound`)."""
    body = {name: own.get(name) for name in _NAMES}
    return _limits(
        wallet.online(
            lambda client, token: client.call("PUT", "/v1/wallet/limits", body, token=token)
        )
    )


def set_pin(wallet: Wallet, *, password: str, pin: str | None, otp: str | None = None) -> bool:
    """Set the payment PIN (None removes it) after a password sign-in, which the server asks
    for (a session on a lost phone cannot change the PIN). Whether a PIN is now set."""
    wallet.login(password=password, otp=otp)
    answer = wallet.online(
        lambda client, token: client.call("PUT", "/v1/wallet/pin", {"pin": pin}, token=token)
    )
    if not isinstance(answer.get("pin_set"), bool):
        raise _bad("pin_set")
    return bool(answer["pin_set"])
