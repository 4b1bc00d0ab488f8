"""The decoder fuzz run in CI form: 100,000 seeded inputs, none may raise (see fuzz/dp1.py)."""

from __future__ import annotations

from fuzz.dp1 import run


def test_one_hundred_thousand_fuzzed_inputs_never_raise():
    seen = run(100_000, seed=20261123)
    assert sum(seen.values()) == 100_000
    # The three mutation depths reach the deep checks, not just the text layer.
    for reason in ("MALFORMED", "BAD_SIGNATURE", "BAD_DEVICE_SIGNATURE", "OK", "REPLAY", "FORMAT"):
        assert seen[reason] > 0, reason
