"""Verifying a code as a terminal does (§3): the checks in order, the first failure its reason.

`verify` is pure: the trust store, the terminal's configuration and memory, and `now` are all
inputs, and the verdict says what to add to the memory. `Verifier` is the convenient form for one
terminal: it caches verified credentials by their exact bytes and records acceptances.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from duopass.protocol.cbor import MalformedError
from duopass.protocol.claims import Claims, Kind
from duopass.protocol.code import Code, Credential, FormatError, decode_code
from duopass.protocol.keys import verify_signature, verify_signed_message
from duopass.protocol.limits import L1_CACHE_ENTRIES_MAX
from duopass.protocol.memory import Acceptance, TerminalMemory
from duopass.protocol.reasons import Reason
from duopass.protocol.trust import Policy, TrustStore, TrustView

__all__ = [
    "Mode",
    "TerminalConfig",
    "Verdict",
    "Verifier",
    "accepted",
    "verify",
    "verify_code",
]


class Mode(StrEnum):
    """What a terminal scans for."""

    PAY = "pay"
    IDENTITY = "identity"
    ENTRY = "entry"


_KINDS_FOR_MODE = {
    Mode.PAY: frozenset({Kind.PURSE}),
    Mode.IDENTITY: frozenset({Kind.PURSE, Kind.IDENTITY}),
    Mode.ENTRY: frozenset({Kind.TICKET}),
}


@dataclass(frozen=True, kw_only=True)
class TerminalConfig:
    """A terminal's own configuration: a till has a currency, a gate an event, either a venue."""

    mode: Mode
    currency: str | None = None
    venue: str | None = None
    event: str | None = None

    def __post_init__(self) -> None:
        if self.mode is Mode.PAY and not self.currency:
            raise ValueError("a pay terminal needs a currency")
        if self.mode is Mode.ENTRY and not self.event:
            raise ValueError("an entry terminal needs an event")


@dataclass(frozen=True)
class Verdict:
    """The outcome of one scan. `claims` and `ctr` are set once the code has decoded."""

    reason: Reason
    claims: Claims | None = None
    ctr: int | None = None
    acceptance: Acceptance | None = None

    @property
    def ok(self) -> bool:
        return self.reason is Reason.OK


def verify(
    text: str,
    *,
    trust: TrustStore,
    config: TerminalConfig,
    memory: TerminalMemory,
    now: int,
    amount: int | None = None,
    verified: MutableMapping[bytes, Credential] | None = None,
) -> Verdict:
    """Verify a scanned text. `verified` caches credentials whose signature checked out under
    `trust`, keyed by their exact bytes; pass the same mapping only with the same trust store."""
    if config.mode is Mode.PAY and (amount is None or amount < 1):
        raise ValueError("a payment needs an amount of at least 1")
    try:
        code = decode_code(text, known=verified)  # §3 checks 1 and 2
    except FormatError:
        return Verdict(Reason.FORMAT)
    except MalformedError:
        return Verdict(Reason.MALFORMED)
    return verify_code(
        code, trust=trust, config=config, memory=memory, now=now, amount=amount, verified=verified
    )


