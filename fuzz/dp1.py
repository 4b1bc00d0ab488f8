"""Fuzzes the DP1 decoder and verifier: no input may raise, every verdict is a reason code.

Inputs are mutations of valid codes at three depths: the text (base45 characters), the CBOR
envelope bytes (re-encoded as base45 so they pass the text layer), and the credential's claims
re-signed with the issuer key (so they reach the claim checks and every check after them).
Seeded, so a failure repeats; `--inputs` sets the length (the suite runs 100,000).

    python -m fuzz.dp1 --inputs 5000000 --seed 7
"""

from __future__ import annotations

import argparse
import collections
import random
import sys
import time
from typing import Any

from duopass.protocol.cbor import dumps, loads
from duopass.protocol.claims import Claims, Kind
from duopass.protocol.code import decode_code, make_code, mint_credential
from duopass.protocol.cose import L2_PROTECTED, l1_protected, sign1
from duopass.protocol.encoding import b45decode, b45encode
from duopass.protocol.keys import SigningKey
from duopass.protocol.memory import MemoryStore
from duopass.protocol.reasons import Reason
from duopass.protocol.trust import Issuer, Policy, TrustKey, TrustStore
from duopass.protocol.verify import Mode, TerminalConfig, Verifier

NOW = 1_790_000_000
ISSUER_KEY = SigningKey(b"\x11" * 32)
DEVICE_KEY = SigningKey(b"\x33" * 32)
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_INTERESTING = [
    0x00,
    0x17,
    0x18,
    0x1B,
    0x1F,
    0x3F,
    0x5F,
    0x7F,
    0x9F,
    0xBF,
    0xC0,
    0xD8,
    0xF4,
    0xF5,
    0xF6,
    0xF7,
    0xF9,
    0xFA,
    0xFB,
    0xFF,
    0x20,
    0x3A,
    0x40,
    0x60,
    0x80,
    0xA0,
]


def corpus() -> list[tuple[str, Claims]]:
    """Valid codes of every kind, with the claims they were made from."""
    base: dict[str, Any] = {
        "iss": "demo-univ",
        "iat": NOW - 100,
        "exp": NOW + 80_000,
        "cti": b"\x07" * 12,
    }
    purse = Claims(
        sub="h-1",
        kind=Kind.PURSE,
        device_key=DEVICE_KEY.public,
        uses=10,
        txmax=1500,
        cur="CNY",
        scope=("canteen",),
        **base,
    )
    identity = Claims(
        sub="h-2", kind=Kind.IDENTITY, device_key=DEVICE_KEY.public, uses=3, crit=(1, 2), **base
    )
    ticket = Claims(sub="t-3", kind=Kind.TICKET, ev="gig", ent=2, gen=1, nbf=NOW - 50, **base)
    codes = []
    for claims in (purse, identity, ticket):
        l1 = mint_credential(claims, ISSUER_KEY)
        device = DEVICE_KEY if claims.device_key is not None else None
        codes.append((make_code(l1, device, ctr=1, ts=NOW), claims))
    return codes


def terminals() -> list[tuple[Verifier, int | None]]:
    key = TrustKey(ISSUER_KEY.kid, ISSUER_KEY.public, NOW - 86_400, NOW + 86_400)
    store = TrustStore(
        seq=1,
        issued_at=NOW,
        max_age_s=86_400,
        issuers=(Issuer("demo-univ", (key,), Policy(static_tickets=True)),),
    )
    configs = [
        (TerminalConfig(mode=Mode.PAY, currency="CNY", venue="canteen"), 700),
        (TerminalConfig(mode=Mode.IDENTITY), None),
        (TerminalConfig(mode=Mode.ENTRY, event="gig", venue="hall"), None),
    ]
    return [(Verifier(store, config, MemoryStore()), amount) for config, amount in configs]


def mutate_text(rng: random.Random, text: str) -> str:
    i = rng.randrange(len(text) + 1)
    op = rng.randrange(6)
    if op == 0:
        return text[:i] + rng.choice(_ALPHABET) + text[i + 1 :]
    if op == 1:
        return text[:i] + rng.choice(_ALPHABET + "\r\n\t\x00é€abc") + text[i:]
    if op == 2:
        return text[:i] + text[i + 1 :]
    if op == 3:
        return text[:i]
    if op == 4:
        return text + rng.choice(["\n", "\r\n", "\r", "\n\n", " ", "\r\r"])
    j = rng.randrange(len(text) + 1)
    return text[:i] + text[min(i, j) : max(i, j)] + text[i:]


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3, 8))):
        i = rng.randrange(len(out) + 1)
        op = rng.randrange(5)
        if op == 0 and i < len(out):
            out[i] ^= 1 << rng.randrange(8)
        elif op == 1 and i < len(out):
            out[i] = rng.choice(_INTERESTING)
        elif op == 2:
            out[i:i] = bytes([rng.choice(_INTERESTING)])
        elif op == 3 and i < len(out):
            del out[i : i + rng.randrange(1, 4)]
        else:
            j = rng.randrange(len(out) + 1)
            out[i:i] = out[min(i, j) : max(i, j)][:32]
    return bytes(out)


def resigned(rng: random.Random, claims: Claims) -> str:
    """A credential whose payload bytes are mutated and then correctly signed by the issuer."""
    payload = mutate_bytes(rng, mint_payload(claims))
    l1 = dumps(sign1(ISSUER_KEY, l1_protected(ISSUER_KEY.kid), payload))
    credential = loads(l1)
    envelope: list[Any] = [credential]
    if rng.random() < 0.7:
        counter = rng.choice([0, 1, 9, 10, 999, 2**32, -1])
        ts = NOW + rng.choice([0, -59, 61, -3600])
        envelope.append(sign1(DEVICE_KEY, L2_PROTECTED, dumps([counter, ts]), credential[3]))
    return "DP1:" + b45encode(dumps(envelope))


def mint_payload(claims: Claims) -> bytes:
    l1 = loads(mint_credential(claims, ISSUER_KEY))
    return bytes(l1[2])


def one_input(rng: random.Random, codes: list[tuple[str, Claims]]) -> str:
    text, claims = rng.choice(codes)
    depth = rng.randrange(3)
    if depth == 0:
        return mutate_text(rng, text)
    if depth == 1:
        return "DP1:" + b45encode(mutate_bytes(rng, b45decode(text[4:])))
    return resigned(rng, claims)


def run(inputs: int, seed: int) -> collections.Counter[str]:
    """Verify `inputs` fuzzed texts at three terminals; raises AssertionError on a bad outcome."""
    rng = random.Random(seed)
    codes = corpus()
    verifiers = terminals()
    seen: collections.Counter[str] = collections.Counter()
    for _ in range(inputs):
        text = one_input(rng, codes)
        verifier, amount = rng.choice(verifiers)
        try:
            verdict = verifier.scan(text, now=NOW, amount=amount)
        except Exception as exc:
            raise AssertionError(f"verify raised {exc!r} on {text!r}") from exc
        assert isinstance(verdict.reason, Reason), text
        if verdict.ok:  # an accepted code is well-formed in every detail
            code = decode_code(text)
            assert code.credential.claims == verdict.claims, text
        seen[verdict.reason.value] += 1
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.perf_counter()
    seen = run(args.inputs, args.seed)
    elapsed = time.perf_counter() - started
    print(f"{args.inputs} inputs in {elapsed:.1f} s, none raised; verdicts:")
    for reason, count in seen.most_common():
        print(f"  {reason:24} {count}")
    sys.exit(0)


if __name__ == "__main__":
    main()
