"""Text encodings of the protocol: strict base45 (RFC 9285), unpadded base64url, and decimal
numbers in ASCII digits (every number that arrives as text from outside is read by `parse_digits`).

Both decoders accept exactly one spelling per byte string. Base45 is decoded by big-integer
arithmetic on every group at once (about three times faster than the numpy-vectorised `b45`
package, which stays the encoder and is imported only by it): the text is mapped to digit values
by one `bytes.translate`, a character outside the alphabet refused there, and a group whose value
overflows 0xFFFF refused by its 24-bit lane (a test compares this with re-encoding, the definition
of canonical).
"""

from __future__ import annotations

import base64
import binascii
import re

from duopass.protocol.limits import CODE_CHARS_MAX

__all__ = [
    "EncodingError",
    "b45decode",
    "b45encode",
    "b64u_decode",
    "b64u_encode",
    "parse_digits",
]

_B45_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_B45_NOT_A_DIGIT = 0xFF
_B45_DIGITS = bytes(
    _B45_ALPHABET.index(chr(b)) if chr(b) in _B45_ALPHABET else _B45_NOT_A_DIGIT for b in range(256)
)
"""`bytes.translate` table: an ASCII character to its base45 value, anything else to 0xFF."""
_B45_GROUPS_CACHED = CODE_CHARS_MAX // 3
_B64U_TEXT = re.compile(r"[A-Za-z0-9_-]*")
_DIGITS = re.compile(r"[0-9]+")  # a str pattern's [0-9] is ASCII only, unlike \d


class EncodingError(ValueError):
    """The text is not the one canonical spelling of any byte string."""


def b45encode(data: bytes) -> str:
    """Encode bytes as RFC 9285 base45 text."""
    import b45  # numpy-backed: loaded only where codes are made, never on the verify path

    return str(b45.encode(data))


def b45decode(text: str) -> bytes:
    """Decode RFC 9285 base45, refusing every text that is not the canonical encoding.

    Every full group c, d, e sits in a 24-bit lane of one integer; c + 45 d + 2025 e is computed
    for all lanes at once (at most 91,124: no carry between lanes), and a nonzero top byte in a
    lane is a group above 0xFFFF."""
    size = len(text)
    if size % 3 == 1 or not text.isascii():
        raise EncodingError("not base45")
    digits = text.encode("ascii").translate(_B45_DIGITS)
    if _B45_NOT_A_DIGIT in digits:
        raise EncodingError("not base45")
    groups, tail = divmod(size, 3)
    full = size - tail
    lanes = int.from_bytes(digits[:full] if tail else digits, "big")
    low = _LANE_MASKS.get(groups) or _lane_mask(groups)  # lane masks of the codes seen, kept
    values = ((lanes >> 16) & low) + 45 * ((lanes >> 8) & low) + 2025 * (lanes & low)
    if values & (low << 16):  # a lane's top byte
        raise EncodingError("base45 group above 0xFFFF")
    spread = values.to_bytes(full, "big")
    out = bytearray(2 * groups + tail // 2)
    out[0 : 2 * groups : 2] = spread[1::3]
    out[1 : 2 * groups : 2] = spread[2::3]
    if tail:
        pair = digits[-2] + 45 * digits[-1]
        if pair > 0xFF:
            raise EncodingError("base45 final pair above 0xFF")
        out[-1] = pair
    return bytes(out)


def _lane_mask(groups: int) -> int:
    """The low byte of each of `groups` 24-bit lanes set; kept for a code's length (at most
    CODE_CHARS_MAX characters: a bounded cache)."""
    mask = int.from_bytes(b"\0\0\xff" * groups, "big")
    if groups <= _B45_GROUPS_CACHED:
        _LANE_MASKS[groups] = mask
    return mask


_LANE_MASKS: dict[int, int] = {}


def b64u_encode(data: bytes) -> str:
    """Encode bytes as base64url without padding (RFC 4648 §5)."""
    encoded = binascii.b2a_base64(data, newline=False).rstrip(b"=")
    return encoded.translate(_B64U_FROM_STANDARD).decode("ascii")


_B64U_FROM_STANDARD = bytes.maketrans(b"+/", b"-_")


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
