"""`duopass backup` and `duopass restore` on a running server, and the rollback guard: a
backup taken under writes restores into a new database that passes `duopass audit` against
checkpoints signed before it; a restore older than the checkpoint kept outside the database is
refused service until accepted, and the terminals ahead of it are listed and flagged; a damaged
backup is refused with a stable message. SQLite throughout, PostgreSQL once."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from typer.testing import CliRunner, Result

from duopass.cli.app import app
from duopass.demo.serving import free_port
from duopass.server import outside
from duopass.server.maintenance import run_once
from duopass.server.store.backup import MAGIC
from tests.pg import postgres_url_fixture  # noqa: F401
from tests.server.harness import (
    Admin,
    Running,
    TerminalClient,
    Wallet,
    enrolled_till,
    ready_wallet,
    running_server,
)


def duopass(*args: object) -> Result:
    return CliRunner().invoke(app, [str(arg) for arg in args])


def _vkey(server: Running) -> str:
    return server.ctx.keyring.ledger.verifier.vkey()


def _checkpoint_size(server: Running) -> int:
    answer = server.http.get("/v1/ledger/checkpoint")
    assert answer.status_code == 200, answer.text
    return int(answer.content.split(b"\n")[1])


def _top_ups_meanwhile(server: Running, admin: Admin, handle: str, stop: threading.Event) -> int:
    """Top-ups one after another on a client of their own until `stop`; how many."""
    done = 0
    with httpx.Client(base_url=server.url, timeout=30) as http:
        writer = Admin(http, admin.auth)
        while not stop.is_set():
            assert writer.top_up(handle, 100).status_code == 200
            done += 1
    return done


def _backup_under_writes(server: Running, db: str, out: Path, data: Path) -> Result:
    admin = server.admin()
    writer = ready_wallet(server.http, admin, "writer", balance=100)
    stop, counted = threading.Event(), list[int]()
    thread = threading.Thread(
        target=lambda: counted.append(_top_ups_meanwhile(server, admin, writer.handle, stop))
    )
    thread.start()
    try:
        made = duopass("backup", out, "--data-dir", data, "--db", db)
    finally:
        stop.set()
        thread.join()
    assert counted, "the writer failed"
    return made


def _journal(till: TerminalClient, wallet: Wallet, seq: int) -> None:
    assert till.journal([till.entry(wallet.code(), seq=seq, amount=100)]).status_code == 200


def _first_life(db: str, data: Path, tmp_path: Path) -> tuple[Path, Path, str]:
    """A server that journals, is audited, backed up under writes, then goes on: the backup,
    the audit's state file (trusting a checkpoint signed before the backup) and the key."""
    backup, state = tmp_path / "b.duopass-backup", tmp_path / "audit-state.json"
    with running_server(db, data) as server:
        admin = server.admin()
        ann = ready_wallet(server.http, admin, "ann", balance=5000)
        till, _ = enrolled_till(server.http, admin)
        _journal(till, ann, 1)
        _checkpoint_size(server)
        audited = duopass("audit", "--url", server.url, "--key", _vkey(server), "--state", state)
        assert audited.exit_code == 0, audited.output
        made = _backup_under_writes(server, db, backup, data)
        assert made.exit_code == 0, made.output
        assert made.stdout.startswith(f"backup {backup}: ")
        _journal(till, ann, 2)  # after the backup: acknowledged, then lost by the restore
        till.bundle()
        _checkpoint_size(server)
        vkey = _vkey(server)
    return backup, state, vkey


