"""Terminal journals (§5): one entry per decision, uploaded in signed batches chained by hash.
The entry fields are a format §8 leaves to the implementation (docs/protocol-core.md, vectors in
docs/vectors/journal.json).

An entry is the deterministic CBOR map

    {1: seq, 2: scanned_at (terminal clock, Unix s), 3: clock_offset (server - terminal, s, at the
     last sync), 4: mode ("pay" | "entry" | "identity"), 5: amount (pay only), 6: currency (pay
     only), 7: venue (absent when none), 8: verdict (a §3 reason, INSUFFICIENT_FUNDS online,
     or INTERRUPTED: the terminal stopped before giving one), 9: decided (0 offline,
     1 online: the server's verdict), 10: tried (0 | 1: the server was asked), 11: bundle seq held,
     12: the whole code text}

and a batch an untagged COSE_Sign1 by the terminal key (protected `{1: -8, 4: kid}`) over

    {1: 1 (version), 2: terminal_id, 3: first seq, 4: last seq,
     5: SHA-256 of the previous batch's exact bytes (32 zero bytes before the first),
     6: [entry bytes, ...] (each entry's own CBOR, as a byte string, seq first..last)}

Entries travel as byte strings so that "the bytes stored for (terminal_id, seq)" (§5.2) are
exactly what the terminal signed, and so that one malformed entry does not hide the others: the
batch is refused as a whole only when its envelope or signature is bad.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final

from duopass.protocol.cbor import (
    MalformedError,
    check_keys,
    dumps,
    loads,
    text_size,
    uint_size,
)
from duopass.protocol.code import SignerError, open_signed
from duopass.protocol.cose import l1_protected, sign1
from duopass.protocol.keys import SigningKey
from duopass.protocol.limits import (
    CODE_CHARS_MAX,
    CURRENCY_CHARS,
    INT_ABS_LIMIT,
    VENUE_CHARS_MAX,
)
from duopass.protocol.reasons import Reason
from duopass.protocol.verify import Mode

__all__ = [
    "BATCH_BYTES_MAX",
    "BATCH_ENTRIES_MAX",
    "GENESIS",
    "Batch",
    "Entry",
    "JournalError",
    "batch_hash",
    "encode_batch",
    "encode_entry",
    "open_batch",
    "parse_entry",
]

JOURNAL_VERSION: Final = 1
BATCH_ENTRIES_MAX: Final = 500
"""Most entries in one batch."""
BATCH_BYTES_MAX: Final = 1024 * 1024
"""Largest signed batch: 500 entries of the longest codes fit with room to spare."""
ENTRY_BYTES_MAX: Final = 2048
TERMINAL_ID_CHARS_MAX: Final = 64
GENESIS: Final = bytes(32)
"""The `prev` of a terminal's first batch."""

_ENTRY_KEYS_PAY: Final = frozenset({1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12})
_ENTRY_KEYS_OTHER: Final = frozenset({1, 2, 3, 4, 8, 9, 10, 11, 12})
_MODES: Final = {mode.value: mode for mode in Mode}
_REASONS: Final = {reason.value: reason for reason in Reason}
"""By text (a dict lookup: the enum's own call costs a few times more, on every entry)."""


class JournalError(ValueError):
    """A batch the server refuses as a whole: malformed envelope or bad signature."""


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One terminal decision (§5)."""

    seq: int
    scanned_at: int
    clock_offset: int
    mode: Mode
    amount: int | None
    currency: str | None
    venue: str | None
    verdict: Reason
    online: bool
    """The verdict is the server's (online); False: the terminal decided offline."""
    tried: bool
    """The server was asked (an offline verdict after a timeout or error has tried=True)."""
    bundle_seq: int
    code: str

    @property
    def server_time(self) -> int:
        """The scan time on the server's clock, as the terminal last knew the offset."""
        return self.scanned_at + self.clock_offset

    @property
    def charges(self) -> bool:
        """An accepted payment: it moves money."""
        return self.mode is Mode.PAY and self.verdict is Reason.OK


@dataclass(frozen=True)
class Batch:
    terminal_id: str
    first: int
    last: int
    prev: bytes
    entries: tuple[bytes, ...]
    """Each entry's exact bytes, seq `first + i` at position i."""
    digest: bytes
    """SHA-256 of the batch's exact bytes: the next batch's `prev`."""


def encode_entry(entry: Entry) -> bytes:
    body: dict[int, Any] = {
        1: entry.seq,
        2: entry.scanned_at,
        3: entry.clock_offset,
        4: entry.mode.value,
        8: entry.verdict.value,
        9: int(entry.online),
        10: int(entry.tried),
        11: entry.bundle_seq,
        12: entry.code,
    }
    if entry.mode is Mode.PAY:
        body[5], body[6] = entry.amount, entry.currency
    if entry.venue is not None:
        body[7] = entry.venue
    return dumps(body)


