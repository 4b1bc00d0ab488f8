"""The L1 payload: typed CWT claims and duopass claims (§2), built only through `parse_claims`.

`encode_claims` writes the deterministic map and runs it back through `parse_claims`, so the
issuer can never mint a credential that a verifier would call MALFORMED. `parse_claims` is also
the strict walk of the payload (map keys, item types): it types every claim it knows and hands
only unknown ones to `check_tree`, so the decoder need not walk the whole map first.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Any, Final

from duopass.protocol.cbor import (
    MalformedError,
    bytes_size,
    check_keys,
    check_tree,
    dumps,
    encoded,
    loads,
    text_size,
    uint_size,
)
from duopass.protocol.limits import (
    CBOR_DEPTH_MAX,
    CRIT_KEYS_UNDERSTOOD,
    CTI_BYTES_MAX,
    CTI_BYTES_MIN,
    CURRENCY_CHARS,
    ED25519_KEY_BYTES,
    EVENT_CHARS_MAX,
    INT_ABS_LIMIT,
    ISS_CHARS_MAX,
    SCOPE_VENUES_MAX,
    SUB_CHARS_MAX,
    USES_MAX,
    VENUE_CHARS_MAX,
)

__all__ = ["Claims", "Kind", "decode_claims", "encode_claims", "parse_claims", "reissue"]

# CWT claim keys (RFC 8392) and the duopass map's keys (§2).
ISS: Final = 1
SUB: Final = 2
EXP: Final = 4
NBF: Final = 5
IAT: Final = 6
CTI: Final = 7
CNF: Final = 8
DP: Final = -65537
DP_CRIT, DP_KIND, DP_USES, DP_TXMAX, DP_CUR, DP_SCOPE, DP_EV, DP_GEN, DP_ENT = range(9)
_KNOWN_CLAIMS = frozenset({ISS, SUB, EXP, NBF, IAT, CTI, CNF, DP})
_KNOWN_DP = frozenset(range(9))
_COSE_OKP_ED25519_KEYS = (1, -1, -2)  # kty, crv, x: the one key order deterministic CBOR allows
_CNF_SIZE = len(dumps({1: {1: 1, -1: 6, -2: bytes(32)}}))
_DP_KEY_EXTRA = len(dumps(DP)) - 1  # the dp claim's key takes 5 bytes, every other one 1


class Kind(IntEnum):
    """What a credential is for (dp key 1)."""

    PURSE = 1
    IDENTITY = 2
    TICKET = 3

    @property
    def policy_name(self) -> str:
        """The name of this kind in a trust store's `max_lifetime_s`."""
        return self.name.lower()


_KIND_OF_VALUE = {kind.value: kind for kind in Kind}


@dataclass(frozen=True, kw_only=True)
class Claims:
    """A credential's claims. `device_key` is the raw key of `cnf`; None for a static code."""

    iss: str
    sub: str
    iat: int
    exp: int
    cti: bytes
    kind: Kind
    nbf: int | None = None
    device_key: bytes | None = None
    uses: int | None = None
    txmax: int | None = None
    cur: str | None = None
    scope: tuple[str, ...] | None = None
    ev: str | None = None
    gen: int = 0
    ent: int = 1
    crit: tuple[int, ...] | None = None


def reissue(old: Claims, *, cti: bytes, iat: int, device_key: bytes | None) -> Claims | None:
    """§6: the claims of a reissue of `old` (a ticket, a lost card): a new `cti`, the same `sub`,
    `gen` + 1, bound to the new device key, with everything else kept: `exp`, `nbf`, `ev`,
    `scope`, `ent` (a reissue never extends) and `uses`, `txmax`, `cur`, for the issuer to size
    anew where it must. None when `old` has expired by `iat`: nothing is left to keep, and no
    credential can end before it starts."""
    if iat >= old.exp:
        return None
    return replace(old, cti=cti, iat=iat, device_key=device_key, gen=old.gen + 1)