def verify_code(
    code: Code,
    *,
    trust: TrustView,
    config: TerminalConfig,
    memory: TerminalMemory,
    now: int,
    amount: int | None = None,
    verified: MutableMapping[bytes, Credential] | None = None,
    online: bool = False,
    device_signature: bool | None = None,
    issuer_signature: bool | None = None,
) -> Verdict:
    """§3 checks 3 to 19 on a decoded code. `online=True` is the server's run: check 18 does not
    apply (the funds rule of §3-§4 replaces it) and revocation may depend on the counter.
    `device_signature` is check 14's outcome when the caller verified the L2 signature under
    the credential's `cnf` already (a journal batch verifies its entries' on every core), and
    `issuer_signature` check 5's under the key `trust` holds for the L1's `iss` and kid."""
    credential, dynamic = code.credential, code.dynamic
    claims = credential.claims
    ctr = dynamic.ctr if dynamic is not None else None

    def refuse(reason: Reason) -> Verdict:
        return _verdict(reason, claims, ctr, None)

    # §3 check 3: the trust store is fresh
    if now > trust.issued_at + trust.max_age_s:
        return refuse(Reason.TRUST_STALE)
    # check 4: the signing key is known under this issuer
    key = trust.key(claims.iss, credential.kid)
    if key is None:
        return refuse(Reason.UNKNOWN_KEY)
    # check 5: issuer signature (a credential in `verified` checked out under this store)
    if verified is None or credential.encoded not in verified:
        if issuer_signature is None:
            issuer_signature = verify_signed_message(key.x, credential.signed_message())
        if not issuer_signature:
            return refuse(Reason.BAD_SIGNATURE)
        if verified is not None:
            if len(verified) >= L1_CACHE_ENTRIES_MAX:
                del verified[next(iter(verified))]
            verified[credential.encoded] = credential
    policy = trust.policy(claims.iss)
    # check 6: issued within the key's window, and not longer-lived than the issuer allows
    if not key.nbf <= claims.iat <= key.exp or (
        claims.exp - claims.iat > policy.max_lifetime_s(claims.kind)
    ):
        return refuse(Reason.KEY_WINDOW)
    # check 7: already valid, within the clock skew
    if now + policy.clock_skew_s < max(claims.iat, claims.nbf or 0):
        return refuse(Reason.NOT_YET_VALID)
    # check 8: not expired (strict, no skew)
    if now >= claims.exp:
        return refuse(Reason.EXPIRED)
    # check 9: not revoked, and not older than a generation this terminal accepted
    highest = memory.highest_generation(claims.iss, claims.sub)
    if trust.is_revoked(claims.iss, claims.cti, ctr) or (
        highest is not None and claims.gen < highest
    ):
        return refuse(Reason.REVOKED)
    # check 10: the subject is not frozen
    if trust.is_frozen(claims.iss, claims.sub):
        return refuse(Reason.FROZEN)
    # check 11: the kind fits the mode, and a payment the till's currency
    if claims.kind not in _KINDS_FOR_MODE[config.mode] or (
        config.mode is Mode.PAY and claims.cur != config.currency
    ):
        return refuse(Reason.WRONG_KIND)
    # check 12: the venue is in scope, and a ticket is for this gate's event
    if claims.scope is not None and (config.venue is None or config.venue not in claims.scope):
        return refuse(Reason.OUT_OF_SCOPE)
    if config.mode is Mode.ENTRY and claims.ev != config.event:
        return refuse(Reason.OUT_OF_SCOPE)
    counting = config.mode is not Mode.IDENTITY
    if dynamic is None:
        # check 13: a static code only for a ticket without cnf, where the policy allows it
        if claims.device_key is not None or not (
            claims.kind is Kind.TICKET and policy.static_tickets
        ):
            return refuse(Reason.DEVICE_BINDING_REQUIRED)
    else:
        assert claims.device_key is not None and claims.uses is not None, "decoder invariant"
        # check 14: device signature under cnf, bound to this L1 by its signature as aad
        if device_signature is None:
            device_signature = verify_signature(
                claims.device_key, dynamic.signed, dynamic.signature
            )
        if not device_signature:
            return refuse(Reason.BAD_DEVICE_SIGNATURE)
        # check 15: fresh
        if abs(now - dynamic.ts) > policy.freshness_s:
            return refuse(Reason.STALE)
        # check 16: within the offline uses
        if counting and dynamic.ctr >= claims.uses:
            return refuse(Reason.USES_EXHAUSTED)
        # check 17: this counter not accepted before here
        if counting and memory.counter_accepted(claims.iss, claims.cti, dynamic.ctr):
            return refuse(Reason.REPLAY)
    # check 18: within the per-payment cap (offline only)
    if config.mode is Mode.PAY and not online:
        assert amount is not None and claims.txmax is not None, "checked above and by the decoder"
        if amount > claims.txmax:
            return refuse(Reason.OVER_TX_LIMIT)
    # check 19: entries left for this subject, every generation together
    entering = config.mode is Mode.ENTRY
    if entering and memory.entries_accepted(claims.iss, claims.sub) >= claims.ent:
        return refuse(Reason.ALREADY_USED)
    return _verdict(Reason.OK, claims, ctr, accepted(claims, ctr, config.mode, policy))


def _verdict(
    reason: Reason, claims: Claims, ctr: int | None, acceptance: Acceptance | None
) -> Verdict:
    """`Verdict(reason, claims, ctr, acceptance)` without the frozen `__init__`'s
    `object.__setattr__` per field (every scan makes one): the fields become its `__dict__`."""
    verdict = object.__new__(Verdict)
    fields = {"reason": reason, "claims": claims, "ctr": ctr, "acceptance": acceptance}
    object.__setattr__(verdict, "__dict__", fields)
    return verdict