def parse_entry(data: bytes) -> Entry:
    """An entry from its bytes; raises MalformedError for anything but a well-formed entry.

    Every value is typed below and the keys checked in order (`check_keys`), so the decoder's
    walk of the map is not needed, and the re-encoding comparison is a length comparison."""
    if len(data) > ENTRY_BYTES_MAX:
        raise MalformedError("entry too large")
    body = loads(data, check_items=False, reencode=False)  # the length is compared below
    if type(body) is not dict:
        raise MalformedError("entry is not a map")
    check_keys(body)
    if None in body.values():  # `get` would read a null venue as none
        raise MalformedError("null is not a DP1 item")
    mode, verdict = _MODES.get(_word(body.get(4))), _REASONS.get(_word(body.get(8)))
    if mode is None or verdict is None:
        raise MalformedError("entry mode or verdict unknown")
    keys = body.keys() - {7}
    if keys != (_ENTRY_KEYS_PAY if mode is Mode.PAY else _ENTRY_KEYS_OTHER):
        raise MalformedError("entry fields")
    venue = body.get(7)
    entry = _new_entry(
        seq=_count(body[1], low=1),
        scanned_at=_count(body[2]),
        clock_offset=_integer(body[3]),
        mode=mode,
        amount=_count(body[5], low=1) if mode is Mode.PAY else None,
        currency=_text(body[6], CURRENCY_CHARS, CURRENCY_CHARS) if mode is Mode.PAY else None,
        venue=None if venue is None else _text(venue, VENUE_CHARS_MAX),
        verdict=verdict,
        online=_flag(body[9]),
        tried=_flag(body[10]),
        bundle_seq=_count(body[11]),
        code=_text(body[12], CODE_CHARS_MAX),
    )
    if len(data) != _encoded_size(body):
        raise MalformedError("CBOR is not deterministically encoded")
    return entry


def _new_entry(**fields: Any) -> Entry:
    """`Entry(**fields)` without the frozen `__init__`'s `object.__setattr__` call a field (every
    field is given; a journal batch parses 500 entries), as `code._new_code` makes a Code."""
    entry: Entry = object.__new__(Entry)
    vars(entry).update(fields)
    return entry


def _encoded_size(body: dict[int, Any]) -> int:
    """The length of the deterministic encoding of an entry `parse_entry` typed: integers and
    texts under the 1-byte keys 1 to 12. Every item typed, a longer head is a longer encoding
    (and cbor2's trailing bytes a longer entry), so this length is the re-encoding comparison."""
    size = 1 + len(body)  # the map's head, the keys
    for value in body.values():
        if type(value) is str:
            size += text_size(value)
        else:
            size += uint_size(value if value >= 0 else -1 - value)
    return size


def encode_batch(
    key: SigningKey, terminal_id: str, *, first: int, prev: bytes, entries: list[bytes]
) -> bytes:
    """A signed batch of entries `first ..`, chained to the previous batch's digest."""
    if not entries or len(entries) > BATCH_ENTRIES_MAX:
        raise ValueError("a batch holds 1 to BATCH_ENTRIES_MAX entries")
    body = {
        1: JOURNAL_VERSION,
        2: terminal_id,
        3: first,
        4: first + len(entries) - 1,
        5: prev,
        6: entries,
    }
    return dumps(sign1(key, l1_protected(key.kid), dumps(body)))


def batch_hash(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def open_batch(data: bytes, terminal_public: bytes) -> Batch:
    """Verify a batch against the terminal's enrolled key and parse its envelope (entries stay
    bytes, for `parse_entry` one by one). Raises JournalError."""
    if len(data) > BATCH_BYTES_MAX:
        raise JournalError("batch too large")
    try:
        body = loads(open_signed(data, terminal_public))
        if type(body) is not dict or set(body) != {1, 2, 3, 4, 5, 6} or body[1] != JOURNAL_VERSION:
            raise MalformedError("not a version 1 batch")
        first, last, entries = _count(body[3], low=1), _count(body[4], low=1), body[6]
        if type(entries) is not list or not 1 <= len(entries) <= BATCH_ENTRIES_MAX:
            raise MalformedError("batch entries")
        if last != first + len(entries) - 1:
            raise MalformedError("batch seq range does not match its entries")
        if not all(type(entry) is bytes for entry in entries):
            raise MalformedError("batch entries are byte strings")
        prev = body[5]
        if type(prev) is not bytes or len(prev) != len(GENESIS):
            raise MalformedError("batch prev")
        terminal_id = _text(body[2], TERMINAL_ID_CHARS_MAX)
    except SignerError as exc:
        raise JournalError(f"batch refused, this terminal's key: {exc}") from exc
    except MalformedError as exc:
        raise JournalError(f"malformed batch: {exc}") from exc
    return Batch(terminal_id, first, last, prev, tuple(entries), batch_hash(data))


def _count(value: object, *, low: int = 0) -> int:
    if type(value) is not int or not low <= value < INT_ABS_LIMIT:
        raise MalformedError("journal integer out of range")
    return value


def _integer(value: object) -> int:
    if type(value) is not int or not -INT_ABS_LIMIT < value < INT_ABS_LIMIT:
        raise MalformedError("journal integer")
    return value


def _word(value: object) -> str:
    """A text to look up, or "" (never a known one) for any other item (lists cannot be keys)."""
    return value if type(value) is str else ""


def _flag(value: object) -> bool:
    if value not in (0, 1) or type(value) is not int:
        raise MalformedError("journal flag is 0 or 1")
    return value == 1


def _text(value: object, high: int, low: int = 1) -> str:
    if type(value) is not str or not low <= len(value) <= high:
        raise MalformedError("journal text")
    return value
