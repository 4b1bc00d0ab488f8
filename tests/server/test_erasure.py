"""Erasing a holder's personal data (admin route and `duopass holder erase`): gone from every
table and from the SQLite file's bytes, while the books balance, the settlement report adds up
and `duopass audit` passes over the live server."""

from __future__ import annotations

import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import typer
from sqlalchemy import func, select
from typer.testing import CliRunner

from duopass.cli.app import app as duopass_app
from duopass.cli.audit import audit
from duopass.cli.settlement import settlement
from duopass.server.services import staff
from duopass.server.store.people import HolderPerson
from tests.server.harness import Admin, Running, Wallet, enrolled_till, running_server

PERSON: dict[str, str] = {
    "name": "Zhou Xiaoming",
    "number": "2026123456",
    "email": "xm.zhou@uni.example",
}
LOGIN = "zxm2026"
SECRETS = [PERSON["name"], PERSON["number"], PERSON["email"], LOGIN]


def _paying_holder(server: Running, admin: Admin) -> Wallet:
    """A holder with a device and a credential who paid 12.00 online at a till."""
    holder = admin.holder(
        LOGIN,
        balance=5_000,
        name=PERSON["name"],
        number=PERSON["number"],
        email=PERSON["email"],
        phone="+86 138 1234 5678",
    )
    wallet = Wallet(server.http, LOGIN)
    wallet.handle, wallet.account_id = holder["handle"], holder["account_id"]
    wallet.sign_in()
    wallet.enrol()
    assert wallet.sync().status_code == 200
    till, _ = enrolled_till(server.http, admin)
    assert till.scan(wallet.code(), amount=1_200)["ok"]
    return wallet


def _cli(app: typer.Typer, *args: object) -> object:
    return CliRunner().invoke(app, [str(arg) for arg in args])


def _audit(server: Running, state: Path) -> str:
    command = typer.Typer()
    command.command()(audit)
    key = server.ctx.keyring.ledger.verifier.vkey()
    args = ["--url", server.url, "--key", key, "--state", str(state / "audit-state.json")]
    result = CliRunner().invoke(command, args)
    assert result.exit_code == 0, result.output
    return result.stdout


def _file_bytes(db_file: Path) -> bytes:
    wal = db_file.with_name(db_file.name + "-wal")
    return db_file.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_erasure_removes_the_person_and_the_books_and_ledger_still_verify(tmp_path):
    db_file = tmp_path / "duopass.db"
    with running_server(f"sqlite:///{db_file}", tmp_path / "data") as server:
        admin = server.admin()
        wallet = _paying_holder(server, admin)
        server.ctx.db.checkpoint()
        assert all(secret.encode() in _file_bytes(db_file) for secret in SECRETS)  # can fail

        server.ctx.run(
            lambda unit: staff.add(unit, login="op", role="operator", password="op-password")
        )
        token = server.http.post(
            "/v1/admin/session", json={"login": "op", "password": "op-password"}
        )
        operator = {"Authorization": f"Bearer {token.json()['token']}"}
        path = f"/v1/admin/holders/{wallet.handle}/erase"
        assert server.http.post(path, headers=operator).status_code == 403

        refused = admin.post(path, {})  # 38.00 on the account: nobody could reach it after
        assert refused.status_code == 409 and refused.json()["code"] == "account_not_empty"
        assert admin.http.get(f"/v1/admin/holders/{wallet.handle}", headers=admin.auth).json()[
            "person"
        ]  # nothing was erased
        erased = admin.post(path, {"keep_money": True})
        assert erased.status_code == 200, erased.text
        done = erased.json()
        assert (done["devices"], done["credentials"], done["sessions"]) == (1, 1, 1)
        assert done["wal_checkpointed"] is True
        again = admin.post(path, {"keep_money": True})
        assert again.status_code == 409 and again.json()["code"] == "conflict"

        assert wallet.http.get("/v1/me/account", headers=wallet.auth).status_code == 401
        signin = {"login": LOGIN, "password": f"pw-{LOGIN}-secret"}
        assert server.http.post("/v1/session", json=signin).status_code == 401
        shown = admin.http.get(f"/v1/admin/holders/{wallet.handle}", headers=admin.auth).json()
        assert shown["state"] == "erased" and shown["person"] is None
        assert shown["login"] == f"erased:{wallet.handle}" and shown["erased"]["by"] >= 1
        assert shown["account"]["balance"] == 5_000 - 1_200  # the money stays, pseudonymous
        for q in SECRETS:
            found = admin.http.get("/v1/admin/holders", params={"q": q}, headers=admin.auth)
            assert found.json()["items"] == []

        assert admin.books() == 0
        assert "holder_erase 1" in _audit(server, tmp_path)
        day = datetime.datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
        report = _cli(_settlement_app(), day, "--db", f"sqlite:///{db_file}", "--csv")
        assert report.exit_code == 0 and ",1200," in report.stdout  # type: ignore[attr-defined]

        contents = _file_bytes(db_file)
        for secret in SECRETS:
            assert secret.encode() not in contents, secret


