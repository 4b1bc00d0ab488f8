"""A journal batch's last entries decoded in the signature worker (`entry_wire`,
`signatures.decode`): what comes back is exactly what the unit's thread decodes (`read_items`),
entries it cannot send as tuples are decoded by the unit's thread, and an answer that is not
whole, not of the layout, or never comes falls back to decoding every entry on that thread."""

from __future__ import annotations

import contextlib
import dataclasses
import marshal
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from duopass.protocol import make_code, mint_credential
from duopass.protocol.cbor import dumps
from duopass.protocol.code import decode_code
from duopass.protocol.journal import Entry, encode_entry
from duopass.protocol.limits import COUNTER_LIMIT, INT_ABS_LIMIT
from duopass.protocol.reasons import Reason
from duopass.protocol.verify import Mode
from duopass.server import entry_wire
from duopass.server.services.credential_cache import VERIFIED
from duopass.server.services.journals import signatures, verifier
from duopass.server.services.journals.lookups import read_items
from duopass.server.services.journals.signatures import PARALLEL_FROM, DeviceSignatures
from tests.protocol.strategies import DEVICE, ISSUER, NOW
from tests.protocol.test_properties import PURSE

L1 = mint_credential(PURSE, ISSUER)
OTHER = mint_credential(dataclasses.replace(PURSE, cti=b"\x06" * 12), ISSUER)
"""A credential the server never verified (not in `VERIFIED`)."""


def _entry(seq: int, code: str, **fields: object) -> bytes:
    values: dict[str, object] = {
        "seq": seq,
        "scanned_at": NOW,
        "clock_offset": -3,
        "mode": Mode.PAY,
        "amount": 120,
        "currency": "CNY",
        "venue": "canteen" if seq % 2 else None,
        "verdict": Reason.OK,
        "online": seq % 3 == 0,
        "tried": seq % 4 == 0,
        "bundle_seq": seq % 5,
        "code": code,
    }
    values.update(fields)
    return encode_entry(Entry(**values))  # type: ignore[arg-type]


def _entries(first: int, count: int) -> list[tuple[int, bytes]]:
    """Mostly good payments, and (of every 20) every kind of entry the worker sends no tuple
    for, or the unit's thread does not rebuild: malformed bytes, another seq, a static code,
    text that is not a code, a malformed code, a credential not verified, an identity scan."""
    out = []
    for n, seq in enumerate(range(first, first + count)):
        code = make_code(L1, DEVICE, ctr=n, ts=NOW)
        raw = {
            3: b"\xa1\x01",
            5: _entry(seq + 1, code),
            7: _entry(seq, make_code(L1, None)),
            9: _entry(seq, "not a code"),
            11: _entry(seq, code[:-4]),
            13: _entry(seq, make_code(OTHER, DEVICE, ctr=n, ts=NOW)),
            15: _entry(seq, code, mode=Mode.IDENTITY, amount=None, currency=None),
            17: dumps({1: seq}),
        }.get(n % 20, _entry(seq, code, verdict=Reason.REPLAY if n == 19 else Reason.OK))
        out.append((seq, raw))
    return out


NO_CHECK = {3, 5, 7, 9, 11, 17}
"""The entries (of every 20) without a device signature to check: not parsed, another seq's,
a static code, not a code, a malformed code, not an entry."""


@pytest.fixture
def verified() -> Iterator[None]:
    """L1 as the server holds it once its issuer signature checked out."""
    credential = decode_code(make_code(L1, None)).credential
    VERIFIED[credential.encoded] = credential
    yield
    del VERIFIED[credential.encoded]


def _ready(signatures: DeviceSignatures) -> verifier.Worker:
    """The batch's worker, started (it answered a request): only such a worker decodes."""
    worker = signatures._worker
    assert worker is not None
    if not worker.ready:
        worker.send([])
        assert worker.receive() == []
    return worker