def accepted(claims: Claims, ctr: int | None, mode: Mode, policy: Policy) -> Acceptance:
    """What an accepted scan adds to a terminal's memory (§3): the counter consumed (pay and
    entry), the entry counted (entry), the generation; kept until `exp + clock_skew_s`. A terminal
    records it for the server's online acceptances too. Built as `_verdict` builds a verdict."""
    acceptance = object.__new__(Acceptance)
    fields = {
        "iss": claims.iss,
        "sub": claims.sub,
        "cti": claims.cti,
        "gen": claims.gen,
        "ctr": ctr if mode is not Mode.IDENTITY else None,
        "entry": mode is Mode.ENTRY,
        "keep_until": claims.exp + policy.clock_skew_s,
    }
    object.__setattr__(acceptance, "__dict__", fields)
    return acceptance


class Verifier:
    """One terminal's verifier: trust store, configuration, memory and a credential cache."""

    def __init__(self, trust: TrustStore, config: TerminalConfig, memory: TerminalMemory) -> None:
        self.config = config
        self.memory = memory
        self._trust = trust
        self._verified: dict[bytes, Credential] = {}

    @property
    def trust(self) -> TrustStore:
        return self._trust

    @trust.setter
    def trust(self, store: TrustStore) -> None:
        self._trust = store
        self._verified = {}  # verified under the old store's keys only

    def scan(self, text: str, *, now: int, amount: int | None = None) -> Verdict:
        """Verify a scan and, when accepted, record it in the memory before returning (`verify`
        written out: one call less a scan)."""
        if self.config.mode is Mode.PAY and (amount is None or amount < 1):
            raise ValueError("a payment needs an amount of at least 1")
        try:
            code = decode_code(text, known=self._verified)  # §3 checks 1 and 2
        except FormatError:
            return Verdict(Reason.FORMAT)
        except MalformedError:
            return Verdict(Reason.MALFORMED)
        verdict = verify_code(
            code,
            trust=self._trust,
            config=self.config,
            memory=self.memory,
            now=now,
            amount=amount,
            verified=self._verified,
        )
        if verdict.acceptance is not None:
            self.memory.record(verdict.acceptance)
        return verdict

    def scan_all(
        self, texts: Sequence[str], *, now: int, amount: int | None = None
    ) -> list[Verdict]:
        """`scan` of each text in order, with the same verdicts and memory; the signatures of
        the codes are verified first, one after another (pure: verifying ahead of the checks
        before them changes no verdict), so libsodium runs with its tables and code in cache
        instead of after each code's decoding and checks (a tenth of a scan)."""
        if self.config.mode is Mode.PAY and (amount is None or amount < 1):
            raise ValueError("a payment needs an amount of at least 1")
        trust, verified, record = self._trust, self._verified, self.memory.record
        codes: list[Code | Verdict] = []
        for text in texts:
            try:
                codes.append(decode_code(text, known=verified))
            except FormatError:
                codes.append(Verdict(Reason.FORMAT))
            except MalformedError:
                codes.append(Verdict(Reason.MALFORMED))
        signatures = [_signatures(code, trust, verified) for code in codes]
        verdicts = []
        for code, (issuer, device) in zip(codes, signatures, strict=True):
            if type(code) is Verdict:
                verdicts.append(code)
                continue
            assert type(code) is Code
            verdict = verify_code(
                code,
                trust=trust,
                config=self.config,
                memory=self.memory,
                now=now,
                amount=amount,
                verified=verified,
                issuer_signature=issuer,
                device_signature=device,
            )
            if verdict.acceptance is not None:
                record(verdict.acceptance)
            verdicts.append(verdict)
        return verdicts


def _signatures(
    code: Code | Verdict, trust: TrustStore, verified: MutableMapping[bytes, Credential]
) -> tuple[bool | None, bool | None]:
    """Checks 5 and 14's outcomes for a decoded code, None where `verify_code` would not
    verify: no key for it (check 4), a credential in `verified`, no dynamic part."""
    if type(code) is not Code:
        return None, None
    credential, dynamic = code.credential, code.dynamic
    issuer = device = None
    if credential.encoded not in verified:
        key = trust.key(credential.claims.iss, credential.kid)
        if key is not None:
            issuer = verify_signed_message(key.x, credential.signed_message())
    device_key = credential.claims.device_key
    if dynamic is not None and device_key is not None:
        device = verify_signature(device_key, dynamic.signed, dynamic.signature)
    return issuer, device
