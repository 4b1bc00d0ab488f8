"""The §7 leaf `{1: type, 2: time, 3: iss, 4: body}` in deterministic CBOR: its encoder and its
strict decoder, both the protocol core's one CBOR (`protocol.cbor`, the ledger's only import of
the core).

Body maps have text keys (the code's integer-key rule is for DP1 codes) and hold integers, text,
bytes, and lists or maps of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from duopass.ledger.errors import LedgerError, LedgerReason
from duopass.protocol.cbor import MalformedError, dumps, encoded, loads

__all__ = ["LEAF_DEPTH_MAX", "Leaf", "encode_leaf", "parse_leaf"]

LEAF_DEPTH_MAX: Final = 16
"""CBOR nesting in a leaf: the leaf map, its body, and lists or maps within the body."""

_LEAF_KEYS: Final = frozenset({1, 2, 3, 4})


@dataclass(frozen=True, slots=True)
class Leaf:
    """A well-formed §7 leaf: the deterministic CBOR map `{1: type, 2: time, 3: iss, 4: body}`."""

    type: str
    time: int
    iss: str
    body: dict[str, Any]


def _malformed(detail: str) -> LedgerError:
    return LedgerError(LedgerReason.MALFORMED, detail)


def encode_leaf(event_type: str, time: int, iss: str, body: Mapping[str, Any]) -> bytes:
    """The exact bytes of a leaf (§7): the protocol core's deterministic CBOR. A body of the
    usual items is put in length-first key order here and encoded in that order, the same bytes
    at a fifth of the cost of the encoder's own sorting (a journal batch writes 500 leaves);
    anything else goes to the core's encoder."""
    try:
        ordered = {1: event_type, 2: time, 3: iss, 4: _ordered(body)}
    except _Unusual:
        return dumps({1: event_type, 2: time, 3: iss, 4: dict(body)})
    return encoded(ordered)


class _Unusual(Exception):
    """An item `_ordered` leaves to the core's encoder."""


_ATOMS: Final = frozenset({int, str, bytes})
_KEY_ORDER: dict[object, tuple[int, bytes]] = {}
"""Map keys (text and integers, a small vocabulary) by their length-first sort key."""
_ORDERS: dict[tuple[object, ...], tuple[object, ...]] = {}
"""Text keys of a map as given -> in length-first order: the bodies of an event type come with
the same keys in the same order (a journal batch's 500 payments), sorted once."""


def _key_order(key: object) -> tuple[int, bytes]:
    order = _KEY_ORDER.get(key)
    if order is None:
        if type(key) is not str and type(key) is not int:
            raise _Unusual
        head = encoded(key)
        order = (len(head), head)
        if len(_KEY_ORDER) < 4096:
            _KEY_ORDER[key] = order
    return order


def _ordered(value: Any) -> Any:
    """`value` with every map's keys in length-first order (RFC 8949 §4.2.3, as `dumps`); raises
    `_Unusual` for any item other than integers, text, bytes, lists and maps."""
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is dict or isinstance(value, Mapping):
        keys = tuple(value)
        order = _ORDERS.get(keys)
        if order is None:
            order = tuple(sorted(keys, key=_key_order))
            if len(_ORDERS) < 4096 and all(type(key) is str for key in keys):  # 1 == True
                _ORDERS[keys] = order
        ordered = {}
        for key in order:
            item = value[key]
            ordered[key] = item if type(item) in _ATOMS else _ordered(item)
        return ordered
    if kind is list or kind is tuple:
        return [item if type(item) in _ATOMS else _ordered(item) for item in value]
    raise _Unusual


def parse_leaf(data: bytes) -> Leaf:
    """Decode one entry as a §7 leaf; raise `LedgerError` (MALFORMED) for anything else.

    Body maps have text keys and hold integers, text, bytes, and lists or maps of them; the bytes
    must be the one deterministic encoding (RFC 8949 §4.2.1, length-first keys) of the value. The
    decoder is the protocol core's (`protocol.cbor`), with text keys allowed."""
    try:
        value = loads(data, text_keys=True, max_depth=LEAF_DEPTH_MAX)
    except MalformedError as exc:
        raise _malformed(f"not CBOR as a leaf must be: {str(exc)[:200]}") from exc
    if (
        type(value) is not dict
        or any(type(k) is not int for k in value)
        or value.keys() != _LEAF_KEYS
    ):
        raise _malformed("not a map of exactly the keys 1, 2, 3 and 4")
    event_type, time, iss, body = value[1], value[2], value[3], value[4]
    if type(event_type) is not str or not event_type:
        raise _malformed("the event type (1) is not a non-empty text string")
    if type(time) is not int or time < 0:
        raise _malformed("the time (2) is not an unsigned integer")
    if type(iss) is not str or not iss:
        raise _malformed("the issuer (3) is not a non-empty text string")
    if type(body) is not dict:
        raise _malformed("the body (4) is not a map")
    _check_body(body)
    return Leaf(event_type, time, iss, body)


def _check_body(body: dict[Any, Any]) -> None:
    pending: list[object] = [body]
    while pending:  # depth is bounded by the decoder's max_depth
        item = pending.pop()
        if type(item) is dict:
            if any(type(key) is not str for key in item):
                raise _malformed("a body map has a key that is not a text string")
            pending.extend(item.values())
        elif type(item) is list:
            pending.extend(item)
        elif type(item) not in (int, str, bytes):
            raise _malformed(f"the body holds a {type(item).__name__}")
