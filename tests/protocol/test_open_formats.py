"""The formats PROTOCOL §8 leaves to us, pinned by our own vectors (docs/vectors/): trust
bundles and their deltas, terminal enrolment proofs and request signatures."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from duopass.protocol import SigningKey
from duopass.protocol.bundle import Bundle, BundleError, apply_bundle, encode_bundle, open_bundle
from duopass.protocol.cbor import MalformedError, dumps, loads
from duopass.protocol.journal import (
    BATCH_BYTES_MAX,
    GENESIS,
    Entry,
    JournalError,
    encode_batch,
    encode_entry,
    open_batch,
    parse_entry,
)
from duopass.protocol.keys import KeyId
from duopass.protocol.reasons import Reason
from duopass.protocol.signed_requests import (
    enrolment_message,
    request_message,
    sign_request,
    verify_request,
)
from duopass.protocol.trust import Policy, TrustKey
from duopass.protocol.verify import Mode

VECTORS = Path(__file__).resolve().parents[2] / "docs" / "vectors"
BUNDLES = json.loads((VECTORS / "bundles.json").read_text())
REQUESTS = json.loads((VECTORS / "terminal-requests.json").read_text())
ROOT = SigningKey(bytes.fromhex(BUNDLES["root_seed_hex"]))


def _whole() -> Bundle:
    w = BUNDLES["whole"]
    keys = tuple(
        TrustKey(KeyId(bytes.fromhex(k["kid_hex"])), bytes.fromhex(k["x_hex"]), k["nbf"], k["exp"])
        for k in w["keys_added"]
    )
    return Bundle(
        seq=w["seq"],
        issued_at=w["issued_at"],
        max_age_s=w["max_age_s"],
        since=0,
        iss=w["iss"],
        policy=Policy(),
        keys_added=keys,
        revoked_added=tuple(bytes.fromhex(c) for c in w["revoked_added_hex"]),
        frozen_added=tuple(w["frozen_added"]),
    )


def _delta() -> Bundle:
    d = BUNDLES["delta"]
    return Bundle(
        seq=d["seq"],
        issued_at=d["issued_at"],
        max_age_s=d["max_age_s"],
        since=d["since"],
        iss=d["iss"],
        policy=Policy(),
        revoked_added=tuple(bytes.fromhex(c) for c in d["revoked_added_hex"]),
        frozen_removed=tuple(d["frozen_removed"]),
    )


def test_bundles_are_byte_exact():
    assert ROOT.public.hex() == BUNDLES["root_public_hex"]
    assert encode_bundle(_whole(), ROOT).hex() == BUNDLES["whole"]["bytes_hex"]
    assert encode_bundle(_delta(), ROOT).hex() == BUNDLES["delta"]["bytes_hex"]


def test_a_delta_applies_on_the_version_it_starts_from():
    whole = open_bundle(bytes.fromhex(BUNDLES["whole"]["bytes_hex"]), ROOT.public)
    delta = open_bundle(bytes.fromhex(BUNDLES["delta"]["bytes_hex"]), ROOT.public)
    assert whole == _whole() and delta == _delta()
    store = apply_bundle(apply_bundle(None, whole), delta)
    assert store.seq == 9 and store.issued_at == 1_790_000_000
    assert store.is_revoked("demo-univ", b"\x02" * 12) and store.is_revoked(
        "demo-univ", b"\x03" * 12
    )
    assert not store.is_frozen("demo-univ", "h-7f3a9c")
    assert store.key("demo-univ", whole.keys_added[0].kid) is not None
    with pytest.raises(BundleError, match="older"):
        apply_bundle(store, whole)
    with pytest.raises(BundleError, match="delta"):
        apply_bundle(None, delta)


def test_the_late_window_travels_in_the_bundles_policy():
    """§5.4 (revision 1.1): the policy map carries `late_window_s` (key 7) with the §3 fields."""
    policy = Policy(freshness_s=20, late_window_s=12 * 3600)
    data = encode_bundle(dataclasses.replace(_whole(), policy=policy), ROOT)
    assert open_bundle(data, ROOT.public).policy == policy
    assert apply_bundle(None, open_bundle(data, ROOT.public)).policy("demo-univ") == policy


def test_a_bundle_from_before_the_late_window_opens_with_the_default():
    """A bundle of revision 1.0 (policy keys 1-6 only) still opens: late window 72 h."""
    old = BUNDLES["whole_without_late_window"]
    bundle = open_bundle(bytes.fromhex(old["bytes_hex"]), ROOT.public)
    assert bundle == _whole()
    assert bundle.policy.late_window_s == old["late_window_s"] == 72 * 3600


def test_bundles_signed_by_another_key_or_altered_are_refused():
    data = bytes.fromhex(BUNDLES["whole"]["bytes_hex"])
    with pytest.raises(BundleError):
        open_bundle(data, SigningKey(b"\x23" * 32).public)
    with pytest.raises(BundleError):
        open_bundle(data[:-1] + bytes([data[-1] ^ 1]), ROOT.public)
    with pytest.raises(BundleError):
        open_bundle(data[:40], ROOT.public)


def test_a_root_key_speaks_only_for_its_own_issuer():
    other = dataclasses.replace(_whole(), iss="other-univ", seq=8, revoked_added=(b"\x09" * 12,))
    store = apply_bundle(apply_bundle(None, _whole()), other)
    assert store.is_revoked("demo-univ", b"\x02" * 12)  # untouched by the other issuer's bundle
    assert store.is_revoked("other-univ", b"\x09" * 12)
    assert not store.is_revoked("demo-univ", b"\x09" * 12)


def test_terminal_requests_are_byte_exact_and_verify():
    key = SigningKey(bytes.fromhex(REQUESTS["terminal_seed_hex"]))
    message = enrolment_message(REQUESTS["terminal_id"], REQUESTS["enrol_code"], key.public)
    assert message.hex() == REQUESTS["enrolment_message_hex"]
    assert key.sign(message).hex() == REQUESTS["enrolment_proof_hex"]
    body = REQUESTS["body"].encode()
    assert (
        request_message(REQUESTS["method"], REQUESTS["target"], REQUESTS["time"], body).decode()
        == REQUESTS["request_message"]
    )
    headers = sign_request(
        key,
        REQUESTS["terminal_id"],
        method=REQUESTS["method"],
        target=REQUESTS["target"],
        time=REQUESTS["time"],
        body=body,
    )
    assert headers == REQUESTS["headers"]
    check = {
        "method": "POST",
        "target": REQUESTS["target"],
        "time": headers["Duopass-Time"],
        "signature": headers["Duopass-Signature"],
    }
    assert verify_request(key.public, body=body, now=REQUESTS["time"] + 300, **check)
    assert not verify_request(key.public, body=body, now=REQUESTS["time"] + 301, **check)
    assert not verify_request(key.public, body=body + b" ", now=REQUESTS["time"], **check)


JOURNAL = json.loads((VECTORS / "journal.json").read_text())
TERMINAL = SigningKey(bytes.fromhex(JOURNAL["terminal_seed_hex"]))


def _entry(fields: dict[str, Any]) -> Entry:
    return Entry(
        seq=fields["seq"],
        scanned_at=fields["scanned_at"],
        clock_offset=fields["clock_offset"],
        mode=Mode(fields["mode"]),
        amount=fields["amount"],
        currency=fields["currency"],
        venue=fields["venue"],
        verdict=Reason(fields["verdict"]),
        online=fields["online"],
        tried=fields["tried"],
        bundle_seq=fields["bundle_seq"],
        code=fields["code"],
    )


def test_journal_entries_and_batches_are_byte_exact():
    assert TERMINAL.public.hex() == JOURNAL["terminal_public_hex"]
    entries = {}
    for fields in JOURNAL["entries"]:
        data = encode_entry(_entry(fields))
        assert data.hex() == fields["bytes_hex"]
        assert parse_entry(data) == _entry(fields)
        entries[fields["seq"]] = data
    prev = GENESIS
    for expected in JOURNAL["batches"]:
        data = encode_batch(
            TERMINAL,
            JOURNAL["terminal_id"],
            first=expected["first"],
            prev=prev,
            entries=[entries[seq] for seq in expected["entries"]],
        )
        assert data.hex() == expected["bytes_hex"]
        batch = open_batch(data, TERMINAL.public)
        assert batch.prev.hex() == expected["prev_hex"]
        assert batch.digest.hex() == expected["sha256_hex"]
        assert batch.entries == tuple(entries[seq] for seq in expected["entries"])
        prev = batch.digest


def test_a_batch_is_refused_as_a_whole_only_for_its_envelope():
    data = bytes.fromhex(JOURNAL["batches"][0]["bytes_hex"])
    with pytest.raises(JournalError, match="this terminal"):
        open_batch(data, SigningKey(bytes(32)).public)
    tampered = bytearray(data)
    tampered[-70] ^= 1  # a byte of the payload: the signature no longer covers it
    with pytest.raises(JournalError):
        open_batch(bytes(tampered), TERMINAL.public)
    with pytest.raises(JournalError, match="too large"):
        open_batch(b"\x00" * (BATCH_BYTES_MAX + 1), TERMINAL.public)


@pytest.mark.parametrize(
    "change",
    [
        {1: 0},  # seq starts at 1
        {4: "refund"},
        {8: "MAYBE"},
        {9: 2},
        {12: ""},
        {5: None},  # a payment without an amount
        {13: 1},  # a field nobody defined
    ],
)
def test_a_malformed_entry_is_refused_alone(change: dict[int, Any]):
    body = dict(loads(bytes.fromhex(JOURNAL["entries"][0]["bytes_hex"])))
    for key, value in change.items():
        if value is None:
            body.pop(key)
        else:
            body[key] = value
    with pytest.raises(MalformedError):
        parse_entry(dumps(body))
