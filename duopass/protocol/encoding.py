"""Text encodings of the protocol: strict base45 (RFC 9285), unpadded base64url, and decimal
numbers in ASCII digits (every number that arrives as text from outside is read by `parse_digits`).

Both decoders accept exactly one spelling per byte string. `b45` (numpy-vectorised, about four
times faster than the `base45` package) maps unknown characters to zero and wraps values above
0xFFFF, so the text is checked first: only alphabet characters, and no group whose value
overflows (a tests compares this with re-encoding, the definition of canonical).
"""

from __future__ import annotations

import base64
import binascii
import re

import b45

__all__ = [
    "EncodingError",
    "b45decode",
    "b45encode",
    "b64u_decode",
    "b64u_encode",
    "parse_digits",
]

_B45_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_B45_VALUE = {c: i for i, c in enumerate(_B45_ALPHABET)}
_B64U_TEXT = re.compile(r"[A-Za-z0-9_-]*")
_DIGITS = re.compile(r"[0-9]+")  # a str pattern's [0-9] is ASCII only, unlike \d
_B45_TEXT = re.compile(r"[0-9A-Z $%*+\-./:]*")
# A triple c, d, e is c + 45 d + 2025 e <= 0xFFFF. With c + 45 d <= 2024, e <= 31 always fits,
# e >= 33 ("X" onwards) never does, and e = 32 ("W") fits when c + 45 d <= 735.
_B45_THIRD_OVERFLOWS = re.compile(r"[XYZ $%*+\-./:]")
_B45_W_ROOM = 0xFFFF - 32 * 45 * 45


class EncodingError(ValueError):
    """The text is not the one canonical spelling of any byte string."""


def b45encode(data: bytes) -> str:
    """Encode bytes as RFC 9285 base45 text."""
    return str(b45.encode(data))


def b45decode(text: str) -> bytes:
    """Decode RFC 9285 base45, refusing every text that is not the canonical encoding."""
    if len(text) % 3 == 1 or _B45_TEXT.fullmatch(text) is None:
        raise EncodingError("not base45")
    thirds = text[2::3]  # the last character of every full group
    if _B45_THIRD_OVERFLOWS.search(thirds) is not None:
        raise EncodingError("base45 group above 0xFFFF")
    if "W" in thirds:
        for group in range(len(thirds)):
            if thirds[group] == "W":
                low, high = text[3 * group], text[3 * group + 1]
                if _B45_VALUE[low] + 45 * _B45_VALUE[high] > _B45_W_ROOM:
                    raise EncodingError("base45 group above 0xFFFF")
    if len(text) % 3 == 2 and _B45_VALUE[text[-2]] + 45 * _B45_VALUE[text[-1]] > 0xFF:
        raise EncodingError("base45 final pair above 0xFF")
    return bytes(b45.decode(text))


def b64u_encode(data: bytes) -> str:
    """Encode bytes as base64url without padding (RFC 4648 §5)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    """Decode unpadded base64url, refusing padding, other alphabets and non-canonical tails."""
    if not isinstance(text, str) or _B64U_TEXT.fullmatch(text) is None or len(text) % 4 == 1:
        raise EncodingError("not unpadded base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise EncodingError("not base64url") from exc
    if b64u_encode(data) != text:
        raise EncodingError("base64url with stray bits in its last character")
    return data


def parse_digits(text: str, *, digits_max: int) -> int:
    """The number that 1 to `digits_max` ASCII digits spell; leading zeroes are allowed.

    Nothing else is a number here: no sign, space, underscore or decimal point, and none of the
    other digits Unicode knows. `int()` reads Arabic-Indic and fullwidth digits, underscores and
    surrounding spaces, and refuses more than 4,300 digits; `str.isdigit()` passes superscripts
    that `int()` then refuses: each once reached a server error."""
    assert 0 < digits_max <= 4300, "int() reads at most 4,300 digits"
    if not 0 < len(text) <= digits_max or _DIGITS.fullmatch(text) is None:
        raise EncodingError(f"not 1 to {digits_max} ASCII decimal digits")
    return int(text)
