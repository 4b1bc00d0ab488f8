"""`duopass verify` read without Typer (`cli.verify_run`) does what the Typer command does: the
same lines, stderr and exit status for each command line, and Typer for anything not plain."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from duopass.cli.verify_run import Options, parse_plain
from duopass.protocol.verify import Mode
from tests.vectors import load_json_vectors

VECTORS = dict(load_json_vectors("dp1"))
PURSE = VECTORS["purse-ok.json"]
CODE = PURSE["codes"][0]
NOW = str(PURSE["now"])
# the Typer command alone, as `duopass.cli.main` ran it before the plain reading
THROUGH_TYPER = "import sys; from duopass.cli.verify import verify_alone; verify_alone()"


def _both(args: list[str]) -> tuple[subprocess.CompletedProcess[str], ...]:
    runs = ([sys.executable, "-m", "duopass"], [sys.executable, "-c", THROUGH_TYPER])
    return tuple(
        subprocess.run([*run, "verify", *args], capture_output=True, text=True, timeout=60)
        for run in runs
    )


@pytest.fixture
def trust(tmp_path):
    path = tmp_path / "trust.json"
    path.write_text(json.dumps(PURSE["trust"]))
    return str(path)


PAY = ["--mode", "pay", "--amount", "350", "--currency", "CNY"]
LINES = [
    [*PAY, CODE, "HC1:x", CODE],  # accepted, FORMAT, REPLAY
    ["--mode=pay", "--amount=350", "--currency=CNY", CODE],
    [CODE, "--mode", "identity", "DP1:%%%"],  # options between the codes
    ["--mode", "identity", "--", CODE, "--mode"],  # after `--` everything is a code
    ["--mode", "pay", "--currency", "CNY", CODE],  # no amount: a usage error
    ["--mode", "pay", "--amount", "350", CODE],  # no currency
    ["--mode", "entry", CODE],  # no event
]
NOT_PLAIN = [  # Typer says what is wrong
    ["--mode", "pay", "--amount", "0", "--currency", "CNY", CODE],
    ["--mode", "identity", "--scope", "-x", CODE],
    ["--mode", "identity", "--mode", "pay", CODE],
    ["--mode", "identity"],  # no code
    ["--mode", "Identity", CODE],
    ["--help"],
]


@pytest.mark.parametrize("extra", LINES + NOT_PLAIN)
def test_the_plain_reading_and_typer_answer_alike(trust, extra):
    args = ["--trust", trust, "--now", NOW, *extra]
    assert (parse_plain(args) is None) is (extra in NOT_PLAIN)
    plain, typer = _both(args)
    assert (plain.returncode, plain.stdout, plain.stderr) == (
        typer.returncode,
        typer.stdout,
        typer.stderr,
    )
    assert plain.returncode in (0, 1, 2)


def test_a_missing_or_refused_trust_file_is_the_same_usage_error(tmp_path):
    refused = tmp_path / "refused.json"
    refused.write_text("not json")
    for path in (tmp_path / "absent.json", refused):
        plain, typer = _both(["--trust", str(path), "--now", NOW, "--mode", "identity", CODE])
        assert (plain.returncode, plain.stdout, plain.stderr) == (2, "", typer.stderr)
        assert typer.returncode == 2 and str(path) in plain.stderr


def test_the_plain_reading_of_every_option():
    args = ["--trust", "t.json", "--now=5", "A", "--mode", "pay", "--amount", "07", "B"]
    args += ["--currency", "CNY", "--scope=s", "--event", "e", "--", "-C", "--now"]
    assert parse_plain(args) == Options(
        codes=["A", "B", "-C", "--now"],
        trust=Path("t.json"),
        now=5,
        mode=Mode.PAY,
        amount=7,
        currency="CNY",
        scope="s",
        event="e",
    )


BASE = ["--trust", "t.json", "--now", "5", "--mode", "identity"]


@pytest.mark.parametrize(
    "args",
    [
        [*BASE],  # no code
        [*BASE[2:], "A"],  # no trust
        [*BASE, "--now", "6", "A"],  # an option twice
        [*BASE, "--amount", "0", "A"],  # a value `whole` refuses
        [*BASE, "--amount", "+1", "A"],
        [*BASE[:3], "\u0665", *BASE[4:], "A"],
        [*BASE, "--currency", "", "A"],  # an empty value
        [*BASE, "--scope=", "A"],
        [*BASE, "--scope", "-s", "A"],  # a value like an option
        [*BASE, "--scope"],  # no value
        [*BASE, "-", "A"],
        [*BASE, "--scop", "s", "A"],  # no such option
        [*BASE, "-h", "A"],
        [*BASE, "--help"],
        [*BASE, "caf\u00e9"],  # not ASCII
        [*BASE[:5], "PAY", "A"],  # no such mode
    ],
)
def test_anything_not_plain_is_left_to_typer(args):
    assert parse_plain(args) is None


def test_a_trust_file_that_exists_but_cannot_be_read_is_left_to_typer(tmp_path, monkeypatch):
    """Click's `Path` refuses a path that exists and cannot be read, with its own message; a
    missing one is `prepare`'s to refuse (the same usage error either way)."""
    present = tmp_path / "t.json"
    present.write_text("{}")
    args = ["--trust", str(present), "--now", "5", "--mode", "identity", "A"]
    assert parse_plain(args) is not None
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    assert parse_plain(args) is None
    missing = ["--trust", str(tmp_path / "none.json"), *args[2:]]
    assert parse_plain(missing) is not None
