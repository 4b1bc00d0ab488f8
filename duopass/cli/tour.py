"""`duopass tour`: the protocol core end to end, with no server: an issuer mints credentials, a
wallet makes codes, QR images are written and read back, and terminals verify them offline."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from duopass.protocol.claims import Claims, Kind
from duopass.protocol.code import make_code, mint_credential
from duopass.protocol.keys import SigningKey
from duopass.protocol.memory import MemoryStore
from duopass.protocol.trust import Issuer, Policy, TrustKey, TrustStore, dump_trust_store
from duopass.protocol.verify import Mode, TerminalConfig, Verifier
from duopass.qr import read_image_file, render_png

ISSUER = "demo-univ"
DAY_S = 86_400


@dataclass(frozen=True)
class _Scan:
    story: str
    terminal: str
    text: str
    amount: int | None = None
    image: str | None = None


def tour(
    out: Annotated[Path, typer.Option(help="folder for the QR images and the trust store")] = Path(
        "tour-out"
    ),
) -> None:
    """Mint credentials, make codes, render and read back QR images, verify them offline."""
    console = Console(width=max(Console().width, 110))
    now = int(time.time())
    issuer_key = SigningKey.generate()
    store = _trust_store(issuer_key, now)
    out.mkdir(parents=True, exist_ok=True)
    (out / "trust.json").write_bytes(dump_trust_store(store))

    alice, bob, bobs_new_phone = (SigningKey.generate() for _ in range(3))
    purse = mint_credential(_purse(now, alice), issuer_key)
    ticket = mint_credential(_ticket(now, bob, gen=0), issuer_key)
    reissued = mint_credential(_ticket(now, bobs_new_phone, gen=1), issuer_key)
    first = make_code(purse, alice, ctr=0, ts=now)
    tampered = first[:-6] + ("0" if first[-6] != "0" else "1") + first[-5:]
    scans = [
        _Scan("Alice pays 12.50 for lunch", "till", first, 1250, "alice-0.png"),
        _Scan("the same code is scanned again", "till", first, 1250),
        _Scan("Alice's next code (counter 1)", "till", make_code(purse, alice, ctr=1, ts=now), 800),
        _Scan("a payment above her per-payment cap", "till", make_code(purse, alice, 2, now), 9000),
        _Scan("a code with one character changed", "till", tampered, 500),
        _Scan("Alice's purse opens the library gate", "library", make_code(purse, alice, 3, now)),
        _Scan(
            "Bob's ticket at the concert door",
            "door",
            make_code(ticket, bob, 0, now),
            None,
            "bob.png",
        ),
        _Scan(
            "Bob's reissued ticket, same door", "door", make_code(reissued, bobs_new_phone, 0, now)
        ),
        _Scan("a code of another scheme", "till", "HC1:NCFOXN%TS3DH3ZSUZK+.V0ET", 100),
    ]
    terminals = _terminals(store)
    table = Table(title=f"duopass offline verification ({ISSUER}, trust store seq {store.seq})")
    for column in ("scan", "terminal", "read from", "verdict", "ctr"):
        table.add_column(column)
    for scan in scans:
        text, source = scan.text, "text"
        if scan.image is not None:
            (out / scan.image).write_bytes(render_png(scan.text))
            text, source = read_image_file(out / scan.image)[0], f"QR {out / scan.image}"
        verdict = terminals[scan.terminal].scan(text, now=now, amount=scan.amount)
        style = "green" if verdict.ok else "red"
        ctr = "" if verdict.ctr is None else str(verdict.ctr)
        table.add_row(scan.story, scan.terminal, source, f"[{style}]{verdict.reason}[/]", ctr)
    console.print(table)
    console.print(
        f"Wrote {out / 'trust.json'} and the QR images. Verify one as a fresh terminal would "
        f"(--now is the demo's clock, so this works at any later time):\n"
        f"  duopass verify --trust {out / 'trust.json'} --now {now} --mode pay --amount 100 "
        f"--currency CNY {out / 'alice-0.png'}",
        soft_wrap=True,
    )


def _terminals(store: TrustStore) -> dict[str, Verifier]:
    """A till, a library gate and a concert door, each with its own memory."""
    return {
        "till": Verifier(
            store, TerminalConfig(mode=Mode.PAY, currency="CNY", venue="canteen-1"), MemoryStore()
        ),
        "library": Verifier(
            store, TerminalConfig(mode=Mode.IDENTITY, venue="library"), MemoryStore()
        ),
        "door": Verifier(
            store,
            TerminalConfig(mode=Mode.ENTRY, venue="hall-a", event="concert-2026-12-01"),
            MemoryStore(),
        ),
    }


def _trust_store(issuer_key: SigningKey, now: int) -> TrustStore:
    key = TrustKey(issuer_key.kid, issuer_key.public, now - DAY_S, now + 7 * DAY_S)
    issuer = Issuer(ISSUER, (key,), Policy())
    return TrustStore(seq=1, issued_at=now, max_age_s=DAY_S, issuers=(issuer,))


def _purse(now: int, device: SigningKey) -> Claims:
    return Claims(
        iss=ISSUER,
        sub="h-a11ce",
        iat=now,
        exp=now + DAY_S,
        cti=os.urandom(12),
        kind=Kind.PURSE,
        device_key=device.public,
        uses=10,
        txmax=3000,
        cur="CNY",
    )


def _ticket(now: int, device: SigningKey, *, gen: int) -> Claims:
    return Claims(
        iss=ISSUER,
        sub="t-b0b-0042",
        iat=now,
        exp=now + 10 * DAY_S,
        cti=os.urandom(12),
        kind=Kind.TICKET,
        device_key=device.public,
        uses=4,
        ev="concert-2026-12-01",
        scope=("hall-a",),
        gen=gen,
    )
