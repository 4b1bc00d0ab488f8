"""RFC 9162 Merkle tree hashing and verification of inclusion and consistency proofs.

Leaf hash = SHA-256(0x00 || data), node hash = SHA-256(0x01 || left || right), the empty tree's
root = SHA-256(""). Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 step by step, after checks
that refuse, before any hashing, every hash that is not 32 bytes, impossible sizes or indices, and
proofs with more or fewer hashes than the sizes call for (immudb's GO-2022-1117 accepted forged
proofs that skipped such checks). A size1 of 0 is refused even when size2 is 0: such a
"consistency" proves nothing and is always a caller's mistake.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import NewType

from duopass.ledger.errors import LedgerError, LedgerReason
from duopass.ledger.limits import HASH_BYTES, TREE_SIZE_MAX

__all__ = [
    "EMPTY_ROOT",
    "LeafHash",
    "NodeHash",
    "RootHash",
    "consistency_proof_length",
    "hash_children",
    "hash_leaf",
    "inclusion_proof_length",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

LeafHash = NewType("LeafHash", bytes)
"""SHA-256(0x00 || entry): the hash of one log entry."""
NodeHash = NewType("NodeHash", bytes)
"""The hash of a subtree: a proof element or a stored perfect-subtree hash."""
RootHash = NewType("RootHash", bytes)
"""The hash of a whole tree of some size."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

EMPTY_ROOT = RootHash(hashlib.sha256(b"").digest())


def hash_leaf(entry: bytes) -> LeafHash:
    """The RFC 9162 leaf hash of an entry."""
    return LeafHash(hashlib.sha256(_LEAF_PREFIX + entry).digest())


def hash_children(left: bytes, right: bytes) -> NodeHash:
    """The RFC 9162 hash of an interior node from its two children."""
    return NodeHash(hashlib.sha256(_NODE_PREFIX + left + right).digest())


def root_of(leaves: Sequence[LeafHash]) -> RootHash:
    """MTH(D[n]) of RFC 9162 §2.1.1, recursively: the reference the log's O(log n) paths must match.

    Costs O(n); a log of millions of entries uses `tree.root_at` or `CompactRange.root`.
    """
    if not leaves:
        return EMPTY_ROOT
    return RootHash(_subtree_root(leaves))


def _subtree_root(leaves: Sequence[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)  # largest power of two below len
    return hash_children(_subtree_root(leaves[:split]), _subtree_root(leaves[split:]))


def inclusion_proof_length(index: int, size: int) -> int:
    """Hashes in the inclusion proof of leaf `index` of a tree of `size` leaves (index < size)."""
    assert 0 <= index < size
    inner = (index ^ (size - 1)).bit_length()  # levels where the path has a sibling on both sides
    return inner + (index >> inner).bit_count()  # then one left sibling per set bit above


def consistency_proof_length(size1: int, size2: int) -> int:
    """Hashes in the consistency proof from `size1` to `size2` leaves (0 < size1 <= size2)."""
    assert 0 < size1 <= size2
    if size1 == size2:
        return 0
    level = (size1 & -size1).bit_length() - 1  # the last perfect subtree of the old tree
    index = (size1 >> level) - 1
    path = inclusion_proof_length(index, ((size2 - 1) >> level) + 1)
    return path + (0 if index == 0 else 1)  # that subtree's own hash, unless it is the old root


def _check_hash(value: object, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != HASH_BYTES:
        raise LedgerError(LedgerReason.HASH_LENGTH, f"{what} is not a {HASH_BYTES}-byte hash")
    return value


def _check_proof(proof: Sequence[bytes], expected: int) -> list[bytes]:
    if isinstance(proof, bytes | str) or len(proof) != expected:
        raise LedgerError(LedgerReason.PROOF_LENGTH, f"the proof must hold {expected} hashes")
    return [_check_hash(element, f"proof[{i}]") for i, element in enumerate(proof)]


def _check_size(value: object, what: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LedgerError(LedgerReason.TREE_SIZE, f"{what} is not an integer")
    if not minimum <= value <= TREE_SIZE_MAX:
        raise LedgerError(LedgerReason.TREE_SIZE, f"{what} {value} is out of range")
    return value


def _mismatch(what: str) -> LedgerError:
    return LedgerError(LedgerReason.ROOT_MISMATCH, f"the proof does not lead to {what}")


def verify_inclusion(
    *, leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that `leaf_hash` is leaf `index` of the tree of `size` leaves with this `root`.

    Returns nothing on success; raises `LedgerError` with the first failing reason otherwise.
    """
    _check_hash(leaf_hash, "leaf hash")
    _check_hash(root, "root")
    size = _check_size(size, "tree size", minimum=1)
    index = _check_size(index, "leaf index", minimum=0)
    if index >= size:
        raise LedgerError(LedgerReason.INDEX, f"leaf index {index} is not below size {size}")
    path = _check_proof(proof, inclusion_proof_length(index, size))
    # §2.1.3.2 steps 2-5.
    fn, sn, r = index, size - 1, leaf_hash
    for p in path:
        assert sn != 0  # the length check above rules out step 5.1's failure
        if fn & 1 or fn == sn:
            r = hash_children(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = hash_children(r, p)
        fn, sn = fn >> 1, sn >> 1
    # §2.1.3.2 step 6.
    if sn != 0 or not hmac.compare_digest(r, root):
        raise _mismatch("the root")


def verify_consistency(
    *, size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of `size2` leaves with `root2` extends the one of `size1` with `root1`.

    Returns nothing on success; raises `LedgerError` with the first failing reason otherwise.
    """
    _check_hash(root1, "first root")
    _check_hash(root2, "second root")
    size1 = _check_size(size1, "first tree size", minimum=1)
    size2 = _check_size(size2, "second tree size", minimum=1)
    if size1 > size2:
        raise LedgerError(LedgerReason.TREE_SIZE, f"size {size1} is above size {size2}")
    path = _check_proof(proof, consistency_proof_length(size1, size2))
    # §2.1.4.2 step 1.
    if size1 == size2:
        if not hmac.compare_digest(root1, root2):
            raise _mismatch("equal roots for equal sizes")
        return
    # §2.1.4.2 step 2.
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    # §2.1.4.2 steps 3-4.
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    # §2.1.4.2 step 5.
    fr = sr = path[0]
    # §2.1.4.2 step 6.
    for c in path[1:]:
        assert sn != 0  # the length check above rules out step 6.1's failure
        if fn & 1 or fn == sn:
            fr, sr = hash_children(c, fr), hash_children(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = hash_children(sr, c)
        fn, sn = fn >> 1, sn >> 1
    # §2.1.4.2 step 7.
    if sn != 0 or not hmac.compare_digest(fr, root1) or not hmac.compare_digest(sr, root2):
        raise _mismatch("both roots")
