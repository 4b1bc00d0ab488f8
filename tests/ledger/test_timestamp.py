"""RFC 3161 timestamps of signed checkpoints (`ledger.timestamp`), against `openssl ts -reply`:
a reply over the note verifies with the TSA's bundle, and is refused for other bytes, another
TSA's bundle, junk, or a bundle that is not the TSA's certificate and its root."""

from __future__ import annotations

from pathlib import Path

import pytest

from duopass.ledger import (
    Checkpoint,
    LedgerError,
    LedgerReason,
    NoteSigner,
    RootHash,
    sign_checkpoint,
)
from duopass.ledger.timestamp import TsaTrust, timestamp_request, verify_timestamp
from tests.tsa import make_authority

SIGNER = NoteSigner.generate("example.test/log")


def _note(size: int) -> bytes:
    return sign_checkpoint(Checkpoint("example.test/log", size, RootHash(bytes(32))), [SIGNER])


def test_a_reply_over_the_note_verifies_and_no_other(tmp_path: Path):
    authority = make_authority(tmp_path / "tsa")
    note = _note(3)
    reply = authority.reply(timestamp_request(note))
    stamped = verify_timestamp(reply, note, TsaTrust.from_pem(authority.trust))
    assert stamped.tsa == "CN=duopass test TSA" and stamped.time
    refusals = [
        (reply, _note(4), authority.trust),
        (reply, note, make_authority(tmp_path / "other").trust),
    ]
    for data, over, trust in refusals:
        with pytest.raises(LedgerError) as refused:
            verify_timestamp(data, over, TsaTrust.from_pem(trust))
        assert refused.value.reason is LedgerReason.BAD_SIGNATURE
    with pytest.raises(LedgerError) as junk:
        verify_timestamp(b"\x30\x03junk", note, TsaTrust.from_pem(authority.trust))
    assert junk.value.reason is LedgerReason.MALFORMED


def test_a_trust_bundle_is_the_tsa_s_certificate_and_its_root(tmp_path: Path):
    authority = make_authority(tmp_path / "tsa")
    for bundle in (authority.tsa_pem, b"not pem", b""):
        with pytest.raises(LedgerError) as refused:
            TsaTrust.from_pem(bundle)
        assert refused.value.reason is LedgerReason.BAD_KEY
