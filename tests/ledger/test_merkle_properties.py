"""Generated trees: every generated proof verifies, and every tampered one fails.

An RFC 9162 proof does not bind the tree size: a proof made for one (index, size) also verifies
for any other whose path makes the verifier hash alike (same steps, same sides), for instance
leaf 1 of 2 leaves and leaf 2 of 3. Within one size every index hashes differently. So sizes must
come from a signed checkpoint; the wrong-size properties assert exactly that, no more.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from duopass.ledger import (
    LedgerError,
    LedgerReason,
    consistency_proof,
    inclusion_proof,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from tests.ledger._helpers import LEAVES, TREE

sizes = st.integers(min_value=1, max_value=len(LEAVES))


def inclusion_shape(index: int, size: int) -> tuple[int, ...]:
    """The verifier's hashing steps: 1 hashes the proof element on the left, 0 on the right."""
    inner = (index ^ (size - 1)).bit_length()
    return tuple((index >> step) & 1 for step in range(inner)) + (1,) * (index >> inner).bit_count()


def consistency_shape(size1: int, size2: int) -> tuple[bool, tuple[int, ...]] | None:
    """The verifier's hashing steps, and whether the old root opens the path (size1 = 2**k)."""
    if size1 == size2:
        return None
    level = (size1 & -size1).bit_length() - 1
    index = (size1 >> level) - 1
    return index == 0, inclusion_shape(index, ((size2 - 1) >> level) + 1)


