"""The trust store (§3): signing keys, policies, revocations and freezes a terminal holds.

`parse_trust_store` turns the JSON file's bytes into a `TrustStore` or raises `TrustStoreError`
for a store that must be refused as a whole; `dump_trust_store` writes it back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol

from duopass.protocol.claims import Kind
from duopass.protocol.encoding import EncodingError, b64u_decode, b64u_encode
from duopass.protocol.keys import KeyId, kid_of
from duopass.protocol.limits import (
    CLOCK_SKEW_DEFAULT_S,
    ED25519_KEY_BYTES,
    FRESHNESS_DEFAULT_S,
    INT_ABS_LIMIT,
    ISS_CHARS_MAX,
    LATE_WINDOW_DEFAULT_S,
    MAX_LIFETIME_DEFAULT_S,
    SUB_CHARS_MAX,
    TRUST_FILE_BYTES_MAX,
)
from duopass.protocol.packed import Freezes, Revocations

__all__ = [
    "Issuer",
    "Policy",
    "TrustKey",
    "TrustStore",
    "TrustStoreError",
    "TrustView",
    "dump_policy",
    "dump_trust_store",
    "parse_policy",
    "parse_trust_store",
]

TRUST_STORE_VERSION = 1


class TrustView(Protocol):
    """What the checks read from a trust store; the server implements it over its database."""

    @property
    def issued_at(self) -> int: ...
    @property
    def max_age_s(self) -> int: ...
    def key(self, iss: str, kid: bytes) -> TrustKey | None: ...
    def policy(self, iss: str) -> Policy: ...
    def is_revoked(self, iss: str, cti: bytes, ctr: int | None = None) -> bool: ...
    def is_frozen(self, iss: str, sub: str) -> bool: ...


class TrustStoreError(ValueError):
    """A trust store that is refused as a whole (a usage error for `duopass verify`)."""


@dataclass(frozen=True, kw_only=True)
class Policy:
    """An issuer's policy; every field defaults as §3 says, and the late window as §5.4 does
    (terminals need it for their backlog rule, §5.5)."""

    freshness_s: int = FRESHNESS_DEFAULT_S
    clock_skew_s: int = CLOCK_SKEW_DEFAULT_S
    static_tickets: bool = False
    max_lifetime_purse_s: int = MAX_LIFETIME_DEFAULT_S["purse"]
    max_lifetime_identity_s: int = MAX_LIFETIME_DEFAULT_S["identity"]
    max_lifetime_ticket_s: int = MAX_LIFETIME_DEFAULT_S["ticket"]
    late_window_s: int = LATE_WINDOW_DEFAULT_S

    def max_lifetime_s(self, kind: Kind) -> int:
        """Longest `exp - iat` the issuer allows for a credential of this kind."""
        if kind is Kind.PURSE:
            return self.max_lifetime_purse_s
        if kind is Kind.IDENTITY:
            return self.max_lifetime_identity_s
        return self.max_lifetime_ticket_s


@dataclass(frozen=True)
class TrustKey:
    """A signing key and its window: it signs credentials with `nbf <= iat <= exp`."""

    kid: KeyId
    x: bytes
    nbf: int
    exp: int


@dataclass(frozen=True)
class Issuer:
    iss: str
    keys: tuple[TrustKey, ...]
    policy: Policy


@dataclass(frozen=True, kw_only=True)
class TrustStore:
    """What a terminal trusts at one version; lookups are by (iss, kid), (iss, cti), (iss, sub).

    `revoked` and `frozen` take any set of pairs and are held packed (protocol.packed): a
    million revocations in about 12-16 MB, each lookup a few microseconds."""

    seq: int
    issued_at: int
    max_age_s: int
    issuers: tuple[Issuer, ...]
    revoked: AbstractSet[tuple[str, bytes]] = Revocations()
    frozen: AbstractSet[tuple[str, str]] = Freezes()
    _keys: Mapping[tuple[str, bytes], TrustKey] = field(init=False, repr=False, compare=False)
    _policies: Mapping[str, Policy] = field(init=False, repr=False, compare=False)
    _revoked: Revocations = field(init=False, repr=False, compare=False)
    _frozen: Freezes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        keys = {(issuer.iss, key.kid): key for issuer in self.issuers for key in issuer.keys}
        object.__setattr__(self, "_keys", keys)
        object.__setattr__(self, "_policies", {i.iss: i.policy for i in self.issuers})
        revoked, frozen = self.revoked, self.frozen
        if not isinstance(revoked, Revocations):
            revoked = Revocations(revoked)
        if not isinstance(frozen, Freezes):
            frozen = Freezes(frozen)
        object.__setattr__(self, "revoked", revoked)
        object.__setattr__(self, "_revoked", revoked)
        object.__setattr__(self, "frozen", frozen)
        object.__setattr__(self, "_frozen", frozen)

    @property
    def revocations(self) -> Revocations:
        return self._revoked

    @property
    def freezes(self) -> Freezes:
        return self._frozen

    def key(self, iss: str, kid: bytes) -> TrustKey | None:
        return self._keys.get((iss, kid))

    def policy(self, iss: str) -> Policy:
        return self._policies.get(iss, _DEFAULT_POLICY)

    def is_revoked(self, iss: str, cti: bytes, ctr: int | None = None) -> bool:
        """Offline, revocation is per credential; the counter matters only online (§4.2)."""
        return self._revoked.has(iss, cti)

    def is_frozen(self, iss: str, sub: str) -> bool:
        return self._frozen.has(iss, sub)


_DEFAULT_POLICY = Policy()


def parse_trust_store(data: bytes) -> TrustStore:
    """Parse and check the trust store file; unknown fields are ignored."""
    if len(data) > TRUST_FILE_BYTES_MAX:
        _refuse("trust store file too large")
    try:
        doc = json.loads(data, object_pairs_hook=_no_duplicate_names, parse_constant=_refuse)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, 4,300+ digit numbers
        raise TrustStoreError(f"trust store is not JSON: {exc}") from exc
    top = _object(doc, "trust store")
    if _int(top, "version") != TRUST_STORE_VERSION:
        _refuse("trust store version is not 1")
    issuers = tuple(_issuer(item) for item in _list(top, "issuers"))
    _distinct((issuer.iss for issuer in issuers), "issuer")
    return TrustStore(
        seq=_int(top, "seq"),
        issued_at=_int(top, "issued_at"),
        max_age_s=_int(top, "max_age_s"),
        issuers=issuers,
        revoked=Revocations(
            (_iss(entry), _b64u(_object(entry, "revocation"), "cti"))
            for entry in _list(top, "revoked")
        ),
        frozen=Freezes(
            (_iss(entry), _text(_object(entry, "freeze"), "sub", SUB_CHARS_MAX))
            for entry in _list(top, "frozen")
        ),
    )


def dump_trust_store(store: TrustStore, *, lists_apart: bool = False) -> bytes:
    """The trust store file's bytes, fields in the order of §3; `lists_apart` leaves `revoked`
    and `frozen` empty, for a caller that keeps them packed beside it (the terminal's store)."""
    doc = {
        "version": TRUST_STORE_VERSION,
        "seq": store.seq,
        "issued_at": store.issued_at,
        "max_age_s": store.max_age_s,
        "issuers": [
            {
                "iss": issuer.iss,
                "keys": [
                    {"kid": b64u_encode(k.kid), "x": b64u_encode(k.x), "nbf": k.nbf, "exp": k.exp}
                    for k in issuer.keys
                ],
                "policy": dump_policy(issuer.policy),
            }
            for issuer in store.issuers
        ],
        "revoked": []
        if lists_apart
        else [{"iss": iss, "cti": b64u_encode(cti)} for iss, cti in sorted(store.revoked)],
        "frozen": []
        if lists_apart
        else [{"iss": iss, "sub": sub} for iss, sub in sorted(store.frozen)],
    }
    return (json.dumps(doc, indent=1) + "\n").encode()


def dump_policy(policy: Policy) -> dict[str, Any]:
    """A policy as the trust store file writes it (a JSON object); also what the server tells
    wallets (§6)."""
    return {
        "freshness_s": policy.freshness_s,
        "clock_skew_s": policy.clock_skew_s,
        "static_tickets": policy.static_tickets,
        "max_lifetime_s": {kind.policy_name: policy.max_lifetime_s(kind) for kind in Kind},
        "late_window_s": policy.late_window_s,
    }


def _issuer(value: object) -> Issuer:
    entry = _object(value, "issuer")
    iss = _iss(entry)
    keys = tuple(_key(item) for item in _list(entry, "keys"))
    _distinct((key.kid for key in keys), f"kid of issuer {iss!r}")
    policy = parse_policy(entry["policy"]) if "policy" in entry else _DEFAULT_POLICY
    return Issuer(iss, keys, policy)


def _key(value: object) -> TrustKey:
    entry = _object(value, "key")
    x = _b64u(entry, "x")
    if len(x) != ED25519_KEY_BYTES:
        _refuse("key 'x' is not 32 bytes")
    kid = _b64u(entry, "kid")
    if kid != kid_of(x):
        _refuse("key 'kid' is not the first 8 bytes of SHA-256 of 'x'")
    nbf, exp = _int(entry, "nbf"), _int(entry, "exp")
    if nbf >= exp:
        _refuse("key 'nbf' is not before 'exp'")
    return TrustKey(KeyId(kid), x, nbf, exp)


def parse_policy(value: object) -> Policy:
    """A policy from its decoded JSON object; absent fields take their defaults, unknown ones
    are ignored. Raises TrustStoreError."""
    entry = _object(value, "policy")
    fields: dict[str, Any] = {}
    for name in ("freshness_s", "clock_skew_s", "late_window_s"):
        if name in entry:
            fields[name] = _int(entry, name)
    if "static_tickets" in entry:
        if not isinstance(entry["static_tickets"], bool):
            _refuse("policy 'static_tickets' is not a boolean")
        fields["static_tickets"] = entry["static_tickets"]
    if "max_lifetime_s" in entry:
        lifetimes = _object(entry["max_lifetime_s"], "max_lifetime_s")
        for kind in Kind:
            if kind.policy_name in lifetimes:
                fields[f"max_lifetime_{kind.policy_name}_s"] = _int(lifetimes, kind.policy_name)
    return Policy(**fields)


def _refuse(message: str) -> NoReturn:
    raise TrustStoreError(message)


def _no_duplicate_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        _refuse("a JSON object names a field twice")
    return dict(pairs)


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        _refuse(f"{what} is not a JSON object")
    return value


def _list(entry: dict[str, Any], name: str) -> list[Any]:
    value = entry.get(name)
    if not isinstance(value, list):
        _refuse(f"'{name}' missing or not a list")
    return value


def _int(entry: dict[str, Any], name: str) -> int:
    value = entry.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < INT_ABS_LIMIT:
        _refuse(f"'{name}' missing or not a non-negative integer")
    return value


def _text(entry: dict[str, Any], name: str, max_chars: int) -> str:
    value = entry.get(name)
    if not isinstance(value, str) or not 1 <= len(value) <= max_chars:
        _refuse(f"'{name}' missing or not a string of 1..{max_chars} characters")
    return value


def _iss(value: object) -> str:
    iss = _text(_object(value, "entry"), "iss", ISS_CHARS_MAX)
    if not all("!" <= char <= "~" for char in iss):
        _refuse("'iss' has characters outside ! to ~")
    return iss


def _b64u(entry: dict[str, Any], name: str) -> bytes:
    value = entry.get(name)
    if not isinstance(value, str):
        _refuse(f"'{name}' missing or not a string")
    try:
        return b64u_decode(value)
    except EncodingError:
        _refuse(f"'{name}' is not unpadded base64url")


def _distinct(values: Iterable[object], what: str) -> None:
    seen: set[object] = set()
    for value in values:
        if value in seen:
            _refuse(f"{what} listed twice")
        seen.add(value)
