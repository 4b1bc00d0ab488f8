"""Verification beyond the vectors: check order, memory, the credential cache, programmer errors."""

from __future__ import annotations

import dataclasses

import pytest

from duopass.protocol import (
    Claims,
    Kind,
    MemoryStore,
    Mode,
    Reason,
    SigningKey,
    TerminalConfig,
    TrustStore,
    Verifier,
    make_code,
    mint_credential,
    verify,
)
from duopass.protocol.cbor import dumps, loads
from duopass.protocol.cose import l1_protected
from tests.protocol.strategies import DEVICE, ISSUER, NOW
from tests.protocol.test_properties import PURSE, STORE

TILL = TerminalConfig(mode=Mode.PAY, currency="CNY")


def _code(
    claims: Claims = PURSE, ctr: int = 0, ts: int = NOW, device: SigningKey | None = DEVICE
) -> str:
    return make_code(mint_credential(claims, ISSUER), device, ctr=ctr, ts=ts)


def test_refused_scans_leave_the_memory_unchanged():
    memory = MemoryStore()
    verifier = Verifier(STORE, TILL, memory)
    assert verifier.scan(_code(ctr=1), now=NOW, amount=99_999).reason is Reason.OVER_TX_LIMIT
    assert not memory.counter_accepted("demo-univ", PURSE.cti, 1)
    assert verifier.scan(_code(ctr=1), now=NOW, amount=100).reason is Reason.OK
    assert memory.counter_accepted("demo-univ", PURSE.cti, 1)


def test_identity_scans_consume_no_counter():
    memory = MemoryStore()
    gate = Verifier(STORE, TerminalConfig(mode=Mode.IDENTITY), memory)
    code = _code(ctr=4)
    assert [gate.scan(code, now=NOW).reason for _ in range(3)] == [Reason.OK] * 3
    assert not memory.counter_accepted("demo-univ", PURSE.cti, 4)
    till = Verifier(STORE, TILL, memory)
    assert till.scan(code, now=NOW, amount=1).reason is Reason.OK


def test_the_first_failing_check_wins():
    frozen = dataclasses.replace(STORE, frozen=frozenset({("demo-univ", PURSE.sub)}))
    ticket_gate = TerminalConfig(mode=Mode.ENTRY, event="other")
    # frozen (check 10) before wrong kind (check 11)
    assert (
        Verifier(frozen, ticket_gate, MemoryStore()).scan(_code(), now=NOW).reason is Reason.FROZEN
    )
    # expired (check 8) before a stale L2 (check 15)
    late = NOW + 4_000
    stale_store = dataclasses.replace(STORE, issued_at=late)
    assert (
        Verifier(stale_store, TILL, MemoryStore()).scan(_code(ts=NOW), now=late, amount=1).reason
        is Reason.EXPIRED
    )
    # trust stale (check 3) before everything after decoding
    assert (
        Verifier(STORE, TILL, MemoryStore()).scan(_code(), now=NOW + 86_401, amount=1).reason
        is Reason.TRUST_STALE
    )


def test_freshness_allows_exactly_freshness_s_either_way():
    verifier = Verifier(STORE, TILL, MemoryStore())
    assert verifier.scan(_code(ctr=0, ts=NOW - 60), now=NOW, amount=1).reason is Reason.OK
    assert verifier.scan(_code(ctr=1, ts=NOW + 60), now=NOW, amount=1).reason is Reason.OK
    assert verifier.scan(_code(ctr=2, ts=NOW - 61), now=NOW, amount=1).reason is Reason.STALE
    assert verifier.scan(_code(ctr=3, ts=NOW + 61), now=NOW, amount=1).reason is Reason.STALE


def test_skew_applies_to_validity_start_but_not_to_expiry():
    verifier = Verifier(STORE, TILL, MemoryStore())
    future = dataclasses.replace(PURSE, nbf=NOW + 300)
    assert verifier.scan(_code(future, ts=NOW), now=NOW, amount=1).reason is Reason.OK
    later = dataclasses.replace(PURSE, nbf=NOW + 301, cti=b"\x06" * 12)
    assert verifier.scan(_code(later, ts=NOW), now=NOW, amount=1).reason is Reason.NOT_YET_VALID
    assert (
        verifier.scan(_code(ctr=1, ts=PURSE.exp), now=PURSE.exp, amount=1).reason is Reason.EXPIRED
    )


