"""The ledger key rotates (docs/server.md, "The ledger key rotates"): `duopass keys rotate-ledger`
beside running servers; the handover checkpoint is signed by both keys, every later one by the
new key alone, in every server process on the data dir; `duopass audit` given the old key
follows the chain from a state trusted before; a handover forged in the database fails it; the
witness follows the chain and keeps cosigning."""

from __future__ import annotations

import base64
import sqlite3
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from duopass.cli.app import app
from duopass.demo.witness import Witness, running_witness
from duopass.ledger import Checkpoint, NoteSigner, NoteVerifier, parse_note, sign_checkpoint
from duopass.ledger.audit_state import read_state
from duopass.ledger.cosignature import Cosigner
from duopass.ledger.events import EventType, event
from duopass.ledger.leaf import parse_leaf
from duopass.ledger.rotation import handover_extension, rotation_body
from duopass.server import outside
from duopass.server.keyring import Keyring
from duopass.server.services import tlog
from duopass.server.store.ledger_keys import LedgerKey
from duopass.server.store.tables import LedgerCheckpoint
from duopass.server.unit_of_work import Unit
from tests.pg import postgres_url_fixture  # noqa: F401
from tests.server.harness import Running, ready_wallet, running_server
from tests.test_audit import run_audit

ORIGIN = "demo-univ/ledger"
WAIT_S = 60.0  # a deadline so a witness that never follows fails the test instead of hanging it


def _rotate(data: Path, db: str) -> str:
    result = CliRunner().invoke(app, ["keys", "rotate-ledger", "--data-dir", str(data), "--db", db])
    assert result.exit_code == 0, result.output
    return result.stdout


def _signed_by(note: bytes) -> set[int]:
    return {signature.key_hash for signature in parse_note(note).signatures}


def _checkpoint(srv: Running) -> bytes:
    answer = srv.http.get("/v1/ledger/checkpoint")
    assert answer.status_code == 200, answer.text
    return answer.content


def test_rotation_then_the_audit_follows_the_chain_from_a_state_trusted_before(tmp_path):
    data, db = tmp_path / "data", f"sqlite:///{tmp_path / 'd.db'}"
    state = tmp_path / "audit-state.json"
    with running_server(db, data) as srv:
        old = srv.ctx.keyring.ledger.verifier
        ready_wallet(srv.http, srv.admin(), "ann", balance=100)
        _checkpoint(srv)
        first = run_audit("--url", srv.url, "--key", old.vkey(), "--state", state)
        assert first.exit_code == 0, first.output

        said = _rotate(data, db)
        new = NoteVerifier.parse(srv.http.get("/v1/ledger/key").text.strip())
        assert new != old and new.name == old.name and new.vkey() in said
        key_file = (data / "ledger.key").read_text().strip()
        assert NoteSigner.parse(key_file).verifier == new  # the retired key left the data dir
        assert not (data / "ledger.key.next").exists()
        listed = srv.http.get("/v1/ledger/keys").json()["keys"]
        assert [item["vkey"] for item in listed] == [old.vkey(), new.vkey()]
        leaf = listed[1]["leaf"]
        assert listed[1]["handover"] == leaf + 1 and listed[0]["leaf"] is None
        handover = srv.http.get(f"/v1/ledger/checkpoints/{leaf + 1}")
        assert _signed_by(handover.content) == {old.key_hash, new.key_hash}
        assert srv.http.get(f"/v1/ledger/checkpoints/{leaf + 2}").status_code == 404
        record = outside.read(data)  # the checkpoint kept outside is the handover
        assert record is not None and record.note == handover.content
        entry = srv.http.get(f"/v1/ledger/entries/{leaf}").json()
        body = parse_leaf(base64.b64decode(entry["data"])).body
        assert body == {"ledger_key": new.vkey(), "previous": old.vkey()}

        ready_wallet(srv.http, srv.admin(), "bob", balance=100)
        later = _checkpoint(srv)
        assert _signed_by(later) == {new.key_hash}
        record = outside.read(data)  # kept outside by the new key alone from now on
        assert record is not None and record.note == later
        followed = run_audit("--url", srv.url, "--key", old.vkey(), "--state", state)
        assert followed.exit_code == 0, followed.output
        assert f"key rotation entry {leaf}: {old.key_hash:08x} -> {new.key_hash:08x}" in (
            followed.stdout
        )
        assert "extends the trusted checkpoint" in followed.stdout
        assert read_state(state.read_bytes(), old)[1] == new  # the state trusts the new key

        ready_wallet(srv.http, srv.admin(), "cy", balance=100)
        _checkpoint(srv)
        again = run_audit("--db", db, "--key", old.vkey(), "--state", state)
        assert again.exit_code == 0, again.output
        assert "where earlier audits followed the chain" in again.stdout
        assert "key rotation" not in again.stdout
        fresh = run_audit("--url", srv.url, "--key", old.vkey(), "--state", tmp_path / "new.json")
        assert fresh.exit_code == 0 and "key rotation entry" in fresh.stdout, fresh.output
        stale = run_audit("--url", srv.url, "--key", new.vkey(), "--state", tmp_path / "n.json")
        assert stale.exit_code == 0, stale.output  # pinned after the rotation: from there


