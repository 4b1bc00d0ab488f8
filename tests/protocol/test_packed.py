"""The packed sets a trust store holds its revocations and freezes in (protocol.packed): exactly
the set of what went in, and through deltas."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from duopass.protocol.packed import INDEX_FROM, Freezes, PackedSet, Revocations
from duopass.protocol.trust import TrustStore, dump_trust_store, parse_trust_store

# Few letters and short strings, so that entries share prefixes and a query often sits across
# two entries of the buffer ("ab" + "cd" holds "bc").
values = st.binary(min_size=0, max_size=4).map(lambda b: bytes(x % 3 for x in b))


@given(st.lists(values), st.lists(values))
def test_a_packed_set_holds_exactly_what_went_in(items, queries):
    packed = PackedSet(items)
    assert len(packed) == len(set(items))
    assert sorted(packed) == sorted(set(items))
    for query in queries + items:
        assert (query in packed) == (query in set(items))
    assert PackedSet.from_groups(packed.groups()) == packed


@given(st.lists(values), st.lists(values), st.lists(values), st.lists(values))
def test_a_patch_is_remove_then_add(items, added, removed, queries):
    patched = PackedSet(items).patch(added, removed)
    expected = (set(items) - set(removed)) | set(added)
    assert set(patched) == expected and len(patched) == len(expected)
    for query in queries + items + added + removed:
        assert (query in patched) == (query in expected)


def test_a_query_across_two_entries_is_not_a_member():
    packed = PackedSet([b"ab", b"cd", b"ef"])
    assert b"bc" not in packed and b"de" not in packed and b"cd" in packed
    assert b"" not in packed and PackedSet([b""]).__contains__(b"")


def test_a_large_group_is_found_through_its_prefix_index():
    items = [os.urandom(12) for _ in range(INDEX_FROM * 2)] + [bytes(12), b"\xff" * 12]
    packed = PackedSet(items)
    assert all(item in packed for item in items)
    assert not any(os.urandom(12) in packed for _ in range(2000))
    more = [os.urandom(12) for _ in range(50)]
    patched = packed.patch(more, items[:50])
    assert all(item in patched for item in more + items[50:])
    assert not any(item in patched for item in items[:50])
    assert len(patched) == len(packed) and packed.patch([], items[:0]) is packed


def test_a_store_made_from_pairs_compares_and_answers_like_them():
    pairs = [("demo-univ", b"\x01" * 12), ("other", b"\x01" * 12), ("demo-univ", b"\x02" * 8)]
    store = TrustStore(seq=1, issued_at=0, max_age_s=60, issuers=(), revoked=frozenset(pairs))
    assert isinstance(store.revoked, Revocations) and set(store.revoked) == set(pairs)
    assert store.is_revoked("other", b"\x01" * 12) and not store.is_revoked("other", b"\x02" * 8)
    assert ("demo-univ", b"\x02" * 8) in store.revoked and ("x", b"") not in store.revoked
    assert parse_trust_store(dump_trust_store(store)) == store
    assert Freezes([("demo-univ", "h-é")]).has("demo-univ", "h-é")
