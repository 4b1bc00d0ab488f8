"""`duopass demo`, the lunch rush, end to end as a user runs it (self-contained): a server of its
own, wallets, tills and gates behind a proxy the demo cuts, a cloned phone. It exits 0 only when
every payment the tills accepted was credited once, the books sum to zero and the clone was
caught; the table must say so too. `duopass demo --doors`, a concert's doors, likewise: it
exits 0 only when no ticket got in more often than it allows, the lost phone's old code was
refused where the gate knew and flagged where it could not, and the ledger audits."""

from __future__ import annotations

import subprocess
import sys

RUSH = ("demo", "--wallets", "12", "--online-s", "5", "--offline-s", "65")
"""`duopass`'s arguments for the lunch rush played here (the offline cut cannot be under 65 s);
tests/test_readme.py counts on this test for the README's `make demo`."""
DOORS = ("demo", "--doors", "--attendees", "40")
"""Likewise the doors, for the README's `duopass demo --doors`."""


def test_the_lunch_rush_reconciles_and_catches_the_clone(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "duopass", *RUSH, "--work-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env={"COLUMNS": "160", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    table = done.stdout
    assert "scans decided offline" in table and "clone alert" in table
    assert "WRONG" not in table


def test_the_doors_admit_each_ticket_at_most_its_entries_and_refuse_or_flag_the_lost_phone(
    tmp_path,
):
    done = subprocess.run(
        [sys.executable, "-m", "duopass", *DOORS, "--work-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"COLUMNS": "160", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    table = done.stdout
    for check in (
        "every attendee in at most their entries",
        "lost phone reissued at the door",
        "old code, cut gate, bundle from before",
        "old code, cut gate, after its bundle",
        "journals reconciled",
        "ledger verified",
    ):
        assert check in table, table
    assert "WRONG" not in table
