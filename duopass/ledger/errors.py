"""The one error type of the ledger core and its machine-readable reasons."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["LedgerError", "LedgerReason"]


class LedgerReason(StrEnum):
    """Why untrusted ledger input was refused. Added, never renamed or reused."""

    HASH_LENGTH = "HASH_LENGTH"
    """A hash (leaf, node, root or proof element) is not exactly 32 bytes."""
    TREE_SIZE = "TREE_SIZE"
    """An impossible tree size, or a pair of sizes no consistency proof can join."""
    INDEX = "INDEX"
    """A leaf index outside the tree."""
    PROOF_LENGTH = "PROOF_LENGTH"
    """A proof with more or fewer hashes than its sizes call for."""
    ROOT_MISMATCH = "ROOT_MISMATCH"
    """A well-formed proof that does not lead to the given root(s)."""
    TOO_LARGE = "TOO_LARGE"
    """Input longer than its limit, refused before parsing."""
    MALFORMED = "MALFORMED"
    """Text that is not the one spelling the format allows."""
    BAD_KEY = "BAD_KEY"
    """A signer or verifier key string that does not parse or whose key hash is wrong."""
    BAD_SIGNATURE = "BAD_SIGNATURE"
    """A signature by a known key that fails to verify."""
    UNVERIFIED = "UNVERIFIED"
    """No signature from a known key."""
    ORIGIN = "ORIGIN"
    """A checkpoint from another log than the one expected."""


class LedgerError(ValueError):
    """Untrusted ledger input was refused; `reason` says why (tests assert on it, not on text)."""

    def __init__(self, reason: LedgerReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