def test_backup_restore_audit_and_the_rollback_guard(tmp_path, caplog):
    data, db = tmp_path / "data", f"sqlite:///{tmp_path / 'first.db'}"
    backup, state, vkey = _first_life(db, data, tmp_path)
    manifest = json.loads(backup.read_bytes()[len(MAGIC) :].split(b"\n", 1)[0])
    assert manifest["kind"] == "sqlite" and manifest["facts"]["ledger_size"] > 0
    assert str(tmp_path) not in json.dumps(manifest)  # no path, no URL in it

    restored = f"sqlite:///{tmp_path / 'restored.db'}"
    answer = duopass("restore", backup, "--data-dir", data, "--db", restored)
    assert answer.exit_code == 0, answer.output
    assert "ROLLED BACK  the store's ledger has" in answer.stdout
    assert "1 terminal ahead of the restored store" in answer.stdout
    assert "  till-1: journal acknowledged to 2, restored 1;" in answer.stdout

    audited = duopass("audit", "--db", restored, "--key", vkey, "--state", state)
    assert audited.exit_code == 0, audited.output
    assert "extends the trusted checkpoint" in audited.stdout or "the same tree" in audited.stdout

    with running_server(restored, data) as server:
        said = [
            r.getMessage() for r in caplog.records if getattr(r, "event", "") == "store_rolled_back"
        ]
        assert said and said[0].startswith("the store's ledger has ")
        held = server.http.get("/v1/ledger/checkpoint")
        assert held.status_code == 503 and held.json()["code"] == "store_rolled_back"
        assert server.http.post("/v1/admin/session", json={}).status_code == 503
        health = server.http.get("/healthz")
        assert health.status_code == 200 and health.json()["store"] == "rolled_back"

        accepted = duopass("ledger", "accept-rollback", "--data-dir", data, "--db", restored)
        assert accepted.exit_code == 0, accepted.output
        assert "rollback accepted" in accepted.stdout
        assert "  till-1: journal acknowledged to 2, restored 1;" in accepted.stdout
        run_once(server.ctx)  # the server looks again: the store now holds what is outside
        assert server.http.get("/v1/ledger/checkpoint").status_code == 200
        assert "store" not in server.http.get("/healthz").json()
        flagged = server.admin().http.get(
            "/v1/admin/alerts", headers=server.admin().auth, params={"state": "open"}
        )
        kinds = [(a["kind"], a.get("terminal_id")) for a in flagged.json()["items"]]
        assert ("store_rolled_back", "till-1") in kinds
    lines = (data / "ledger-rollbacks.jsonl").read_text().splitlines()
    assert [item["terminal_id"] for item in json.loads(lines[-1])["terminals_ahead"]] == ["till-1"]
    assert outside.read(data) is not None


def test_a_restore_of_the_latest_state_serves_at_once(tmp_path):
    data, db = tmp_path / "data", f"sqlite:///{tmp_path / 'first.db'}"
    backup = tmp_path / "b"
    with running_server(db, data) as server:
        ready_wallet(server.http, server.admin(), "ann", balance=500)
        _checkpoint_size(server)
        assert duopass("backup", backup, "--data-dir", data, "--db", db).exit_code == 0
    restored = f"sqlite:///{tmp_path / 'restored.db'}"
    answer = duopass("restore", backup, "--data-dir", data, "--db", restored)
    assert answer.exit_code == 0, answer.output
    assert "the store holds the last checkpoint signed" in answer.stdout
    with running_server(restored, data) as server:
        assert server.http.get("/v1/ledger/checkpoint").status_code == 200
    keyless = duopass("restore", backup, "--data-dir", tmp_path / "new", "--db", f"{restored}2")
    assert keyless.exit_code == 0, keyless.output
    assert "no server keys in" in keyless.stdout


def test_restore_and_accept_in_one_go(tmp_path):
    data, db = tmp_path / "data", f"sqlite:///{tmp_path / 'first.db'}"
    backup = tmp_path / "b"
    with running_server(db, data) as server:
        ready_wallet(server.http, server.admin(), "ann", balance=500)
        assert duopass("backup", backup, "--data-dir", data, "--db", db).exit_code == 0
        ready_wallet(server.http, server.admin(), "bob", balance=500)
        lost = _checkpoint_size(server)
    restored = f"sqlite:///{tmp_path / 'restored.db'}"
    answer = duopass("restore", backup, "--data-dir", data, "--db", restored, "--accept-rollback")
    assert answer.exit_code == 0, answer.output
    assert f"replaces the checkpoint of {lost} entries" in answer.stdout
    assert "0 terminals ahead of the restored store" in answer.stdout
    again = duopass("ledger", "accept-rollback", "--data-dir", data, "--db", restored)
    assert again.exit_code == 0 and "nothing to accept" in again.stdout
    with running_server(restored, data) as server:
        assert server.http.get("/v1/ledger/checkpoint").status_code == 200