@contextlib.contextmanager
def _started() -> Iterator[tuple[DeviceSignatures, verifier.Worker, list[tuple[int, bytes]]]]:
    """A batch of `PARALLEL_FROM` entries, its worker started, and the entries after the first
    20 (what a test offloads); the batch closed after, as `signatures.decode` closes it,
    whatever went wrong."""
    entries = _entries(1, PARALLEL_FROM)
    batch = DeviceSignatures(expected=len(entries))
    try:
        yield batch, _ready(batch), entries[20:]
    finally:
        batch.close()


def test_the_workers_tuples_rebuild_what_the_units_thread_decodes(verified):
    entries = _entries(1, 40)
    flat = entry_wire.load(entry_wire.dump(7, entries, {}), len(entries), 7)
    assert flat is not None
    sent = [seq for (seq, _), one in zip(entries, flat, strict=True) if one is not None]
    assert NO_CHECK.isdisjoint({(seq - 1) % 20 for seq in sent})  # no tuple for those
    rebuilt = {}
    for (seq, _), one in zip(entries, flat, strict=True):
        if one is not None and (pair := entry_wire.rebuild(seq, one, VERIFIED)) is not None:
            rebuilt[seq] = pair
    assert {14, 34}.isdisjoint(rebuilt) and len(rebuilt) == 40 - 14  # OTHER: decoded here
    for item in read_items(entries):
        if item.seq in rebuilt:
            entry, code = rebuilt[item.seq]
            assert (entry, code) == (item.entry, item.code) and item.code is not None
            assert code.credential is item.code.credential  # the one verified, not a copy


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"\x00garbage",
        b"\xff",
        marshal.dumps(5),
        marshal.dumps((entry_wire.WIRE_VERSION, [None] * 4)),
        marshal.dumps((entry_wire.WIRE_VERSION + 1, 1, [None] * 4)),
        marshal.dumps((entry_wire.WIRE_VERSION, 1, [None] * 3)),
        marshal.dumps((entry_wire.WIRE_VERSION, 1, [None, None, None, (1, 2)])),
        marshal.dumps((entry_wire.WIRE_VERSION, 1, (None,) * 4)),
        marshal.dumps((entry_wire.WIRE_VERSION, 2, [None] * 4)),
        marshal.dumps((entry_wire.WIRE_VERSION, True, [None] * 4)),
        b"[\xff\xff\xff\x7f",
    ],
)
def test_an_answer_not_whole_or_not_of_the_layout_is_refused(blob):
    assert entry_wire.load(blob, 4, 1) is None
    assert entry_wire.load(marshal.dumps((entry_wire.WIRE_VERSION, 1, [None] * 4)), 4, 1)


_HUGE = """
import marshal, resource
from duopass.server import entry_wire
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))  # a list of 2**31 needs 16 GiB
try:
    marshal.loads(b"[\\xff\\xff\\xff\\x7f")
except MemoryError:
    print("MemoryError", entry_wire.load(b"[\\xff\\xff\\xff\\x7f", 4, 1))
"""


def test_an_answer_marshal_cannot_allocate_for_is_refused_not_raised():
    """Whatever `marshal.loads` raises is a refusal: a length of 2**31 items fails to allocate
    where memory is bounded (in a child process: this one's memory is not)."""
    done = subprocess.run(
        [sys.executable, "-c", _HUGE], capture_output=True, text=True, check=False, timeout=60
    )
    assert (done.returncode, done.stdout) == (0, "MemoryError None\n"), done.stderr


def test_a_stale_answer_for_the_same_seqs_is_refused():
    entries = _entries(1, 20)
    other = [(seq, _entry(seq, make_code(L1, DEVICE, ctr=99, ts=NOW))) for seq, _ in entries]
    stale = entry_wire.dump(3, other, {})
    assert entry_wire.load(stale, len(entries), 3) is not None
    assert entry_wire.load(stale, len(entries), 4) is None


