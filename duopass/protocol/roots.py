"""Root links: how an issuer's root key rotates with an overlap (docs/terminal.md, "The root key
rotates"). The old root signs a link naming the new one; a bundle signed by the new root carries
the links of every root still within its overlap (bundle key 14), and a terminal that pins an
older root follows them to the bundle's signer, then pins the new root.

A link is an untagged COSE_Sign1 under the old root (protected `{1: -8, 4: kid(old root)}`,
external AAD `duopass-root-link-v1`, so that no bundle or journal batch signature can pass for
one) over the deterministic CBOR map

    {1: 1 (version), 2: iss, 3: seq (1 for the first rotation, then +1 each),
     4: x (the new root's 32-byte Ed25519 public key), 5: kid (of x),
     6: nbf (from when the new root speaks), 7: exp (the end of the overlap: after it, a
        terminal still pinning the old root cannot follow and must be enrolled again)}

Refusals carry a stable `reason` (`RootLinkError.reason`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from duopass.protocol.cbor import MalformedError, dumps, loads
from duopass.protocol.code import sign1_parts
from duopass.protocol.cose import l1_protected, sig_structure
from duopass.protocol.keys import KeyId, kid_of, verify_signature
from duopass.protocol.limits import ED25519_KEY_BYTES, ISS_CHARS_MAX, KID_BYTES

__all__ = [
    "EXPIRED",
    "INVALID",
    "LINK_AAD",
    "LINK_BYTES_MAX",
    "ROOT_LINKS_MAX",
    "UNLINKED",
    "Followed",
    "RootLink",
    "RootLinkError",
    "follow",
    "read_link",
    "sign_link",
]

LINK_VERSION: Final = 1
LINK_AAD: Final = b"duopass-root-link-v1"
LINK_BYTES_MAX: Final = 512
"""A link is about 200 bytes: its issuer name is the only part that varies."""
ROOT_LINKS_MAX: Final = 8
"""Links one bundle may carry: rotations within one overlap (more is refused as malformed)."""

UNLINKED: Final = "ROOT_UNLINKED"
"""The bundle is signed by a root this terminal does not pin and no link leads from its root
to it: its overlap is over (or it never was this issuer's root). Enrol the terminal again."""
EXPIRED: Final = "ROOT_LINK_EXPIRED"
"""A link from the pinned root is past its overlap by the terminal's clock. Enrol again."""
INVALID: Final = "ROOT_LINK_INVALID"
"""A link that is forged, malformed, for another issuer, replayed (its seq not above the one
held), or a chain with a gap or that does not reach the bundle's signer."""


class RootLinkError(ValueError):
    """A link or chain a terminal refuses; `reason` is one of the three above."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


class Signer(Protocol):
    """What signs a link: the old root (a `SigningKey`, or a key held elsewhere)."""

    @property
    def kid(self) -> KeyId: ...
    def sign(self, message: bytes) -> bytes: ...


@dataclass(frozen=True, kw_only=True)
class RootLink:
    iss: str
    seq: int
    key: bytes
    """The new root's public key."""
    nbf: int
    exp: int

    @property
    def kid(self) -> KeyId:
        return kid_of(self.key)


@dataclass(frozen=True)
class Followed:
    """Where a chain led: the root to pin from now on, and its link's seq."""

    key: bytes
    seq: int


def sign_link(old_root: Signer, link: RootLink) -> bytes:
    """The link's bytes, signed by the root it replaces."""
    body = {1: LINK_VERSION, 2: link.iss, 3: link.seq, 4: link.key, 5: link.kid}
    payload = dumps({**body, 6: link.nbf, 7: link.exp})
    protected = l1_protected(old_root.kid)
    signature = old_root.sign(sig_structure(protected, LINK_AAD, payload))
    return dumps([protected, {}, payload, signature])


def read_link(data: bytes, signer: bytes | None = None) -> tuple[KeyId, RootLink]:
    """(the kid of the root that signed it, the link); checked against `signer`'s public key
    when given (a terminal), else only parsed (the server reading the links it wrote)."""
    if len(data) > LINK_BYTES_MAX:
        raise RootLinkError(INVALID, "link too large")
    try:
        protected, payload, signature = sign1_parts(loads(data))
        kid = KeyId(protected[-KID_BYTES:])
        if protected != l1_protected(kid):
            raise MalformedError("link protected header")
        if signer is not None and (
            kid != kid_of(signer)
            or not verify_signature(signer, sig_structure(protected, LINK_AAD, payload), signature)
        ):
            raise RootLinkError(INVALID, "a link not signed by the root it names as old (forged)")
        return kid, _parse(loads(payload))
    except MalformedError as exc:
        raise RootLinkError(INVALID, f"malformed link: {exc}") from exc


def follow(
    pinned: bytes,
    links: Sequence[bytes],
    *,
    signer: bytes,
    iss: str,
    held_seq: int,
    now: int,
) -> Followed:
    """Follow `links` from the `pinned` root to the root whose protected header `signer` signs
    the bundle: the first link signed by the pinned root, then each signed by the root the one
    before names, seqs one apart, every one for `iss`, above `held_seq` and not past its `exp`
    at the terminal's time `now`. Links before the pinned root's are skipped (a terminal enrolled
    after an earlier rotation). Raises RootLinkError."""
    if len(links) > ROOT_LINKS_MAX:
        raise RootLinkError(INVALID, f"more than {ROOT_LINKS_MAX} links")
    current, seq, followed = pinned, held_seq, False
    for data in links:
        old, _ = read_link(data)
        if old != kid_of(current):
            if followed:
                raise RootLinkError(INVALID, f"a gap in the chain after link {seq}")
            continue
        _, link = read_link(data, current)
        if link.iss != iss:
            raise RootLinkError(INVALID, f"a link for {link.iss!r}, not for {iss!r}")
        if link.seq <= seq or (followed and link.seq != seq + 1):
            what = "replayed" if link.seq <= seq else "a gap in the chain"
            raise RootLinkError(INVALID, f"link {link.seq} after {seq}: {what}")
        if now > link.exp:
            raise RootLinkError(
                EXPIRED,
                f"the pinned root's overlap ended at {link.exp}: enrol this terminal again",
            )
        current, seq, followed = link.key, link.seq, True
    if not followed:
        raise RootLinkError(
            UNLINKED,
            "the bundle is signed by another root and no link leads from the pinned one "
            "(its overlap is over): enrol this terminal again",
        )
    if signer != l1_protected(kid_of(current)):
        raise RootLinkError(INVALID, "the chain does not reach the bundle's signer")
    return Followed(current, seq)


def _parse(body: object) -> RootLink:
    if type(body) is not dict or body.get(1) != LINK_VERSION or set(body) != set(range(1, 8)):
        raise MalformedError("not a version 1 root link")
    iss, key, kid = body[2], body[4], body[5]
    if type(iss) is not str or not 1 <= len(iss) <= ISS_CHARS_MAX:
        raise MalformedError("link iss")
    if type(key) is not bytes or len(key) != ED25519_KEY_BYTES:
        raise MalformedError("link key")
    if type(kid) is not bytes or len(kid) != KID_BYTES or kid != kid_of(key):
        raise MalformedError("link kid does not match its key")
    seq, nbf, exp = (_uint(body[n]) for n in (3, 6, 7))
    if seq < 1 or nbf > exp:
        raise MalformedError("link seq below 1, or nbf after exp")
    return RootLink(iss=iss, seq=seq, key=key, nbf=nbf, exp=exp)


def _uint(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise MalformedError("link integer")
    return value
