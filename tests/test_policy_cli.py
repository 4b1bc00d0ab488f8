"""`duopass policy check`: a policy file loaded as the server would, its version, hash and rules
printed, or where it is wrong (FILE:LINE:COLUMN) and exit 1."""

from __future__ import annotations

import hashlib

from typer.testing import CliRunner

from duopass.cli.app import app
from duopass.policy import DEFAULT_POLICY


def test_check_prints_the_packaged_policy():
    done = CliRunner().invoke(app, ["policy", "check", str(DEFAULT_POLICY)])
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert lines[0] == "version 2026-12-06.4"
    assert lines[1] == f"sha256  {hashlib.sha256(DEFAULT_POLICY.read_bytes()).hexdigest()}"
    assert lines[2] == "  1. deny_after_event: deny when time.to_end_s <= 0"
    assert "  8. step_up_near_doors_off_site: step_up [totp, email_otp, passkey] when " \
        'time.to_doors_s < 7200 && place.network == "outside"' in lines  # fmt: skip
    assert lines[-1] == " 10. allow_default: allow when true"


def test_check_names_the_line_and_column_of_a_mistake(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(DEFAULT_POLICY.read_text().replace("used.entries > 0", "used.entriez > 0"))
    done = CliRunner().invoke(app, ["policy", "check", str(path)])
    assert done.exit_code == 1
    assert f"{path}:44:14: rule step_up_partly_used: used has no field 'entriez'" in done.output
    missing = CliRunner().invoke(app, ["policy", "check", str(tmp_path / "none.toml")])
    assert missing.exit_code == 2
