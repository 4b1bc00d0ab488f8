"""An in-memory log of perfect-subtree hashes: the `NodeReader` of tests and small tools."""

from __future__ import annotations

from collections.abc import Sequence

from duopass.ledger.compact import CompactRange
from duopass.ledger.merkle import LeafHash, NodeHash, RootHash
from duopass.ledger.tree import NodeId

__all__ = ["MemoryTree"]


class MemoryTree:
    """Appends leaf hashes and keeps every completed perfect subtree, as a database table would."""

    def __init__(self) -> None:
        self._nodes: dict[NodeId, NodeHash] = {}
        self._compact = CompactRange.empty()

    @property
    def size(self) -> int:
        return self._compact.size

    def root(self) -> RootHash:
        """The root of the whole tree."""
        return self._compact.root()

    def append(self, leaf_hash: LeafHash) -> RootHash:
        """Add one leaf; return the new root."""
        outcome = self._compact.append(leaf_hash)
        for stored in outcome.stored:
            assert stored.node not in self._nodes  # perfect subtrees are written once
            self._nodes[stored.node] = stored.hash
        self._compact = outcome.compact
        return outcome.root

    def read_nodes(self, ids: Sequence[NodeId], /) -> list[bytes]:
        """The stored hash of each node; a node never completed is a `KeyError`."""
        return [self._nodes[node] for node in ids]
