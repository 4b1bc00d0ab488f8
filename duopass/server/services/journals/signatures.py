"""A large batch's device signatures (§3 check 14), verified in a worker process (`verifier`)
ahead of the settling that needs them, while the unit's own thread decodes the rest of the batch
and settles the entries before.

The batch is decoded a slice at a time (`decode`) and each slice's signatures go to the worker
as soon as it is decoded, so verifying overlaps the decoding as well as the settling.

Only the work moves: the re-check (`recheck`) still takes check 14's verdict at its place in
the §3 order, under the same key (the credential's `cnf`) and over the same bytes; an entry the
worker did not answer for (none was free, it failed, or it missed its deadline and was killed)
is verified by the re-check itself."""

from __future__ import annotations

from collections.abc import Sequence

from duopass.server.services.journals import verifier
from duopass.server.services.journals.lookups import Item, read_items

__all__ = ["PARALLEL_FROM", "DeviceSignatures", "decode"]

PARALLEL_FROM = 64
"""Entries with a device signature from which a batch verifies them in a worker; a smaller
batch leaves them to the re-check, one by one."""
_SLICE = 50
"""Entries decoded before their signatures go to the worker."""


class DeviceSignatures:
    """Check 14's verdict of each entry of a batch, by seq, computed ahead in a worker. Items
    are added as they are decoded; the worker is asked once `PARALLEL_FROM` signatures wait.
    `close` gives the worker back (a batch's unit ends with it, however it ends)."""

    def __init__(
        self, items: Sequence[Item] = (), *, deadline_s: float = verifier.DEADLINE_S_DEFAULT
    ) -> None:
        self._deadline_s = deadline_s
        """How long the worker may take to take a request or answer one (`verifier.lend`)."""
        self._waiting: list[tuple[int, tuple[bytes, bytes, bytes]]] = []
        self._worker: verifier.Worker | None = None
        self._asked = False
        self._sent: list[list[int]] = []
        """The seqs of each request whose answers are not read yet, in order."""
        self._owed: set[int] = set()
        """Those seqs together (an entry without a device signature waits for nothing)."""
        self._done: dict[int, bool] = {}
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
        """Whether the entry's device signature verified; None: not verified ahead."""
        while seq in self._owed and self._worker is not None:
            seqs = self._sent.pop(0)
            self._owed.difference_update(seqs)
            try:
                self._done.update(zip(seqs, self._worker.receive(), strict=True))
            except OSError:
                self._failed()
        return self._done.get(seq)

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
    entries: Sequence[tuple[int, bytes]], *, deadline_s: float = verifier.DEADLINE_S_DEFAULT
) -> tuple[list[Item], DeviceSignatures]:
    """Each (seq, entry bytes) parsed and its code decoded (`read_items`), a slice at a time,
    each slice's device signatures sent to the worker as soon as it is decoded (each wait on
    it bounded by `deadline_s`)."""
    items: list[Item] = []
    signatures = DeviceSignatures(deadline_s=deadline_s)
    try:
        for start in range(0, len(entries), _SLICE):
            decoded = read_items(entries[start : start + _SLICE])
            signatures.add(decoded)
            items += decoded
    except BaseException:
        signatures.close()  # a worker lent is given back, whatever went wrong
        raise
    return items, signatures