def _database(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'd.db'}"
    postgres_url: str = request.getfixturevalue("postgres_url")
    name = "t_" + uuid.uuid4().hex[:12]
    engine = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return postgres_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_two_server_processes_both_switch_to_the_new_key(request, tmp_path, kind):
    data, db = tmp_path / "data", _database(request, kind, tmp_path)
    with running_server(db, data) as a, running_server(db, data) as b:
        old = a.ctx.keyring.ledger.verifier
        assert b.ctx.keyring.ledger.verifier == old
        ready_wallet(a.http, a.admin(), "ann", balance=100)
        _checkpoint(b)
        old_file = (data / "ledger.key").read_bytes()
        _rotate(data, db)
        new = NoteSigner.parse((data / "ledger.key").read_text().strip()).verifier
        # as if the rotation had stopped between its commit and its rename
        (data / "ledger.key").rename(data / "ledger.key.next")
        (data / "ledger.key").write_bytes(old_file)

        ready_wallet(b.http, b.admin(), "bob", balance=100)
        assert _signed_by(_checkpoint(b)) == {new.key_hash}
        assert NoteSigner.parse((data / "ledger.key").read_text().strip()).verifier == new
        assert not (data / "ledger.key.next").exists()  # the server finished the rename
        ready_wallet(a.http, a.admin(), "cy", balance=100)
        assert _signed_by(_checkpoint(a)) == {new.key_hash}
        # both still hold the key they loaded at start: the database switched them
        assert a.ctx.keyring.ledger.verifier == b.ctx.keyring.ledger.verifier == old
        audit = run_audit("--url", b.url, "--key", old.vkey(), "--state", tmp_path / "s.json")
        assert audit.exit_code == 0 and "key rotation entry" in audit.stdout, audit.output


def test_a_handover_forged_in_the_database_fails_the_audit(tmp_path):
    """An attacker holding the database but not the old key: a rotation leaf to its own key,
    a handover signed by its key alone, and the row that names it."""
    data, db = tmp_path / "data", f"sqlite:///{tmp_path / 'd.db'}"
    with running_server(db, data) as srv:
        old = srv.ctx.keyring.ledger.verifier
        ready_wallet(srv.http, srv.admin(), "ann", balance=100)
        _checkpoint(srv)
        attacker = NoteSigner.generate(ORIGIN)

        def forge(unit: Unit) -> int:
            body = rotation_body(old, attacker.verifier)
            leaf = tlog.append_many(unit.session, [event(EventType.KEY_ROTATION, 0, "x", body)])
            extension = (handover_extension(attacker.verifier),)
            checkpoint = Checkpoint(ORIGIN, leaf + 1, tlog.root(unit.session, leaf + 1), extension)
            note = sign_checkpoint(checkpoint, [attacker])
            unit.session.add(LedgerCheckpoint(size=leaf + 1, signed_at=unit.now, note=note))
            vkey = attacker.verifier.vkey()
            unit.session.add(LedgerKey(leaf=leaf, vkey=vkey, previous=old.vkey(), rotated_at=0))
            return leaf + 1

        size = srv.ctx.run(forge)
        for source in (("--url", srv.url), ("--db", db)):
            result = run_audit(*source, "--key", old.vkey(), "--state", tmp_path / "s.json")
            assert result.exit_code == 1, result.output
            assert f"the handover checkpoint {size} is refused: UNVERIFIED" in result.stdout
            assert "FAILED       bad checkpoint signature" in result.stdout
            assert not (tmp_path / "s.json").exists()
        ready_wallet(srv.http, srv.admin(), "bob", balance=100)  # the server signs no more
        refused = srv.http.get("/v1/ledger/checkpoint")
        assert refused.status_code == 503 and refused.json()["code"] == "ledger_key_missing"


