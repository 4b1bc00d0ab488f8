"""The decision policy on the server: shown to anyone (`GET /v1/policy`, every version's text
by hash), pinned at start (a malformed file stops `duopass serve` with its line and column),
one active policy across server processes (a stale one refuses decisions until it reloads),
decisions on the ledger with their inputs beside them, and `duopass policy replay` re-running
an old decision with the old version after the file changed.

Decisions are made here through the services the reissue routes call (`policy_store.decide`,
`decisions.record`) in the app's own units of work; the reissue tests drive them over HTTP."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner, Result

from duopass.cli.app import app
from duopass.demo.serving import free_port
from duopass.policy import DEFAULT_POLICY, sample_inputs
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import decisions, holders, policy_store
from duopass.server.settings import Settings
from duopass.server.store.decisions import Decision
from duopass.server.store.tables import Holder
from duopass.server.unit_of_work import Unit
from tests.server.conftest import database_url
from tests.server.harness import Running, running_server

PACKAGED = DEFAULT_POLICY.read_text()
REVIEW_ALL = """version = "t.2"

[[rule]]
name = "deny_after_event"
when = "time.to_end_s <= 0"
outcome = "deny"

[[rule]]
name = "review_everything"
when = "true"
outcome = "review"
"""


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    """A database of either kind and a data dir, for servers the test starts itself."""
    return database_url(request, tmp_path), tmp_path / "data"


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(PACKAGED)
    return path


@pytest.fixture
def pinned(store: tuple[str, Path], policy_file: Path) -> Iterator[Running]:
    """A server deciding with `policy_file` (a copy of the packaged policy)."""
    with running_server(*store, policy_file=policy_file) as running:
        yield running


def cli(*args: object) -> Result:
    return CliRunner().invoke(app, ["policy", *(str(arg) for arg in args)])


def replay(running: Running, index: int) -> Result:
    settings = running.ctx.settings
    return cli("replay", "--ledger-entry", index, "--data-dir", settings.data_dir, "--db",
               settings.db_url)  # fmt: skip


def holder_id(running: Running, login: str) -> int:
    known = handle(running, login)
    return running.ctx.run(lambda unit: holders.by_handle(unit.session, known).id)


def handle(running: Running, login: str) -> str:
    """The holder's handle, created on first asking."""
    found = running.ctx.run(
        lambda unit: unit.session.scalar(select(Holder.handle).where(Holder.login == login))
    )
    return found or str(running.admin().holder(login)["handle"])


def decide_and_record(running: Running, holder: int, inputs: dict[str, Any]) -> int:
    """What a reissue request does first: decide on the inputs, record it; its ledger index."""

    def work(unit: Unit) -> int:
        policy, ruling = policy_store.decide(unit, inputs)
        decision = decisions.record(
            unit,
            action=inputs["action"],
            holder_id=holder,
            ticket_id=None,
            request_id="r-" + str(unit.now),
            inputs=inputs,
            policy=policy,
            ruling_outcome=ruling.outcome.value,
            rule=ruling.rule,
        )
        return decision.ledger_index

    return running.ctx.run(work)


def test_the_policy_and_every_version_are_public(server):
    shown = server.http.get("/v1/policy")
    assert shown.status_code == 200
    body = shown.json()
    assert body["version"] == "2026-12-06.4" and body["inputs_schema"] == 1
    assert body["sha256"] == hashlib.sha256(DEFAULT_POLICY.read_bytes()).hexdigest()
    assert [rule["name"] for rule in body["rules"]][::9] == ["deny_after_event", "allow_default"]
    assert body["rules"][4]["factors"] == ["totp", "email_otp", "passkey"]
    text = server.http.get(f"/v1/policy/versions/{body['sha256']}")
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    assert hashlib.sha256(text.content).hexdigest() == body["sha256"]
    assert server.http.get(f"/v1/policy/versions/{'0' * 64}").status_code == 404
    assert server.http.get("/v1/policy/versions/XYZ").json()["code"] == "invalid_request"
    assert server.http.post("/v1/admin/policy/reload").status_code == 401


def test_a_decision_is_recorded_and_replays_the_same(server):
    holder = holder_id(server, "replayer")
    inputs = sample_inputs().to_document()
    index = decide_and_record(server, holder, inputs)
    row = server.ctx.run(
        lambda unit: (
            unit.session.scalars(select(Decision).where(Decision.ledger_index == index))
            .one()
            .inputs
        )
    )
    assert row == decisions.canonical(inputs).decode()
    done = replay(server, index)
    assert done.exit_code == 0, done.output
    assert "reissue decided allow by rule allow_default under policy 2026-12-06.4" in done.output
    assert "replayed: allow by rule allow_default: same as recorded" in done.output
    not_one = replay(server, 0)  # the ledger's first entry
    assert not_one.exit_code == 2 and "is not a decision" in not_one.output


