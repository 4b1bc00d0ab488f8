"""The `duopass` command as a terminal vendor and a person use it: exit codes, streams, images."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from PIL import Image

from duopass.qr import Writer, render_png
from tests.vectors import load_json_vectors

VECTORS = dict(load_json_vectors("dp1"))
PURSE = VECTORS["purse-ok.json"]
CODE = PURSE["codes"][0]


def duopass(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "duopass", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


@pytest.fixture
def trust(tmp_path):
    path = tmp_path / "trust.json"
    path.write_text(json.dumps(PURSE["trust"]))
    return path


def _verify(trust, *extra: str):
    return duopass("verify", "--trust", str(trust), "--now", str(PURSE["now"]), *extra)


@pytest.mark.parametrize(
    "extra",
    [
        ["--mode", "pay", "--currency", "CNY", CODE],  # no amount
        ["--mode", "pay", "--amount", "0", "--currency", "CNY", CODE],
        ["--mode", "pay", "--amount", "350", CODE],  # no currency
        ["--mode", "entry", CODE],  # no event
        ["--mode", "refund", CODE],
        ["--mode", "pay", "--amount", "3.5", "--currency", "CNY", CODE],
        ["--mode", "identity"],  # no code
        # a number is ASCII digits: int() would read each of these as 350
        ["--mode", "pay", "--amount", "\u0663\u0665\u0660", "--currency", "CNY", CODE],
        ["--mode", "pay", "--amount", "\uff13\uff15\uff10", "--currency", "CNY", CODE],
        ["--mode", "pay", "--amount", "3_50", "--currency", "CNY", CODE],
        ["--mode", "pay", "--amount", " 350", "--currency", "CNY", CODE],
        ["--mode", "pay", "--amount", "+350", "--currency", "CNY", CODE],
    ],
)
def test_usage_errors_exit_2_with_nothing_on_stdout(trust, extra):
    done = _verify(trust, *extra)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr


@pytest.mark.parametrize("now", ["\u0661" + "7" * 9, "1_700_000_000", "-1", "\u00b9"])
def test_a_clock_that_is_not_ascii_digits_is_a_usage_error(trust, now):
    done = duopass("verify", "--trust", str(trust), "--now", now, "--mode", "identity", CODE)
    assert (done.returncode, done.stdout) == (2, "")
    assert "--now" in done.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "\u0661.5", "1_0", "1e3", "-1"])
def test_seconds_on_the_command_line_are_ascii_digits(tmp_path, value):
    done = duopass("terminal", "run", "--data-dir", str(tmp_path), "--probe-s", value)
    assert done.returncode == 2
    assert "Invalid value for '--probe-s'" in done.stderr


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        json.dumps({**PURSE["trust"], "issuers": [{**PURSE["trust"]["issuers"][0], "iss": "a b"}]}),
        json.dumps({k: v for k, v in PURSE["trust"].items() if k != "seq"}),
    ],
)
def test_refused_trust_store_is_a_usage_error(tmp_path, content):
    path = tmp_path / "trust.json"
    path.write_text(content)
    done = _verify(path, "--mode", "identity", CODE)
    assert (done.returncode, done.stdout) == (2, "")
    assert "trust store refused" in done.stderr


def test_missing_trust_file_is_a_usage_error(tmp_path):
    done = _verify(tmp_path / "absent.json", "--mode", "identity", CODE)
    assert (done.returncode, done.stdout) == (2, "")


def test_verdict_lines_carry_the_decoded_fields(trust):
    done = _verify(trust, "--mode", "pay", "--amount", "350", "--currency", "CNY", CODE, "HC1:x")
    first, second = (json.loads(line) for line in done.stdout.splitlines())
    assert done.returncode == 1
    assert first == {
        "ok": True,
        "reason": "OK",
        "iss": "demo-univ",
        "sub": "h-7f3a9c",
        "cti": "AQEBAQEBAQEBAQEB",
        "ctr": 0,
        "kind": "purse",
        "gen": 0,
    }
    assert second == {"ok": False, "reason": "FORMAT"}


def test_static_code_has_null_counter(tmp_path):
    vector = VECTORS["static-ticket.json"]
    path = tmp_path / "trust.json"
    path.write_text(json.dumps(vector["trust"]))
    done = duopass(
        "verify",
        "--trust",
        str(path),
        "--now",
        str(vector["now"]),
        "--mode",
        "entry",
        "--event",
        vector["event"],
        "--scope",
        vector["scope"],
        vector["codes"][0],
    )
    assert json.loads(done.stdout)["ctr"] is None
    assert done.returncode == 0


@pytest.mark.parametrize("writer", list(Writer))
def test_codes_from_png_and_jpeg_images(trust, tmp_path, writer):
    png = tmp_path / "code.png"
    png.write_bytes(render_png(CODE, writer=writer))
    jpeg = tmp_path / "code.jpg"
    Image.open(io.BytesIO(png.read_bytes())).convert("RGB").save(jpeg, quality=85)
    done = _verify(trust, "--mode", "identity", str(png), str(jpeg))
    assert [json.loads(line)["reason"] for line in done.stdout.splitlines()] == ["OK", "OK"]


def test_image_without_a_qr_code_and_a_corrupt_file_are_format(trust, tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("L", (200, 200), 255).save(blank)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    done = _verify(trust, "--mode", "identity", str(blank), str(corrupt))
    assert [json.loads(line)["reason"] for line in done.stdout.splitlines()] == ["FORMAT", "FORMAT"]
    assert done.returncode == 1


def test_decode_prints_the_contents():
    done = duopass("decode", CODE)
    doc = json.loads(done.stdout)
    assert done.returncode == 0
    assert doc["l1"]["claims"]["cur"] == "CNY"
    assert doc["l1"]["claims"]["cnf"] == "F8t5-ytBIPKx7GXkGY1uCLKOgT_rAeSkAIObheGAgM4"
    assert doc["l2"]["ctr"] == 0


def test_decode_of_garbage_says_why():
    done = duopass("decode", "DP1:ZZZ")
    assert done.returncode == 1
    assert json.loads(done.stdout)["reason"] == "MALFORMED"


def test_keygen_writes_a_private_file_once(tmp_path):
    key = tmp_path / "issuer.jwk"
    done = duopass("keygen", str(key))
    assert done.returncode == 0
    assert "d" not in json.loads(done.stdout)
    assert key.stat().st_mode & 0o777 == 0o600
    assert "d" in json.loads(key.read_text())
    assert duopass("keygen", str(key)).returncode == 2


def test_demo_runs_and_its_suggested_command_works(tmp_path):
    done = duopass("tour", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "REPLAY" in done.stdout
    assert "ALREADY_USED" in done.stdout
    line = next(line for line in done.stdout.splitlines() if "duopass verify" in line)
    args = line.split("duopass", 1)[1].split()
    again = duopass(*args)
    assert (again.returncode, json.loads(again.stdout)["reason"]) == (0, "OK")


def test_a_trust_store_with_a_huge_number_is_a_usage_error(tmp_path):
    path = tmp_path / "trust.json"
    path.write_text(json.dumps(PURSE["trust"]).replace('"seq": 7', '"seq": ' + "9" * 5000))
    done = _verify(path, "--mode", "identity", CODE)
    assert (done.returncode, done.stdout) == (2, "")


def test_settlement_reads_a_database_that_exists_and_writes_nothing(tmp_path):
    missing = duopass("settlement", "2026-01-01", "--data-dir", str(tmp_path / "none"))
    assert missing.returncode == 2 and missing.stdout == ""
    assert "no database to read" in missing.stderr and "Traceback" not in missing.stderr
    assert not (tmp_path / "none").exists()
