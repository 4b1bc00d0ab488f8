"""transparency-dev/merkle's proof vectors and the reference tree, one test case per file."""

from __future__ import annotations

import pytest

from duopass.ledger import (
    LedgerError,
    LedgerReason,
    consistency_proof,
    inclusion_proof,
    root_at,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from tests.ledger._helpers import lenient_b64, reference_leaves, reference_tree, tree_of
from tests.vectors import load_json_vectors

INCLUSION = load_json_vectors("tlog", "merkle", "inclusion")
CONSISTENCY = load_json_vectors("tlog", "merkle", "consistency")
LEAVES = reference_leaves()
REFERENCE = tree_of(LEAVES)
ROOTS = [bytes.fromhex(h) for h in reference_tree()["root_hashes_hex_by_size"]]

STRICTER_THAN_UPSTREAM = {
    # Upstream accepts equal sizes with equal roots of any length; these roots are the 12 bytes
    # "don't care 2". We refuse every hash that is not 32 bytes, before comparing anything.
    "additional/sizes-are-equal-one-and-proof-is-empty.json": LedgerReason.HASH_LENGTH,
}


def test_every_vector_file_is_loaded():
    assert len(INCLUSION) >= 80
    assert len(CONSISTENCY) >= 90
    assert sum(not v["wantErr"] for _, v in INCLUSION + CONSISTENCY) >= 11


@pytest.mark.parametrize(("name", "vector"), INCLUSION, ids=[name for name, _ in INCLUSION])
def test_inclusion_vector(name, vector):
    proof = [lenient_b64(h) for h in vector["proof"] or []]
    args = {
        "leaf_hash": lenient_b64(vector["leafHash"]),
        "index": vector["leafIdx"],
        "size": vector["treeSize"],
        "proof": proof,
        "root": lenient_b64(vector["root"]),
    }
    if vector["wantErr"]:
        with pytest.raises(LedgerError):
            verify_inclusion(**args)
        return
    verify_inclusion(**args)
    if args["root"] == ROOTS[vector["treeSize"]]:  # a vector cut from the reference tree
        assert inclusion_proof(REFERENCE, vector["leafIdx"], vector["treeSize"]) == proof


@pytest.mark.parametrize(("name", "vector"), CONSISTENCY, ids=[name for name, _ in CONSISTENCY])
def test_consistency_vector(name, vector):
    proof = [lenient_b64(h) for h in vector["proof"] or []]
    args = {
        "size1": vector["size1"],
        "size2": vector["size2"],
        "proof": proof,
        "root1": lenient_b64(vector["root1"]),
        "root2": lenient_b64(vector["root2"]),
    }
    if name in STRICTER_THAN_UPSTREAM:
        assert not vector["wantErr"]
        with pytest.raises(LedgerError) as caught:
            verify_consistency(**args)
        assert caught.value.reason is STRICTER_THAN_UPSTREAM[name]
        return
    if vector["wantErr"]:
        with pytest.raises(LedgerError):
            verify_consistency(**args)
        return
    verify_consistency(**args)
    if args["root2"] == ROOTS[vector["size2"]]:
        assert consistency_proof(REFERENCE, vector["size1"], vector["size2"]) == proof


@pytest.mark.parametrize("size", range(9))
def test_reference_tree_root(size):
    assert root_of(LEAVES[:size]) == ROOTS[size]
    assert root_at(REFERENCE, size) == ROOTS[size]
    assert tree_of(LEAVES[:size]).root() == ROOTS[size]
