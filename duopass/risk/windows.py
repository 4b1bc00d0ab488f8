"""The sliding windows of the risk features and their bucket arithmetic: which bucket an
observation falls in, which buckets a window counts at a given time, and when a bucket expires.

Each window is counted from buckets of its own width: the minute from 1-second buckets, the hour
from 1-minute buckets, the day from 1-hour buckets (60, 60 and 24 buckets). At time `now` a
window of span S and bucket width b counts the buckets that start after `now - S`: every event
at a time t with

    bucket_start(now) - S + b  <=  t  <=  now

and no other. So a count is exact to its bucket width: it holds every event of the last
S - b + 1 seconds (the minute: the last 60 seconds exactly, to the second) and none older than
S seconds; at most the events of the oldest b - 1 seconds of the span are already left out.
Times are whole Unix seconds. A bucket is no longer counted from `start + S` on: it expires then.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["RETENTION_S", "Window", "bucket_start", "counted", "counted_since", "expires_at"]


class Window(Enum):
    """A sliding window: its label (in feature names), span and bucket width, in seconds."""

    MINUTE = ("1m", 60, 1)
    HOUR = ("1h", 3600, 60)
    DAY = ("1d", 86400, 3600)

    def __init__(self, label: str, span_s: int, bucket_s: int) -> None:
        assert span_s % bucket_s == 0
        self.label = label
        self.span_s = span_s
        self.bucket_s = bucket_s

    @classmethod
    def of_span(cls, span_s: int) -> Window:
        """The window of `span_s` (as the stores keep it)."""
        for window in cls:
            if window.span_s == span_s:
                return window
        raise ValueError(f"no window spans {span_s} s")


RETENTION_S = Window.DAY.span_s
"""The longest anything is remembered: last-seen times and distinct pairs expire after a day."""


def bucket_start(window: Window, at: int) -> int:
    """The start of the bucket of `window` an event at `at` is counted in."""
    return at - at % window.bucket_s


def counted(window: Window, start: int, now: int) -> bool:
    """Whether the bucket starting at `start` is counted in `window` at `now`."""
    return now - window.span_s < start <= now


def counted_since(window: Window, now: int) -> int:
    """The earliest event time `window` counts at `now`."""
    return bucket_start(window, now) - window.span_s + window.bucket_s


def expires_at(window: Window, start: int) -> int:
    """The first time the bucket starting at `start` is no longer counted."""
    return start + window.span_s
