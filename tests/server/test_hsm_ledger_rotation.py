"""A ledger key in an HSM rotates inside its token (server/ledger_token.py, SoftHSM): the new key is
made there under `<configured label>.<n>`, named by the data dir's ledger-label, never written to
a file; the handover checkpoint carries both keys' signatures, every server process on the data
dir signs with the new key next, the log's origin stays the configured label; a key left by a
rotation that never committed is taken by the next; a rotation cut between its commit and its
rename is finished by the first process to sign; a process started later loads the current key;
`duopass audit` from a state trusted before follows the chain."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from duopass.cli.app import app
from duopass.ledger import NoteVerifier, parse_note
from duopass.server import hsm, ledger_token
from duopass.server.hsm import HsmConfig
from duopass.server.keyring import Keyring
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import ledger_key
from tests.server.harness import Running, Wallet, ready_wallet, running_server
from tests.server.test_hsm import _duopass, _hsm_env, _init, _serve
from tests.softhsm import SoftHsm, softhsm_fixture  # noqa: F401
from tests.test_audit import run_audit


def _signed_by(note: bytes) -> set[int]:
    return {signature.key_hash for signature in parse_note(note).signatures}


def _checkpoint(http: httpx.Client) -> bytes:
    answer = http.get("/v1/ledger/checkpoint")
    assert answer.status_code == 200, answer.text
    return answer.content


def _label(data: Path, name: str = ledger_token.LABEL_FILE) -> str | None:
    path = data / name
    return path.read_text().strip() if path.exists() else None


def _config(softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch) -> HsmConfig:
    """A ledger key of its own on the shared token, and the settings `duopass keys` reads."""
    origin = f"hsm-{uuid.uuid4().hex[:8]}/ledger"
    config = softhsm.config(softhsm.shared, ledger=origin)
    hsm.generate_key(config, origin)
    monkeypatch.setenv("DUOPASS_HSM_MODULE", str(softhsm.module))
    monkeypatch.setenv("DUOPASS_HSM_TOKEN", softhsm.shared)
    monkeypatch.setenv("DUOPASS_HSM_PIN", softhsm.pin)
    monkeypatch.setenv("DUOPASS_HSM_LEDGER_KEY", origin)
    return config


def _rotate(data: Path, db: str) -> str:
    result = CliRunner().invoke(app, ["keys", "rotate-ledger", "--data-dir", str(data), "--db", db])
    assert result.exit_code == 0, result.output
    return result.stdout


def _enrol(http: httpx.Client, data: Path, login: str) -> None:
    """A demo holder enrols a device: a ledger entry the server appends."""
    demo = json.loads((data / "demo.json").read_text())
    wallet = Wallet(http, login, password=demo["holders"]["password"])
    wallet.sign_in()
    wallet.enrol()


def _activity(srv: Running, login: str) -> bytes:
    ready_wallet(srv.http, srv.admin(), login, balance=100)
    return _checkpoint(srv.http)


def test_two_server_processes_follow_a_rotation_inside_the_token(softhsm, tmp_path, monkeypatch):
    config = _config(softhsm, monkeypatch)
    origin = str(config.ledger_key)
    data, db = tmp_path / "data", f"sqlite:///{tmp_path / 'd.db'}"
    state = tmp_path / "audit-state.json"
    with (
        running_server(db, data, hsm=config) as a,
        running_server(db, data, hsm=config) as b,
    ):
        old = a.ctx.keyring.ledger.verifier
        assert not a.ctx.keyring.ledger.in_memory and old.name == origin
        _activity(a, "ann")
        trusted = run_audit("--url", a.url, "--key", old.vkey(), "--state", state)
        assert trusted.exit_code == 0, trusted.output

        # A rotation that made its key and named it, then stopped before its commit.
        held = ledger_token.token_key(a.ctx.keyring.ledger)
        assert held is not None
        abandoned = ledger_token.new_key(held, origin, 1)
        ledger_token.propose(data, abandoned)
        assert _signed_by(_activity(b, "bob")) == {old.key_hash}  # nothing committed: old key
        assert Keyring.load(data, config).ledger.verifier == old

        said = _rotate(data, db)
        new = NoteVerifier.parse(a.http.get("/v1/ledger/key").text.strip())
        assert new == abandoned.verifier and new.vkey() in said  # the key it left, taken
        assert new.name == old.name == origin  # the log's origin does not change
        assert _label(data) == f"{origin}.1"
        assert _label(data, ledger_token.NEXT_LABEL_FILE) is None
        listed = a.http.get("/v1/ledger/keys").json()["keys"]
        assert [item["vkey"] for item in listed] == [old.vkey(), new.vkey()]
        leaf = listed[1]["leaf"]
        handover = a.http.get(f"/v1/ledger/checkpoints/{leaf + 1}").content
        assert _signed_by(handover) == {old.key_hash, new.key_hash}
        assert parse_note(handover).text.startswith(f"{origin}\n")
        # both servers hold the old key from their start; the database switched them
        assert _signed_by(_activity(b, "cy")) == {new.key_hash}
        assert _signed_by(_activity(a, "dee")) == {new.key_hash}
        assert a.ctx.keyring.ledger.verifier == b.ctx.keyring.ledger.verifier == old

        # A second rotation, as if stopped between its commit and its rename.
        _rotate(data, db)
        newer = NoteVerifier.parse(a.http.get("/v1/ledger/key").text.strip())
        assert _label(data) == f"{origin}.2"
        (data / ledger_token.LABEL_FILE).rename(data / ledger_token.NEXT_LABEL_FILE)
        (data / ledger_token.LABEL_FILE).write_text(f"{origin}.1\n")
        assert _signed_by(_activity(b, "eve")) == {newer.key_hash}
        assert _label(data) == f"{origin}.2"  # the server finished the rename
        assert not (data / ledger_token.NEXT_LABEL_FILE).exists()

        restarted = Keyring.load(data, config).ledger  # a process started now
        assert restarted.verifier == newer and restarted.name == origin
        assert not {"ledger.key", "ledger.key.next"} & {p.name for p in data.iterdir()}
        followed = run_audit("--url", b.url, "--key", old.vkey(), "--state", state)
        assert followed.exit_code == 0, followed.output
        assert followed.stdout.count("key rotation entry") == 2
        assert "extends the trusted checkpoint" in followed.stdout


def test_a_token_key_the_database_does_not_name_never_signs(softhsm, tmp_path, monkeypatch):
    """ledger-label naming a key the database does not (a copy of another data dir's file, a
    key from a rotation that never committed): 503 ledger_key_missing, nothing signed with it;
    and a token key is never handed over to a key file."""
    config = _config(softhsm, monkeypatch)
    origin = str(config.ledger_key)
    data, db = tmp_path / "data", f"sqlite:///{tmp_path / 'd.db'}"
    with running_server(db, data, hsm=config) as srv:
        _activity(srv, "ann")
        _rotate(data, db)
        (data / ledger_token.LABEL_FILE).write_text(f"{origin}\n")  # the retired key's label
        with pytest.raises(Problem) as missing:
            srv.ctx.run(ledger_key.signer)
        assert missing.value.code is ProblemCode.LEDGER_KEY_MISSING
        ready_wallet(srv.http, srv.admin(), "bob", balance=100)
        refused = srv.http.get("/v1/ledger/checkpoint")
        assert refused.status_code == 503 and refused.json()["code"] == "ledger_key_missing"
        (data / ledger_token.LABEL_FILE).write_text(f"{origin}.1\n")
        assert srv.http.get("/v1/ledger/checkpoint").status_code == 200


def test_rotate_ledger_in_a_token_beside_a_server_process_then_a_restart(softhsm, tmp_path):
    """Real processes: `duopass serve` with its ledger key in a SoftHSM token, `duopass keys
    rotate-ledger` beside it, then the server restarted on the same data dir and token."""
    token = softhsm.token()
    _init(softhsm, token)
    env, state = _hsm_env(softhsm, token), tmp_path / "state.json"
    with _serve(tmp_path, env) as served, httpx.Client(base_url=served.url, timeout=30) as http:
        old = NoteVerifier.parse(http.get("/v1/ledger/key").text.strip())
        _checkpoint(http)
        trusted = _duopass(
            "audit", "--url", served.url, "--key", old.vkey(), "--state", str(state), env={}
        )
        assert trusted.returncode == 0, trusted.stdout + trusted.stderr
        rotated = _duopass("keys", "rotate-ledger", "--data-dir", str(served.data), env=env)
        assert rotated.returncode == 0, rotated.stderr
        new = NoteVerifier.parse(http.get("/v1/ledger/key").text.strip())
        _enrol(http, served.data, "student0001")  # the running server signs with the new key
        assert _signed_by(_checkpoint(http)) == {new.key_hash}
        assert new != old and new.name == old.name == "demo-univ/ledger"
        leaf = http.get("/v1/ledger/keys").json()["keys"][1]["leaf"]
        handover = http.get(f"/v1/ledger/checkpoints/{leaf + 1}").content
        assert _signed_by(handover) == {old.key_hash, new.key_hash}
        assert softhsm.pin not in rotated.stdout + rotated.stderr + served.stop()
    data = served.data
    assert _label(data) == "demo-univ/ledger.1"
    assert not {"ledger.key", "ledger.key.next", "ledger-next-label"} & {
        p.name for p in data.iterdir()
    }
    with sqlite3.connect(data / "duopass.db") as database:
        assert database.execute("SELECT count(*) FROM ledger_keys").fetchone() == (1,)
    with _serve(tmp_path, env) as again, httpx.Client(base_url=again.url, timeout=30) as http:
        assert http.get("/v1/ledger/key").text.strip() == new.vkey()
        _enrol(http, again.data, "student0002")  # appended and signed by the restarted server
        assert _signed_by(_checkpoint(http)) == {new.key_hash}
        audit = _duopass(
            "audit", "--url", again.url, "--key", old.vkey(), "--state", str(state), env={}
        )
        assert audit.returncode == 0, audit.stdout + audit.stderr
        assert "key rotation entry" in audit.stdout and "audit passed" in audit.stdout
        assert softhsm.pin not in again.stop()