def _settlement_app() -> typer.Typer:
    command = typer.Typer()
    command.command()(settlement)
    return command


def test_erasure_on_both_databases_deletes_the_row_and_keeps_the_ledger(server, tmp_path):
    admin = server.admin()
    wallet = _paying_holder(server, admin)

    def rows(unit) -> int:
        return int(unit.session.scalar(select(func.count()).select_from(HolderPerson)))

    assert server.ctx.run(rows) == 1
    erase = f"/v1/admin/holders/{wallet.handle}/erase"
    assert admin.post(erase, {"keep_money": True}).status_code == 200
    assert server.ctx.run(rows) == 0
    assert admin.books() == 0
    assert "holder_erase 1" in _audit(server, tmp_path)


def test_the_command_erases_on_the_data_dir_beside_the_running_server(tmp_path):
    db = f"sqlite:///{tmp_path / 'duopass.db'}"
    data = tmp_path / "data"
    with running_server(db, data) as server:
        admin = server.admin()
        wallet = _paying_holder(server, admin)
        server.ctx.run(
            lambda unit: staff.add(unit, login="op", role="operator", password="op-password")
        )
        not_admin = _cli(
            duopass_app,
            "holder",
            "erase",
            wallet.handle,
            "--by",
            "op",
            "--data-dir",
            data,
            "--db",
            db,
        )
        assert not_admin.exit_code == 2 and "not an enabled admin" in not_admin.output  # type: ignore[attr-defined]
        unknown = _cli(
            duopass_app,
            "holder",
            "erase",
            "h-nobody",
            "--by",
            "admin",
            "--data-dir",
            data,
            "--db",
            db,
        )
        assert unknown.exit_code == 2 and "no such holder" in unknown.output  # type: ignore[attr-defined]

        args = ["holder", "erase", wallet.handle, "--by", "admin", "--data-dir", data, "--db", db]
        refused = _cli(duopass_app, *args)
        assert refused.exit_code == 2 and "refund it" in refused.output  # type: ignore[attr-defined]
        done = _cli(duopass_app, *args, "--keep-money")
        assert done.exit_code == 0, done.output  # type: ignore[attr-defined]
        assert f"personal data of {wallet.handle} erased" in done.stdout  # type: ignore[attr-defined]
        shown = admin.http.get(f"/v1/admin/holders/{wallet.handle}", headers=admin.auth).json()
        assert shown["state"] == "erased" and shown["person"] is None
        assert "holder_erase 1" in _audit(server, tmp_path)
        assert admin.books() == 0


def test_a_holder_whose_account_is_empty_is_erased_without_more_ado(sqlite_server):
    admin = sqlite_server.admin()
    holder = admin.holder("leaver", balance=0)
    answer = admin.post(f"/v1/admin/holders/{holder['handle']}/erase", {})
    assert answer.status_code == 200, answer.text
