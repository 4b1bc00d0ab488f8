"""Property tests: minted codes round-trip, and no single change to a valid code is accepted."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duopass.protocol import (
    Claims,
    Issuer,
    Kind,
    MemoryStore,
    Mode,
    Policy,
    Reason,
    TerminalConfig,
    TrustKey,
    TrustStore,
    Verifier,
    decode_code,
    make_code,
    mint_credential,
)
from duopass.protocol.code import strip_line_ending
from tests.protocol.strategies import DEVICE, ISSUER, NOW, claims

STORE = TrustStore(
    seq=1,
    issued_at=NOW,
    max_age_s=86_400,
    issuers=(
        Issuer(
            "demo-univ",
            (TrustKey(ISSUER.kid, ISSUER.public, NOW - 86_400, NOW + 86_400),),
            Policy(),
        ),
    ),
)
PURSE = Claims(
    iss="demo-univ",
    sub="h-1",
    iat=NOW - 10,
    exp=NOW + 3_600,
    cti=b"\x05" * 12,
    kind=Kind.PURSE,
    device_key=DEVICE.public,
    uses=5,
    txmax=2_000,
    cur="CNY",
)
PURSE_CODE = make_code(mint_credential(PURSE, ISSUER), DEVICE, ctr=2, ts=NOW)


def _till() -> Verifier:
    return Verifier(STORE, TerminalConfig(mode=Mode.PAY, currency="CNY"), MemoryStore())


def test_the_example_code_is_accepted():
    assert _till().scan(PURSE_CODE, now=NOW, amount=100).reason is Reason.OK


@given(claims(), st.integers(0, 2**32 - 1), st.integers(0, 2**53 - 1))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_minted_codes_round_trip(minted, ctr, ts):
    l1 = mint_credential(minted, ISSUER)
    bound = minted.device_key is not None
    text = make_code(l1, DEVICE if bound else None, ctr=ctr, ts=ts)
    code = decode_code(text)
    assert code.credential.claims == minted
    assert code.credential.kid == ISSUER.kid
    if bound:
        assert code.dynamic is not None
        assert (code.dynamic.ctr, code.dynamic.ts) == (ctr, ts)
    else:
        assert code.dynamic is None
    assert decode_code(text + "\r\n").credential == code.credential


@given(st.data())
@settings(max_examples=1000)
def test_any_single_change_is_rejected(data):
    text = PURSE_CODE
    i = data.draw(st.integers(0, len(text) - 1), label="position")
    op = data.draw(st.sampled_from(["replace", "delete", "insert", "truncate", "extend"]))
    char = data.draw(st.characters(codec="utf-8"), label="char")
    if op == "replace":
        changed = text[:i] + char + text[i + 1 :]
    elif op == "delete":
        changed = text[:i] + text[i + 1 :]
    elif op == "insert":
        changed = text[:i] + char + text[i:]
    elif op == "truncate":
        changed = text[:i]
    else:
        changed = text + data.draw(st.text(min_size=1, max_size=8), label="tail")
    if strip_line_ending(changed) == text or changed == text:
        return  # the one trailing line ending §2 allows, or a replacement by the same character
    verdict = _till().scan(changed, now=NOW, amount=100)
    assert isinstance(verdict.reason, Reason)
    assert not verdict.ok, (op, i, char, changed)


@given(st.text(max_size=1300))
@settings(max_examples=500)
def test_arbitrary_text_never_raises(text):
    verdict = _till().scan(text, now=NOW, amount=1)
    assert verdict.reason in (Reason.FORMAT, Reason.MALFORMED)


@given(st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:", max_size=900))
@settings(max_examples=500)
def test_arbitrary_base45_never_raises(body):
    verdict = _till().scan("DP1:" + body, now=NOW, amount=1)
    assert verdict.reason is Reason.MALFORMED
