"""Trust bundles (§3, §8): a trust store's content for one issuer, signed with its root key,
whole or as a delta since a version. Layout (deterministic CBOR, documented in
docs/protocol-core.md) and signature are COSE_Sign1 as in codes, with the root key's kid.

    {1: 1, 2: seq, 3: issued_at, 4: max_age_s, 5: since (0 = whole), 6: iss,
     7: {1: freshness_s, 2: clock_skew_s, 3: static_tickets (0|1),
         4: max_lifetime_s purse, 5: identity, 6: ticket, 7: late_window_s},
     8: [[kid, x, nbf, exp], ...] keys added,   9: [kid, ...] keys removed,
     10: [cti, ...] revoked added,              11: [cti, ...] revocations dropped,
     12: [sub, ...] frozen,                     13: [sub, ...] unfrozen,
     14: [link, ...] root links (protocol.roots): present only while a rotated root is within
         its overlap; a terminal pinning the bundle's signer ignores it}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from duopass.protocol.cbor import MalformedError, dumps, loads
from duopass.protocol.claims import Kind
from duopass.protocol.code import SignerError, open_signed, sign1_parts
from duopass.protocol.cose import l1_protected, sig_structure, sign1
from duopass.protocol.keys import Ed25519Signer, KeyId, kid_of, verify_signature
from duopass.protocol.limits import (
    BUNDLE_BYTES_MAX,
    BUNDLE_ENTRIES_MAX,
    ED25519_KEY_BYTES,
    ISS_CHARS_MAX,
    KID_BYTES,
    LATE_WINDOW_DEFAULT_S,
    SUB_CHARS_MAX,
)
from duopass.protocol.packed import Freezes, PackedSet, Revocations
from duopass.protocol.roots import (
    INVALID,
    LINK_BYTES_MAX,
    ROOT_LINKS_MAX,
    Followed,
    RootLinkError,
    follow,
)
from duopass.protocol.trust import Issuer, Policy, TrustKey, TrustStore

__all__ = [
    "Bundle",
    "BundleError",
    "RootChainError",
    "apply_bundle",
    "encode_bundle",
    "open_bundle",
    "open_bundle_following",
]

BUNDLE_VERSION = 1


class BundleError(ValueError):
    """A bundle the terminal must refuse: bad signature, malformed, or not newer than its store."""


class RootChainError(BundleError):
    """A bundle signed by another root than the pinned one, whose links do not lead there;
    `reason` is stable (protocol.roots: ROOT_UNLINKED, ROOT_LINK_EXPIRED, ROOT_LINK_INVALID)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, kw_only=True)
class Bundle:
    """One bundle's content; `since == 0` is a whole bundle (nothing to remove)."""

    seq: int
    issued_at: int
    max_age_s: int
    since: int
    iss: str
    policy: Policy
    keys_added: tuple[TrustKey, ...] = ()
    keys_removed: tuple[bytes, ...] = ()
    revoked_added: tuple[bytes, ...] = ()
    revoked_removed: tuple[bytes, ...] = ()
    frozen_added: tuple[str, ...] = ()
    frozen_removed: tuple[str, ...] = ()
    root_links: tuple[bytes, ...] = ()


def encode_bundle(bundle: Bundle, root_key: Ed25519Signer) -> bytes:
    """The signed bundle's bytes, signed by the root key (a file's, or one in an HSM)."""
    policy = bundle.policy
    body: dict[int, Any] = {
        1: BUNDLE_VERSION,
        2: bundle.seq,
        3: bundle.issued_at,
        4: bundle.max_age_s,
        5: bundle.since,
        6: bundle.iss,
        7: {
            1: policy.freshness_s,
            2: policy.clock_skew_s,
            3: int(policy.static_tickets),
            4: policy.max_lifetime_s(Kind.PURSE),
            5: policy.max_lifetime_s(Kind.IDENTITY),
            6: policy.max_lifetime_s(Kind.TICKET),
            7: policy.late_window_s,
        },
        8: [[k.kid, k.x, k.nbf, k.exp] for k in bundle.keys_added],
        9: list(bundle.keys_removed),
        10: sorted(bundle.revoked_added),
        11: sorted(bundle.revoked_removed),
        12: sorted(bundle.frozen_added),
        13: sorted(bundle.frozen_removed),
    }
    if bundle.root_links:
        body[14] = list(bundle.root_links)
    return dumps(sign1(root_key, l1_protected(root_key.kid), dumps(body)))


