"""The cycle collector paused while a large batch settles: a batch of 500 entries keeps
thousands of new containers alive until it is written (parsed entries, decoded codes, rows,
leaves), so the collector would run its older generations several times a batch over the
whole heap, about a tenth of the batch's time, to find nothing to free. Everything the
batch makes is freed by reference counting when it ends; cycles made meanwhile anywhere in
the process wait until the collector runs again, one batch later at most.

The collector is one for the process: the first large batch to start pauses it, the last to
end lets it run again, and only if it ran when the first one started."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["PAUSE_FROM", "paused"]

PAUSE_FROM = 64
"""Entries from which a batch settles with the collector paused."""

_lock = threading.Lock()
_state = {"batches": 0, "was_enabled": False}


@contextmanager
def paused(entries: int) -> Iterator[None]:
    """Run the block with the cycle collector paused if `entries` is at least `PAUSE_FROM`."""
    if entries < PAUSE_FROM:
        yield
        return
    with _lock:
        if _state["batches"] == 0:
            _state["was_enabled"] = gc.isenabled()
            gc.disable()
        _state["batches"] += 1
    try:
        yield
    finally:
        with _lock:
            _state["batches"] -= 1
            if _state["batches"] == 0 and _state["was_enabled"]:
                gc.enable()