def test_the_retired_key_never_signs_again_whatever_the_database_says(tmp_path):
    """The row that names the new key deleted: a process that loaded the old key at start still
    does not sign with it after the handover checkpoint it signed."""
    data, db = tmp_path / "data", f"sqlite:///{tmp_path / 'd.db'}"
    with running_server(db, data) as srv:
        ready_wallet(srv.http, srv.admin(), "ann", balance=100)
        _checkpoint(srv)
        _rotate(data, db)
        with sqlite3.connect(tmp_path / "d.db") as connection:
            connection.execute("DELETE FROM ledger_keys")
        ready_wallet(srv.http, srv.admin(), "bob", balance=100)
        refused = srv.http.get("/v1/ledger/checkpoint")
        assert refused.status_code == 503, refused.text
        assert refused.json()["code"] == "ledger_key_missing"
        assert "hands the ledger to key" in refused.json()["detail"]


def _anchored(srv: Running, size: int) -> None:
    deadline = time.monotonic() + WAIT_S
    body: dict[str, object] = {}
    while time.monotonic() < deadline:
        answer = srv.http.get("/v1/ledger/anchors")
        body = answer.json() if answer.status_code == 200 else {}
        if body.get("size") == size and body.get("cosignatures"):
            return
        time.sleep(0.05)
    raise AssertionError(f"checkpoint {size} was not cosigned: {body}")


def test_the_witness_follows_the_chain(tmp_path):
    data, db = tmp_path / "data", f"sqlite:///{tmp_path / 'd.db'}"
    old = Keyring.create(data, origin=ORIGIN).ledger.verifier
    cosigner = Cosigner.generate("witness.test/w1")
    witness = Witness(tmp_path / "witness", old, cosigner)
    with (
        running_witness(witness) as url,
        running_server(
            db, data, anchor_witnesses=(f"{url} {cosigner.key.vkey()}",), anchor_interval_s=0.05
        ) as srv,
    ):
        ready_wallet(srv.http, srv.admin(), "ann", balance=100)
        _anchored(srv, parse_note_size(_checkpoint(srv)))
        _rotate(data, db)
        ready_wallet(srv.http, srv.admin(), "bob", balance=100)
        size = parse_note_size(_checkpoint(srv))
        _anchored(srv, size)
        new = NoteVerifier.parse(srv.http.get("/v1/ledger/key").text.strip())
        assert witness.log_key == new and witness.first_key == old
        held = witness.held
        assert held is not None and held.size == size
        leaf = srv.http.get("/v1/ledger/keys").json()["keys"][1]["leaf"]
        handover = data / "anchors" / str(leaf + 1)
        assert list(handover.glob("cosignature-*")), "the witness cosigned the handover"
        result = run_audit(
            "--url", srv.url, "--key", old.vkey(), "--state", tmp_path / "s.json",
            "--witness", cosigner.key.vkey(),
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        said = f"anchors      latest anchored checkpoint {size}, consistent: the audited one itself"
        assert said in result.stdout
        assert "witness      witness.test/w1: cosigned at " in result.stdout

        # The state now trusts the new key; the anchors of the checkpoints before the rotation,
        # signed by the old key alone, are still each checked with the key of their size.
        ready_wallet(srv.http, srv.admin(), "cy", balance=100)
        later = parse_note_size(_checkpoint(srv))
        _anchored(srv, later)
        again = run_audit(
            "--url", srv.url, "--key", old.vkey(), "--state", tmp_path / "s.json",
            "--witness", cosigner.key.vkey(),
        )  # fmt: skip
        assert again.exit_code == 0, again.output
        assert "where earlier audits followed the chain" in again.stdout
        assert "earlier anchored checkpoints checked: each OK" in again.stdout
        assert f"latest anchored checkpoint {later}, consistent: the audited one itself" in (
            again.stdout
        )


def parse_note_size(note: bytes) -> int:
    return int(parse_note(note).text.split("\n")[1])
