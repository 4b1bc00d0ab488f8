"""The length comparisons that stand for §2's re-encoding (an L1 payload, a journal entry) refuse
exactly what decoding, re-encoding and comparing refuses: the two paths are run side by side on
payloads written with heads longer than they need, explicit defaults and nulls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from duopass.protocol.cbor import MalformedError, loads, read_int
from duopass.protocol.claims import DP, decode_claims, encode_claims, parse_claims
from duopass.protocol.journal import Entry, encode_entry, parse_entry
from duopass.protocol.reasons import Reason
from duopass.protocol.verify import Mode
from tests.protocol.strategies import claims

Draw = Callable[[st.SearchStrategy[int]], int]


def _head(draw: Draw, major: int, argument: int, loose: bool) -> bytes:
    """A CBOR head, the shortest form unless `loose` draws a longer one."""
    widths = [width for width in (0, 1, 2, 4, 8) if argument < (24 if width == 0 else 256**width)]
    width = draw(st.sampled_from(widths)) if loose else widths[0]
    if width == 0:
        return bytes([major << 5 | argument])
    info = {1: 24, 2: 25, 4: 26, 8: 27}[width]
    return bytes([major << 5 | info]) + argument.to_bytes(width, "big")


def _encode(draw: Draw, value: Any, loose: bool) -> bytes:
    """CBOR of `value` in its own order, each head drawn shortest or longer when `loose`."""
    if value is None:
        return b"\xf6"
    if type(value) is int:
        major, argument = (0, value) if value >= 0 else (1, -1 - value)
        return _head(draw, major, argument, loose)
    if isinstance(value, bytes):
        return _head(draw, 2, len(value), loose) + value
    if isinstance(value, str):
        raw = value.encode()
        return _head(draw, 3, len(raw), loose) + raw
    if type(value) is list:
        items = b"".join(_encode(draw, item, loose) for item in value)
        return _head(draw, 4, len(value), loose) + items
    pairs = b"".join(_encode(draw, k, loose) + _encode(draw, v, loose) for k, v in value.items())
    return _head(draw, 5, len(value), loose) + pairs


def _old(payload: bytes) -> object:
    """Decode, re-encode and compare, then parse: the definition of a well-formed payload."""
    try:
        value = loads(payload, check_items=False)
        if None in value.values() or None in value.get(DP, {}).values():
            raise MalformedError("null")
        return parse_claims(value)
    except MalformedError:
        return MalformedError


def _new(payload: bytes) -> object:
    try:
        return decode_claims(payload)
    except MalformedError:
        return MalformedError


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    value = loads(encode_claims(draw(claims())))
    dp = value[DP]
    for key, default in ((7, 0), (8, 1)):  # gen, ent written out at their default
        if key not in dp and draw(st.booleans()):
            dp[key] = default
    if draw(st.integers(0, 9)) == 0:  # an explicit null where an optional claim may be
        target, key = draw(st.sampled_from([(value, 5), (dp, 2), (dp, 4), (dp, 6), (dp, 7)]))
        target.setdefault(key, None)
    if draw(st.integers(0, 9)) == 0:  # an unknown claim
        value[draw(st.sampled_from([3, 9, 100, -70000]))] = draw(st.sampled_from([0, "x", [1]]))
    for mapping in (value, dp):  # keys back in length-first order after the additions
        ordered = sorted(mapping.items(), key=lambda item: _key_order(item[0]))
        mapping.clear()
        mapping.update(ordered)
    return _encode(draw, value, draw(st.booleans()))


@settings(max_examples=300, deadline=None)
@given(payloads())
def test_the_length_check_refuses_what_re_encoding_refuses(payload: bytes):
    assert _new(payload) == _old(payload)


@given(st.data())
def test_a_loose_head_anywhere_in_an_entry_is_refused(data: st.DataObject):
    entry = Entry(
        seq=data.draw(st.integers(1, 2**53 - 1)),
        scanned_at=data.draw(st.integers(0, 2**53 - 1)),
        clock_offset=data.draw(st.integers(-(2**53) + 1, 2**53 - 1)),
        mode=Mode.PAY,
        amount=data.draw(st.integers(1, 2**40)),
        currency="CNY",
        venue=data.draw(st.none() | st.text(min_size=1, max_size=64)),
        verdict=Reason.OK,
        online=data.draw(st.booleans()),
        tried=False,
        bundle_seq=data.draw(st.integers(0, 2**53 - 1)),
        code="DP1:" + data.draw(st.text(min_size=1, max_size=300)),
    )
    canonical = encode_entry(entry)
    assert parse_entry(canonical) == entry
    loose = _encode(data.draw, loads(canonical), True)
    if loose != canonical:
        with pytest.raises(MalformedError):
            parse_entry(loose)
    with pytest.raises(MalformedError):
        parse_entry(canonical + b"\x00")


@st.composite
def integer_heads(draw: st.DrawFn) -> bytes:
    """An integer with a head of any width, or any few bytes, then anything."""
    value = draw(st.integers(-(2**64), 2**64 - 1))
    major, argument = (0, value) if value >= 0 else (1, -1 - value)
    head = _head(draw, major, argument, True)
    start = head if draw(st.booleans()) else draw(st.binary(max_size=9))
    return start + draw(st.binary(max_size=2))


@settings(max_examples=300, deadline=None)
@given(integer_heads())
def test_read_int_takes_exactly_the_one_integer_loads_accepts(data: bytes):
    """The L2 payload's integers are read in place: what `read_int` reads is the integer that
    decoding the same bytes and comparing its re-encoding accepts, and nothing else is read."""
    try:
        read: object = read_int(data, 0)
    except MalformedError:
        read = MalformedError
    decoded: object = MalformedError
    for end in range(1, min(len(data), 9) + 1):
        try:
            value = loads(data[:end], check_items=False)
        except MalformedError:
            continue
        decoded = (value, end) if type(value) is int else MalformedError
        break
    assert read == decoded


def test_an_explicit_null_is_malformed_in_claims_and_entries():
    payload = loads(encode_claims(_purse()))
    payload[5] = None  # nbf: null
    payload = dict(sorted(payload.items(), key=lambda item: _key_order(item[0])))
    with pytest.raises(MalformedError):
        decode_claims(_encode_plain(payload))
    entry = loads(encode_entry(_entry()))
    entry[7] = None  # venue: null
    with pytest.raises(MalformedError):
        parse_entry(_encode_plain(dict(sorted(entry.items()))))


def _key_order(key: int) -> tuple[int, bytes]:
    encoded = _encode_plain(key)
    return len(encoded), encoded


def _encode_plain(value: Any) -> bytes:
    return _encode(lambda _strategy: 0, value, False)


def _purse() -> Any:
    from tests.protocol.test_properties import PURSE

    return PURSE


def _entry() -> Entry:
    return Entry(
        seq=1,
        scanned_at=10,
        clock_offset=-3,
        mode=Mode.IDENTITY,
        amount=None,
        currency=None,
        venue="gate",
        verdict=Reason.OK,
        online=False,
        tried=False,
        bundle_seq=1,
        code="DP1:X",
    )