def flip(data: bytes, bit: int) -> bytes:
    bit %= 8 * len(data)
    return data[: bit // 8] + bytes([data[bit // 8] ^ (1 << (bit % 8))]) + data[bit // 8 + 1 :]


def fails(check: Callable[..., object], **kwargs: object) -> bool:
    try:
        check(**kwargs)
    except LedgerError:
        return True
    return False


@st.composite
def inclusions(draw):
    size = draw(sizes)
    index = draw(st.integers(0, size - 1))
    proof = inclusion_proof(TREE, index, size)
    return {
        "leaf_hash": LEAVES[index],
        "index": index,
        "size": size,
        "proof": proof,
        "root": root_of(LEAVES[:size]),
    }


@st.composite
def consistencies(draw):
    size2 = draw(sizes)
    size1 = draw(st.integers(1, size2))
    proof = consistency_proof(TREE, size1, size2)
    return {
        "size1": size1,
        "size2": size2,
        "proof": proof,
        "root1": root_of(LEAVES[:size1]),
        "root2": root_of(LEAVES[:size2]),
    }


@given(inclusions())
def test_generated_inclusion_proof_verifies(case):
    verify_inclusion(**case)


@given(consistencies())
def test_generated_consistency_proof_verifies(case):
    verify_consistency(**case)


@given(inclusions(), st.data())
def test_inclusion_with_one_bit_changed_fails(case, data):
    fields = ["leaf_hash", "root", *range(len(case["proof"]))]
    target = data.draw(st.sampled_from(fields))
    bit = data.draw(st.integers(0, 255))
    if isinstance(target, int):
        case["proof"] = [*case["proof"]]
        case["proof"][target] = flip(case["proof"][target], bit)
    else:
        case[target] = flip(case[target], bit)
    assert fails(verify_inclusion, **case)


@given(consistencies(), st.data())
def test_consistency_with_one_bit_changed_fails(case, data):
    fields = ["root1", "root2", *range(len(case["proof"]))]
    target = data.draw(st.sampled_from(fields))
    bit = data.draw(st.integers(0, 255))
    if isinstance(target, int):
        case["proof"] = [*case["proof"]]
        case["proof"][target] = flip(case["proof"][target], bit)
    else:
        case[target] = flip(case[target], bit)
    assert fails(verify_consistency, **case)


@given(inclusions(), st.integers(0, 2 * len(LEAVES)))
def test_inclusion_at_another_index_of_the_same_tree_fails(case, index):
    assume(index != case["index"])
    assert fails(verify_inclusion, **{**case, "index": index})


@given(inclusions(), st.integers(-1, 2 * len(LEAVES)), st.integers(-3, 2 * len(LEAVES)))
def test_inclusion_elsewhere_fails_unless_the_verifier_hashes_alike(case, index, size):
    assume((index, size) != (case["index"], case["size"]))
    right = inclusion_shape(case["index"], case["size"])
    same = 0 <= index < size and inclusion_shape(index, size) == right
    assert fails(verify_inclusion, **{**case, "index": index, "size": size}) is not same


def test_proofs_do_not_bind_the_tree_size():
    """Why a proof's sizes must come from a signed checkpoint: the same hashing, other sizes."""
    proof = inclusion_proof(TREE, 1, 2)
    root = root_of(LEAVES[:2])
    verify_inclusion(leaf_hash=LEAVES[1], index=2, size=3, proof=proof, root=root)
    proof = consistency_proof(TREE, 3, 4)
    roots = {"root1": root_of(LEAVES[:3]), "root2": root_of(LEAVES[:4])}
    verify_consistency(size1=5, size2=6, proof=proof, **roots)


@given(consistencies(), st.integers(-1, len(LEAVES)), st.integers(-1, 2 * len(LEAVES)))
def test_consistency_between_other_sizes_fails_unless_the_verifier_hashes_alike(case, size1, size2):
    assume((size1, size2) != (case["size1"], case["size2"]))
    right = consistency_shape(case["size1"], case["size2"])
    valid = 0 < size1 <= size2
    same = valid and consistency_shape(size1, size2) == right
    if valid and right is None:  # equal sizes and roots: any other equal sizes also agree
        same = size1 == size2
    assert fails(verify_consistency, **{**case, "size1": size1, "size2": size2}) is not same


@given(inclusions(), st.data())
def test_inclusion_proof_truncated_or_extended_fails(case, data):
    proof = case["proof"]
    extra = data.draw(st.binary(min_size=32, max_size=32))
    where = data.draw(st.integers(0, len(proof)))
    longer = [*proof[:where], extra, *proof[where:]]
    assert fails(verify_inclusion, **{**case, "proof": longer})
    if proof:
        shorter = proof[:where] + proof[where + 1 :] if where < len(proof) else proof[:-1]
        assert fails(verify_inclusion, **{**case, "proof": shorter})


@given(consistencies(), st.data())
def test_consistency_proof_truncated_or_extended_fails(case, data):
    proof = case["proof"]
    extra = data.draw(st.binary(min_size=32, max_size=32))
    where = data.draw(st.integers(0, len(proof)))
    longer = [*proof[:where], extra, *proof[where:]]
    assert fails(verify_consistency, **{**case, "proof": longer})
    if proof:
        shorter = proof[:where] + proof[where + 1 :] if where < len(proof) else proof[:-1]
        assert fails(verify_consistency, **{**case, "proof": shorter})


@given(inclusions(), st.integers(0, 64).filter(lambda n: n != 32))
def test_hashes_of_other_lengths_fail_by_length(case, length):
    junk = bytes(length)
    for field in ("leaf_hash", "root"):
        with pytest.raises(LedgerError) as caught:
            verify_inclusion(**{**case, field: junk})
        assert caught.value.reason is LedgerReason.HASH_LENGTH
    if case["proof"]:
        with pytest.raises(LedgerError) as caught:
            verify_inclusion(**{**case, "proof": [junk, *case["proof"][1:]]})
        assert caught.value.reason is LedgerReason.HASH_LENGTH


def test_size1_zero_is_an_error_even_against_an_empty_tree():
    empty = root_of([])
    with pytest.raises(LedgerError) as caught:
        verify_consistency(size1=0, size2=0, proof=[], root1=empty, root2=empty)
    assert caught.value.reason is LedgerReason.TREE_SIZE
