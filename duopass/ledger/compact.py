"""The appender: a log's right border (compact range), extended one leaf at a time in O(log n).

The right border of a tree of n leaves is its fewest covering perfect subtrees, largest first, one
per set bit of n (`tree.perfect_cover(0, n)`). Appending a leaf merges it with the border's
trailing subtrees of equal size, each merge completing one new perfect subtree that the log
stores; the root folds the border right to left. A database-backed log reads the border (at most
63 rows) at start, then keeps it in memory between appends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from duopass.ledger.limits import HASH_BYTES, TREE_SIZE_MAX
from duopass.ledger.merkle import EMPTY_ROOT, LeafHash, NodeHash, RootHash, hash_children
from duopass.ledger.tree import NodeId, NodeReader, _fold, perfect_cover

__all__ = ["Appended", "CompactRange", "StoredNode"]


@dataclass(frozen=True, slots=True)
class StoredNode:
    """A perfect subtree completed by an append: store `hash` under `node`, never to change."""

    node: NodeId
    hash: NodeHash


@dataclass(frozen=True, slots=True)
class Appended:
    """The outcome of one append: the new border, the nodes to store and the new root."""

    compact: CompactRange
    stored: tuple[StoredNode, ...]
    root: RootHash


@dataclass(frozen=True, slots=True)
class CompactRange:
    """The right border of the tree of `size` leaves: one hash per `perfect_cover(0, size)` node."""

    size: int
    border: tuple[NodeHash, ...]

    def __post_init__(self) -> None:
        if not 0 <= self.size <= TREE_SIZE_MAX:
            raise ValueError(f"impossible tree size {self.size}")
        if len(self.border) != self.size.bit_count():
            raise ValueError(
                f"a tree of {self.size} leaves has {self.size.bit_count()} border nodes"
            )
        if any(len(h) != HASH_BYTES for h in self.border):
            raise ValueError("a border hash is not 32 bytes")

    @classmethod
    def empty(cls) -> CompactRange:
        """The border of the empty tree."""
        return cls(0, ())

    @classmethod
    def read(cls, reader: NodeReader, size: int) -> CompactRange:
        """The border of the tree of `size` leaves, read from stored perfect subtrees."""
        nodes = perfect_cover(0, size)
        return cls(size, tuple(NodeHash(h) for h in reader.read_nodes(nodes)) if nodes else ())

    def nodes(self) -> list[NodeId]:
        """Which stored node each border hash is, left to right."""
        return perfect_cover(0, self.size)

    def root(self) -> RootHash:
        """The root of the tree of `size` leaves."""
        return RootHash(_fold(self.border)) if self.border else EMPTY_ROOT

    def append(self, leaf_hash: LeafHash) -> Appended:
        """Add leaf number `size`; return what to store (the leaf first) and the new root."""
        after, stored = self.grow([leaf_hash])
        assert after.nodes()[-1] == stored[-1].node  # the merged subtree ends the new border
        return Appended(after, tuple(stored), after.root())

    def grow(self, leaf_hashes: Sequence[LeafHash]) -> tuple[CompactRange, list[StoredNode]]:
        """Append several leaves in order, as `append` one by one would, without a root per
        leaf: the new border, and every node to store (each leaf, then what it completed)."""
        if any(len(h) != HASH_BYTES for h in leaf_hashes):
            raise ValueError("a leaf hash is 32 bytes")
        if self.size + len(leaf_hashes) > TREE_SIZE_MAX:
            raise ValueError("the log is full")
        border = list(self.border)
        stored: list[StoredNode] = []
        for index, leaf_hash in enumerate(leaf_hashes, self.size):
            merged: bytes = leaf_hash
            stored.append(StoredNode(NodeId(0, index), NodeHash(merged)))
            level = 0
            while (index >> level) & 1:  # one merge per trailing one bit of the old size
                merged = hash_children(border.pop(), merged)
                level += 1
                stored.append(StoredNode(NodeId(level, index >> level), NodeHash(merged)))
            border.append(NodeHash(merged))
        return CompactRange(self.size + len(leaf_hashes), tuple(border)), stored

    def extend(self, leaf_hashes: Sequence[LeafHash]) -> tuple[Appended, ...]:
        """Append several leaves in order; one outcome per leaf."""
        outcomes = []
        current = self
        for leaf_hash in leaf_hashes:
            outcome = current.append(leaf_hash)
            outcomes.append(outcome)
            current = outcome.compact
        return tuple(outcomes)
