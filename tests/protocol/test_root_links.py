"""Root links (protocol.roots) and bundles that carry them (bundle key 14): a terminal pinning an
old root follows a chain to the bundle's signer, and refuses forged, replayed, foreign, gapped
and expired links with a stable reason."""

from __future__ import annotations

import pytest

from duopass.protocol import SigningKey
from duopass.protocol.bundle import (
    Bundle,
    BundleError,
    RootChainError,
    encode_bundle,
    open_bundle,
    open_bundle_following,
)
from duopass.protocol.cbor import dumps, loads
from duopass.protocol.roots import RootLink, RootLinkError, follow, read_link, sign_link
from duopass.protocol.trust import Policy

ISS, NOW, DAY = "demo-univ", 1_790_000_000, 86_400


def _link(old: SigningKey, new: SigningKey, seq: int, *, iss: str = ISS, exp: int = NOW + DAY):
    return sign_link(old, RootLink(iss=iss, seq=seq, key=new.public, nbf=NOW - 60, exp=exp))


def _bundle(signer: SigningKey, links: tuple[bytes, ...], seq: int = 5) -> bytes:
    body = Bundle(seq=seq, issued_at=NOW, max_age_s=DAY, since=0, iss=ISS, policy=Policy())
    return encode_bundle(
        Bundle(**{**body.__dict__, "root_links": links}),
        signer,
    )


def _open(data: bytes, pinned: SigningKey, root_seq: int = 0, now: int = NOW):
    return open_bundle_following(data, pinned.public, iss=ISS, root_seq=root_seq, now=now)


def _reason(data: bytes, pinned: SigningKey, **kw: int) -> str:
    with pytest.raises(RootChainError) as refused:
        _open(data, pinned, **kw)
    return refused.value.reason


def test_a_chain_of_two_rotations_leads_an_old_terminal_to_the_new_root():
    a, b, c = (SigningKey.generate() for _ in range(3))
    data = _bundle(c, (_link(a, b, 1), _link(b, c, 2)))
    bundle, moved = _open(data, a)
    assert moved is not None and (moved.key, moved.seq) == (c.public, 2)
    assert bundle.seq == 5 and len(bundle.root_links) == 2
    # a terminal enrolled after the first rotation skips the link before its root
    assert _open(data, b, root_seq=1)[1] == moved
    # one that pins the signer already moves nothing; the links are read, not followed
    assert _open(data, c, root_seq=2)[1] is None
    assert open_bundle(data, c.public).root_links == bundle.root_links


def test_a_bundle_without_links_encodes_as_before():
    """No key 14 at all outside an overlap: bundles stay byte for byte what older terminals took."""
    key = SigningKey.generate()
    payload = loads(loads(_bundle(key, ()))[2])
    assert 14 not in payload and set(payload) == set(range(1, 14))


def test_forged_links_are_refused():
    a, b, mallory = (SigningKey.generate() for _ in range(3))
    link = loads(_link(a, b, 1))
    # signed by another key, the header claiming the pinned root's kid
    forged = dumps([link[0], {}, loads(_link(mallory, b, 1))[2], loads(_link(mallory, b, 1))[3]])
    assert _reason(_bundle(b, (forged,)), a) == "ROOT_LINK_INVALID"
    # a true link, its payload changed (another new root)
    other = loads(_link(a, mallory, 1))
    swapped = dumps([link[0], {}, other[2], link[3]])
    assert _reason(_bundle(mallory, (swapped,)), a) == "ROOT_LINK_INVALID"
    # a bundle signature that is not the new root's
    assert _reason(_bundle(mallory, (_link(a, b, 1),)), a) == "ROOT_LINK_INVALID"


def test_a_link_is_no_bundle_and_a_bundle_no_link():
    """The link's external AAD keeps the two signatures apart."""
    a, b = SigningKey.generate(), SigningKey.generate()
    with pytest.raises(BundleError):
        open_bundle(_link(a, b, 1), a.public)
    with pytest.raises(RootLinkError):
        read_link(_bundle(a, ())[:512], a.public)


def test_a_link_for_another_issuer_is_refused():
    a, b = SigningKey.generate(), SigningKey.generate()
    assert _reason(_bundle(b, (_link(a, b, 1, iss="city-events"),)), a) == "ROOT_LINK_INVALID"


def test_a_replayed_link_and_a_gap_are_refused():
    a, b, c, d = (SigningKey.generate() for _ in range(4))
    # the terminal followed link 1 already (root_seq 1), and is shown link 1 again from a
    with pytest.raises(RootChainError, match="replayed"):
        _open(_bundle(b, (_link(a, b, 1),)), a, root_seq=1)
    # a gap: link 3 from c is missing its link 2 from b
    with pytest.raises(RootChainError, match="gap"):
        _open(_bundle(d, (_link(a, b, 1), _link(c, d, 3))), a)
    # seqs that skip one are a gap too, whoever signed
    with pytest.raises(RootChainError, match="gap"):
        _open(_bundle(c, (_link(a, b, 1), _link(b, c, 3))), a)
    # a chain that stops short of the bundle's signer
    assert _reason(_bundle(d, (_link(a, b, 1), _link(b, c, 2))), a) == "ROOT_LINK_INVALID"


def test_after_the_overlap_the_old_root_cannot_follow():
    a, b = SigningKey.generate(), SigningKey.generate()
    link = _link(a, b, 1, exp=NOW + DAY)
    assert _open(_bundle(b, (link,)), a, now=NOW + DAY)[1] is not None
    assert _reason(_bundle(b, (link,)), a, now=NOW + DAY + 1) == "ROOT_LINK_EXPIRED"
    # the server leaves the link out once the overlap is over: nothing leads from a
    with pytest.raises(RootChainError, match="enrol this terminal again") as refused:
        _open(_bundle(b, ()), a)
    assert refused.value.reason == "ROOT_UNLINKED"


def test_link_limits():
    a, b = SigningKey.generate(), SigningKey.generate()
    with pytest.raises(RootLinkError, match="more than"):
        follow(a.public, [_link(a, b, 1)] * 9, signer=b"", iss=ISS, held_seq=0, now=NOW)
    with pytest.raises(RootLinkError, match="too large"):
        read_link(b"\x00" * 513)
    with pytest.raises(RootLinkError, match="malformed"):
        read_link(dumps([b"", {}, b"", b""]))
