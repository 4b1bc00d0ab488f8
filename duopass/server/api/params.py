"""Numbers in paths and query strings: ASCII digits only, as every number from outside.

Pydantic's lax integers read `1_000`, ` 5`, `+5` and `5.0` from a query string; a number has one
spelling here. Use as `Annotated[int, Query(ge=0, le=N), Digits]`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import BeforeValidator

from duopass.protocol.encoding import EncodingError, b64u_decode, parse_digits
from duopass.server.limits import ID_CHARS_MAX, PARAM_DIGITS_MAX
from duopass.server.problems import Problem, ProblemCode

__all__ = ["Digits", "Handle"]


def _ascii_digits(value: object) -> object:
    if not isinstance(value, str):
        return value  # a default, not from outside
    try:
        return parse_digits(value, digits_max=PARAM_DIGITS_MAX)
    except EncodingError as exc:
        raise ValueError(f"expected 1 to {PARAM_DIGITS_MAX} ASCII digits") from exc


Digits = BeforeValidator(_ascii_digits)


Handle = Annotated[
    str,
    Path(
        min_length=1,
        max_length=ID_CHARS_MAX,
        pattern=r"^[!-~]+$",
        description="the holder's handle (h-...)",
    ),
]
"""A holder's handle in a path: printable ASCII, so no NUL or control reaches the store."""


def device_key(text: str) -> bytes:
    """A device's public key from a body: unpadded base64url of 32 bytes, else 422."""
    try:
        key = b64u_decode(text)
    except EncodingError as exc:
        raise Problem(ProblemCode.INVALID_REQUEST, "not unpadded base64url") from exc
    if len(key) != 32:
        raise Problem(ProblemCode.INVALID_REQUEST, "a device key has 32 bytes")
    return key
