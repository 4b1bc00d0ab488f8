"""`duopass wallet limits` and `duopass wallet pin`: the holder's purse limits (a daily total, a
count per meal period, the amount above which the till asks for the PIN), within the card
office's bounds, and the payment PIN (docs/wallet.md, "Purse limits")."""

from __future__ import annotations

import os
import re
from typing import Annotated

import typer

from duopass.cli.people import money
from duopass.cli.wallet import DEFAULT_DIR, DataDir, Otp, Password, Timeout, _wallet
from duopass.protocol.purse import MEAL_COUNT_MAX, PIN_DIGITS, is_pin
from duopass.wallet import Wallet, WalletError
from duopass.wallet.limits import HTTP_TIMEOUT_DEFAULT_S
from duopass.wallet.purse import PurseLimits, limits, set_limits, set_pin

__all__ = ["limit_lines", "limits_command", "pin_command"]

_AMOUNT = re.compile(r"([0-9]{1,7})(?:\.([0-9]{1,2}))?")


def _amount(value: str | int) -> int:
    """An amount in yuan: `30`, `30.5`, `30.50` (minor units inside)."""
    if isinstance(value, int):
        return value
    match = _AMOUNT.fullmatch(value.strip())
    if match is None or (minor := int(match[1]) * 100 + int((match[2] or "0").ljust(2, "0"))) < 1:
        raise typer.BadParameter(f"not an amount: {value} (yuan, two decimals at most)")
    return minor


Amount = Annotated[int | None, typer.Option(parser=_amount, metavar="AMOUNT")]


def _shown(value: int | None, *, amount: bool) -> str:
    if value is None:
        return "none"
    return money(value, None) if amount else str(value)


def limit_lines(found: PurseLimits) -> list[str]:
    """The limits for people: what applies, whose it is, the office's bound."""
    lines = []
    for name, label, bound, amount in (
        ("daily", "daily total", "daily_max", True),
        ("meal", "payments per meal", "meal_max", False),
        ("confirm_above", "PIN asked above", "confirm_max", True),
    ):
        whose = "yours" if found.own[name] is not None else "the office's default"
        most = _shown(found.bounds[bound], amount=amount)
        value = _shown(found.effective[name], amount=amount)
        lines.append(f"{label}: {value} ({whose}; the office allows at most {most})")
    lines.append("PIN: " + ("set" if found.pin_set else "not set"))
    periods = ", ".join(f"{name} {start}-{end}" for name, start, end in found.meals)
    lines.append(f"meal periods: {periods}")
    return lines


def limits_command(
    daily: Amount = None,
    meal: Annotated[
        int | None, typer.Option(min=1, max=MEAL_COUNT_MAX, help="payments per meal")
    ] = None,
    confirm_above: Amount = None,
    office_defaults: Annotated[
        bool, typer.Option(help="drop your own limits: the office's defaults apply")
    ] = False,
    data_dir: DataDir = DEFAULT_DIR,
    timeout: Timeout = HTTP_TIMEOUT_DEFAULT_S,
) -> None:
    """Show your purse limits, or set them (--daily 30.00, --meal 2, --confirm-above 20.00)
    within the card office's bounds; what you do not give stays as it is."""
    with _wallet(data_dir, timeout) as wallet:
        found = limits(wallet)
        given = {"daily": daily, "meal": meal, "confirm_above": confirm_above}
        if office_defaults or any(value is not None for value in given.values()):
            own = {} if office_defaults else dict(found.own)
            own |= {name: value for name, value in given.items() if value is not None}
            found = _set_with_password(wallet, own)
    for line in limit_lines(found):
        typer.echo(line)


def _set_with_password(wallet: Wallet, own: dict[str, int | None]) -> PurseLimits:
    """`set_limits`; raising or removing a limit asks for a recent password sign-in: the
    password (`DUOPASS_WALLET_PASSWORD`, else asked) and once more."""
    try:
        return set_limits(wallet, own)
    except WalletError as refused:
        if refused.code != "step_up_required":
            raise
    password = os.environ.get("DUOPASS_WALLET_PASSWORD") or str(
        typer.prompt("password (raising a limit asks for it)", hide_input=True)
    )
    wallet.login(password=password)
    return set_limits(wallet, own)


def pin_command(
    password: Password,
    pin: Annotated[
        str | None,
        typer.Option(
            envvar="DUOPASS_WALLET_PIN", help="the new payment PIN (asked for when not given)"
        ),
    ] = None,
    remove: Annotated[bool, typer.Option(help="remove the PIN")] = False,
    otp: Otp = None,
    data_dir: DataDir = DEFAULT_DIR,
    timeout: Timeout = HTTP_TIMEOUT_DEFAULT_S,
) -> None:
    """Set the payment PIN the till asks for above your amount (your password first)."""
    if not remove and pin is None:
        pin = str(
            typer.prompt(f"PIN ({PIN_DIGITS} digits)", hide_input=True, confirmation_prompt=True)
        )
    if not remove and (pin is None or not is_pin(pin)):
        raise typer.BadParameter(f"a PIN is {PIN_DIGITS} digits", param_hint="--pin")
    with _wallet(data_dir, timeout) as wallet:
        now_set = set_pin(wallet, password=password, pin=None if remove else pin, otp=otp)
    typer.echo("PIN set" if now_set else "PIN removed", err=True)
