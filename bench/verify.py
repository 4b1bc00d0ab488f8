"""Offline verification per code against two raw libsodium Ed25519 verifications (goal: <= 1.5x).

Each code is a different credential (its own device key and cti), so nothing is cached; the
second figure is one credential scanned many times, where the verified L1 is cached by its exact
bytes. The breakdown shows where the time goes.

    python -m bench.verify [--quick]
"""

from __future__ import annotations

import os

import cbor2
import nacl.bindings

from bench.timing import best_of, parser, table, us
from duopass.protocol import (
    Claims,
    Issuer,
    Kind,
    MemoryStore,
    Mode,
    Policy,
    SigningKey,
    TerminalConfig,
    TrustKey,
    TrustStore,
    Verifier,
    decode_code,
    make_code,
    mint_credential,
)
from duopass.protocol.encoding import b45decode

NOW = 1_790_000_000
ISSUER = SigningKey(b"\x11" * 32)
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
TILL = TerminalConfig(mode=Mode.PAY, currency="CNY", venue="canteen-1")


def purse(device: SigningKey) -> Claims:
    return Claims(
        iss="demo-univ",
        sub="h-" + os.urandom(4).hex(),
        iat=NOW - 60,
        exp=NOW + 86_000,
        cti=os.urandom(12),
        kind=Kind.PURSE,
        device_key=device.public,
        uses=10,
        txmax=3000,
        cur="CNY",
        scope=("canteen-1", "canteen-2"),
    )


def distinct_codes(count: int) -> list[str]:
    codes = []
    for _ in range(count):
        device = SigningKey.generate()
        codes.append(make_code(mint_credential(purse(device), ISSUER), device, ctr=3, ts=NOW))
    return codes


def main() -> None:
    args = parser(__doc__).parse_args()
    count, rounds = (50, 2) if args.quick else (2000, 7)
    codes = distinct_codes(count)
    decoded = [decode_code(code) for code in codes]
    raw_pairs = []
    for d in decoded:
        assert d.dynamic is not None and d.credential.claims.device_key is not None
        l1 = d.credential.signature + d.credential.signed
        l2 = d.dynamic.signature + d.dynamic.signed
        raw_pairs.append((ISSUER.public, l1, d.credential.claims.device_key, l2))
    device = SigningKey.generate()
    one_l1 = mint_credential(purse(device), ISSUER)
    same_credential = [make_code(one_l1, device, ctr=i % 10, ts=NOW) for i in range(count)]

    def raw_two() -> None:
        for issuer_key, l1, device_key, l2 in raw_pairs:
            nacl.bindings.crypto_sign_open(l1, issuer_key)
            nacl.bindings.crypto_sign_open(l2, device_key)

    def verify_distinct() -> None:
        verifier = Verifier(STORE, TILL, MemoryStore())
        for code in codes:
            assert verifier.scan(code, now=NOW, amount=500).ok

    def verify_same() -> None:
        verifier = Verifier(STORE, TILL, MemoryStore())
        for code in same_credential[:10]:  # counters 0..9, each accepted once
            assert verifier.scan(code, now=NOW, amount=500).ok
        verifier.memory = MemoryStore()
        for code in same_credential[10:]:
            verifier.scan(code, now=NOW, amount=500)

    def base45_only() -> None:
        for code in codes:
            b45decode(code[4:])

    def cbor_envelope() -> None:
        for code in codes:
            cbor2.loads(b45decode(code[4:]))

    def decode_only() -> None:
        for code in codes:
            decode_code(code)

    best = best_of(
        {
            "raw": raw_two,
            "distinct": verify_distinct,
            "same": verify_same,
            "base45": base45_only,
            "base45+cbor": cbor_envelope,
            "decode": decode_only,
        },
        count,
        rounds,
    )
    ratio = best["distinct"] / best["raw"]
    print(f"offline verification, {count} codes, best of {rounds} interleaved rounds")
    table(
        [
            ("two raw libsodium verifications", us(best["raw"])),
            (
                "verify, each code a different credential",
                f"{us(best['distinct'])}  = {ratio:.2f}x (goal <= 1.5x)",
            ),
            (
                "verify, one credential (L1 cached)",
                f"{us(best['same'])}  = {best['same'] / best['raw']:.2f}x",
            ),
            ("  of which: strict base45 decode", us(best["base45"])),
            ("  of which: + CBOR envelope", us(best["base45+cbor"])),
            ("  of which: whole §2 decode", us(best["decode"])),
            ("codes verified per second (distinct)", f"{1 / best['distinct']:8.0f}"),
        ]
    )
    print(f"RATIO verify_distinct_vs_two_raw {ratio:.3f}")


if __name__ == "__main__":
    main()
