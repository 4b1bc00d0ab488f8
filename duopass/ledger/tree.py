"""Proofs and roots of a large log, built from stored perfect-subtree hashes in O(log n) reads.

A log stores, once and forever, the hash of every *perfect* subtree it has completed: node
(level, index) covers leaves [index * 2**level, (index + 1) * 2**level). Such a hash never changes
as the log grows, so one table keyed by (level, index) serves proofs and roots at every past size.
Every other hash a proof needs (a subtree cut by the tree's right edge) is folded from at most
log2(n) perfect ones. Each function plans the nodes it needs, reads them in one `read_nodes`
call (one database round trip) and assembles the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from duopass.ledger.errors import LedgerError, LedgerReason
from duopass.ledger.limits import HASH_BYTES, TREE_SIZE_MAX
from duopass.ledger.merkle import (
    EMPTY_ROOT,
    NodeHash,
    RootHash,
    consistency_proof_length,
    hash_children,
    inclusion_proof_length,
)

__all__ = [
    "NodeId",
    "NodeReader",
    "consistency_proof",
    "inclusion_proof",
    "perfect_cover",
    "root_at",
]


@dataclass(frozen=True, slots=True, order=True)
class NodeId:
    """The perfect subtree covering leaves [index * 2**level, (index + 1) * 2**level)."""

    level: int
    index: int

    def __post_init__(self) -> None:
        assert 0 <= self.level < 64 and 0 <= self.index << self.level <= TREE_SIZE_MAX


class NodeReader(Protocol):
    """Where perfect-subtree hashes are stored: a database table, or a dict in tests."""

    def read_nodes(self, ids: Sequence[NodeId], /) -> Sequence[bytes]:
        """The hash of each perfect subtree in `ids`, in order; each must have been stored."""
        ...


def perfect_cover(start: int, end: int) -> list[NodeId]:
    """The fewest perfect subtrees covering leaves [start, end), left to right.

    For [0, n) these are the right border of the tree of n leaves, one per set bit of n.
    """
    assert 0 <= start <= end <= TREE_SIZE_MAX
    cover = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)  # stay aligned
        cover.append(NodeId(level, start >> level))
        start += 1 << level
    return cover


def _fold(hashes: Sequence[bytes]) -> bytes:
    """The root over adjacent subtrees whose sizes fall to the right, folded right to left."""
    root = hashes[-1]
    for left in reversed(hashes[:-1]):
        root = hash_children(left, root)
    return root


_Plan = list[list[NodeId]]
"""One entry per hash to produce: the perfect subtrees to fold into it."""


def _path_plan(level: int, index: int, size: int) -> _Plan:
    """The siblings of node (level, index) up to the root of the tree of `size` leaves."""
    last = (size - 1) >> level  # the last node on this level, possibly cut by the edge
    inner = (index ^ last).bit_length()
    plan: _Plan = []
    for step in range(inner):  # the sibling may be a right one, cut by the edge at the top
        node = NodeId(level + step, (index >> step) ^ 1)
        start = node.index << node.level
        plan.append(perfect_cover(start, min(size, start + (1 << node.level))))
    for step in range(inner, last.bit_length()):  # on the right border: left siblings only
        if (index >> step) & 1:
            plan.append([NodeId(level + step, (index >> step) ^ 1)])
    return plan


def _execute(reader: NodeReader, plan: _Plan) -> list[bytes]:
    wanted = sorted({node for nodes in plan for node in nodes})
    found = reader.read_nodes(wanted)
    if len(found) != len(wanted) or any(len(h) != HASH_BYTES for h in found):
        raise ValueError("the node reader returned the wrong number or length of hashes")
    table = dict(zip(wanted, found, strict=True))
    return [_fold([table[node] for node in nodes]) for nodes in plan]


def _check_sizes(*sizes: int) -> None:
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= TREE_SIZE_MAX:
            raise LedgerError(LedgerReason.TREE_SIZE, f"impossible tree size or index {size!r}")


def inclusion_proof(reader: NodeReader, index: int, size: int) -> list[NodeHash]:
    """The RFC 9162 inclusion proof of leaf `index` in the tree of `size` leaves.

    Raises `LedgerError` (`INDEX`, `TREE_SIZE`) for a leaf or size the request cannot have.
    """
    _check_sizes(index, size)
    if index >= size:
        raise LedgerError(LedgerReason.INDEX, f"leaf {index} is not in a tree of {size} leaves")
    proof = _execute(reader, _path_plan(0, index, size))
    assert len(proof) == inclusion_proof_length(index, size)
    return [NodeHash(h) for h in proof]


def consistency_proof(reader: NodeReader, size1: int, size2: int) -> list[NodeHash]:
    """The RFC 9162 consistency proof from the tree of `size1` leaves to that of `size2`.

    The proof is the path from the old tree's last perfect subtree up to the new root, preceded by
    that subtree's own hash unless it is the whole old tree (RFC 9162 §2.1.4.1, unrolled).
    """
    _check_sizes(size1, size2)
    if not 0 < size1 <= size2:
        raise LedgerError(LedgerReason.TREE_SIZE, f"no proof joins sizes {size1} and {size2}")
    if size1 == size2:
        return []
    level = (size1 & -size1).bit_length() - 1
    index = (size1 >> level) - 1
    plan = [] if index == 0 else [[NodeId(level, index)]]
    proof = _execute(reader, plan + _path_plan(level, index, size2))
    assert len(proof) == consistency_proof_length(size1, size2)
    return [NodeHash(h) for h in proof]


def root_at(reader: NodeReader, size: int) -> RootHash:
    """The root of the tree of the first `size` leaves, from at most log2(size) stored nodes."""
    _check_sizes(size)
    if size == 0:
        return EMPTY_ROOT
    return RootHash(_execute(reader, [perfect_cover(0, size)])[0])
