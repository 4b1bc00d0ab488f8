"""The benchmarks still run (in their quick form); they print ratios and assert nothing on time."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module",
    [
        "bench.verify",
        "bench.codegen",
        "bench.online",
        "bench.checkin",
        "bench.reissue",
        "bench.journal",
        "bench.fallback",
        "bench.memory",
    ],
)
def test_benchmark_runs(module):
    done = subprocess.run(
        [sys.executable, "-m", module, "--quick"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "RATIO" in done.stdout
