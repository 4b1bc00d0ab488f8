"""Proof generation and the appender, from stored perfect subtrees, against the RFC definitions."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from duopass.ledger import (
    CompactRange,
    LeafHash,
    LedgerError,
    LedgerReason,
    NodeHash,
    NodeId,
    consistency_proof,
    hash_children,
    hash_leaf,
    inclusion_proof,
    root_at,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from duopass.ledger.limits import TREE_SIZE_MAX
from tests.ledger._helpers import LEAVES, TREE


def reference_path(index: int, leaves: list[LeafHash]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1, recursively."""
    if len(leaves) == 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if index < k:
        return [*reference_path(index, leaves[:k]), root_of(leaves[k:])]
    return [*reference_path(index - k, leaves[k:]), root_of(leaves[:k])]


def reference_subproof(m: int, leaves: list[LeafHash], whole: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) of RFC 9162 §2.1.4.1, recursively."""
    if m == len(leaves):
        return [] if whole else [root_of(leaves)]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if m <= k:
        return [*reference_subproof(m, leaves[:k], whole), root_of(leaves[k:])]
    return [*reference_subproof(m - k, leaves[k:], False), root_of(leaves[:k])]


@pytest.mark.parametrize("size", range(1, 65))
def test_every_proof_of_small_trees_matches_the_rfc_definition(size):
    leaves = LEAVES[:size]
    for index in range(size):
        proof = inclusion_proof(TREE, index, size)
        assert proof == reference_path(index, leaves)
        verify_inclusion(
            leaf_hash=leaves[index], index=index, size=size, proof=proof, root=root_of(leaves)
        )
    for size1 in range(1, size + 1):
        proof = consistency_proof(TREE, size1, size)
        assert proof == ([] if size1 == size else reference_subproof(size1, leaves, True))
        verify_consistency(
            size1=size1,
            size2=size,
            proof=proof,
            root1=root_of(leaves[:size1]),
            root2=root_of(leaves),
        )


def test_appender_roots_equal_the_recursive_root_up_to_300():
    compact = CompactRange.empty()
    for size in range(301):
        assert compact.root() == root_of(LEAVES[:size])
        assert root_at(TREE, size) == compact.root()
        assert CompactRange.read(TREE, size) == compact
        if size < 300:
            compact = compact.append(LEAVES[size]).compact


def test_append_stores_the_leaf_and_every_subtree_it_completes():
    outcome = CompactRange.read(TREE, 7).append(LEAVES[7])
    assert [s.node for s in outcome.stored] == [
        NodeId(0, 7),
        NodeId(1, 3),
        NodeId(2, 1),
        NodeId(3, 0),
    ]
    assert bytes(outcome.stored[-1].hash) == outcome.root == root_of(LEAVES[:8])
    assert outcome.compact.border == (NodeHash(outcome.root),)


class UniformTree:
    """Every leaf the same: every perfect subtree of a level has one hash, so any size is cheap."""

    def __init__(self) -> None:
        self.levels = [NodeHash(hash_leaf(b"same"))]
        while len(self.levels) < 64:
            self.levels.append(hash_children(self.levels[-1], self.levels[-1]))

    def read_nodes(self, ids: Sequence[NodeId]) -> list[bytes]:
        return [self.levels[node.level] for node in ids]


@given(st.integers(1, TREE_SIZE_MAX), st.data())
def test_proofs_of_huge_trees_verify(size2, data):
    tree = UniformTree()
    index = data.draw(st.integers(0, size2 - 1))
    size1 = data.draw(st.integers(1, size2))
    root1, root2 = root_at(tree, size1), root_at(tree, size2)
    proof = inclusion_proof(tree, index, size2)
    verify_inclusion(leaf_hash=tree.levels[0], index=index, size=size2, proof=proof, root=root2)
    proof = consistency_proof(tree, size1, size2)
    verify_consistency(size1=size1, size2=size2, proof=proof, root1=root1, root2=root2)


def test_largest_tree_size_is_accepted_and_the_next_refused():
    tree = UniformTree()
    last = TREE_SIZE_MAX - 1
    proof = inclusion_proof(tree, last, TREE_SIZE_MAX)
    root = root_at(tree, TREE_SIZE_MAX)
    verify_inclusion(
        leaf_hash=tree.levels[0], index=last, size=TREE_SIZE_MAX, proof=proof, root=root
    )
    with pytest.raises(LedgerError) as caught:
        verify_inclusion(
            leaf_hash=tree.levels[0], index=last, size=TREE_SIZE_MAX + 1, proof=proof, root=root
        )
    assert caught.value.reason is LedgerReason.TREE_SIZE


@pytest.mark.parametrize(("index", "size"), [(0, 0), (5, 5), (-1, 3), (0, TREE_SIZE_MAX + 1)])
def test_inclusion_proof_of_a_leaf_outside_the_tree_is_refused(index, size):
    with pytest.raises(LedgerError) as caught:
        inclusion_proof(TREE, index, size)
    assert caught.value.reason in {LedgerReason.INDEX, LedgerReason.TREE_SIZE}


@pytest.mark.parametrize(("size1", "size2"), [(0, 0), (0, 3), (4, 3), (-1, 2)])
def test_consistency_proof_between_impossible_sizes_is_refused(size1, size2):
    with pytest.raises(LedgerError) as caught:
        consistency_proof(TREE, size1, size2)
    assert caught.value.reason is LedgerReason.TREE_SIZE


def test_extend_is_appending_in_order():
    outcomes = CompactRange.read(TREE, 10).extend(LEAVES[10:20])
    assert [o.compact.size for o in outcomes] == list(range(11, 21))
    assert [o.root for o in outcomes] == [root_of(LEAVES[:n]) for n in range(11, 21)]
    stored = {s.node for o in outcomes for s in o.stored}
    assert stored == {NodeId(0, i) for i in range(10, 20)} | {
        NodeId(1, 5),
        NodeId(1, 6),
        NodeId(1, 7),
        NodeId(1, 8),
        NodeId(1, 9),
        NodeId(2, 2),
        NodeId(2, 3),
        NodeId(2, 4),
        NodeId(3, 1),
        NodeId(4, 0),
    }


@pytest.mark.parametrize(
    ("size", "border"),
    [(-1, ()), (0, (bytes(32),)), (3, (bytes(32),)), (1, (bytes(31),)), (TREE_SIZE_MAX + 1, ())],
)
def test_a_border_that_cannot_be_is_refused(size, border):
    with pytest.raises(ValueError, match=r"tree|border"):
        CompactRange(size, border)


@pytest.mark.parametrize(("start", "count"), [(0, 0), (0, 1), (7, 1), (10, 10), (1, 250)])
def test_grow_stores_what_appending_one_by_one_stores(start, count):
    border = CompactRange.read(TREE, start)
    grown, stored = border.grow(LEAVES[start : start + count])
    outcomes = border.extend(LEAVES[start : start + count])
    assert grown == (outcomes[-1].compact if outcomes else border)
    assert stored == [s for o in outcomes for s in o.stored]
    assert grown.root() == root_of(LEAVES[: start + count])
