"""Every limit of the ledger core, named once, unit last. Checked before parsing."""

from __future__ import annotations

from typing import Final

__all__ = [
    "CHECKPOINT_EXTENSIONS_MAX",
    "HASH_BYTES",
    "NOTE_BYTES_MAX",
    "NOTE_SIGNATURES_MAX",
    "PROOF_HASHES_MAX",
    "RECEIPT_BYTES_MAX",
    "RECEIPT_EXTRA_BYTES_MAX",
    "TREE_SIZE_MAX",
]

HASH_BYTES: Final = 32
"""Every leaf, node and root hash is one SHA-256 digest."""

TREE_SIZE_MAX: Final = 2**63 - 1
"""Largest tree size (and so leaf index + 1) accepted anywhere: a signed 64-bit database column."""

PROOF_HASHES_MAX: Final = 64
"""Hashes in any inclusion (at most 63) or consistency (at most 64) proof below TREE_SIZE_MAX."""

NOTE_BYTES_MAX: Final = 65_536
"""A whole signed note; signed-note asks room for 16 signatures, post-quantum ones included."""
NOTE_SIGNATURES_MAX: Final = 100
"""Signature lines in one note, known or not."""

CHECKPOINT_EXTENSIONS_MAX: Final = 16
"""Extension lines after the root hash of a checkpoint."""

RECEIPT_EXTRA_BYTES_MAX: Final = 4096
"""Decoded bytes of a receipt's optional `extra` line."""
RECEIPT_BYTES_MAX: Final = NOTE_BYTES_MAX + 16_384
"""A whole tlog-proof: header, extra, index and proof lines, then the signed checkpoint."""
