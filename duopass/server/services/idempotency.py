"""Idempotency keys bound to their request. What a key (a request id, a terminal's seq) was first
used for is stored as a fingerprint beside what it did: the same key with the same request is a
retry and gets the first answer, changing nothing; the same key with another request is refused
with `idempotency_mismatch`, never answered with the first request's outcome (a 200 for money
that did not move).

A fingerprint is the SHA-256 of the request's fields as one deterministic CBOR array (typed and
length-prefixed, so distinct requests never share an encoding). Stored fingerprints are compared
with ones computed later, so the encodings below never change (migration 0005 computes them
for rows written before they existed)."""

from __future__ import annotations

import hashlib

from duopass.protocol import cbor
from duopass.protocol.code import strip_line_ending
from duopass.server.problems import Problem, ProblemCode

FINGERPRINT_BYTES = 32


def _fingerprint(*fields: str | int) -> bytes:
    return hashlib.sha256(cbor.dumps(list(fields))).digest()


def money(
    kind: str, *, holder_account: int, amount: int, currency: str, merchant_account: int = 0
) -> bytes:
    """A top-up or refund: who is credited, how much, in what, from which merchant (0: none)."""
    return _fingerprint(kind, holder_account, amount, currency, merchant_account)


def sync(*, device_id: int, mark: int | None) -> bytes:
    """A wallet's sync: the device the credential is for and the mark it reported (§4.2)."""
    return _fingerprint("sync", device_id, *([] if mark is None else [mark]))


def scan(*, code: str, mode: str, amount: int | None) -> bytes:
    """An online scan. The scan time is left out: a retry is sent later than the first attempt.
    The code is compared as verifiers read it (one trailing line ending removed, §2)."""
    return _fingerprint(
        "scan", strip_line_ending(code), mode, *([] if amount is None else [amount])
    )


def partner_order(*, partner: int, holder: int, ticket_type: int, quantity: int) -> bytes:
    """A partner's order: which partner, for which holder, of what and how many."""
    return _fingerprint("partner_order", partner, holder, ticket_type, quantity)


def refuse(what: str) -> Problem:
    """The refusal of a known key with another request."""
    return Problem(
        ProblemCode.IDEMPOTENCY_MISMATCH, f"{what} was already used for a different request"
    )
