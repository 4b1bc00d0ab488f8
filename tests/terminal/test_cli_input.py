"""What the cashier types and feeds `duopass terminal run`, through the real command: a mistyped
amount is refused and is no scan, the next code is taken; image files that are missing or hold
no QR code are errors, not scans; the exit status says whether every input got a verdict; the
data directory is its owner's only."""

from __future__ import annotations

import json
import re
import stat

import pytest
from PIL import Image

from duopass.demo.netcut import Mode, Proxy
from duopass.qr import render_png
from tests.server.harness import Running, ready_wallet
from tests.terminal.conftest import cli, enrol_till, till_code

LOCAL_TIME = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} \S+"


@pytest.fixture
def till(server: Running, proxy: Proxy, tmp_path):
    code, _ = till_code(server.admin())
    data = tmp_path / "till"
    enrol_till(proxy, code, data)
    return data


def _journalled(data) -> int:
    """How many scans took a seq (entries are deleted once the server acknowledges them)."""
    return int(json.loads(cli("status", "--json", "--data-dir", str(data)).stdout)["last_seq"])


def test_a_mistyped_amount_is_refused_and_the_next_code_is_taken(server, till):
    wallet = ready_wallet(server.http, server.admin(), "ines", balance=100_000)
    typed = ["12.345", "-5", "99999999999", "abc", " 12.50 ", wallet.code()]
    done = cli("run", "--json", "--data-dir", str(till), stdin="\n".join(typed) + "\n")
    assert done.returncode == 1, done.stderr
    (verdict,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert verdict["ok"] and verdict["amount"] == 1250
    assert "not an amount: 12.345 (two decimals at most)" in done.stderr
    assert "not an amount: -5 (no sign" in done.stderr
    assert "not an amount: 99999999999 (at most 10000000.00)" in done.stderr
    assert "not an amount: abc (" in done.stderr
    assert "4 inputs not scanned" in done.stderr
    assert "ready" in done.stderr.splitlines()[0]
    assert _journalled(till) == 1


def test_a_fixed_price_is_typed_as_on_a_keypad_and_a_clean_run_exits_0(server, till):
    wallet = ready_wallet(server.http, server.admin(), "jon", balance=100_000)
    first = cli("run", "--json", "--amount", "12.50", "--data-dir", str(till), stdin=wallet.code())
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["amount"] == 1250
    mistyped = "12.345\n" + wallet.code() + "\n"
    second = cli("run", "--json", "--amount", "300", "--data-dir", str(till), stdin=mistyped)
    assert second.returncode == 1
    assert json.loads(second.stdout) | {"amount": 300, "ok": True} == json.loads(second.stdout)
    refused = cli("run", "--json", "--amount", "5,00", "--data-dir", str(till))
    assert refused.returncode == 2 and "not an amount: 5,00" in refused.stderr


def test_a_refused_scan_is_no_error_but_a_missing_or_empty_image_is(server, till, tmp_path):
    wallet = ready_wallet(server.http, server.admin(), "kim", balance=100_000)
    code = tmp_path / "code.png"
    code.write_bytes(render_png(wallet.code()))
    again = cli("run", "--json", "--amount", "150", "--data-dir", str(till), str(code), str(code))
    assert again.returncode == 0, again.stderr
    reasons = [json.loads(line)["reason"] for line in again.stdout.splitlines()]
    assert reasons == ["OK", "REPLAY"]
    blank = tmp_path / "blank.png"
    Image.new("L", (200, 200), 255).save(blank)
    missing = tmp_path / "nowhere.png"
    folder = tmp_path / "folder"
    folder.mkdir()
    args = [str(missing), str(blank), str(folder)]
    done = cli("run", "--amount", "150", "--data-dir", str(till), *args)
    assert done.returncode == 1
    assert done.stdout == ""
    assert f"no such file: {missing}" in done.stderr
    assert f"a folder, not an image: {folder}" in done.stderr
    assert f"no QR code in the image: {blank}" in done.stderr
    assert _journalled(till) == 2


def test_status_and_upload_speak_to_people(server, proxy, till):
    wallet = ready_wallet(server.http, server.admin(), "lea", balance=100_000)
    proxy.set(Mode.REFUSE)  # scanned offline: the entry waits for `upload`
    offline = cli("run", "--amount", "100", "--data-dir", str(till), stdin=wallet.code())
    assert offline.returncode == 0 and offline.stdout.startswith("OK offline"), offline.stderr
    proxy.set(Mode.FORWARD)
    status = cli("status", "--data-dir", str(till))
    assert status.returncode == 0, status.stderr
    assert re.search(rf"^link_since\s+{LOCAL_TIME}$", status.stdout, re.MULTILINE), status.stdout
    raw = json.loads(cli("status", "--json", "--data-dir", str(till)).stdout)
    assert isinstance(raw["link_since"], int)
    quiet = cli("upload", "--data-dir", str(till))
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == "" and quiet.stdout == "acked_seq 1, unsent 0\n"
    loud = cli("sync", "--verbose", "--data-dir", str(till))
    assert loud.returncode == 0 and "HTTP Request" in loud.stderr


def test_the_data_directory_is_its_owners_only(till):
    assert stat.S_IMODE(till.stat().st_mode) == 0o700
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in till.iterdir()}
    assert {"terminal.db", "terminal.jwk"} <= set(modes)
    assert set(modes.values()) == {0o600}, modes