def open_bundle(data: bytes, root_public: bytes) -> Bundle:
    """Verify a bundle against the pinned root key and parse it; raises BundleError."""
    if len(data) > BUNDLE_BYTES_MAX:
        raise BundleError("bundle too large")
    try:
        return _parse(loads(open_signed(data, root_public)))
    except SignerError as exc:
        raise BundleError(f"bundle refused, pinned root key: {exc}") from exc
    except MalformedError as exc:
        raise BundleError(f"malformed bundle: {exc}") from exc


def open_bundle_following(
    data: bytes, pinned: bytes, *, iss: str, root_seq: int, now: int
) -> tuple[Bundle, Followed | None]:
    """`open_bundle` for a terminal whose root may have rotated: a bundle signed by the pinned
    root opens as before (None: nothing to re-pin); one signed by another opens only when its
    root links (key 14, read before the signature can be checked) lead from the pinned root to
    its signer (`protocol.roots.follow`), and then says where they led. Raises BundleError, or
    RootChainError when the links do not lead there."""
    if len(data) > BUNDLE_BYTES_MAX:
        raise BundleError("bundle too large")
    try:
        protected, payload, signature = sign1_parts(loads(data, check_items=False))
        if protected == l1_protected(kid_of(pinned)):
            return open_bundle(data, pinned), None
        body = loads(payload)
        links = body.get(14, []) if isinstance(body, dict) else []
        if type(links) is not list or not all(type(link) is bytes for link in links):
            raise MalformedError("bundle root links")
        moved = follow(pinned, links, signer=protected, iss=iss, held_seq=root_seq, now=now)
    except MalformedError as exc:
        raise BundleError(f"malformed bundle: {exc}") from exc
    except RootLinkError as exc:
        raise RootChainError(exc.reason, str(exc)) from exc
    if not verify_signature(moved.key, sig_structure(protected, b"", payload), signature):
        raise RootChainError(INVALID, "bundle refused: bad signature under the new root")
    try:
        return _parse(body), moved
    except MalformedError as exc:
        raise BundleError(f"malformed bundle: {exc}") from exc


def apply_bundle(store: TrustStore | None, bundle: Bundle) -> TrustStore:
    """The store after a bundle: replaces this issuer's part (whole) or patches it (delta).
    Refuses a bundle older than the store, and a delta from another version than the store's."""
    if store is not None and (bundle.seq, bundle.issued_at) < (store.seq, store.issued_at):
        raise BundleError(f"bundle seq {bundle.seq} is older than the store's {store.seq}")
    if bundle.since and (store is None or store.seq != bundle.since):
        raise BundleError("delta does not start at the version held; fetch a whole bundle")
    old = next((i for i in store.issuers if i.iss == bundle.iss), None) if store else None
    keys = {} if bundle.since == 0 or old is None else {k.kid: k for k in old.keys}
    for kid in bundle.keys_removed:
        keys.pop(KeyId(kid), None)
    keys.update((k.kid, k) for k in bundle.keys_added)
    revoked, frozen = (store.revocations, store.freezes) if store else (Revocations(), Freezes())
    if bundle.since:  # a delta: patch what is held, copying only the groups it touches
        mine_revoked = revoked.issuer(bundle.iss).patch(
            bundle.revoked_added, bundle.revoked_removed
        )
        mine_frozen = frozen.issuer(bundle.iss).patch(
            (sub.encode() for sub in bundle.frozen_added),
            (sub.encode() for sub in bundle.frozen_removed),
        )
    else:  # whole: built once from its lists (already sorted: one pass)
        mine_revoked = PackedSet(bundle.revoked_added)
        mine_frozen = PackedSet(sub.encode() for sub in bundle.frozen_added)
    others = tuple(i for i in store.issuers if i.iss != bundle.iss) if store else ()
    issuer = Issuer(bundle.iss, tuple(sorted(keys.values(), key=lambda k: k.nbf)), bundle.policy)
    return TrustStore(
        seq=bundle.seq,
        issued_at=bundle.issued_at,
        max_age_s=bundle.max_age_s,
        issuers=(*others, issuer),
        revoked=revoked.with_issuer(bundle.iss, mine_revoked),
        frozen=frozen.with_issuer(bundle.iss, mine_frozen),
    )