def encode_claims(claims: Claims) -> bytes:
    """The deterministic CBOR payload of an L1; raises ValueError for claims §2 forbids."""
    dp: dict[int, Any] = {DP_KIND: int(claims.kind)}
    optional_dp = (
        (DP_CRIT, list(claims.crit) if claims.crit is not None else None),
        (DP_USES, claims.uses),
        (DP_TXMAX, claims.txmax),
        (DP_CUR, claims.cur),
        (DP_SCOPE, list(claims.scope) if claims.scope is not None else None),
        (DP_EV, claims.ev),
        (DP_GEN, claims.gen or None),
        (DP_ENT, claims.ent if claims.ent != 1 else None),
    )
    dp.update((key, value) for key, value in optional_dp if value is not None)
    payload: dict[int, Any] = {
        ISS: claims.iss,
        SUB: claims.sub,
        EXP: claims.exp,
        IAT: claims.iat,
        CTI: claims.cti,
        DP: dp,
    }
    if claims.nbf is not None:
        payload[NBF] = claims.nbf
    if claims.device_key is not None:
        payload[CNF] = {1: {1: 1, -1: 6, -2: claims.device_key}}
    encoded = dumps(payload)
    try:
        parsed = parse_claims(loads(encoded, check_items=False))
    except MalformedError as exc:
        raise ValueError(f"claims a verifier would refuse: {exc}") from exc
    assert parsed == claims, "encoding must round-trip"
    return encoded


def decode_claims(payload: bytes) -> Claims:
    """The claims of an L1 payload's bytes, strictly decoded (§2); raises MalformedError.

    §2's re-encoding comparison is a length comparison where `_parse` has typed every item
    (no unknown claims): a longer head is a longer encoding and cbor2 refuses indefinite lengths,
    so the deterministic encoding of the decoded map is the only one of its length (and cbor2's
    trailing bytes would make the payload longer). With unknown claims it re-encodes. A null
    (which `_parse` reads as an absent claim) is refused here either way."""
    value = loads(payload, check_items=False, reencode=False)
    claims, size = _parse(value)
    if size >= 0:
        if len(payload) != size:  # a null counts 0 bytes: refused here
            raise MalformedError("CBOR is not deterministically encoded")
    elif None in value.values() or None in value[DP].values():
        raise MalformedError("null is not a DP1 item")
    elif encoded(value) != payload:
        raise MalformedError("CBOR is not deterministically encoded")
    return claims


def parse_claims(payload: object) -> Claims:
    """Check a decoded L1 payload against §2's tables; raises MalformedError.

    Besides each claim's type and range, every map's keys (integers, length-first order) and
    every item of an unknown claim (§2: also inside unknown claims) are checked here; a null
    reads as an absent claim, so `decode_claims` refuses it."""
    return _parse(payload)[0]


