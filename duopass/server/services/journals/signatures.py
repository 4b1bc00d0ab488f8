"""A large batch's device signatures (§3 check 14), verified in a worker process (`verifier`)
ahead of the settling that needs them, while the unit's own thread decodes the rest of the batch
and settles the entries before.

The batch is decoded a slice at a time (`decode`) and each slice's signatures go to the worker
as soon as it is decoded, so verifying overlaps the decoding as well as the settling.

Only the work moves: the re-check (`recheck`) still takes check 14's verdict at its place in
the §3 order, under the same key (the credential's `cnf`) and over the same bytes; an entry the
worker did not answer for (none was free, it failed, or it missed its deadline and was killed)
is verified by the re-check itself.

A batch settled `ahead` does not wait for the worker at all: an entry whose verdict the worker
still owes is settled as if its signature verified, and `confirmed` says at the end, before the
batch's unit may commit, whether every such verdict came and held. When one did not (a forged
signature, a worker that failed or missed its deadline), the caller rolls everything the batch
did back and settles it again without assuming (`batch.ingest`): what commits was settled on
verdicts read, never on one assumed."""

from __future__ import annotations

from collections.abc import Sequence

from duopass.server import entry_wire
from duopass.server.services.credential_cache import VERIFIED
from duopass.server.services.journals import verifier
from duopass.server.services.journals.lookups import Item, new_item, read_items

__all__ = ["PARALLEL_FROM", "DeviceSignatures", "decode"]

PARALLEL_FROM = 64
"""Entries with a device signature from which a batch verifies them in a worker; a smaller
batch leaves them to the re-check, one by one. A batch of that many entries asks for the worker
before decoding, so its first slice goes at once."""
_FIRST_SLICE = 16
"""Entries decoded before the first signatures go to the worker (it starts early)."""
_SLICE = 50
"""Entries decoded before each later slice's signatures go to the worker."""
OFFLOAD_SHARE = 0.48
"""The share of a batch's entries (its last ones) a started worker decodes while the unit's
thread decodes the others: about half, as the worker's decoding (and its answer's encoding)
takes about as long an entry as the unit's, and reading its answer back a seventh of that."""