def test_scoped_codes_need_a_terminal_venue():
    scoped = dataclasses.replace(PURSE, scope=("canteen-1",))
    assert (
        Verifier(STORE, TILL, MemoryStore()).scan(_code(scoped), now=NOW, amount=1).reason
        is Reason.OUT_OF_SCOPE
    )
    at_canteen = TerminalConfig(mode=Mode.PAY, currency="CNY", venue="canteen-1")
    assert (
        Verifier(STORE, at_canteen, MemoryStore()).scan(_code(scoped), now=NOW, amount=1).reason
        is Reason.OK
    )


def test_entries_count_across_generations_and_tickets_allow_ent_entries():
    ticket = Claims(
        iss="demo-univ",
        sub="t-9",
        iat=NOW - 10,
        exp=NOW + 3_600,
        cti=b"\x09" * 8,
        kind=Kind.TICKET,
        device_key=DEVICE.public,
        uses=5,
        ev="gig",
        ent=2,
    )
    reissued = dataclasses.replace(ticket, cti=b"\x0a" * 8, gen=1)
    gate = Verifier(STORE, TerminalConfig(mode=Mode.ENTRY, event="gig"), MemoryStore())
    reasons = [
        gate.scan(_code(ticket, ctr=0), now=NOW).reason,
        gate.scan(_code(reissued, ctr=0), now=NOW).reason,
        gate.scan(_code(reissued, ctr=1), now=NOW).reason,
        gate.scan(_code(ticket, ctr=1), now=NOW).reason,
    ]
    assert reasons == [Reason.OK, Reason.OK, Reason.ALREADY_USED, Reason.REVOKED]


def test_a_credential_is_verified_once_then_served_from_the_cache():
    verifier = Verifier(STORE, TILL, MemoryStore())
    assert verifier.scan(_code(ctr=0), now=NOW, amount=1).ok
    cache = verifier._verified
    assert len(cache) == 1
    assert verifier.scan(_code(ctr=1), now=NOW, amount=1).ok
    assert len(cache) == 1
    verifier.trust = dataclasses.replace(STORE, seq=2)
    assert verifier._verified == {}


def test_the_cache_is_keyed_by_exact_bytes_not_by_signature():
    """A credential with the same signature but other claims must not ride on a cached one."""
    verifier = Verifier(STORE, TILL, MemoryStore())
    good = _code(ctr=0)
    assert verifier.scan(good, now=NOW, amount=1).ok
    richer = dataclasses.replace(PURSE, txmax=10**9)
    # Graft the good credential's signature onto the richer claims under the issuer's kid.
    forged_l1 = mint_credential(richer, SigningKey(b"\x55" * 32))
    genuine = loads(mint_credential(PURSE, ISSUER))
    forged = loads(forged_l1)
    forged[0] = l1_protected(ISSUER.kid)
    forged[3] = genuine[3]
    text = make_code(dumps(forged), DEVICE, ctr=1, ts=NOW)
    assert verifier.scan(text, now=NOW, amount=1).reason is Reason.BAD_SIGNATURE


def test_memory_forgets_after_keep_until():
    memory = MemoryStore()
    verifier = Verifier(STORE, TILL, memory)
    verdict = verifier.scan(_code(ctr=0), now=NOW, amount=1)
    assert verdict.acceptance is not None
    assert verdict.acceptance.keep_until == PURSE.exp + 300
    memory.forget_until(PURSE.exp + 300)
    assert memory.counter_accepted("demo-univ", PURSE.cti, 0)
    memory.forget_until(PURSE.exp + 301)
    assert not memory.counter_accepted("demo-univ", PURSE.cti, 0)


def test_programmer_errors_raise():
    with pytest.raises(ValueError, match="currency"):
        TerminalConfig(mode=Mode.PAY)
    with pytest.raises(ValueError, match="event"):
        TerminalConfig(mode=Mode.ENTRY)
    with pytest.raises(ValueError, match="amount"):
        verify(_code(), trust=STORE, config=TILL, memory=MemoryStore(), now=NOW, amount=0)


def test_unknown_issuer_is_unknown_key():
    empty = TrustStore(seq=1, issued_at=NOW, max_age_s=60, issuers=())
    assert (
        Verifier(empty, TILL, MemoryStore()).scan(_code(), now=NOW, amount=1).reason
        is Reason.UNKNOWN_KEY
    )
