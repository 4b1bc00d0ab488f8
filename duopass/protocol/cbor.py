"""Deterministic CBOR as PROTOCOL.md §2 demands: the one encoder and the one strict decoder.

The decoder accepts only what the encoder would write for the same value (shortest forms,
definite lengths, length-first map order, no duplicate keys) and only the items DP1 allows:
integers of absolute value below 2^53, byte and text strings, arrays, and maps with integer keys.
"""

from __future__ import annotations

from typing import Any, NoReturn

import cbor2

from duopass.protocol.limits import CBOR_DEPTH_MAX, INT_ABS_LIMIT

__all__ = [
    "CborValue",
    "MalformedError",
    "bytes_head",
    "bytes_size",
    "canonical_key_order",
    "check_keys",
    "check_tree",
    "dumps",
    "encoded",
    "int_size",
    "loads",
    "read_int",
    "text_size",
    "uint_size",
]

CborValue = int | bytes | str | list[Any] | dict[int, Any]


class MalformedError(ValueError):
    """Bytes that are not a well-formed DP1 value; a verifier reports MALFORMED."""


def _refuse_tag(*_args: object) -> NoReturn:
    raise MalformedError("CBOR tags are not allowed")


# Every tag cbor2 would decode itself is overridden, and every other one goes to the tag hook,
# so no semantic decoder (bigfloats, datetimes, sets) ever runs on untrusted bytes.
_NO_TAGS = dict.fromkeys(range(65_536), _refuse_tag)


def dumps(value: CborValue) -> bytes:
    """Encode a value deterministically (RFC 8949 §4.2.1, length-first map keys)."""
    return cbor2.dumps(value, canonical=True)


def bytes_head(size: int) -> bytes:
    """The head deterministic CBOR writes before a byte string of `size` bytes."""
    if size < 24:
        return _SHORT_BYTES_HEADS[size]
    if size < 0x100:
        return bytes((0x58, size))
    if size < 0x10000:
        return b"\x59" + size.to_bytes(2, "big")
    if size < 0x1_0000_0000:
        return b"\x5a" + size.to_bytes(4, "big")
    return b"\x5b" + size.to_bytes(8, "big")


_SHORT_BYTES_HEADS = [bytes((0x40 + size,)) for size in range(24)]


def encoded(value: CborValue) -> bytes:
    """The bytes a value returned by `loads` was decoded from (map order as decoded)."""
    return cbor2.dumps(value)


def loads(
    data: bytes,
    *,
    check_items: bool = True,
    reencode: bool = True,
    text_keys: bool = False,
    max_depth: int = CBOR_DEPTH_MAX,
) -> Any:
    """Decode one deterministic DP1 CBOR item; raises MalformedError for anything else.

    Re-encoding in decoded order and comparing refuses non-shortest forms, indefinite lengths and
    duplicate keys; the walk refuses items DP1 does not allow (floats, simple values, text keys,
    integers beyond 2^53) and map keys out of length-first order. `check_items=False` skips the
    walk, for a caller that checks the type of every item it accepts and the keys of every map of
    more than one key with `check_keys` (`parse_claims`, with `check_tree` on unknown claims); tags
    are refused either way. `reencode=False` skips the comparison, for a caller that compares the
    length instead, having typed every item (`decode_code`): the deterministic encoding is the only
    one of its length, and cbor2 ignores trailing bytes. `text_keys=True` also allows text map keys
    (the ledger's leaf bodies, §7), and the bytes must then equal the value's deterministic
    encoding.
    """
    try:
        value = cbor2.loads(
            data,
            semantic_decoders=_NO_TAGS,
            tag_hook=_refuse_tag,
            max_depth=max_depth,
            allow_indefinite=False,
            allow_duplicate_keys=False,
        )
    except MalformedError:
        raise
    except Exception as exc:  # cbor2 raises several types, RecursionError among them
        if isinstance(exc.__cause__, MalformedError):  # the tag hook refused a tag
            raise exc.__cause__ from None
        raise MalformedError(f"not CBOR: {type(exc).__name__}: {str(exc)[:120]}") from exc
    if check_items or text_keys:
        check_tree(value, text_keys=text_keys, max_depth=max_depth)
    if not reencode and not text_keys:
        return value
    again = dumps(value) if text_keys else encoded(value)
    if again != data:
        raise MalformedError("CBOR is not deterministically encoded")
    return value


def read_int(data: bytes, at: int) -> tuple[int, int]:
    """The integer whose deterministic encoding starts at `data[at]`, and where the next item
    starts: what `loads` then a re-encoding comparison accept of one integer, read in place
    (an L2 payload is two of them). Raises MalformedError for any other item or a longer head."""
    if at >= len(data):
        raise MalformedError("CBOR ends early")
    head = data[at]
    if head >= 0x40:  # major type 2 and above: no integer
        raise MalformedError("not an integer")
    value, end = head & 0x1F, at + 1
    if value >= 24:
        width = _ARGUMENT_WIDTHS.get(value, 0)
        end += width
        if not width or end > len(data):
            raise MalformedError("not CBOR: an integer's head is reserved or cut short")
        value = int.from_bytes(data[at + 1 : end], "big")
        if value < _SHORTEST_FROM[width]:
            raise MalformedError("CBOR is not deterministically encoded")
    return (value if head < 0x20 else -1 - value), end


