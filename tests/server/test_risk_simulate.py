"""`duopass risk simulate`: a seed's labelled stream played through a real server (SQLite, the
test clock, most honest holders behind the campus NAT's one 127.x address, every other party
from its own) gives the same figures every time, the campus network allowlisted or not. Seed 7 at
a small size is held here: the goals of the families the engine catches today, and today's
figures of those it does not catch yet (they rise as issue 15's other parts land: a change
here is a change of what the engine does, to say in the commit). The README's figures come from
another seed."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from duopass.cli.app import app
from duopass.risk.simulate import GOALS

CAUGHT_TODAY = (
    "cloned_keys",
    "credential_stuffing",
    "misreporting_terminal",  # at dinner: 1.5 x the price above the canteen's ceiling
    "reissue_farming",
    "ticket_tout",
)


def test_seed_7_gives_the_figures_the_policy_achieves_today():
    command = ["risk", "simulate", "--seed", "7", "--holders", "16", "--incidents", "1", "--json"]
    done = CliRunner().invoke(app, command)
    assert done.exit_code == 0, done.output
    figures = json.loads(done.stdout)
    families = figures["families"]
    assert figures["steps"] == 225
    for name in CAUGHT_TODAY:
        assert families[name]["recall"] >= GOALS["recall"], (name, families[name])
        assert families[name]["precision"] == 1.0, (name, families[name])
    stolen = families["stolen_phone"]
    # uncatchable as a phone, but its first payment (15.00 to 40.00 at breakfast) is above the
    # canteen's breakfast ceiling (9.00): flagged at the scan, as the owner's would be
    assert not stolen["catchable"] and stolen["caught"] == 1
    honest = figures["honest"]
    assert (honest["friction"], honest["requests"], honest["holders"]) == (0, 59, 16)
    assert honest["request_share"] <= GOALS["friction"]
    reissues = figures["reissues"]
    assert (reissues["without_person"], reissues["requests"]) == (9, 11)  # the farm reviewed
    assert reissues["share"] >= GOALS["without_person"]


def test_the_table_names_the_uncatchable_family():
    command = ["risk", "simulate", "--seed", "7", "--holders", "4", "--incidents", "1"]
    command.append("--no-campus-allowlist")
    done = CliRunner().invoke(app, command)
    assert done.exit_code == 0, done.output
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line}
    assert "uncatchable by construction" in lines["stolen_phone"]
    assert lines["credential_stuffing"].split()[1:3] == ["1/1", "1.00"]
    assert "honest requests with friction" in done.stdout
    assert "campus network 127.10.0.0/16 not allowlisted" in done.stdout
