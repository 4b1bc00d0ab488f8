"""Strict text pieces shared by notes, checkpoints and receipts: base64, decimals, control bytes."""

from __future__ import annotations

import base64
import binascii
import re

from duopass.ledger.errors import LedgerError, LedgerReason

__all__ = ["b64decode", "b64encode", "has_control", "parse_decimal"]

_B64_TEXT = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_DECIMAL = re.compile(r"0|[1-9][0-9]*", re.ASCII)


def b64encode(data: bytes) -> str:
    """Standard padded base64 (RFC 4648 §4)."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str, what: str) -> bytes:
    """Decode standard padded base64, refusing every spelling but the canonical one."""
    if _B64_TEXT.fullmatch(text) is None:
        raise LedgerError(LedgerReason.MALFORMED, f"{what} is not padded base64")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise LedgerError(LedgerReason.MALFORMED, f"{what} is not padded base64") from exc
    if b64encode(data) != text:
        raise LedgerError(LedgerReason.MALFORMED, f"{what} has stray bits in its last character")
    return data


def parse_decimal(text: str, what: str, *, limit: int) -> int:
    """An ASCII decimal without leading zeroes (or `0`), at most `limit`. (The ledger reads only
    `protocol.cbor` of the core, so it checks its digits itself: ASCII only, before `int`.)"""
    if _DECIMAL.fullmatch(text) is None or len(text) > len(str(limit)):
        raise LedgerError(LedgerReason.MALFORMED, f"{what} is not a canonical decimal")
    value = int(text)
    if str(value) != text:
        raise LedgerError(LedgerReason.MALFORMED, f"{what} is not a canonical decimal")
    if value > limit:
        raise LedgerError(LedgerReason.MALFORMED, f"{what} is above {limit}")
    return value


def has_control(text: str) -> bool:
    """Whether text holds an ASCII control character other than newline (signed-note forbids)."""
    return _CONTROL.search(text) is not None
