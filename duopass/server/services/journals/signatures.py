"""A large batch's device signatures (§3 check 14), verified on the other cores ahead of the
settling that needs them: PyNaCl's calls into libsodium go through cffi, which releases the GIL,
so a pool verifies while the unit's own thread decodes the rest of the batch and settles the
entries before.

The batch is decoded a slice at a time (`decode`) and each slice's signatures go to the pool as
soon as it is decoded, so verifying overlaps the decoding as well as the settling.

Only the work moves: the re-check (`recheck`) still takes check 14's verdict at its place in
the §3 order, under the same key (the credential's `cnf`) and over the same bytes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache

from duopass.protocol.keys import verify_signature
from duopass.server.services.journals.lookups import Item, read_items

__all__ = ["PARALLEL_FROM", "DeviceSignatures", "decode"]

PARALLEL_FROM = 64
"""Entries with a device signature from which a batch verifies them on the pool; a smaller
batch leaves them to the re-check, one by one."""
_CHUNK = 25
"""Signatures per task: the first results are ready soon, and the cores share the rest."""
_SLICE = 50
"""Entries decoded before their signatures go to the pool."""

_Check = tuple[int, bytes, bytes, bytes]
"""(seq, device key, signed bytes, signature)."""


@cache
def _pool() -> ThreadPoolExecutor:
    """One pool per process, a thread per core, started when a large batch first comes."""
    return ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="device-signatures")


def _verify(checks: list[_Check]) -> dict[int, bool]:
    return {seq: verify_signature(key, signed, sig) for seq, key, signed, sig in checks}


class DeviceSignatures:
    """Check 14's verdict of each entry of a batch, by seq, computed ahead on the pool. Items
    are added as they are decoded; the pool starts once `PARALLEL_FROM` signatures wait."""

    def __init__(self, items: Sequence[Item] = ()) -> None:
        self._waiting: list[_Check] = []
        self._pooled = False
        self._tasks: dict[int, Future[dict[int, bool]]] = {}
        self._done: dict[int, bool] = {}
        """Verdicts of the tasks already waited for (one wait a task, not one an entry)."""
        self.add(items)

    def add(self, items: Sequence[Item]) -> None:
        """Verify the device signatures of `items` ahead (once enough have come)."""
        for item in items:
            code = item.code
            if code is None or code.dynamic is None:
                continue
            key = code.credential.claims.device_key
            assert key is not None, "the decoder refuses an L2 without cnf"
            self._waiting.append((item.seq, key, code.dynamic.signed, code.dynamic.signature))
        if self._pooled or len(self._waiting) >= PARALLEL_FROM:
            self._pooled = True
            checks, self._waiting = self._waiting, []
            for start in range(0, len(checks), _CHUNK):
                chunk = checks[start : start + _CHUNK]
                task = _pool().submit(_verify, chunk)
                self._tasks.update((check[0], task) for check in chunk)

    def verdict(self, seq: int) -> bool | None:
        """Whether the entry's device signature verified; None: not verified ahead."""
        done = self._done.get(seq)
        if done is not None:
            return done
        task = self._tasks.get(seq)
        if task is None:
            return None
        self._done.update(task.result())
        return self._done[seq]


def decode(entries: Sequence[tuple[int, bytes]]) -> tuple[list[Item], DeviceSignatures]:
    """Each (seq, entry bytes) parsed and its code decoded (`read_items`), a slice at a time,
    each slice's device signatures sent to the pool as soon as it is decoded."""
    items: list[Item] = []
    signatures = DeviceSignatures()
    for start in range(0, len(entries), _SLICE):
        decoded = read_items(entries[start : start + _SLICE])
        signatures.add(decoded)
        items += decoded
    return items, signatures
