"""Receipts in C2SP tlog-proof form (https://c2sp.org/tlog-proof): one entry, checkable offline.

    c2sp.org/tlog-proof@v1
    extra <base64 opaque data>          (optional line, not authenticated)
    index <decimal, no leading zeroes>
    <base64 hash>                       (the inclusion proof, leaf's sibling first, 0+ lines)
    <empty line>
    <the signed checkpoint, verbatim>

Verifying (spec "Verifying a tlog proof"): 1. the caller computes the leaf hash; 2. the
checkpoint's origin is the expected one and the log key's signature verifies; 3. witness
cosignatures are the caller's policy and are ignored here; 4. the inclusion proof binds the leaf
hash to the checkpoint's root.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from duopass.ledger._text import b64decode, b64encode, parse_decimal
from duopass.ledger.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint
from duopass.ledger.errors import LedgerError, LedgerReason
from duopass.ledger.limits import (
    HASH_BYTES,
    PROOF_HASHES_MAX,
    RECEIPT_BYTES_MAX,
    RECEIPT_EXTRA_BYTES_MAX,
    TREE_SIZE_MAX,
)
from duopass.ledger.merkle import LeafHash, NodeHash, verify_inclusion
from duopass.ledger.note import NoteVerifier, parse_note

__all__ = [
    "RECEIPT_HEADER",
    "Receipt",
    "VerifiedReceipt",
    "format_receipt",
    "make_receipt",
    "parse_receipt",
    "verify_receipt",
]

RECEIPT_HEADER = "c2sp.org/tlog-proof@v1"
_EXTRA = "extra "
_INDEX = "index "


def _malformed(detail: str) -> LedgerError:
    return LedgerError(LedgerReason.MALFORMED, detail)


@dataclass(frozen=True, slots=True)
class Receipt:
    """A parsed, unverified receipt: entry `index`, its inclusion proof, the signed checkpoint."""

    index: int
    proof: tuple[NodeHash, ...]
    checkpoint: bytes
    extra: bytes | None = None


@dataclass(frozen=True, slots=True)
class VerifiedReceipt:
    """A receipt whose checkpoint and inclusion proof verified: leaf `index` of `checkpoint`."""

    index: int
    checkpoint: Checkpoint
    extra: bytes | None


def format_receipt(receipt: Receipt) -> bytes:
    """The receipt's tlog-proof text."""
    lines = [RECEIPT_HEADER]
    if receipt.extra is not None:
        lines.append(_EXTRA + b64encode(receipt.extra))
    lines.append(f"{_INDEX}{receipt.index}")
    lines.extend(b64encode(h) for h in receipt.proof)
    return ("\n".join(lines) + "\n\n").encode() + receipt.checkpoint


def make_receipt(
    *,
    index: int,
    leaf_hash: LeafHash,
    proof: Sequence[NodeHash],
    signed_checkpoint: bytes,
    extra: bytes | None = None,
) -> bytes:
    """The receipt of leaf `index`, after checking that `proof` binds it to the checkpoint's root.

    The checkpoint's signatures are not checked here: it is the log's own, freshly signed.
    """
    if extra is not None and not 0 < len(extra) <= RECEIPT_EXTRA_BYTES_MAX:
        raise ValueError(f"extra data is 1 to {RECEIPT_EXTRA_BYTES_MAX} bytes")
    checkpoint = parse_checkpoint(parse_note(signed_checkpoint).text)
    verify_inclusion(
        leaf_hash=leaf_hash, index=index, size=checkpoint.size, proof=proof, root=checkpoint.root
    )
    data = format_receipt(Receipt(index, tuple(proof), signed_checkpoint, extra))
    assert parse_receipt(data) == Receipt(index, tuple(proof), signed_checkpoint, extra)
    return data


def _parse_extra(line: str) -> bytes:
    extra = b64decode(line.removeprefix(_EXTRA), "the extra data")
    if not 0 < len(extra) <= RECEIPT_EXTRA_BYTES_MAX:
        raise _malformed(f"extra data is 1 to {RECEIPT_EXTRA_BYTES_MAX} bytes")
    return extra


def parse_receipt(data: bytes) -> Receipt:
    """Split a tlog-proof strictly into its parts, verifying nothing."""
    if len(data) > RECEIPT_BYTES_MAX:
        raise LedgerError(LedgerReason.TOO_LARGE, f"a receipt is at most {RECEIPT_BYTES_MAX} bytes")
    head, blank, checkpoint = data.partition(b"\n\n")  # proof lines are never empty
    if not blank:
        raise _malformed("a receipt has a blank line before its checkpoint")
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError as exc:
        raise _malformed("a receipt's proof lines are ASCII") from exc
    if lines[0] != RECEIPT_HEADER:
        raise _malformed(f"a receipt starts with {RECEIPT_HEADER}")
    extra = _parse_extra(lines.pop(1)) if lines[1:2] and lines[1].startswith(_EXTRA) else None
    if not lines[1:2] or not lines[1].startswith(_INDEX):
        raise _malformed("a receipt's index line follows its header")
    index = parse_decimal(lines[1].removeprefix(_INDEX), "the index", limit=TREE_SIZE_MAX - 1)
    if len(lines) - 2 > PROOF_HASHES_MAX:
        raise LedgerError(LedgerReason.TOO_LARGE, "too many proof hashes")
    proof = tuple(NodeHash(b64decode(line, "a proof hash")) for line in lines[2:])
    if any(len(h) != HASH_BYTES for h in proof):
        raise LedgerError(LedgerReason.HASH_LENGTH, "a proof hash is not 32 bytes")
    return Receipt(index, proof, checkpoint, extra)


def verify_receipt(
    data: bytes, *, leaf_hash: LeafHash, log_key: NoteVerifier, origin: str | None = None
) -> VerifiedReceipt:
    """Check a receipt offline: the log key signed its checkpoint and the proof binds `leaf_hash`.

    `origin` is the log's checkpoint origin, by default the key's name. Raises `LedgerError`.
    """
    receipt = parse_receipt(data)
    # Step 1, the leaf hash, is the caller's: `hash_leaf(entry)`.
    # Step 2: origin and log signature.
    checkpoint = open_checkpoint(receipt.checkpoint, log_key, origin=origin).checkpoint
    # Step 3, witness cosignatures, is policy left to the caller.
    # Step 4: the inclusion proof.
    verify_inclusion(
        leaf_hash=leaf_hash,
        index=receipt.index,
        size=checkpoint.size,
        proof=receipt.proof,
        root=checkpoint.root,
    )
    return VerifiedReceipt(receipt.index, checkpoint, receipt.extra)
