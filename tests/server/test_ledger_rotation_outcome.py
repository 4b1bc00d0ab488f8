"""`duopass keys rotate-ledger` when its unit fails (a failover: 503 `store_unavailable`): the
database read again decides what becomes of `ledger.key.next`. Naming the new key, the rotation
committed (only the answer to COMMIT was lost) and is completed; not naming it, the file goes;
not answering, the file is kept, the command says the outcome is unknown, and a server that
finds the database naming the new key finishes the rename. The new key's only copy is never
deleted while the database may name it; a key in an HSM keeps its `ledger-next-label` alike."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from duopass.cli import keys_ledger, server_store
from duopass.cli.app import app
from duopass.ledger import NoteSigner
from duopass.ledger.note import parse_note
from duopass.server import ledger_token
from duopass.server.keyring import load_ledger_key
from duopass.server.problems import store_unavailable
from duopass.server.services import ledger_rotation
from duopass.server.services.ledger_key import NEXT
from duopass.server.unit_of_work import Unit
from tests.server.harness import Running, ready_wallet, running_server
from tests.server.test_hsm_ledger_rotation import _config
from tests.softhsm import softhsm_fixture  # noqa: F401


def _failover(monkeypatch: pytest.MonkeyPatch, *, commits: bool, answers_after: bool) -> None:
    """The CLI's database fails over at the rotation's COMMIT: the unit commits or not, its
    answer is lost (503 `store_unavailable`), and the database answers again at once or not."""
    real_open, real_rotate = server_store.open_server, ledger_rotation.rotate
    state = {"rotating": False, "lost": False}

    def rotate(unit: Unit, new: NoteSigner) -> ledger_rotation.Rotated:
        state["rotating"] = True
        return real_rotate(unit, new)

    def open_server(data_dir: Path, db: str | None) -> Any:
        ctx = real_open(data_dir, db)
        real_run = ctx.run

        def unit_lost(work: Callable[[Unit], Any], unit: Unit) -> Any:
            out = work(unit)
            if state["rotating"] and not commits:  # lost before COMMIT: rolled back
                state.update(rotating=False, lost=True)
                raise store_unavailable()
            return out

        def run(work: Callable[[Unit], Any], **options: Any) -> Any:
            if state["lost"] and not answers_after:
                raise store_unavailable()
            out = real_run(lambda unit: unit_lost(work, unit), **options)
            if state["rotating"]:  # committed, the answer lost
                state.update(rotating=False, lost=True)
                raise store_unavailable()
            return out

        ctx.run = run  # type: ignore[method-assign]
        return ctx

    monkeypatch.setattr(ledger_rotation, "rotate", rotate)
    monkeypatch.setattr(keys_ledger, "open_server", open_server)


def _rotate(data: Path, db: str) -> Result:
    return CliRunner().invoke(app, ["keys", "rotate-ledger", "--data-dir", str(data), "--db", db])


def _signed_by_one(srv: Running, login: str) -> set[int]:
    ready_wallet(srv.http, srv.admin(), login, balance=100)
    answer = srv.http.get("/v1/ledger/checkpoint")
    assert answer.status_code == 200, answer.text
    return {signature.key_hash for signature in parse_note(answer.content).signatures}


def test_a_rotation_whose_commit_answer_was_lost_is_completed(tmp_path, monkeypatch):
    data, db = tmp_path / "data", f"sqlite:///{tmp_path / 'd.db'}"
    with running_server(db, data) as srv:
        old = load_ledger_key(data / "ledger.key")
        ready_wallet(srv.http, srv.admin(), "ann", balance=100)
        _failover(monkeypatch, commits=True, answers_after=True)
        result = _rotate(data, db)
        monkeypatch.undo()
        assert result.exit_code == 0, result.output
        new = load_ledger_key(data / "ledger.key")
        assert not (data / NEXT).exists()
        assert new.verifier != old.verifier
        assert f"ledger key   {new.verifier.vkey()}" in result.stdout
        assert _signed_by_one(srv, "bob") == {new.verifier.key_hash}


def test_an_unknown_outcome_keeps_the_new_key_and_a_server_finishes_it(tmp_path, monkeypatch):
    data, db = tmp_path / "data", f"sqlite:///{tmp_path / 'd.db'}"
    with running_server(db, data) as srv:
        ready_wallet(srv.http, srv.admin(), "ann", balance=100)
        _failover(monkeypatch, commits=True, answers_after=False)
        result = _rotate(data, db)
        monkeypatch.undo()
        assert result.exit_code == 2, result.output
        assert "outcome is unknown" in result.output
        assert "ledger.key.next is kept" in result.output
        new = load_ledger_key(data / NEXT)
        assert _signed_by_one(srv, "bob") == {new.verifier.key_hash}
        assert not (data / NEXT).exists()
        assert load_ledger_key(data / "ledger.key").verifier == new.verifier


def test_a_rotation_that_did_not_commit_leaves_no_new_key(tmp_path, monkeypatch):
    data, db = tmp_path / "data", f"sqlite:///{tmp_path / 'd.db'}"
    with running_server(db, data) as srv:
        old = load_ledger_key(data / "ledger.key")
        ready_wallet(srv.http, srv.admin(), "ann", balance=100)
        _failover(monkeypatch, commits=False, answers_after=True)
        result = _rotate(data, db)
        monkeypatch.undo()
        assert result.exit_code == 2, result.output
        assert "outcome is unknown" not in result.output
        assert not (data / NEXT).exists()
        assert load_ledger_key(data / "ledger.key").verifier == old.verifier
        assert _signed_by_one(srv, "bob") == {old.verifier.key_hash}


def test_in_a_token_an_unknown_outcome_keeps_the_label_and_a_server_finishes_it(
    softhsm, tmp_path, monkeypatch
):
    config = _config(softhsm, monkeypatch)
    data, db = tmp_path / "data", f"sqlite:///{tmp_path / 'd.db'}"
    with running_server(db, data, hsm=config) as srv:
        ready_wallet(srv.http, srv.admin(), "ann", balance=100)
        with pytest.MonkeyPatch.context() as patch:
            _failover(patch, commits=True, answers_after=False)
            result = _rotate(data, db)
        assert result.exit_code == 2, result.output
        assert f"{ledger_token.NEXT_LABEL_FILE} is kept" in result.output
        label = (data / ledger_token.NEXT_LABEL_FILE).read_text().strip()
        assert label == f"{config.ledger_key}.1"
        new = _signed_by_one(srv, "bob")
        assert new != {srv.ctx.keyring.ledger.verifier.key_hash}
        assert not (data / ledger_token.NEXT_LABEL_FILE).exists()
        assert (data / ledger_token.LABEL_FILE).read_text().strip() == label
