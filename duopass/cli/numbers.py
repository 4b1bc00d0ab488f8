"""Numbers on the command line: ASCII digits only (`parse_digits`), each in a stated range.

Click reads options with `int()` and `float()`, which also take Arabic-Indic and fullwidth
digits, underscores and surrounding spaces, and (`float`) `nan` and `inf`, which pass every range
check. These parsers replace that reading; Typer ignores `min` and `max` beside a parser, so the
range is checked here.
"""

from __future__ import annotations

from typing import Any

import typer

from duopass.protocol.encoding import EncodingError, parse_digits

__all__ = ["seconds", "whole"]

_FRACTION_DIGITS_MAX = 6


def whole(low: int, high: int, *, help: str, name: str | None = None) -> Any:
    """A `typer.Option` taking a whole number from `low` to `high` (`name`: the option's,
    when not the parameter's)."""

    def parse(value: str | int) -> int:
        if isinstance(value, int):  # the default, not typed in
            return value
        try:
            number = parse_digits(value, digits_max=len(str(high)))
        except EncodingError:
            raise typer.BadParameter(f"{value!r} is not a number in ASCII digits") from None
        if not low <= number <= high:
            raise typer.BadParameter(f"{number} is not in {low}..{high}")
        return number

    names = () if name is None else (name,)
    return typer.Option(*names, parser=parse, metavar=f"{low}..{high}", help=help)


def seconds(low: float, high: float, *, help: str) -> Any:
    """A `typer.Option` taking seconds from `low` to `high`: digits, and a decimal fraction."""

    def parse(value: str | float) -> float:
        if isinstance(value, float | int):
            return float(value)
        whole_part, point, fraction = value.partition(".")
        try:
            number = float(parse_digits(whole_part, digits_max=len(str(int(high)))))
            if point:
                digits = parse_digits(fraction, digits_max=_FRACTION_DIGITS_MAX)
                number += digits / 10 ** len(fraction)
        except EncodingError:
            raise typer.BadParameter(f"{value!r} is not seconds in ASCII digits") from None
        if not low <= number <= high:
            raise typer.BadParameter(f"{value} is not in {low:g}..{high:g}")
        return number

    return typer.Option(parser=parse, metavar=f"{low:g}..{high:g}", help=help)
