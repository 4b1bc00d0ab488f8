"""Timing helpers for the benchmarks: interleaved rounds, best-of, ratios within one run.

Machines here are shared and noisy, so every figure is a ratio against a baseline measured in the
same process, in alternating rounds, taking each side's best round.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence


def per_item(run: Callable[[], None], items: int) -> float:
    """Seconds per item of one call of `run`, which handles `items` items."""
    started = time.perf_counter()
    run()
    return (time.perf_counter() - started) / items


def best_of(candidates: dict[str, Callable[[], None]], items: int, rounds: int) -> dict[str, float]:
    """Each candidate's best seconds per item over `rounds` interleaved rounds."""
    best = dict.fromkeys(candidates, float("inf"))
    for _ in range(rounds):
        for name, run in candidates.items():
            best[name] = min(best[name], per_item(run, items))
    return best


def us(seconds: float) -> str:
    return f"{seconds * 1e6:8.1f} us"


def parser(doc: str) -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(description=doc.splitlines()[0])
    parse.add_argument("--quick", action="store_true", help="a few items, for the test suite")
    return parse


def table(rows: Sequence[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
