"""Shared helpers of the ledger tests: lenient vector decoding and the reference tree."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from duopass.ledger import LeafHash, MemoryTree, hash_leaf
from tests.vectors import load_json_vectors


def lenient_b64(text: str) -> bytes:
    """Vector hashes: padded base64, or junk whose wrong length the verifier must catch."""
    try:
        return base64.b64decode(text)
    except (binascii.Error, ValueError):
        return text.encode()


def reference_tree() -> dict[str, Any]:
    """`merkle/reference_tree.json`: 8 leaf inputs and the root of every size 0..8."""
    return dict(load_json_vectors("tlog", "merkle"))["reference_tree.json"]


def reference_leaves() -> list[LeafHash]:
    return [hash_leaf(bytes.fromhex(h)) for h in reference_tree()["leaf_inputs_hex"]]


def tree_of(leaves: list[LeafHash]) -> MemoryTree:
    tree = MemoryTree()
    for leaf in leaves:
        tree.append(leaf)
    return tree


LEAVES = [hash_leaf(i.to_bytes(4, "big")) for i in range(1024)]
"""The leaves of the generated trees: any tree of up to 1024 leaves is a prefix of `TREE`."""
TREE = tree_of(LEAVES)