def test_damaged_backups_and_wrong_targets_are_refused(tmp_path):
    data, db = tmp_path / "data", f"sqlite:///{tmp_path / 'first.db'}"
    backup = tmp_path / "b"
    with running_server(db, data) as server:
        ready_wallet(server.http, server.admin(), "ann", balance=500)
    assert duopass("backup", backup, "--data-dir", data, "--db", db).exit_code == 0
    again = duopass("backup", backup, "--data-dir", data, "--db", db)
    assert again.exit_code == 2 and "exists: a backup never replaces a file" in again.stderr
    whole = backup.read_bytes()
    cases = {
        "cut": (whole[: len(whole) - 4096], "is damaged: its payload is shorter than the"),
        "flipped": (whole[:-1] + bytes([whole[-1] ^ 1]), "payload's SHA-256 is not its manifest"),
        "manifest": (whole[: len(MAGIC) + 10], "is damaged: its manifest is cut short"),
        "other": (b"SQLite format 3\x00" + whole[16:], "is not a duopass backup"),
    }
    for name, (content, message) in cases.items():
        damaged = tmp_path / f"damaged-{name}"
        damaged.write_bytes(content)
        target = tmp_path / f"restored-{name}.db"
        answer = duopass("restore", damaged, "--data-dir", data, "--db", f"sqlite:///{target}")
        assert answer.exit_code == 2, (name, answer.output)
        assert message in answer.stderr, (name, answer.stderr)
        assert not target.exists(), name
    occupied = duopass("restore", backup, "--data-dir", data, "--db", db)
    assert occupied.exit_code == 2 and "exists: restore into a new database" in occupied.stderr
    wrong = duopass("restore", backup, "--data-dir", data, "--db", "postgresql://x@127.0.0.1/y")
    assert wrong.exit_code == 2
    assert "sqlite backup: it restores into a sqlite database" in wrong.stderr
    magic, manifest, payload = whole.split(b"\n", 2)
    newer = json.loads(manifest)
    newer["facts"]["schema_revision"] = "9999"
    (tmp_path / "newer").write_bytes(b"\n".join([magic, json.dumps(newer).encode(), payload]))
    target = tmp_path / "newer.db"
    answer = duopass(
        "restore", tmp_path / "newer", "--data-dir", data, "--db", f"sqlite:///{target}"
    )
    assert answer.exit_code == 2 and "schema revision '9999' is not one this duopass knows" in (
        answer.stderr
    )
    assert not target.exists()


def test_no_password_in_a_refusal(tmp_path):
    url = f"postgresql+psycopg://duopass:hunter2@127.0.0.1:{free_port()}/nothing"
    for args in (("backup", tmp_path / "b"), ("restore", tmp_path / "b")):
        answer = duopass(*args, "--data-dir", tmp_path, "--db", url)
        assert answer.exit_code == 2, answer.output
        assert "hunter2" not in answer.output and answer.stderr.startswith("duopass: ")


def test_another_tree_at_the_same_size_is_held(tmp_path):
    """A database whose ledger is as long as the outside checkpoint, or longer, but is another
    tree (the wrong database, a fork) is held as a rollback is."""
    data, other = tmp_path / "data", tmp_path / "other"
    with running_server(f"sqlite:///{tmp_path / 'a.db'}", data) as server:
        ready_wallet(server.http, server.admin(), "ann", balance=500)
        signed = _checkpoint_size(server)
    other.mkdir()
    for name in ("root.jwk", "ledger.key", "wrap.key", "digest.key"):
        (other / name).write_bytes((data / name).read_bytes())
    forked = f"sqlite:///{tmp_path / 'b.db'}"
    with running_server(forked, other) as server:
        for login in ("bob", "cy"):
            ready_wallet(server.http, server.admin(), login, balance=700)
        assert _checkpoint_size(server) > signed
    with running_server(forked, data) as server:
        held = server.http.get("/v1/ledger/checkpoint")
        assert held.status_code == 503 and "another tree" in held.json()["detail"]


def _new_database(postgres_url: str) -> str:
    name = "t_" + uuid.uuid4().hex[:12]
    engine = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return postgres_url.rsplit("/", 1)[0] + f"/{name}"


def test_postgresql_backup_and_restore(tmp_path, postgres_url):
    data, db = tmp_path / "data", _new_database(postgres_url)
    backup, state, vkey = _first_life(db, data, tmp_path)
    restored = _new_database(postgres_url)
    answer = duopass("restore", backup, "--data-dir", data, "--db", restored)
    assert answer.exit_code == 0, answer.output
    assert answer.stdout.startswith(f"restored {backup}: postgresql, schema ")
    assert "  till-1: journal acknowledged to 2, restored 1;" in answer.stdout
    audited = duopass("audit", "--db", restored, "--key", vkey, "--state", state)
    assert audited.exit_code == 0, audited.output
    again = duopass("restore", backup, "--data-dir", data, "--db", restored)
    assert again.exit_code == 2 and "the target database is not empty" in again.stderr