def test_changed_inputs_or_an_erased_holder_are_said(server):
    holder = holder_id(server, "erasable")
    first = decide_and_record(server, holder, sample_inputs().to_document())
    second = decide_and_record(server, holder, sample_inputs("transfer").to_document())
    forged = sample_inputs().to_document() | {"action": "lost"}
    server.ctx.run(
        lambda unit: unit.session.execute(
            update(Decision)
            .where(Decision.ledger_index == first)
            .values(inputs=decisions.canonical(forged).decode())
        )
    )
    changed = replay(server, first)
    assert changed.exit_code == 1 and "were changed" in changed.output

    admin = server.admin()
    erased = admin.post(f"/v1/admin/holders/{handle(server, 'erasable')}/erase", {})
    assert erased.status_code == 200 and erased.json()["decisions"] == 2, erased.text
    gone = replay(server, second)
    assert gone.exit_code == 3 and "inputs were erased" in gone.output
    assert "transfer decided step_up by rule step_up_transfer" in gone.output


def test_replay_of_an_old_entry_uses_the_old_version_after_the_file_changed(pinned, policy_file):
    holder = holder_id(pinned, "changer")
    inputs = sample_inputs().to_document()
    old = decide_and_record(pinned, holder, inputs)
    old_sha = pinned.http.get("/v1/policy").json()["sha256"]

    policy_file.write_text(REVIEW_ALL)
    reloaded = pinned.admin().post("/v1/admin/policy/reload", {})
    assert reloaded.status_code == 200, reloaded.text
    new_sha = hashlib.sha256(REVIEW_ALL.encode()).hexdigest()
    assert reloaded.json() == {"version": "t.2", "sha256": new_sha, "activated": True}
    assert pinned.http.get("/v1/policy").json()["sha256"] == new_sha
    new = decide_and_record(pinned, holder, inputs)  # the same inputs, the new rules

    before = replay(pinned, old)
    assert before.exit_code == 0, before.output
    assert f"under policy 2026-12-06.4 (sha256 {old_sha})" in before.output
    assert "replayed: allow by rule allow_default: same as recorded" in before.output
    after = replay(pinned, new)
    assert after.exit_code == 0, after.output
    assert f"under policy t.2 (sha256 {new_sha})" in after.output
    assert "replayed: review by rule review_everything: same as recorded" in after.output
    for sha in (old_sha, new_sha):  # both texts stay public, byte for byte
        text = pinned.http.get(f"/v1/policy/versions/{sha}").content
        assert hashlib.sha256(text).hexdigest() == sha


def test_a_malformed_reload_is_refused_at_its_line_and_the_old_policy_stays(pinned, policy_file):
    before = pinned.http.get("/v1/policy").json()
    policy_file.write_text(REVIEW_ALL.replace('"true"', '"true &&"'))
    refused = pinned.admin().post("/v1/admin/policy/reload", {})
    assert refused.status_code == 422 and refused.json()["code"] == "bad_policy"
    assert f"{policy_file}:10:" in refused.json()["detail"]
    assert pinned.http.get("/v1/policy").json() == before
    decide_and_record(pinned, holder_id(pinned, "still"), sample_inputs().to_document())


def test_a_stale_process_refuses_decisions_until_its_file_holds_the_active_policy(
    pinned, store, policy_file, tmp_path
):
    holder = holder_id(pinned, "twoprocs")
    inputs = sample_inputs().to_document()
    newer = tmp_path / "newer.toml"
    newer.write_text(REVIEW_ALL)
    with running_server(*store, policy_file=newer) as second:  # another process, newer file
        assert decide_and_record(second, holder, inputs) > 0
        with pytest.raises(Problem) as stale:
            decide_and_record(pinned, holder, inputs)
        assert stale.value.code is ProblemCode.POLICY_CHANGED

        policy_file.write_text(REVIEW_ALL)  # the deployment reached the first one's file
        assert decide_and_record(pinned, holder, inputs) > 0  # its file holds the active one
        reloaded = pinned.admin().post("/v1/admin/policy/reload", {})
        assert reloaded.status_code == 200 and reloaded.json()["activated"] is False
        index = decide_and_record(pinned, holder, inputs)
        assert decide_and_record(second, holder, inputs) > index  # both decide again
        assert pinned.http.get("/v1/policy").json() == second.http.get("/v1/policy").json()


def test_serve_refuses_a_malformed_policy_at_start(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(REVIEW_ALL.replace('outcome = "review"', "outcome = review"))
    command = [sys.executable, "-m", "duopass", "serve", "--init", "--port", str(free_port())]
    command += ["--data-dir", str(tmp_path / "data")]
    done = subprocess.run([*command, "--policy", str(bad)], capture_output=True, timeout=60)
    assert done.returncode == 2
    assert f"duopass: policy refused: {bad}:11:11: not TOML" in done.stderr.decode()


def test_the_policy_file_may_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DUOPASS_POLICY_FILE", str(tmp_path / "p.toml"))
    assert Settings().policy_file == tmp_path / "p.toml"
    monkeypatch.delenv("DUOPASS_POLICY_FILE")
    assert Settings().policy_file is None  # the packaged one
