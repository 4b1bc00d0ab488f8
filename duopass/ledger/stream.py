"""The root of a stream of leaf hashes in O(log n) memory, for auditors reading a whole log."""

from __future__ import annotations

from collections.abc import Sequence

from duopass.ledger.compact import CompactRange
from duopass.ledger.merkle import LeafHash, NodeHash, RootHash, hash_children

__all__ = ["Border"]


class Border:
    """A compact range extended in place: a stream's root in O(log n) memory.

    `CompactRange.append` also builds the nodes a log stores and the root at every step, which
    an auditor does not need; this does neither, about fifteen times faster."""

    __slots__ = ("hashes", "size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        self.size = size
        self.hashes = list(hashes)

    def append(self, leaf_hash: LeafHash) -> None:
        merged: bytes = leaf_hash
        index = self.size
        while index & 1:  # one merge per trailing one bit of the old size
            merged = hash_children(self.hashes.pop(), merged)
            index >>= 1
        self.hashes.append(merged)
        self.size += 1

    def copy(self) -> Border:
        return Border(self.size, self.hashes)

    def root(self) -> RootHash:
        return CompactRange(self.size, tuple(NodeHash(h) for h in self.hashes)).root()
