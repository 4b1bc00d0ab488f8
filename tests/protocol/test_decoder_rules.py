"""§2's encoding rules, one by one: each deviation from a valid code is MALFORMED (or FORMAT)."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import b45
import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from duopass.protocol import Reason, decode_code
from duopass.protocol.cbor import MalformedError, dumps, loads
from duopass.protocol.claims import Claims, Kind, encode_claims
from duopass.protocol.code import FormatError, make_code, mint_credential
from duopass.protocol.cose import L2_PROTECTED, l1_protected, sig_structure, sign1
from duopass.protocol.encoding import EncodingError, b45decode, b45encode, b64u_decode
from tests.protocol.strategies import DEVICE, ISSUER, NOW
from tests.protocol.test_properties import PURSE, PURSE_CODE, _till


def _code_with_payload(payload: dict[int, Any], *, l2: bool = True) -> str:
    """A code whose L1 carries `payload` (raw CBOR map), correctly signed, with a valid L2."""
    l1 = sign1(ISSUER, l1_protected(ISSUER.kid), dumps(payload))
    envelope = [l1]
    if l2:
        envelope.append(sign1(DEVICE, L2_PROTECTED, dumps([0, NOW]), l1[3]))
    return "DP1:" + b45encode(dumps(envelope))


def _reason(text: str) -> Reason:
    return _till().scan(text, now=NOW, amount=100).reason


def test_a_correctly_built_code_is_accepted():
    assert _reason(_code_with_payload(loads(encode_claims(PURSE)))) is Reason.OK


@pytest.mark.parametrize(
    "hex_item",
    [
        "c24101",  # a tag (bignum)
        "d818420102",  # tag 24 (embedded CBOR)
        "f93c00",  # half float
        "fb3ff0000000000000",  # double
        "f5",  # true
        "f6",  # null
        "f7",  # undefined
        "1b0020000000000000",  # 2^53
        "3b001fffffffffffff",  # -2^53
        "1900ff",  # 255 not in its shortest form
        "5f41ff",  # indefinite byte string (unterminated)
        "9f01ff",  # indefinite array
        "a2010102",  # duplicate key... (malformed count)
        "a201000100",  # duplicate key 1
        "a1616101",  # a text key
        "a20201 0100".replace(" ", ""),  # keys out of order
    ],
)
def test_cbor_outside_the_allowed_items_is_refused(hex_item):
    with pytest.raises(MalformedError):
        loads(bytes.fromhex(hex_item))


def test_deep_nesting_is_refused_without_recursion():
    with pytest.raises(MalformedError):
        loads(b"\x81" * 5000 + b"\x00")


@pytest.mark.parametrize(
    "dp_changes",
    [
        {0: [9]},  # crit names a key DP1 does not understand
        {0: []},
        {0: [1, 1]},
        {1: 4},  # unknown kind
        {2: 0},
        {2: 1001},
        {3: 0},
        {4: "cny"},
        {4: "CNYX"},
        {5: []},
        {5: ["a"] * 17},
        {5: [""]},
        {6: "x" * 65},
        {7: -1},
        {8: 0},
        {99: 1.5},  # an unknown key is ignored, but never its float
    ],
)
def test_dp_claims_out_of_their_tables_are_malformed(dp_changes):
    payload = loads(encode_claims(PURSE))
    payload[-65537].update(dp_changes)
    with pytest.raises(MalformedError):
        decode_code(_code_with_payload(payload))
    assert _reason(_code_with_payload(payload)) is Reason.MALFORMED


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        (1, "demo univ"),  # a space in iss
        (1, ""),
        (2, "s" * 65),
        (4, NOW - 20),  # exp before iat
        (7, b"\x01" * 7),
        (7, b"\x01" * 17),
        (8, {1: {1: 1, -1: 6, -2: b"\x01" * 31}}),
        (8, {1: {1: 1, -1: 7, -2: b"\x01" * 32}}),
        (8, {1: {1: 1, -1: 6, -2: b"\x01" * 32, 2: b"x"}}),
        (8, {2: {1: 1, -1: 6, -2: b"\x01" * 32}}),
        (-65537, []),
    ],
)
def test_cwt_claims_out_of_their_tables_are_malformed(claim, value):
    payload = loads(encode_claims(PURSE))
    payload[claim] = value
    assert _reason(_code_with_payload(payload)) is Reason.MALFORMED


def test_unknown_cwt_claims_such_as_aud_are_ignored():
    payload = loads(encode_claims(PURSE))
    payload[3] = "some-audience"
    payload[-70000] = [1, {2: b"x"}]
    assert _reason(_code_with_payload(payload)) is Reason.OK


def test_an_l2_on_a_credential_without_cnf_is_malformed():
    payload = loads(encode_claims(PURSE))
    del payload[8]
    assert _reason(_code_with_payload(payload, l2=True)) is Reason.MALFORMED


def test_unprotected_headers_must_be_empty():
    envelope = loads(b45decode(PURSE_CODE[4:]))
    envelope[0][1] = {4: b"kid"}
    assert _reason("DP1:" + b45encode(dumps(envelope))) is Reason.MALFORMED


def test_an_extra_protected_header_is_malformed():
    l1 = sign1(ISSUER, dumps({1: -8, 4: ISSUER.kid, 3: 0}), encode_claims(PURSE))
    envelope = [l1, sign1(DEVICE, L2_PROTECTED, dumps([0, NOW]), l1[3])]
    assert _reason("DP1:" + b45encode(dumps(envelope))) is Reason.MALFORMED


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("dp1:" + PURSE_CODE[4:], Reason.FORMAT),
        (" " + PURSE_CODE, Reason.FORMAT),
        ("", Reason.FORMAT),
        (PURSE_CODE + "\n", Reason.OK),
        (PURSE_CODE + "\r\n", Reason.OK),
        (PURSE_CODE + "\r", Reason.OK),
        (PURSE_CODE + "\n\n", Reason.MALFORMED),
        (PURSE_CODE + "\n\r", Reason.MALFORMED),
        (PURSE_CODE + " ", Reason.MALFORMED),
        ("DP1:" + "0" * 1197, Reason.MALFORMED),  # 1,201 characters
        ("DP1:", Reason.MALFORMED),
    ],
)
def test_text_layer(text, reason):
    assert _reason(text) is reason


def test_codes_longer_than_1200_characters_are_malformed_even_if_valid():
    long_claims = Claims(
        iss="demo-univ",
        sub="s" * 64,
        iat=NOW - 10,
        exp=NOW + 100,
        cti=b"\x01" * 16,
        kind=Kind.PURSE,
        device_key=DEVICE.public,
        uses=5,
        txmax=10,
        cur="CNY",
        scope=tuple(f"{i:02}" + "v" * 60 for i in range(16)),
    )
    text = make_code(mint_credential(long_claims, ISSUER), DEVICE, ctr=0, ts=NOW)
    assert len(text) > 1200
    with pytest.raises(MalformedError):
        decode_code(text)


@pytest.mark.parametrize("text", ["GGW", "ZZZ", "A", "AB", "::", "0a0", "ÿÿÿ", "A\nB"])
def test_base45_has_one_spelling(text):
    with pytest.raises(EncodingError):
        b45decode(text)


def test_base45_round_trips_every_byte():
    data = bytes(range(256)) + b"\xff"
    assert b45decode(b45encode(data)) == data


@pytest.mark.parametrize("text", ["AQ==", "AQ=", "A", "AR", "+/", "a b"])
def test_base64url_is_strict(text):
    with pytest.raises(EncodingError):
        b64u_decode(text)


def test_minting_refuses_claims_a_verifier_would_refuse():
    with pytest.raises(ValueError, match="refuse"):
        encode_claims(Claims(**{**PURSE.__dict__, "uses": 0}))
    with pytest.raises(ValueError, match="refuse"):
        encode_claims(Claims(**{**PURSE.__dict__, "exp": PURSE.iat}))


def test_format_error_is_distinct_from_malformed():
    with pytest.raises(FormatError):
        decode_code("HC1:xyz")


@given(st.dictionaries(st.integers(-(2**53) + 1, 2**53 - 1), st.integers(0, 3), max_size=12))
def test_key_order_check_agrees_with_the_canonical_encoder(mapping):
    canonical = dumps(mapping)
    assert loads(canonical) == mapping
    as_given = cbor2.dumps(mapping)
    if as_given != canonical:
        with pytest.raises(MalformedError):
            loads(as_given)


@given(st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:a\x00é", max_size=12))
def test_base45_accepts_exactly_the_texts_that_re_encode_to_themselves(text):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # b45 warns when a final pair wraps in uint8
        try:
            canonical = len(text) % 3 != 1 and b45.encode(b45.decode(text)) == text
        except (ValueError, IndexError):  # b45 indexes its table by the character
            canonical = False
    if canonical:
        assert b45encode(b45decode(text)) == text
    else:
        with pytest.raises(EncodingError):
            b45decode(text)


def test_unknown_claims_may_nest_as_deep_as_a_code_can_carry():
    payload = loads(encode_claims(PURSE))
    nested: Any = 1
    for _ in range(40):
        nested = [nested]
    payload[3] = nested  # aud, ignored, but still walked for forbidden items
    assert _reason(_code_with_payload(payload)) is Reason.OK
    payload[3] = [[[[[[[[[[1.5]]]]]]]]]]
    assert _reason(_code_with_payload(payload)) is Reason.MALFORMED


def test_a_negative_timestamp_is_an_integer_and_simply_stale():
    l1 = sign1(ISSUER, l1_protected(ISSUER.kid), encode_claims(PURSE))
    envelope = [l1, sign1(DEVICE, L2_PROTECTED, dumps([0, -1]), l1[3])]
    assert _reason("DP1:" + b45encode(dumps(envelope))) is Reason.STALE


@pytest.mark.parametrize("sizes", [(0, 0, 0), (13, 0, 23), (24, 64, 255), (256, 1, 65_536)])
def test_sig_structure_is_the_deterministic_encoding_of_its_array(sizes):
    protected, aad, payload = (bytes([7]) * size for size in sizes)
    assert sig_structure(protected, aad, payload) == dumps(["Signature1", protected, aad, payload])


@pytest.mark.parametrize("device", [DEVICE, None])
def test_a_credentials_bytes_are_its_l1_as_encoded_in_the_code(device):
    l1 = mint_credential(
        PURSE if device else Claims(**{**PURSE.__dict__, "device_key": None, "uses": None}), ISSUER
    )
    decoded = decode_code(make_code(l1, device, ctr=1, ts=NOW))
    assert decoded.credential.encoded == l1


def test_parsed_claims_carry_every_field():
    parsed = decode_code(PURSE_CODE).credential.claims
    assert vars(parsed).keys() == {field.name for field in dataclasses.fields(Claims)}
    assert parsed == PURSE


@pytest.mark.parametrize("aud_chars", [0, 200])  # a payload head of two bytes, then of three
def test_the_signed_bytes_are_the_sig_structures_of_both_parts(aud_chars):
    """The decoder cuts L1's Sig_structure from its encoding and joins L2's from a fixed head:
    both must be what COSE builds."""
    payload = loads(encode_claims(PURSE))
    if aud_chars:
        payload[3] = "a" * aud_chars  # `aud`, an unknown claim here
    text = _code_with_payload(payload)
    l1, l2 = loads(b45decode(text[4:]))
    code = decode_code(text)
    assert code.dynamic is not None
    assert code.credential.signed == sig_structure(l1[0], b"", l1[2])
    assert code.credential.signed_message() == l1[3] + sig_structure(l1[0], b"", l1[2])
    assert code.dynamic.signed == sig_structure(l2[0], l1[3], l2[2])
    assert (len(l1[2]) > 255) is (aud_chars > 0)
    assert _reason(text) is Reason.OK
