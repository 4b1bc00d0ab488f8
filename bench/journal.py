"""Journal ingestion: wall time per entry of a 10,000-entry upload (20 batches of 500, as
`POST /v1/terminal/journal` takes them), each entry's signatures verified, the server free to use
every core, against one raw libsodium verification on one core measured in the same run (issue
14's figure, goal: <= 2x).

The server's own path, in process: `open_batch` (the batch signature), then `journals.ingest` in
one transaction per batch on a SQLite file with `synchronous=FULL` (one fsync per batch): the
batch settled ahead of its device signatures while the worker verifies them, so the wall time is
about the unit's own thread's CPU when both cores are free. Every
entry is an offline payment with a fresh counter; 50 holders, so the issuer signature of each
credential is verified once and cached (as a terminal does) while every device signature is
verified. Rounds alternate with the baseline; each side's best round counts.

The stages are timed alone on one core over the same kind of entries, so the figure can be read
against them: the entry decode (`lookups.read_items`), the device signatures, the decode with
the signatures verified alongside on the pool as the server does it (`signatures.decode`: a
started worker decodes the last half of each batch too, `entry_wire`), and
the ledger leaves (encoding, RFC 9162 leaf hash and tree nodes, in memory).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import nacl.bindings

from bench.timing import parser, per_item, table, us
from duopass.ledger import CompactRange, hash_leaf
from duopass.ledger.events import EventType, event
from duopass.protocol import SigningKey, make_code
from duopass.protocol.journal import (
    BATCH_ENTRIES_MAX,
    GENESIS,
    Batch,
    Entry,
    batch_hash,
    encode_batch,
    encode_entry,
    open_batch,
)
from duopass.protocol.keys import verify_signature
from duopass.protocol.reasons import Reason
from duopass.protocol.signed_requests import device_enrolment_message, enrolment_message
from duopass.protocol.verify import Mode
from duopass.server.app import create_app
from duopass.server.context import AppContext
from duopass.server.keyring import Keyring
from duopass.server.services import (
    accounts,
    credentials,
    devices,
    holders,
    journals,
    terminals,
    topups,
)
from duopass.server.services.journals import lookups, verifier
from duopass.server.services.journals.collector import paused
from duopass.server.services.journals.signatures import DeviceSignatures
from duopass.server.services.journals.signatures import decode as decode_verifying
from duopass.server.services.people import Person
from duopass.server.settings import Settings
from duopass.server.unit_of_work import Unit

HOLDERS = 50
TERMINAL = "till-bench"


class Bench:
    """A server database with holders, a till, and wallets that make codes."""

    def __init__(self, directory: Path) -> None:
        settings = Settings(
            db_url=f"sqlite:///{directory / 'bench.db'}",
            data_dir=directory / "data",
            offline_uses=1000,
            offline_txmax=100,
        )
        app = create_app(settings, keyring=Keyring.create(directory / "data", origin="b/ledger"))
        self.ctx: AppContext = app.state.context
        self.now = int(time.time())
        self.wallets = [self._wallet(n) for n in range(HOLDERS)]
        self.key = SigningKey.generate()
        self._till()
        self.seq, self.prev, self.ctr = 0, GENESIS, 0

    def _wallet(self, n: int) -> tuple[bytes, SigningKey]:
        device = SigningKey.generate()

        def work(unit: Unit) -> bytes:
            holder = holders.create_holder(
                unit,
                login=f"bench{n}",
                person=Person(f"Bench {n}", f"B{n:06d}", f"bench{n}@bench.example"),
                password="bench-password",
                overdraft=0,
                password_hash="-",
            )
            topups.top_up(unit, holder, amount=10**7, request_id=f"bench-topup-{n}")
            proof = device.sign(device_enrolment_message(holder.login, device.public))
            enrolled = devices.enrol_device(unit, holder, public_key=device.public, proof=proof)
            issued = credentials.sync(
                unit,
                holder=holder,
                device_id=enrolled.id,
                request_id=f"bench-sync-{n}",
                mark=None,
            )
            return bytes(issued.credential.l1)

        return self.ctx.run(work), device

    def _till(self) -> None:
        ctx = self.ctx

        def work(unit: Unit) -> None:
            merchant = accounts.create_merchant(unit.session, "bench", "CNY")
            code = terminals.create(
                unit,
                terminal_id=TERMINAL,
                mode="pay",
                venue="canteen",
                merchant_account_id=merchant,
                currency="CNY",
                event=None,
            )
            terminals.enrol(
                unit,
                terminal_id=TERMINAL,
                enrol_code=code,
                public_key=self.key.public,
                proof=self.key.sign(enrolment_message(TERMINAL, code, self.key.public)),
            )

        ctx.run(work)

    def batches(self, entries: int) -> list[bytes]:
        """Signed batches of `entries` fresh offline payments, next in the chain."""
        out: list[bytes] = []
        pending: list[bytes] = []
        first = self.seq + 1
        for n in range(entries):
            l1, device = self.wallets[n % HOLDERS]
            ctr = self.ctr + n // HOLDERS
            self.seq += 1
            pending.append(
                encode_entry(
                    Entry(
                        seq=self.seq,
                        scanned_at=self.now,
                        clock_offset=0,
                        mode=Mode.PAY,
                        amount=50,
                        currency="CNY",
                        venue="canteen",
                        verdict=Reason.OK,
                        online=False,
                        tried=False,
                        bundle_seq=0,
                        code=make_code(l1, device, ctr=ctr, ts=self.now),
                    )
                )
            )
            if len(pending) == BATCH_ENTRIES_MAX or n == entries - 1:
                data = encode_batch(
                    self.key, TERMINAL, first=first, prev=self.prev, entries=pending
                )
                out.append(data)
                self.prev, first, pending = batch_hash(data), self.seq + 1, []
        self.ctr += -(-entries // HOLDERS)
        return out

    def ingest(self, batches: list[bytes]) -> None:
        ctx = self.ctx
        for data in batches:
            batch = open_batch(data, self.key.public)

            def work(unit: Unit, batch: Batch = batch, data: bytes = data) -> dict[str, Any]:
                return journals.ingest(unit, terminal_id=TERMINAL, batch=batch, data=data)

            answer = ctx.run(work, journal_in_memory=True)  # as the route runs it
            assert not answer["rejected"] and not answer["duplicates"], answer


def stages(bench: Bench, batches: list[bytes]) -> list[tuple[str, float]]:
    """Seconds per entry of each stage alone (the best of three), on one core but the pool's:
    what an entry costs before any SQL."""
    opened: list[Batch] = []
    items: list[lookups.Item] = []
    entries = sum(len(open_batch(data, bench.key.public).entries) for data in batches)

    def envelopes() -> None:
        opened[:] = [open_batch(data, bench.key.public) for data in batches]

    def decode() -> None:
        items[:] = [
            item
            for batch in opened
            for item in lookups.read_items(enumerate(batch.entries, batch.first))
        ]

    def devices() -> None:
        for item in items:
            assert item.code is not None and item.code.dynamic is not None
            dynamic, claims = item.code.dynamic, item.code.credential.claims
            assert claims.device_key is not None
            assert verify_signature(claims.device_key, dynamic.signed, dynamic.signature)

    def pooled() -> None:
        signatures = DeviceSignatures(items)
        assert all(signatures.verdict(item.seq) for item in items)
        signatures.close()

    def overlapped() -> None:
        for batch in opened:
            decoded, signatures = decode_verifying(list(enumerate(batch.entries, batch.first)))
            assert all(signatures.verdict(item.seq) for item in decoded)
            signatures.close()

    def leaves() -> None:
        data = []
        for item in items:
            assert item.code is not None and item.code.dynamic is not None
            body = {"cti": item.code.credential.claims.cti, "ctr": item.code.dynamic.ctr}
            body.update(terminal=TERMINAL, seq=item.seq, amount=50, online=0, transaction=1)
            data.append(event(EventType.PAYMENT, bench.now, "bench", body))
        CompactRange.empty().grow([hash_leaf(leaf) for leaf in data])

    runs = [
        ("batch envelopes (one signature a batch)", envelopes),
        ("entry decode (lookups.read_items)", decode),
        ("device signatures, one core", devices),
        ("device signatures, in the worker process", pooled),
        ("decode, the signatures verified alongside", overlapped),
        ("ledger leaves (encode, hash, tree)", leaves),
    ]
    with paused(entries):  # as the server runs them
        return [(name, min(per_item(run, entries) for _ in range(3))) for name, run in runs]


def main() -> None:
    args = parser(__doc__ or "").parse_args()
    entries, rounds = (BATCH_ENTRIES_MAX, 1) if args.quick else (10_000, 3)
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Path(tmp))
        bench.ingest(bench.batches(BATCH_ENTRIES_MAX))  # credentials verified and cached
        staged = bench.batches(BATCH_ENTRIES_MAX)
        parts = stages(bench, staged)
        bench.ingest(staged)
        public, secret = nacl.bindings.crypto_sign_keypair()
        raw = [nacl.bindings.crypto_sign(n.to_bytes(64, "big"), secret) for n in range(entries)]

        def raw_verify() -> None:
            for message in raw:
                nacl.bindings.crypto_sign_open(message, public)

        best_raw, best_ingest = Best(), Best()
        for _ in range(rounds):
            best_raw.time(raw_verify, entries)
            batches = bench.batches(entries)
            best_ingest.time(partial(bench.ingest, batches), entries)
    raw_wall, wall = best_raw.wall, best_ingest.wall
    print(
        f"journal ingestion, an upload of {entries} entries in batches of {BATCH_ENTRIES_MAX}, "
        f"{os.cpu_count()} cores:"
    )
    rows = [("one raw libsodium verification, one core", raw_wall)]
    rows += parts
    rows.append(("ingestion per entry, wall", wall))
    table([(name, f"{us(t)}  {t / raw_wall:5.2f}x") for name, t in rows])
    print(
        f"  = {1 / wall:,.0f} entries/s; CPU time of every thread and worker per entry "
        f"{best_ingest.cpu / best_raw.cpu:.2f}x one raw verification's (on a busy machine "
        "the wall time runs longer)"
    )
    print(
        f"  the unit's own thread (decode, re-check, booking, SQL; the signatures are the "
        f"worker's): {best_ingest.thread * 1e6:.1f} us of CPU an entry, "
        f"{best_ingest.thread / best_raw.thread:.2f}x one raw verification's"
    )
    print(f"RATIO journal_entry_vs_raw_verify {wall / raw_wall:.3f}")


class Best:
    """The best round's wall time per item, and the CPU time (every thread, and the signature
    workers; the calling thread alone) of that round: on a shared machine the CPU time says
    what the work cost when wall time cannot."""

    def __init__(self) -> None:
        self.wall, self.cpu, self.thread = float("inf"), float("inf"), float("inf")

    def time(self, run: Callable[[], None], items: int) -> None:
        started, thread = _cpu(), time.thread_time()
        wall = per_item(run, items)
        if wall < self.wall:
            self.wall, self.cpu = wall, (_cpu() - started) / items
            self.thread = (time.thread_time() - thread) / items


def _cpu() -> float:
    """CPU seconds of this process's threads and of the signature workers' processes (Linux's
    /proc; elsewhere this process's alone)."""
    total = time.process_time()
    for pid in verifier.pids():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


if __name__ == "__main__":
    main()