class DeviceSignatures:
    """Check 14's verdict of each entry of a batch, by seq, computed ahead in a worker. Items
    are added as they are decoded; the worker is asked once `PARALLEL_FROM` signatures wait.
    `close` gives the worker back (a batch's unit ends with it, however it ends)."""

    def __init__(
        self,
        items: Sequence[Item] = (),
        *,
        deadline_s: float = verifier.DEADLINE_S_DEFAULT,
        ahead: bool = False,
        expected: int = 0,
    ) -> None:
        """`ahead`: a verdict still owed is assumed (`verdict`), then checked (`confirmed`);
        `expected`: the entries to come, the worker asked for at once if they are enough."""
        self._deadline_s = deadline_s
        """How long the worker may take to take a request or answer one (`verifier.lend`)."""
        self._ahead = ahead
        self._assumed: list[int] = []
        """The seqs whose verdict `verdict` assumed (ahead), for `confirmed`."""
        self._waiting: list[tuple[int, tuple[bytes, bytes, bytes]]] = []
        self._worker: verifier.Worker | None = None
        self._asked = False
        self._sent: list[list[int]] = []
        """The seqs of each request whose answers are not read yet, in order."""
        self._owed: set[int] = set()
        """Those seqs together (an entry without a device signature waits for nothing)."""
        self._done: dict[int, bool] = {}
        self.offloaded = 0
        """How many entries the worker was asked to decode (`offload`)."""
        self._request = 0
        """The number of the decode request `offload` sent (`entry_wire.load` checks it)."""
        self.rebuilt = 0
        """How many of those came back from its answer (`decoded`), not decoded here."""
        if expected >= PARALLEL_FROM:
            self._asked, self._worker = True, verifier.lend(deadline_s)
        self.add(items)

    def add(self, items: Sequence[Item]) -> None:
        """Verify the device signatures of `items` ahead (once enough have come)."""
        for item in items:
            code = item.code
            if code is None or code.dynamic is None:
                continue
            key = code.credential.claims.device_key
            assert key is not None, "the decoder refuses an L2 without cnf"
            self._waiting.append((item.seq, (key, code.dynamic.signed, code.dynamic.signature)))
        if not self._asked and len(self._waiting) >= PARALLEL_FROM:
            self._asked, self._worker = True, verifier.lend(self._deadline_s)
        if self._worker is None or not self._waiting:
            return
        checks, self._waiting = self._waiting, []
        try:
            self._worker.send([check for _, check in checks])
        except OSError:
            self._failed()
            return
        self._sent.append([seq for seq, _ in checks])
        self._owed.update(seq for seq, _ in checks)

    def verdict(self, seq: int) -> bool | None:
        """Whether the entry's device signature verified; None: not verified ahead. Settling
        ahead, a verdict still owed is True until `confirmed` says otherwise."""
        if self._ahead and seq in self._owed and self._worker is not None:
            self._assumed.append(seq)
            return True
        while seq in self._owed and self._worker is not None:
            seqs = self._sent.pop(0)
            self._owed.difference_update(seqs)
            try:
                self._done.update(zip(seqs, self._worker.receive(), strict=True))
            except OSError:
                self._failed()
        return self._done.get(seq)

    def offload(self, entries: Sequence[tuple[int, bytes]]) -> bool:
        """Ask the worker to decode `entries` (`entry_wire`), ahead of any other request of
        this batch; False (nothing asked) without a started worker, or if it failed."""
        worker = self._worker
        if worker is None or not worker.ready or worker.owed or self._sent:
            return False
        try:
            self._request = worker.send_decode(entries)
        except OSError:
            self._failed()
            return False
        self.offloaded = len(entries)
        return True

    def decoded(self, entries: Sequence[tuple[int, bytes]]) -> list[Item]:
        """The items of the entries `offload` asked for, as `read_items` makes them, and their
        signatures sent to be verified (`add`). Until the worker's answer begins to come, this
        thread decodes them itself a slice at a time (a worker short of a core does not hold
        it); the rest come from the answer. An entry the worker sent no tuple for, or one
        `entry_wire.rebuild` refuses, is decoded here; so is every one if its answer is not
        whole or not what was asked, or it failed (what it owes then goes to the re-check).
        An answer not read (this thread decoded them all) is dropped when the next is read."""
        items: list[Item] = []
        while self._worker is not None and len(items) < len(entries):
            if self._worker.answered():
                break
            local = read_items(entries[len(items) : len(items) + _FIRST_SLICE])
            self.add(local)
            items += local
        done, flat = len(items), None
        if self._worker is not None and done < len(entries):
            try:
                answer = self._worker.receive_decoded()
                flat = entry_wire.load(answer, len(entries), self._request)
            except OSError:
                self._failed()
        if flat is None:
            rest = read_items(entries[done:])
        else:
            rest = []
            for (seq, raw), one in zip(entries[done:], flat[done:], strict=True):
                rebuilt = None if one is None else entry_wire.rebuild(seq, one, VERIFIED)
                if rebuilt is None:
                    rest += read_items([(seq, raw)])
                else:
                    rest.append(new_item(seq, raw, *rebuilt))
                    self.rebuilt += 1
        self.add(rest)
        return items + rest

    def confirmed(self) -> bool:
        """Whether every verdict assumed came, and held (each wait bounded by the deadline)."""
        return all(self.verdict_read(seq) is True for seq in self._assumed)

    def verdict_read(self, seq: int) -> bool | None:
        """The worker's verdict on the entry, waited for if it is owed; None: none came."""
        ahead, self._ahead = self._ahead, False
        try:
            return self.verdict(seq)
        finally:
            self._ahead = ahead

    def close(self) -> None:
        """Give the worker back (the answers not read are read and dropped)."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.back()

    def _failed(self) -> None:
        """The worker is gone: what it did not answer is left to the re-check."""
        worker, self._worker = self._worker, None
        self._sent.clear()
        self._owed.clear()
        if worker is not None:
            worker.close()


def decode(
    entries: Sequence[tuple[int, bytes]],
    *,
    deadline_s: float = verifier.DEADLINE_S_DEFAULT,
    ahead: bool = False,
) -> tuple[list[Item], DeviceSignatures]:
    """Each (seq, entry bytes) parsed and its code decoded (`read_items`), a slice at a time,
    each slice's device signatures sent to the worker as soon as it is decoded (each wait on
    it bounded by `deadline_s`; `ahead`: see `DeviceSignatures`). A started worker decodes the
    last `OFFLOAD_SHARE` of them meanwhile (`DeviceSignatures.offload`)."""
    items: list[Item] = []
    signatures = DeviceSignatures(deadline_s=deadline_s, ahead=ahead, expected=len(entries))
    try:
        split = len(entries) - int(len(entries) * OFFLOAD_SHARE)
        if split == len(entries) or not signatures.offload(entries[split:]):
            split = len(entries)
        starts = [0, *range(_FIRST_SLICE, split, _SLICE)]
        for start, end in zip(starts, [*starts[1:], split], strict=True):
            decoded = read_items(entries[start:end])
            signatures.add(decoded)
            items += decoded
        if split < len(entries):
            items += signatures.decoded(entries[split:])
    except BaseException:
        signatures.close()  # a worker lent is given back, whatever went wrong
        raise
    return items, signatures
