"""Keys: libsodium's verification rules, key ids and the JWK key file."""

from __future__ import annotations

import json

import nacl.bindings
import nacl.exceptions
import pytest

from duopass.protocol import SigningKey, is_usable_public_key, kid_of, verify_signature
from duopass.protocol.keys import KeyFileError, public_key_from_jwk, verify_signed_message

# A small-order point (order 4 in Ed25519) and a signature with R = identity, S = 0, which
# OpenSSL accepts for every message under that key.
SMALL_ORDER_KEY = bytes.fromhex("0000000000000000000000000000000000000000000000000000000000000080")
IDENTITY_R_ZERO_S = bytes.fromhex("01" + "00" * 31 + "00" * 32)


def test_small_order_key_with_universal_signature_is_refused():
    assert not verify_signature(SMALL_ORDER_KEY, b"any message", IDENTITY_R_ZERO_S)
    assert not is_usable_public_key(SMALL_ORDER_KEY)


def test_non_canonical_s_is_refused():
    key = SigningKey(b"\x33" * 32)
    signature = key.sign(b"m")
    order = 2**252 + 27742317777372353535851937790883648493
    s = int.from_bytes(signature[32:], "little") + order
    forged = signature[:32] + s.to_bytes(32, "little")
    assert verify_signature(key.public, b"m", signature)
    assert not verify_signature(key.public, b"m", forged)


def test_wrong_lengths_are_simply_invalid():
    key = SigningKey(b"\x33" * 32)
    assert not verify_signature(key.public[:31], b"m", key.sign(b"m"))
    assert not verify_signature(key.public, b"m", key.sign(b"m")[:63])


def test_the_direct_libsodium_call_agrees_with_pynacls_wrapper():
    """`verify_signed_message` calls libsodium's `crypto_sign_open` without PyNaCl's wrapper:
    both must answer alike for good, forged, cut and small-order inputs."""
    key = SigningKey(b"\x33" * 32)
    signed = key.sign(b"message") + b"message"
    order = 2**252 + 27742317777372353535851937790883648493
    s = int.from_bytes(signed[32:64], "little") + order
    cases = [
        (key.public, signed),
        (key.public, signed[:-1] + b"M"),
        (key.public, signed[:32] + s.to_bytes(32, "little") + signed[64:]),
        (key.public, signed[:64]),
        (key.public, key.sign(b"") + b""),
        (SMALL_ORDER_KEY, IDENTITY_R_ZERO_S + b"any message"),
        (SigningKey(b"\x44" * 32).public, signed),
        (bytes(32), signed),
    ]
    for public, message in cases:
        try:
            nacl.bindings.crypto_sign_open(message, public)
            wrapper = True
        except nacl.exceptions.CryptoError:
            wrapper = False
        assert verify_signed_message(public, message) is wrapper
    assert [verify_signed_message(p, m) for p, m in cases[:5]] == [True, False, False, False, True]


def test_kid_is_the_sha256_prefix():
    key = SigningKey(b"\x11" * 32)
    assert kid_of(key.public).hex() == "10ba682c8ad13513"
    assert is_usable_public_key(key.public)


def test_jwk_round_trip_and_public_part():
    key = SigningKey.generate()
    assert SigningKey.from_jwk(key.to_jwk()).seed == key.seed
    assert public_key_from_jwk(key.public_jwk()) == key.public
    assert "d" not in json.loads(key.public_jwk())
    assert repr(key).startswith("SigningKey(kid=")
    assert key.seed.hex() not in repr(key)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(kty="EC"),
        lambda d: d.update(crv="X25519"),
        lambda d: d.update(x=d["x"][:-2]),
        lambda d: d.update(kid="AAAAAAAAAAA"),
        lambda d: d.update(d=d["d"] + "="),
        lambda d: d.pop("d"),
        lambda d: (
            d.update(x=json.loads(SigningKey.generate().public_jwk())["x"], kid=None)
            or d.pop("kid")
        ),
    ],
)
def test_broken_key_files_are_refused(change):
    doc = json.loads(SigningKey.generate().to_jwk())
    change(doc)
    with pytest.raises(KeyFileError):
        SigningKey.from_jwk(json.dumps(doc).encode())


@pytest.mark.parametrize("data", [b"", b"[1]", b"\xff", b"{" * 100, b" " * 5000, b"[" * 4000])
def test_non_key_files_are_refused(data):
    with pytest.raises(KeyFileError):
        public_key_from_jwk(data)
