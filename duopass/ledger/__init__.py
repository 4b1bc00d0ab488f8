"""The pure transparency-log core: RFC 9162 Merkle trees, C2SP signed notes, checkpoints, receipts.

No database, no I/O, no clock: storage is a `NodeReader` of perfect-subtree hashes, inputs and
outputs are bytes. Untrusted input that fails a check raises `LedgerError` with a `LedgerReason`.
"""

from duopass.ledger.checkpoint import (
    Checkpoint,
    SignedCheckpoint,
    format_checkpoint,
    open_checkpoint,
    parse_checkpoint,
    sign_checkpoint,
)
from duopass.ledger.compact import Appended, CompactRange, StoredNode
from duopass.ledger.errors import LedgerError, LedgerReason
from duopass.ledger.memory_tree import MemoryTree
from duopass.ledger.merkle import (
    EMPTY_ROOT,
    LeafHash,
    NodeHash,
    RootHash,
    hash_children,
    hash_leaf,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from duopass.ledger.note import (
    Note,
    NoteSignature,
    NoteSigner,
    NoteVerifier,
    open_note,
    parse_note,
    sign_note,
)
from duopass.ledger.receipt import (
    Receipt,
    VerifiedReceipt,
    format_receipt,
    make_receipt,
    parse_receipt,
    verify_receipt,
)
from duopass.ledger.tree import NodeId, NodeReader, consistency_proof, inclusion_proof, root_at

__all__ = [
    "EMPTY_ROOT",
    "Appended",
    "Checkpoint",
    "CompactRange",
    "LeafHash",
    "LedgerError",
    "LedgerReason",
    "MemoryTree",
    "NodeHash",
    "NodeId",
    "NodeReader",
    "Note",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "Receipt",
    "RootHash",
    "SignedCheckpoint",
    "StoredNode",
    "VerifiedReceipt",
    "consistency_proof",
    "format_checkpoint",
    "format_receipt",
    "hash_children",
    "hash_leaf",
    "inclusion_proof",
    "make_receipt",
    "open_checkpoint",
    "open_note",
    "parse_checkpoint",
    "parse_note",
    "parse_receipt",
    "root_at",
    "root_of",
    "sign_checkpoint",
    "sign_note",
    "verify_consistency",
    "verify_inclusion",
    "verify_receipt",
]