def test_an_answer_is_never_longer_than_its_bound():
    """The worker's reader refuses an answer longer than `answer_bytes_max`: none `dump`
    makes is, not even of the longest fields."""
    big = INT_ABS_LIMIT - 1
    code = make_code(L1, DEVICE, ctr=COUNTER_LIMIT - 1, ts=NOW)
    longest = Reason(max((reason.value for reason in Reason), key=len))
    fields = {"amount": big, "clock_offset": -big, "bundle_seq": big, "verdict": longest}
    entries = [
        *_entries(1, 40),
        *((seq, _entry(seq, code, venue="\u4e2d" * 60, **fields)) for seq in range(41, 61)),
    ]
    flat = entry_wire.load(entry_wire.dump(1, entries, {}), len(entries), 1)
    assert flat is not None and all(flat[40:])  # the longest fields make tuples too
    for first in range(len(entries)):
        part = entries[first:]
        most = entry_wire.answer_bytes_max(sum(len(raw) for _, raw in part), len(part))
        assert len(entry_wire.dump(1, part, {})) <= most


def test_a_tuple_for_another_seq_or_with_unknown_words_is_not_rebuilt(verified):
    ((seq, raw),) = _entries(1, 1)
    one = entry_wire.flatten(seq, raw, {})
    assert one is not None and entry_wire.rebuild(seq, one, VERIFIED) is not None
    assert entry_wire.rebuild(seq + 1, one, VERIFIED) is None
    assert entry_wire.rebuild(seq, (*one[:3], "steal", *one[4:]), VERIFIED) is None
    assert entry_wire.rebuild(seq, (*one[:7], "GOOD", *one[8:]), VERIFIED) is None
    assert entry_wire.rebuild(seq, (*one[:12], [one[12]], *one[13:]), VERIFIED) is None
    assert entry_wire.rebuild(seq, (*one[:3], ["pay"], *one[4:]), VERIFIED) is None


def _answer_begun(worker: verifier.Worker) -> None:
    """Until the worker's answer has begun to come (its decoding done), or it ended."""
    assert worker.process.stdout is not None
    select.select([worker.process.stdout], [], [], 60)


def test_a_worker_answer_that_came_gives_each_entry_it_sent_a_tuple_for(verified):
    with _started() as (batch, worker, tail):
        assert batch.offload(tail)
        _answer_begun(worker)  # so this thread decodes none of them before reading it
        assert batch.decoded(tail) == read_items(tail)
        sent = [seq for seq, _ in tail if (seq - 1) % 20 not in NO_CHECK | {13}]  # 13: OTHER
        assert batch.rebuilt == len(sent) > 0
        checked = {seq: (seq - 1) % 20 not in NO_CHECK for seq, _ in tail}
        assert {seq: batch.verdict_read(seq) is True for seq in checked} == checked


class _ReadFails:
    """`os` as the verifier sees it, but a read raises what is not the worker's failure (a
    MemoryError, say): the answer being read is cut short."""

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    @staticmethod
    def read(fd: int, size: int) -> bytes:
        raise MemoryError


def test_a_worker_whose_answer_was_cut_short_is_not_lent_again(verified, monkeypatch):
    with _started() as (batch, worker, tail):
        assert batch.offload(tail)
        _answer_begun(worker)
        with monkeypatch.context() as patch:
            patch.setattr(verifier, "os", _ReadFails())
            with pytest.raises(MemoryError):
                batch.decoded(tail)
    assert worker not in verifier._idle  # its answer still in the pipe: the next one misread
    assert worker.process.poll() is not None


def test_a_batch_decoded_half_in_the_worker_is_decoded_as_on_one_thread(verified):
    entries = _entries(1, PARALLEL_FROM + 36)
    warm = DeviceSignatures(expected=PARALLEL_FROM)
    _ready(warm)
    warm.close()  # now idle and started: the next batch's worker decodes
    items, found = signatures.decode(entries)
    try:
        assert found.offloaded == int(len(entries) * signatures.OFFLOAD_SHARE)
        assert items == read_items(entries)
        good = [item.seq for item in items if item.code is not None and item.code.dynamic]
        assert all(found.verdict_read(seq) is True for seq in good)  # every one sent on
    finally:
        found.close()


def test_a_worker_that_died_after_it_was_asked_to_decode_leaves_it_to_the_units_thread(verified):
    with _started() as (batch, worker, tail):
        os.kill(worker.process.pid, signal.SIGSTOP)  # it takes the request, never answers
        assert batch.offload(tail)
        worker.process.kill()
        worker.process.wait()  # gone, its pipes closed
        assert batch.decoded(tail) == read_items(tail)
        assert batch._worker is None  # its verdicts go to the re-check
        assert all(batch.verdict(seq) is None for seq, _ in tail)


