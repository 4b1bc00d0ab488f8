"""c2sp.org/tlog-proof@v1 receipts: made for every entry of the tessera log, checked offline."""

from __future__ import annotations

import base64

import pytest

from duopass.ledger import (
    Checkpoint,
    LedgerError,
    LedgerReason,
    MemoryTree,
    NoteSigner,
    NoteVerifier,
    hash_leaf,
    inclusion_proof,
    make_receipt,
    parse_receipt,
    root_at,
    sign_checkpoint,
    verify_receipt,
)
from duopass.ledger.limits import PROOF_HASHES_MAX, RECEIPT_BYTES_MAX
from tests.ledger.test_tessera_vectors import ENTRIES, FOLDER, VKEY

LOG_KEY = NoteVerifier.parse(VKEY)
LEAVES = [hash_leaf(entry.encode()) for entry in ENTRIES.split()]
TREE = MemoryTree()
for leaf in LEAVES:
    TREE.append(leaf)


def receipt(index: int, size: int, *, extra: bytes | None = None) -> bytes:
    return make_receipt(
        index=index,
        leaf_hash=LEAVES[index],
        proof=inclusion_proof(TREE, index, size),
        signed_checkpoint=(FOLDER / f"checkpoint.{size}").read_bytes(),
        extra=extra,
    )


def reason_of(data: bytes, leaf_index: int = 5, key: NoteVerifier = LOG_KEY) -> LedgerReason:
    with pytest.raises(LedgerError) as caught:
        verify_receipt(data, leaf_hash=LEAVES[leaf_index], log_key=key)
    return caught.value.reason


PAIRS = [(index, size) for size in range(1, 16) for index in range(size)]


@pytest.mark.parametrize(("index", "size"), PAIRS, ids=[f"{i}-of-{n}" for i, n in PAIRS])
def test_receipt_of_every_entry_at_every_checkpoint_verifies(index, size):
    verified = verify_receipt(receipt(index, size), leaf_hash=LEAVES[index], log_key=LOG_KEY)
    assert (verified.index, verified.checkpoint.size, verified.extra) == (index, size, None)


def test_receipt_text_is_the_spec_layout():
    data = receipt(5, 8, extra=b"context")
    proof = [base64.b64encode(h).decode() for h in inclusion_proof(TREE, 5, 8)]
    head = "\n".join(["c2sp.org/tlog-proof@v1", "extra Y29udGV4dA==", "index 5", *proof])
    assert data == (head + "\n\n").encode() + (FOLDER / "checkpoint.8").read_bytes()
    parsed = parse_receipt(data)
    assert (parsed.index, parsed.extra, len(parsed.proof)) == (5, b"context", 3)
    assert verify_receipt(data, leaf_hash=LEAVES[5], log_key=LOG_KEY).extra == b"context"


def test_receipt_for_another_entry_or_key_or_origin_fails():
    data = receipt(5, 8)
    assert reason_of(data, leaf_index=4) is LedgerReason.ROOT_MISMATCH
    stranger = NoteSigner.from_seed("example.com/log/testdata", bytes(32)).verifier
    assert reason_of(data, key=stranger) is LedgerReason.UNVERIFIED
    with pytest.raises(LedgerError) as caught:
        verify_receipt(data, leaf_hash=LEAVES[5], log_key=LOG_KEY, origin="example.com/other")
    assert caught.value.reason is LedgerReason.ORIGIN


def test_receipt_with_a_checkpoint_signed_by_another_key_fails():
    other = NoteSigner.from_seed("example.com/log/testdata", bytes(32))
    checkpoint = Checkpoint("example.com/log/testdata", 8, root_at(TREE, 8))
    forged = receipt(5, 8).replace(
        (FOLDER / "checkpoint.8").read_bytes(), sign_checkpoint(checkpoint, [other])
    )
    assert reason_of(forged) is LedgerReason.UNVERIFIED


def test_tampered_receipts_fail():
    data = receipt(5, 8)
    assert reason_of(data.replace(b"index 5", b"index 4")) is LedgerReason.ROOT_MISMATCH
    assert reason_of(data.replace(b"index 5", b"index 9")) is LedgerReason.INDEX
    lines = data.split(b"\n")
    assert reason_of(b"\n".join(lines[:2] + lines[3:])) is LedgerReason.PROOF_LENGTH
    assert reason_of(b"\n".join(lines[:3] + lines[2:])) is LedgerReason.PROOF_LENGTH
    flipped = bytearray(base64.b64decode(lines[2]))
    flipped[0] ^= 1
    lines[2] = base64.b64encode(bytes(flipped))
    assert reason_of(b"\n".join(lines)) is LedgerReason.ROOT_MISMATCH


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d.replace(b"c2sp.org/tlog-proof@v1", b"c2sp.org/tlog-proof@v2"), "MALFORMED"),
        (lambda d: b"\n" + d, "MALFORMED"),
        (lambda d: d.replace(b"index 5", b"index 05"), "MALFORMED"),
        (lambda d: d.replace(b"index 5", b"index  5"), "MALFORMED"),
        (lambda d: d.replace(b"index 5", b"idx 5"), "MALFORMED"),
        (lambda d: d.replace(b"index 5\n", b""), "MALFORMED"),
        (lambda d: d.replace(b"index 5", b"extra \nindex 5"), "MALFORMED"),
        (lambda d: d.replace(b"index 5", b"extra !!!!\nindex 5"), "MALFORMED"),
        (lambda d: d.replace(b"index 5", b"index 5\nextra AA=="), "MALFORMED"),
        (lambda d: d.replace(b"index 5", b"index 5\nAAAA"), "HASH_LENGTH"),
        (lambda d: d.replace(b"index 5", b"index 5\n" + b"A" * 45), "MALFORMED"),
        (lambda d: d.replace(b"\n\n", b"\n", 1), "MALFORMED"),
        (lambda d: d.replace(b"index 5", b"index 5\r"), "MALFORMED"),
        (
            lambda d: d.replace(
                b"index 5", b"index 5" + (b"\n" + b"A" * 43 + b"=") * PROOF_HASHES_MAX
            ),
            "TOO_LARGE",
        ),
        (lambda d: d + b"x" * RECEIPT_BYTES_MAX, "TOO_LARGE"),
        (lambda d: d[:-1], "MALFORMED"),
    ],
)
def test_malformed_receipts_are_refused(change, reason):
    assert reason_of(change(receipt(5, 8))) is LedgerReason(reason)


def test_make_receipt_refuses_a_proof_that_does_not_fit():
    with pytest.raises(LedgerError):
        make_receipt(
            index=5,
            leaf_hash=LEAVES[4],
            proof=inclusion_proof(TREE, 5, 8),
            signed_checkpoint=(FOLDER / "checkpoint.8").read_bytes(),
        )
