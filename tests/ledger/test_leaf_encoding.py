"""A leaf's bytes are the protocol core's deterministic CBOR whatever path `encode_leaf` takes:
the keys it orders itself (text of every length and script, integers) and the items it leaves
to the core's encoder (booleans, null) give what the core's encoder gives, and parse back."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from duopass.ledger.leaf import encode_leaf, parse_leaf
from duopass.protocol.cbor import dumps

_keys = st.one_of(st.text(max_size=30), st.integers(-(2**40), 2**40))
_atoms = st.one_of(
    st.integers(-(2**53) + 1, 2**53 - 1), st.text(max_size=40), st.binary(max_size=40)
)
_values = st.recursive(
    st.one_of(_atoms, st.booleans(), st.none()),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_keys, inner, max_size=6)),
    max_leaves=20,
)


@settings(max_examples=100, deadline=None)
@given(body=st.dictionaries(_keys, _values, max_size=10))
def test_the_bytes_are_the_deterministic_encoding(body):
    expected = dumps({1: "test", 2: 1_700_000_000, 3: "demo-univ", 4: body})
    assert encode_leaf("test", 1_700_000_000, "demo-univ", body) == expected


@settings(max_examples=50, deadline=None)
@given(body=st.dictionaries(st.text(min_size=1, max_size=20), _atoms, max_size=10))
def test_a_body_of_text_keys_parses_back(body):
    leaf = parse_leaf(encode_leaf("payment", 5, "demo-univ", body))
    assert (leaf.type, leaf.time, leaf.iss, leaf.body) == ("payment", 5, "demo-univ", body)