_ARGUMENT_WIDTHS = {24: 1, 25: 2, 26: 4, 27: 8}
_SHORTEST_FROM = {1: 24, 2: 0x100, 4: 0x10000, 8: 0x1_0000_0000}
"""The smallest argument a head of each width may carry in deterministic CBOR."""


def check_tree(value: object, *, text_keys: bool = False, max_depth: int = CBOR_DEPTH_MAX) -> None:
    """Refuse any item outside DP1's list, at any depth (iterative: no recursion on input)."""
    if type(value) is not list and type(value) is not dict:
        _check_leaf(value)
        return
    pending: list[tuple[Any, int]] = [(value, max_depth)]
    while pending:
        container, depth = pending.pop()
        if depth <= 0:
            raise MalformedError("CBOR nested too deeply")
        if type(container) is list:
            children = container
        else:
            children = container.values()
            if text_keys:  # order and duplicates: the caller compares the canonical encoding
                _check_text_or_int_keys(container)
            else:
                check_keys(container)
        for child in children:
            kind = type(child)
            if kind is list or kind is dict:
                pending.append((child, depth - 1))
            elif kind is not bytes and kind is not str:
                _check_leaf(child)


def _check_leaf(item: object) -> None:
    if type(item) is int:
        if -INT_ABS_LIMIT < item < INT_ABS_LIMIT:
            return
        raise MalformedError("integer out of range")
    if type(item) is bytes or type(item) is str:
        return
    # bool, None, float, undefined, simple values, and anything else cbor2 makes
    raise MalformedError(f"CBOR item of type {type(item).__name__} is not allowed")


def check_keys(mapping: dict[Any, Any]) -> None:
    """Integer keys of DP1's range in strictly ascending length-first order (so no duplicates).

    Keys of one or two bytes, and `dp`'s (every key of a code's maps), are ranked by one lookup
    each; `True == 1` finds 1's rank, so the type is compared too."""
    previous = -1
    for key in mapping:
        rank = _SMALL_KEY_RANK.get(key)
        if rank is None or type(key) is not int:
            _check_any_keys(mapping)
            return
        if rank <= previous:
            raise MalformedError("map keys out of length-first order")
        previous = rank


def _check_any_keys(mapping: dict[Any, Any]) -> None:
    previous = (0, -1, 0)
    for key in mapping:
        if type(key) is not int:
            raise MalformedError("map keys must be integers")
        order = _SMALL_KEY_ORDER.get(key)
        if order is None:
            if not -INT_ABS_LIMIT < key < INT_ABS_LIMIT:
                raise MalformedError("integer out of range")
            order = canonical_key_order(key)
        if order <= previous:
            raise MalformedError("map keys out of length-first order")
        previous = order


def _check_text_or_int_keys(mapping: dict[Any, Any]) -> None:
    for key in mapping:
        if type(key) is str:
            continue
        if type(key) is not int:
            raise MalformedError("map keys must be integers or text")
        _check_leaf(key)


def bytes_size(length: int) -> int:
    """How many bytes deterministic CBOR takes for a byte string of `length` bytes, head and all
    (so also a text string of `length` bytes in UTF-8)."""
    return length + (1 if length < 24 else 2 if length < 0x100 else 3 if length < 0x10000 else 5)


def text_size(text: str) -> int:
    """How many bytes deterministic CBOR takes for a text string, head and all."""
    return bytes_size(len(text) if text.isascii() else len(text.encode()))


def uint_size(value: int) -> int:
    """How many bytes deterministic CBOR takes for an integer from 0 to 2^64 - 1."""
    return (
        1
        if value < 24
        else 2
        if value < 0x100
        else 3
        if value < 0x10000
        else 5
        if value < 0x1_0000_0000
        else 9
    )


def int_size(value: int) -> int:
    """How many bytes deterministic CBOR takes for an integer."""
    return canonical_key_order(value)[0]


def canonical_key_order(key: int) -> tuple[int, int, int]:
    """Sort key of an integer map key in RFC 7049 canonical (length-first) order: encoded length,
    then major type (unsigned before negative), then the encoded argument."""
    argument = key if key >= 0 else -1 - key
    if argument < 24:
        length = 1
    elif argument < 0x100:
        length = 2
    elif argument < 0x10000:
        length = 3
    elif argument < 0x1_0000_0000:
        length = 5
    else:
        length = 9
    return length, int(key < 0), argument


_SMALL_KEY_ORDER = {key: canonical_key_order(key) for key in (*range(-0x100, 0x100), -65537)}
"""Orders looked up, not computed: every key of one or two bytes, and -65537 (the `dp` claim)."""
_SMALL_KEY_RANK = {
    key: rank for rank, key in enumerate(sorted(_SMALL_KEY_ORDER, key=_SMALL_KEY_ORDER.__getitem__))
}
"""Each key of `_SMALL_KEY_ORDER` to its place in length-first order."""