def _parse(payload: object) -> tuple[Claims, int]:
    """`parse_claims`, and the length of the deterministic encoding of the decoded map when it
    holds known claims only (-1 otherwise): each item's size is added where it is typed (a null
    adds none, an explicit `gen: 0` its byte). The checks are written out, not called, on the
    path every scan takes; the helpers raise the message when one fails."""
    if type(payload) is not dict:
        raise MalformedError("claims are not a map")
    check_keys(payload)
    size = 1 + len(payload) + _DP_KEY_EXTRA  # the map's head (at most 8 claims), 1-byte keys
    if not payload.keys() <= _KNOWN_CLAIMS:
        _check_unknown(payload, _KNOWN_CLAIMS, CBOR_DEPTH_MAX - 1)
        size = -1 << 32  # stays negative: no claim adds that much
    get = payload.get
    iat, exp, nbf = get(IAT), get(EXP), get(NBF)
    if type(iat) is not int or type(exp) is not int or not 0 <= iat < exp < INT_ABS_LIMIT:
        _uint(payload, IAT)
        _uint(payload, EXP)
        raise MalformedError("exp is not after iat")
    size += uint_size(iat) + uint_size(exp)
    dp = get(DP)
    if type(dp) is not dict:
        raise MalformedError("dp claims missing")
    fields: dict[str, Any] = {"iss": get(ISS), "sub": get(SUB), "iat": iat, "exp": exp}
    fields["cti"] = cti = get(CTI)
    fields["kind"] = None  # in `Claims` order: `_parse_dp` sets it
    fields["nbf"] = nbf
    fields["device_key"] = device_key = _cnf(get(CNF))
    size += _parse_dp(dp, fields)
    if device_key is not None:
        if fields["uses"] is None:
            raise MalformedError("a device-bound credential needs uses")
        size += _CNF_SIZE
    kind = fields["kind"]
    if kind is Kind.PURSE and (fields["txmax"] is None or fields["cur"] is None):
        raise MalformedError("a purse needs txmax and cur")
    if kind is Kind.TICKET and fields["ev"] is None:
        raise MalformedError("a ticket needs ev")
    iss, sub = fields["iss"], fields["sub"]
    if (
        type(iss) is not str
        or not 0 < len(iss) <= ISS_CHARS_MAX
        or not iss.isascii()  # only ! to ~: str methods take a fifth of a regular expression
        or not iss.isprintable()
        or " " in iss
    ):
        raise MalformedError("iss is not 1..64 characters from ! to ~")
    if type(sub) is not str or not 0 < len(sub) <= SUB_CHARS_MAX:
        raise MalformedError("text claim missing or of the wrong length")
    if type(cti) is not bytes or not CTI_BYTES_MIN <= len(cti) <= CTI_BYTES_MAX:
        raise MalformedError("cti missing or of the wrong length")
    size += bytes_size(len(iss)) + text_size(sub) + bytes_size(len(cti))
    if nbf is not None:
        size += uint_size(_check_uint(nbf, NBF))
    return _checked(fields), size


def _parse_dp(dp: dict[Any, Any], fields: dict[str, Any]) -> int:
    """The dp map's claims into `fields` (`_parse`'s), and the size of its encoding."""
    check_keys(dp)
    size = 1 + len(dp)  # dp's head (at most 9 keys), its 1-byte keys
    if not dp.keys() <= _KNOWN_DP:
        _check_unknown(dp, _KNOWN_DP, CBOR_DEPTH_MAX - 2)
        size = -1 << 32
    get = dp.get
    crit = get(DP_CRIT)
    if crit is not None:
        crit = _crit(crit)
        size += 1 + len(crit)  # at most 9 keys below 24: a 1-byte head, 1-byte items
    kind = get(DP_KIND)
    kind = _KIND_OF_VALUE.get(kind) if type(kind) is int else None
    if kind is None:
        _uint(dp, DP_KIND)
        raise MalformedError("unknown kind")
    size += 1  # every kind is below 24
    uses, txmax, gen, ent = get(DP_USES), get(DP_TXMAX), get(DP_GEN), get(DP_ENT)
    if uses is not None:  # the unsigned integers checked as `_check_uint` checks them
        if type(uses) is not int or not 0 < uses <= USES_MAX:
            raise MalformedError(f"claim {DP_USES} out of range")
        size += uint_size(uses)
    if txmax is not None:
        if type(txmax) is not int or not 0 < txmax < INT_ABS_LIMIT:
            raise MalformedError(f"claim {DP_TXMAX} out of range")
        size += uint_size(txmax)
    if gen is not None:
        size += uint_size(_check_uint(gen, DP_GEN))
    if ent is not None:
        size += uint_size(_check_uint(ent, DP_ENT, low=1))
    cur, scope, ev = get(DP_CUR), get(DP_SCOPE), get(DP_EV)
    if cur is not None:
        if (
            type(cur) is not str
            or len(cur) != CURRENCY_CHARS
            or not cur.isascii()  # only A to Z
            or not cur.isalpha()
            or not cur.isupper()
        ):
            raise MalformedError("cur is not three letters A-Z")
        size += 1 + CURRENCY_CHARS
    if ev is not None:
        size += text_size(_text(ev, EVENT_CHARS_MAX))
    if scope is not None:
        scope = _scope(scope)
        size += 1 + sum(map(text_size, scope))  # at most 16 venues: a 1-byte head
    fields["kind"], fields["uses"], fields["txmax"] = kind, uses, txmax
    fields["cur"], fields["scope"], fields["ev"] = cur, scope, ev
    fields["gen"], fields["ent"], fields["crit"] = gen or 0, ent or 1, crit
    return size


