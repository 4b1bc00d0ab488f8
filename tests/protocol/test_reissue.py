"""§6: what a reissue keeps, in the one function every kind of credential is reissued with."""

from __future__ import annotations

import dataclasses

from duopass.protocol import Claims, Kind
from duopass.protocol.claims import reissue

TICKET = Claims(
    iss="demo-univ",
    sub="t-4711",
    iat=1_790_000_000,
    nbf=1_790_050_000,
    exp=1_790_100_000,
    cti=b"\x01" * 12,
    kind=Kind.TICKET,
    device_key=b"\x02" * 32,
    uses=4,
    scope=("hall-a", "hall-b"),
    ev="concert-1",
    gen=2,
    ent=3,
)


def test_a_reissue_keeps_the_old_validity_and_takes_the_next_generation():
    new = reissue(TICKET, cti=b"\x03" * 12, iat=1_790_060_000, device_key=b"\x04" * 32)
    assert new is not None
    assert (new.cti, new.iat, new.device_key, new.gen) == (
        b"\x03" * 12,
        1_790_060_000,
        b"\x04" * 32,
        3,
    )
    kept = ("iss", "sub", "kind", "exp", "nbf", "scope", "ev", "ent", "uses")
    assert all(getattr(new, name) == getattr(TICKET, name) for name in kept)


def test_an_expired_credential_leaves_nothing_to_reissue():
    assert reissue(TICKET, cti=b"\x03" * 12, iat=TICKET.exp, device_key=b"\x04" * 32) is None
    before = dataclasses.replace(TICKET, exp=TICKET.exp + 1)
    assert reissue(before, cti=b"\x03" * 12, iat=TICKET.exp, device_key=None) is not None