def test_a_worker_is_asked_to_decode_only_first_and_once_started(verified):
    entries = _entries(1, PARALLEL_FROM)
    batch = DeviceSignatures(expected=len(entries))
    try:
        worker = batch._worker
        assert worker is not None
        if not worker.ready:
            assert not batch.offload(entries)  # a worker still starting is not waited for
            _ready(batch)
        batch.add(read_items(entries[:1]))
        assert not batch.offload(entries[1:])  # its answers would come after those owed
    finally:
        batch.close()


def test_a_worker_short_of_a_core_does_not_hold_the_decoding(verified):
    with _started() as (batch, worker, tail):
        os.kill(worker.process.pid, signal.SIGSTOP)  # it answers only once this thread is done
        try:
            assert batch.offload(tail)
            assert batch.decoded(tail) == read_items(tail)  # every one decoded here
        finally:
            os.kill(worker.process.pid, signal.SIGCONT)
        assert batch._worker is worker  # not failed: its answer, when it comes, is dropped
        checked = {seq: (seq - 1) % 20 not in NO_CHECK for seq, _ in tail}
        assert {seq: batch.verdict_read(seq) is True for seq in checked} == checked


class _Reads:
    """`os` as the verifier sees it, each read's requested size noted."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def read(self, fd: int, size: int) -> bytes:
        self.sizes.append(size)
        return os.read(fd, size)


def test_an_answer_longer_than_its_request_allows_is_the_workers_failure(verified, monkeypatch):
    with _started() as (batch, worker, tail):
        monkeypatch.setattr(entry_wire, "ANSWER_BYTES_PER_BYTE", 0)  # no answer is that short
        monkeypatch.setattr(entry_wire, "ANSWER_BYTES_PER_ENTRY", 0)
        assert batch.offload(tail)
        _answer_begun(worker)
        reads = _Reads()
        monkeypatch.setattr(verifier, "os", reads)
        assert batch.decoded(tail) == read_items(tail)
        assert batch.rebuilt == 0 and batch._worker is None  # its verdicts go to the re-check
        assert reads.sizes == [4]  # its length read, nothing of its length allocated
    assert worker.process.poll() is not None and worker not in verifier._started


def test_the_worker_echoes_each_decode_requests_number(verified):
    entries = _entries(1, PARALLEL_FROM)
    batch = DeviceSignatures(expected=len(entries))
    try:
        worker = _ready(batch)
        parts = entries[:5], entries[5:10]
        first, second = worker.send_decode(parts[0]), worker.send_decode(parts[1])
        assert second == first + 1
        most = [entry_wire.answer_bytes_max(sum(len(raw) for _, raw in part), 5) for part in parts]
        assert worker._decodes == most  # each answer's bound, from its request's entries
        answers = worker.receive_decoded(), worker.receive_decoded()
        assert entry_wire.load(answers[0], 5, first) is not None
        assert entry_wire.load(answers[1], 5, second) is not None
        assert entry_wire.load(answers[0], 5, second) is None  # the seqs differ; so does the number
        assert entry_wire.load(answers[1], 5, first) is None
    finally:
        batch.close()


def test_a_worker_given_back_and_cut_short_is_closed(verified, monkeypatch):
    """Something other than the worker's failure (a MemoryError, say) raised while `back`
    reads what is owed: the worker is closed, not left neither lent nor idle."""
    entries = _entries(1, PARALLEL_FROM)
    batch = DeviceSignatures(expected=len(entries))
    worker = _ready(batch)
    batch._worker = None  # given back below, by hand
    worker.send_decode(entries)
    _answer_begun(worker)
    with monkeypatch.context() as patch:
        patch.setattr(verifier, "os", _ReadFails())
        with pytest.raises(MemoryError):
            worker.back()
    assert worker not in verifier._idle and worker not in verifier._started
    assert worker.process.poll() is not None