def _checked(fields: dict[str, Any]) -> Claims:
    """`Claims(**fields)` for fields `parse_claims` has checked, all of them given, without the
    frozen `__init__`'s sixteen `object.__setattr__` calls (a twentieth of decoding a code):
    `fields` becomes the instance's `__dict__`."""
    claims = object.__new__(Claims)
    object.__setattr__(claims, "__dict__", fields)
    return claims


def _check_unknown(claims: dict[Any, Any], known: frozenset[int], max_depth: int) -> None:
    """Unknown claims are ignored, but must hold only items DP1 allows, at any depth."""
    for key in claims.keys() - known:
        check_tree(claims[key], max_depth=max_depth)


def _uint(claims: dict[Any, Any], key: int) -> int:
    value = claims.get(key)
    if value is None:
        raise MalformedError(f"claim {key} missing")
    if type(value) is not int or not 0 <= value < INT_ABS_LIMIT:
        raise MalformedError(f"claim {key} out of range")
    return value


def _check_uint(value: object, key: int, *, low: int = 0, high: int = INT_ABS_LIMIT - 1) -> int:
    # `type() is int`: a CBOR true decodes to True, an int that must not pass for 1.
    if type(value) is not int or not low <= value <= high:
        raise MalformedError(f"claim {key} out of range")
    return value


def _text(value: object, max_chars: int) -> str:
    if type(value) is not str or not 1 <= len(value) <= max_chars:
        raise MalformedError("text claim missing or of the wrong length")
    return value


def _cnf(value: object) -> bytes | None:
    """RFC 8747 `{1: COSE_Key}` with exactly an OKP Ed25519 key; the point is judged at check 14.
    Every key and value is typed (`True == 1`: a CBOR true must not pass for the integer)."""
    if value is None:
        return None
    if type(value) is not dict or len(value) != 1:
        raise MalformedError("cnf is not {1: COSE_Key}")
    ((one, key),) = value.items()
    if type(one) is not int or one != 1 or type(key) is not dict:
        raise MalformedError("cnf is not {1: COSE_Key}")
    if len(key) != 3:
        raise MalformedError("cnf key is not exactly an OKP Ed25519 key")
    (kty_key, crv_key, x_key), (kty, crv, raw) = key, key.values()
    if (
        type(kty_key) is not int
        or type(crv_key) is not int
        or type(x_key) is not int
        or (kty_key, crv_key, x_key) != _COSE_OKP_ED25519_KEYS
        or type(kty) is not int
        or kty != 1
        or type(crv) is not int
        or crv != 6
    ):
        raise MalformedError("cnf key is not exactly an OKP Ed25519 key")
    if type(raw) is not bytes or len(raw) != ED25519_KEY_BYTES:
        raise MalformedError("cnf key is not 32 bytes")
    return raw


def _scope(value: object) -> tuple[str, ...]:
    if type(value) is not list or not 1 <= len(value) <= SCOPE_VENUES_MAX:
        raise MalformedError("scope is not a list of 1..16 venues")
    for venue in value:
        _text(venue, VENUE_CHARS_MAX)
    return tuple(value)


def _crit(value: object) -> tuple[int, ...]:
    if type(value) is not list or not value:
        raise MalformedError("crit is not a non-empty list")
    keys = tuple(_check_uint(key, DP_CRIT) for key in value)
    if len(set(keys)) != len(keys):
        raise MalformedError("crit lists a key twice")
    if not CRIT_KEYS_UNDERSTOOD.issuperset(keys):
        raise MalformedError("crit names a dp key this verifier does not understand")
    return keys
