"""Hypothesis strategies for valid claims and the keys the tests sign with."""

from __future__ import annotations

from hypothesis import strategies as st

from duopass.protocol import Claims, Kind, SigningKey

NOW = 1_790_000_000
ISSUER = SigningKey(b"\x11" * 32)
DEVICE = SigningKey(b"\x33" * 32)

printable = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=64
)
any_text = st.text(min_size=1, max_size=64)
venues = st.lists(st.text(min_size=1, max_size=64), min_size=1, max_size=16).map(tuple)


@st.composite
def claims(draw: st.DrawFn, *, bound: bool | None = None) -> Claims:
    kind = draw(st.sampled_from(Kind))
    device = draw(st.booleans()) if bound is None else bound
    lifetime = draw(st.integers(1, 86_400))
    iat = draw(st.integers(NOW - 3_600, NOW))
    return Claims(
        iss=draw(printable),
        sub=draw(any_text),
        iat=iat,
        exp=iat + lifetime,
        cti=draw(st.binary(min_size=8, max_size=16)),
        kind=kind,
        nbf=draw(st.none() | st.integers(0, 2**53 - 1)),
        device_key=DEVICE.public if device else None,
        uses=draw(st.integers(1, 1000)) if device else draw(st.none() | st.integers(1, 1000)),
        txmax=draw(st.integers(1, 2**53 - 1)) if kind is Kind.PURSE else None,
        cur=draw(st.from_regex(r"[A-Z]{3}", fullmatch=True)) if kind is Kind.PURSE else None,
        scope=draw(st.none() | venues),
        ev=draw(any_text) if kind is Kind.TICKET else draw(st.none() | any_text),
        gen=draw(st.integers(0, 2**53 - 1)),
        ent=draw(st.integers(1, 2**53 - 1)),
        crit=draw(
            st.none() | st.lists(st.integers(0, 8), min_size=1, max_size=9, unique=True).map(tuple)
        ),
    )
