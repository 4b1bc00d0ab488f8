"""What the cashier's devices type: scanned codes one a line (a keyboard-wedge scanner ends each
with CR, LF or CRLF) and amounts keyed in before a scan. A line loses its line ending and nothing
else (base45 has spaces); a line longer than SCAN_LINE_CHARS_MAX is given up, as a reader does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

from duopass.protocol.encoding import EncodingError, parse_digits
from duopass.protocol.limits import CODE_PREFIX, SCAN_LINE_CHARS_MAX
from duopass.terminal.scan import AMOUNT_MAX

__all__ = [
    "KEYED_CHARS_MAX",
    "TOO_LONG",
    "AmountError",
    "format_amount",
    "is_keyed",
    "parse_amount",
    "read_amount",
    "read_lines",
]

TOO_LONG = None
"""What `read_lines` yields for a line it gave up on."""
_CHUNK_BYTES = 64 * 1024
_LINE_BYTES_MAX = SCAN_LINE_CHARS_MAX * 4
"""UTF-8 takes at most 4 bytes a character."""
_MINOR_DIGITS_MAX = 10
_WHOLE_DIGITS_MAX = 8
_CENTS_DIGITS_MAX = 2
KEYED_CHARS_MAX = 20
_MANY_DECIMALS = re.compile(r"[0-9]+\.[0-9]{3,}")
_TOO_MANY_DIGITS = re.compile(r"[0-9]+(\.[0-9]{1,2})?")
"""Longest line a till reads as keyed in (an amount, or a mistyped one) rather than scanned."""


class AmountError(ValueError):
    """A line keyed in that is not an amount a till takes; the message says why, for the
    cashier: `not an amount: 12.345 (two decimals at most)`."""


def read_lines(stream: BinaryIO) -> Iterator[str | None]:
    """Each line as text (invalid UTF-8 replaced, so it cannot be a code), without its CR, LF or
    CRLF; `TOO_LONG` for a line past the limit. Reads in bounded chunks, returning each line as
    soon as its end arrives (an interactive scanner waits for no buffer to fill)."""
    read = getattr(stream, "read1", stream.read)
    pending = bytearray()
    skipping = False
    while True:
        chunk = read(_CHUNK_BYTES)
        if not chunk:
            break
        pending += chunk
        while True:
            ends = [i for i in (pending.find(b"\r"), pending.find(b"\n")) if i >= 0]
            if not ends:
                break
            end = min(ends)
            line, pending = bytes(pending[:end]), pending[end + 1 :]
            if skipping:
                skipping = False
                continue
            yield _text(line)
        if len(pending) > _LINE_BYTES_MAX:
            if not skipping:
                yield TOO_LONG
            skipping = True
            pending.clear()
    if pending and not skipping:
        yield _text(bytes(pending))


def _text(line: bytes) -> str | None:
    text = line.decode("utf-8", errors="replace")
    return TOO_LONG if len(text) > SCAN_LINE_CHARS_MAX else text


def parse_amount(line: str) -> int | None:
    """An amount keyed in, in minor units: digits alone are minor units as a till's keypad
    enters them (`1250` is 12.50), or a decimal with one or two places (`12.5`, `12.50`).
    None when the line is not an amount."""
    whole, point, cents = line.partition(".")
    try:
        if not point:
            return parse_digits(line, digits_max=_MINOR_DIGITS_MAX)
        padded = cents and cents.ljust(_CENTS_DIGITS_MAX, "0")  # `12.5` is 12.50; `12.` nothing
        minor = parse_digits(padded, digits_max=_CENTS_DIGITS_MAX)
        return parse_digits(whole, digits_max=_WHOLE_DIGITS_MAX) * 100 + minor
    except EncodingError:
        return None


def is_keyed(line: str) -> bool:
    """Whether a till reads `line` as keyed in by the cashier, not scanned: a short line that
    is no DP1 code. A scanner types codes of hundreds of characters, all starting `DP1:`."""
    return len(line) <= KEYED_CHARS_MAX and not line.startswith(CODE_PREFIX)


def read_amount(line: str) -> int:
    """An amount keyed in (`parse_amount`), in minor units, from 0.01 to `AMOUNT_MAX`; raises
    AmountError saying what is wrong with it."""
    minor, shown = parse_amount(line), "".join(c if c.isprintable() else "?" for c in line)
    if minor is None:
        if line.startswith(("-", "+")):
            why = "no sign: an amount is what the customer pays"
        elif _MANY_DECIMALS.fullmatch(line):
            why = "two decimals at most"
        elif _TOO_MANY_DIGITS.fullmatch(line):
            why = f"at most {format_amount(AMOUNT_MAX)}"
        else:
            why = "digits, with a point before the cents: 1250 or 12.50"
        raise AmountError(f"not an amount: {shown} ({why})")
    if minor < 1:
        raise AmountError(f"not an amount: {shown} (at least 0.01)")
    if minor > AMOUNT_MAX:
        raise AmountError(f"not an amount: {shown} (at most {format_amount(AMOUNT_MAX)})")
    return minor


def format_amount(minor: int) -> str:
    """Minor units shown with two decimals (the currencies of the field reports have two)."""
    return f"{minor // 100}.{minor % 100:02d}"
