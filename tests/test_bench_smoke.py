"""The benchmarks still run (in their quick form); they print ratios and assert nothing on time.
Every command of `make bench` runs here (tests/test_readme.py counts on it for the README's
`make bench`), each its own test so that the workers share them."""

from __future__ import annotations

import subprocess
import sys

import pytest

BENCHMARKS = (
    ("bench.verify",),
    ("bench.codegen",),
    ("bench.online",),
    ("bench.online", "--postgres", "--workers", "2"),
    ("bench.threads",),
    ("bench.checkin",),
    ("bench.checkin", "--postgres"),
    ("bench.reissue",),
    ("bench.reissue", "--postgres"),
    ("bench.journal",),
    ("bench.fallback",),
    ("bench.memory",),
    ("bench.anomaly",),
    ("bench.risk",),
)
"""`python -m`'s arguments, as `make bench` gives them."""


@pytest.mark.parametrize("benchmark", BENCHMARKS, ids=" ".join)
def test_benchmark_runs(benchmark):
    done = subprocess.run(
        [sys.executable, "-m", *benchmark, "--quick"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "RATIO" in done.stdout


def test_the_anomaly_benchmark_runs_the_rules_without_river():
    """river is no dependency of duopass: without it the rules are measured alone."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.anomaly", "--quick", "--rules-only"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "the rules alone" in done.stdout and "half-space" not in done.stdout
    assert "RATIO anomaly_rules_min_recall" in done.stdout


def test_the_load_takes_a_number_of_connections():
    """`--connections N`: the generator's connections at once, for a sweep; out of range refused."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.online", "--quick", "--connections", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "over 2 connections" in done.stdout and "cores used" in done.stdout
    refused = subprocess.run(
        [sys.executable, "-m", "bench.checkin", "--quick", "--connections", "0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert refused.returncode == 2 and "--connections must be 1 to" in refused.stderr
