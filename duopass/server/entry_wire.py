"""Journal entries decoded in the signature worker (`services/journals/verifier`) and sent back
to the unit's thread as plain tuples in `marshal`'s format, which loads in a fraction of what
decoding costs (pickled objects cost most of it).

The worker runs the unit's own decoder (`parse_entry`, then `decode_code`, as
`journals.lookups.read_items` does); only an entry that parsed, whose seq is the one expected and
whose code decoded with a dynamic part is sent as a tuple. Any other (malformed, a static code,
an error) is `None`, and the unit's thread decodes it itself, so every reason for a rejection
is still its own. `rebuild` takes a tuple back to the `Entry` and `Code` the unit's thread would
have made: the credential is the one the server holds already verified for those exact bytes
(`credential_cache.VERIFIED`); an entry whose credential it does not hold is decoded by the unit's
thread too. This module imports only the protocol: the worker starts without the server.
"""

from __future__ import annotations

import marshal
from collections.abc import Mapping, Sequence
from typing import Any

from duopass.protocol.cbor import MalformedError
from duopass.protocol.code import Code, Credential, DynamicPart, FormatError, decode_code
from duopass.protocol.journal import Entry, parse_entry
from duopass.protocol.reasons import Reason
from duopass.protocol.verify import Mode

__all__ = ["WIRE_VERSION", "answer_bytes_max", "dump", "flatten", "load", "rebuild"]

WIRE_VERSION = 2
"""The answer's layout (its version, the request's number, the tuples); `load` refuses any other."""
_FIELDS = 17
"""seq, scanned_at, clock_offset, mode, amount, currency, venue, verdict, online, tried,
bundle_seq, code text; the L1's exact bytes; the L2's ctr, ts, signed bytes and signature."""
KNOWN_MAX = 4096
"""Credentials the worker keeps decoded between batches (then it starts over)."""
ANSWER_BYTES_PER_BYTE = 4
ANSWER_BYTES_PER_ENTRY = 512
"""What `dump` may write at most for an entry: a tuple holds the entry's text and bytes
fields (at most its own bytes: venue, currency, code) and the code's L1 and signed bytes (each at
most the code's length), so under three times the entry's bytes, and 17 fields' framing, numbers
(a marshal long of 2**64 is 15 bytes) and the mode's and verdict's words, well under 512."""
ANSWER_BYTES_HEAD = 64
"""The answer's own framing: the tuple of version, request number and list."""


def flatten(seq: int, raw: bytes, known: dict[bytes, Credential]) -> tuple[Any, ...] | None:
    """The worker's side: entry `seq`'s bytes decoded as the unit's thread decodes them, as a
    tuple; None for anything but a well-formed entry of that seq with a dynamic code."""
    try:
        entry = parse_entry(raw)
        if entry.seq != seq:
            return None
        code = decode_code(entry.code, known=known)
    except (MalformedError, FormatError):
        return None
    dynamic, credential = code.dynamic, code.credential
    if dynamic is None:
        return None
    if len(known) >= KNOWN_MAX:
        known.clear()
    known[credential.encoded] = credential
    return (
        entry.seq,
        entry.scanned_at,
        entry.clock_offset,
        entry.mode.value,
        entry.amount,
        entry.currency,
        entry.venue,
        entry.verdict.value,
        entry.online,
        entry.tried,
        entry.bundle_seq,
        entry.code,
        credential.encoded,
        dynamic.ctr,
        dynamic.ts,
        dynamic.signed,
        dynamic.signature,
    )


def answer_bytes_max(entry_bytes: int, count: int) -> int:
    """The most `dump` writes for `count` entries of `entry_bytes` bytes together: a longer
    answer is not one (the worker's reader refuses it before reading it)."""
    return ANSWER_BYTES_PER_BYTE * entry_bytes + ANSWER_BYTES_PER_ENTRY * count + ANSWER_BYTES_HEAD


def dump(
    request: int, entries: Sequence[tuple[int, bytes]], known: dict[bytes, Credential]
) -> bytes:
    """The worker's answer to decode request number `request`: one tuple (or None) an entry, in
    order, the request's number echoed."""
    flat = [flatten(seq, raw, known) for seq, raw in entries]
    return marshal.dumps((WIRE_VERSION, request, flat))


def load(data: bytes, count: int, request: int) -> list[tuple[Any, ...] | None] | None:
    """The worker's answer to decode request number `request` read back; None if it is not
    `count` answers of this layout to that request, or not marshal's format at all, whatever
    `marshal` raises on it (a length it would allocate for, say): the caller then decodes every
    entry itself."""
    try:
        version, number, flat = marshal.loads(data)  # noqa: S302 (our own worker's answer)
    except Exception:  # anything: the answer is refused, the entries decoded by the caller
        return None
    if version != WIRE_VERSION or number != request or type(number) is not int:
        return None
    if type(flat) is not list or len(flat) != count:
        return None
    if not all(one is None or (type(one) is tuple and len(one) == _FIELDS) for one in flat):
        return None
    return flat


_MODES = {mode.value: mode for mode in Mode}
_REASONS = {reason.value: reason for reason in Reason}
_new = object.__new__
_SET_CREDENTIAL, _SET_DYNAMIC = (Code.__dict__[name].__set__ for name in ("credential", "dynamic"))
_SET_CTR, _SET_TS, _SET_SIGNED, _SET_SIGNATURE = (
    DynamicPart.__dict__[name].__set__ for name in ("ctr", "ts", "signed", "signature")
)


def rebuild(
    seq: int, flat: tuple[Any, ...], known: Mapping[bytes, Credential]
) -> tuple[Entry, Code] | None:
    """The unit's side: the entry and code of a tuple for `seq`, the credential the one `known`
    holds for the L1's bytes; None if it holds none, or the tuple is not one `flatten` makes for
    that seq (the caller decodes the entry itself)."""
    (s, scanned, offset, mode, amount, currency, venue, verdict, *rest) = flat
    online, tried, bundle_seq, text, l1, ctr, ts, signed, signature = rest
    if type(l1) is not bytes or type(mode) is not str or type(verdict) is not str:
        return None
    credential, mode, verdict = known.get(l1), _MODES.get(mode), _REASONS.get(verdict)
    if s != seq or credential is None or mode is None or verdict is None:
        return None
    entry: Entry = _new(Entry)  # as `journal._new_entry` makes one
    vars(entry).update(
        seq=s,
        scanned_at=scanned,
        clock_offset=offset,
        mode=mode,
        amount=amount,
        currency=currency,
        venue=venue,
        verdict=verdict,
        online=online,
        tried=tried,
        bundle_seq=bundle_seq,
        code=text,
    )
    dynamic = _new(DynamicPart)  # as `code._decode_dynamic` makes one
    _SET_CTR(dynamic, ctr)
    _SET_TS(dynamic, ts)
    _SET_SIGNED(dynamic, signed)
    _SET_SIGNATURE(dynamic, signature)
    code = _new(Code)
    _SET_CREDENTIAL(code, credential)
    _SET_DYNAMIC(code, dynamic)
    return entry, code