def _parse(body: object) -> Bundle:
    if not isinstance(body, dict) or body.get(1) != BUNDLE_VERSION:
        raise MalformedError("not a version 1 bundle")
    lists = [body.get(n, []) for n in range(8, 14)]
    if not all(isinstance(item, list) for item in lists):
        raise MalformedError("bundle lists are not lists")
    if sum(len(item) for item in lists) > BUNDLE_ENTRIES_MAX:
        raise MalformedError("bundle lists too many entries")
    iss = body.get(6)
    if not isinstance(iss, str) or not 1 <= len(iss) <= ISS_CHARS_MAX:
        raise MalformedError("bundle iss")
    added, removed, rev_add, rev_drop, fr_add, fr_drop = lists
    links = body.get(14, [])
    if type(links) is not list or len(links) > ROOT_LINKS_MAX:
        raise MalformedError("bundle root links")
    return Bundle(
        seq=_uint(body.get(2)),
        issued_at=_uint(body.get(3)),
        max_age_s=_uint(body.get(4)),
        since=_uint(body.get(5)),
        iss=iss,
        policy=_policy(body.get(7)),
        keys_added=tuple(_key(entry) for entry in added),
        keys_removed=tuple(_bytes(kid, KID_BYTES, KID_BYTES) for kid in removed),
        revoked_added=tuple(_bytes(cti, 1, 64) for cti in rev_add),
        revoked_removed=tuple(_bytes(cti, 1, 64) for cti in rev_drop),
        frozen_added=tuple(_sub(sub) for sub in fr_add),
        frozen_removed=tuple(_sub(sub) for sub in fr_drop),
        root_links=tuple(_bytes(link, 1, LINK_BYTES_MAX) for link in links),
    )


def _uint(value: object) -> int:
    if type(value) is not int or value < 0:
        raise MalformedError("bundle integer")
    return value


def _bytes(value: object, low: int, high: int) -> bytes:
    if type(value) is not bytes or not low <= len(value) <= high:
        raise MalformedError("bundle byte string")
    return value


def _sub(value: object) -> str:
    if type(value) is not str or not 1 <= len(value) <= SUB_CHARS_MAX:
        raise MalformedError("bundle sub")
    return value


def _key(entry: object) -> TrustKey:
    if type(entry) is not list or len(entry) != 4:
        raise MalformedError("bundle key entry")
    kid = _bytes(entry[0], KID_BYTES, KID_BYTES)
    x = _bytes(entry[1], ED25519_KEY_BYTES, ED25519_KEY_BYTES)
    nbf, exp = _uint(entry[2]), _uint(entry[3])
    if kid != kid_of(x) or nbf >= exp:
        raise MalformedError("bundle key: kid does not match x, or nbf >= exp")
    return TrustKey(KeyId(kid), x, nbf, exp)


def _policy(value: object) -> Policy:
    """Keys 1-6 are required; 7 (the late window, revision 1.1) may be absent, as in bundles
    from before it: then 72 h. Other keys are ignored, so that a field added later does not make
    terminals of this version refuse every bundle, as key 7 makes older ones do."""
    if type(value) is not dict or not set(value) >= {1, 2, 3, 4, 5, 6}:
        raise MalformedError("bundle policy")
    fields = [_uint(value[n]) for n in range(1, 7)]
    if fields[2] not in (0, 1):
        raise MalformedError("bundle policy static_tickets")
    late = _uint(value[7]) if 7 in value else LATE_WINDOW_DEFAULT_S
    return Policy(
        freshness_s=fields[0],
        clock_skew_s=fields[1],
        static_tickets=bool(fields[2]),
        max_lifetime_purse_s=fields[3],
        max_lifetime_identity_s=fields[4],
        max_lifetime_ticket_s=fields[5],
        late_window_s=late,
    )
