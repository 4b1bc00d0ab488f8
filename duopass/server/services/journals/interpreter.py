"""The interpreter set for a large batch while it settles, and set back when the last one ends.

The cycle collector is paused: a batch of 500 entries keeps thousands of new containers alive
until it is written (parsed entries, decoded codes, rows, leaves), so the collector would run its
older generations several times a batch over the whole heap, about a tenth of the batch's time,
to find nothing to free. Everything the batch makes is freed by reference counting when it ends;
cycles made meanwhile anywhere in the process wait until the collector runs again, one batch
later at most.

The thread switch interval is shortened (5 ms to `SWITCH_S`): the device signatures are verified
on a pool (`signatures`) while this thread decodes and settles, and a pool thread back from
libsodium needs the GIL for a moment to take its next signature. With the default interval it
waits up to 5 ms for it each time, so the pool verified little until the unit's thread stopped
to wait for a verdict; switching sooner keeps the other cores verifying.

Both are the process's: the first large batch to start sets them, the last to end sets back
what it found."""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["PAUSE_FROM", "SWITCH_S", "large_batch"]

PAUSE_FROM = 64
"""Entries from which a batch settles with the interpreter set so."""
SWITCH_S = 0.0001
"""The thread switch interval while a large batch settles: about one device signature's time."""


class _Found:
    """What the first large batch found, to set back; how many large batches are settling."""

    batches = 0
    collector = False
    interval = 0.005


_lock = threading.Lock()
_found = _Found()


@contextmanager
def large_batch(entries: int) -> Iterator[None]:
    """Run the block with the interpreter set for a large batch if `entries` is at least
    `PAUSE_FROM`."""
    if entries < PAUSE_FROM:
        yield
        return
    with _lock:
        if _found.batches == 0:
            _found.collector, _found.interval = gc.isenabled(), sys.getswitchinterval()
            gc.disable()
            sys.setswitchinterval(SWITCH_S)
        _found.batches += 1
    try:
        yield
    finally:
        with _lock:
            _found.batches -= 1
            if _found.batches == 0:
                sys.setswitchinterval(_found.interval)
                if _found.collector:
                    gc.enable()
