"""The shared DP1 vectors: every session through the library and through `duopass verify`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from duopass.protocol import (
    MemoryStore,
    Mode,
    SigningKey,
    TerminalConfig,
    Verifier,
    make_code,
    mint_credential,
    parse_trust_store,
)
from duopass.protocol.cbor import loads
from duopass.protocol.claims import encode_claims, parse_claims
from duopass.protocol.encoding import b45decode
from duopass.qr import Writer, render_png
from tests.vectors import load_json_vectors

SESSIONS = [vector for name, vector in load_json_vectors("dp1") if "codes" in vector]
MINT = dict(load_json_vectors("dp1"))["mint.json"]
DUOPASS = [sys.executable, "-m", "duopass"]


def test_every_session_file_is_loaded():
    assert len(SESSIONS) >= 40


@pytest.mark.parametrize("vector", SESSIONS, ids=lambda v: v["name"])
def test_session_through_the_library(vector):
    store = parse_trust_store(json.dumps(vector["trust"]).encode())
    config = TerminalConfig(
        mode=Mode(vector["mode"]),
        currency=vector["currency"],
        venue=vector["scope"],
        event=vector["event"],
    )
    verifier = Verifier(store, config, MemoryStore())
    got = [
        verifier.scan(code, now=vector["now"], amount=vector["amount"]) for code in vector["codes"]
    ]
    assert [verdict.reason.value for verdict in got] == vector["expect"]
    batch = Verifier(store, config, MemoryStore())  # the signatures first, then the checks
    assert batch.scan_all(vector["codes"], now=vector["now"], amount=vector["amount"]) == got


def _command(vector, trust: Path, codes: list[str]) -> list[str]:
    cmd = [*DUOPASS, "verify", "--trust", str(trust), "--now", str(vector["now"])]
    cmd += ["--mode", vector["mode"]]
    for option in ("amount", "currency", "scope", "event"):
        if vector[option] is not None:
            cmd += [f"--{option}", str(vector[option])]
    return [*cmd, "--", *codes]


@pytest.mark.parametrize("vector", SESSIONS, ids=lambda v: v["name"])
def test_session_through_the_command(vector, tmp_path):
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps(vector["trust"]))
    done = subprocess.run(
        _command(vector, trust, vector["codes"]), capture_output=True, text=True, timeout=60
    )
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["reason"] for line in lines] == vector["expect"]
    assert [line["ok"] for line in lines] == [e == "OK" for e in vector["expect"]]
    assert done.returncode == (0 if all(e == "OK" for e in vector["expect"]) else 1)
    for line in lines:
        if line["reason"] not in ("FORMAT", "MALFORMED"):
            assert {"iss", "sub", "cti", "ctr"} <= line.keys()


IMAGE_SESSIONS = [
    v for v in SESSIONS if all(c.startswith("DP1:") and len(c) > 60 for c in v["codes"])
]


@pytest.mark.parametrize("writer", list(Writer))
@pytest.mark.parametrize("vector", IMAGE_SESSIONS[::4], ids=lambda v: v["name"])
def test_session_from_qr_images(vector, writer, tmp_path):
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps(vector["trust"]))
    paths = []
    for i, code in enumerate(vector["codes"]):
        path = tmp_path / f"code-{i}.png"
        path.write_bytes(render_png(code, writer=writer))
        paths.append(str(path))
    done = subprocess.run(
        _command(vector, trust, paths), capture_output=True, text=True, timeout=60
    )
    assert [json.loads(line)["reason"] for line in done.stdout.splitlines()] == vector["expect"]


def test_mint_is_byte_exact():
    issuer = SigningKey(bytes.fromhex(MINT["issuer_seed_hex"]))
    device = SigningKey(bytes.fromhex(MINT["device_seed_hex"]))
    assert issuer.public.hex() == MINT["issuer_public_hex"]
    assert device.public.hex() == MINT["device_public_hex"]
    assert issuer.kid.hex() == MINT["issuer_kid_hex"]
    claims = parse_claims(loads(bytes.fromhex(MINT["l1_payload_hex"])))
    assert encode_claims(claims).hex() == MINT["l1_payload_hex"]
    l1 = mint_credential(claims, issuer)
    assert l1.hex() == MINT["l1_hex"]
    text = make_code(l1, device, ctr=MINT["ctr"], ts=MINT["ts"])
    assert text == MINT["text"]
    assert loads(b45decode(text[4:]))[1] == loads(bytes.fromhex(MINT["l2_hex"]))
