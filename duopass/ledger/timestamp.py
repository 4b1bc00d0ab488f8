"""RFC 3161 timestamps over signed checkpoints: the request a log sends a Time-Stamping Authority
and the check of its reply (`rfc3161-client`), pure.

The message imprint is SHA-256 of the signed note's exact bytes (the log's signature included,
witness cosignatures not). A reply is trusted with the TSA's own certificate and the chain up
to a root the auditor names: a PEM bundle, the TSA's certificate first, its root last.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import cryptography.x509
import rfc3161_client

from duopass.ledger.errors import LedgerError, LedgerReason

__all__ = ["TSA_REPLY_BYTES_MAX", "Stamped", "TsaTrust", "timestamp_request", "verify_timestamp"]

TSA_REPLY_BYTES_MAX = 65_536
"""A TimeStampResp: a signature, a certificate or two and the token info."""
_TRUST_CERTIFICATES_MAX = 8


@dataclass(frozen=True, slots=True)
class Stamped:
    """A timestamp that verified: the time the TSA states (ISO 8601) and its certificate's
    subject."""

    time: str
    tsa: str


@dataclass(frozen=True)
class TsaTrust:
    """The TSA certificate, intermediates and roots a reply must chain to."""

    tsa: cryptography.x509.Certificate
    intermediates: tuple[cryptography.x509.Certificate, ...]
    roots: tuple[cryptography.x509.Certificate, ...]

    @classmethod
    def from_pem(cls, pem: bytes) -> TsaTrust:
        """A bundle: the TSA's certificate first, then any intermediates, its root last."""
        try:
            certificates = cryptography.x509.load_pem_x509_certificates(pem)
        except ValueError as exc:
            raise LedgerError(LedgerReason.BAD_KEY, "not a PEM certificate bundle") from exc
        if not 2 <= len(certificates) <= _TRUST_CERTIFICATES_MAX:
            raise LedgerError(
                LedgerReason.BAD_KEY, "a TSA trust bundle is the TSA's certificate and its root"
            )
        return cls(certificates[0], tuple(certificates[1:-1]), (certificates[-1],))


def _imprint(note: bytes) -> bytes:
    return hashlib.sha256(note).digest()


def timestamp_request(note: bytes) -> bytes:
    """The DER TimeStampReq for `note`: SHA-256 imprint, a nonce, the TSA's certificate asked."""
    builder = rfc3161_client.TimestampRequestBuilder().hash_algorithm(
        rfc3161_client.HashAlgorithm.SHA256
    )
    request = builder.data(note).nonce(nonce=True).cert_request(cert_request=True).build()
    return bytes(request.as_bytes())


def verify_timestamp(reply: bytes, note: bytes, trust: TsaTrust) -> Stamped:
    """Check a TimeStampResp over `note` (its SHA-256) against `trust`; BAD_SIGNATURE if the
    reply does not decode, is not granted, does not chain, or stamps other bytes."""
    if len(reply) > TSA_REPLY_BYTES_MAX:
        raise LedgerError(LedgerReason.TOO_LARGE, "a timestamp reply is too large")
    try:
        response = rfc3161_client.decode_timestamp_response(reply)
    except (ValueError, rfc3161_client.VerificationError) as exc:
        raise LedgerError(LedgerReason.MALFORMED, "not an RFC 3161 timestamp reply") from exc
    builder = rfc3161_client.VerifierBuilder().tsa_certificate(trust.tsa)
    for certificate in trust.intermediates:
        builder = builder.add_intermediate_certificate(certificate)
    for certificate in trust.roots:
        builder = builder.add_root_certificate(certificate)
    try:
        builder.build().verify(response, _imprint(note))
    except (rfc3161_client.VerificationError, ValueError) as exc:
        why = str(exc).split(": ErrorStack")[0][:200]  # OpenSSL's error stack: not for a report
        raise LedgerError(LedgerReason.BAD_SIGNATURE, f"timestamp refused: {why}") from exc
    info = response.tst_info
    return Stamped(info.gen_time.isoformat(), trust.tsa.subject.rfc4514_string())
