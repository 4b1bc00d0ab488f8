"""`duopass staff`: the first admin of a freshly `serve --init`-ed server, passwords from a prompt
(stdin) or a file and never printed, a new password and a disabled member ending their sessions."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from duopass.cli.app import app
from duopass.demo.serving import free_port
from tests.server.harness import Running, running_server

PASSWORD = "first-admin-pass"


def staff(*args: object, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, ["staff", *(str(arg) for arg in args)], input=stdin)


def _serve_init(data: Path) -> None:
    """`duopass serve --init` on an empty data dir, until it answers, then stopped."""
    port = free_port()
    command = [sys.executable, "-m", "duopass", "serve", "--init", "--data-dir", str(data)]
    server = subprocess.Popen(
        [*command, "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        for _ in range(300):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("duopass serve --init did not answer")
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)
    assert PASSWORD.encode() not in err
    # the hint names the command as it runs from a clone, on this very data dir
    hint = f"`.venv/bin/duopass staff add LOGIN --role admin --data-dir {data}`"
    assert hint in out.decode(), out


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("init") / "data"
    _serve_init(data)
    return data


@pytest.fixture
def fresh(initialised: Path, tmp_path: Path) -> Path:
    """A copy of a data dir as `duopass serve --init` left it (one server start a module)."""
    return Path(shutil.copytree(initialised, tmp_path / "data"))


def _sign_in(server: Running, login: str, password: str) -> httpx.Response:
    return server.http.post("/v1/admin/session", json={"login": login, "password": password})


def _served(data: Path) -> Iterator[Running]:
    with running_server(f"sqlite:///{data / 'duopass.db'}", data) as server:
        yield server


def test_the_first_admin_of_a_fresh_server_from_a_prompt(fresh):
    added = staff("add", "boss", "--role", "admin", "--data-dir", fresh, stdin=f"{PASSWORD}\n" * 2)
    assert added.exit_code == 0, added.output
    assert "staff member boss added as admin" in added.stdout
    assert PASSWORD not in added.output
    for server in _served(fresh):
        answer = _sign_in(server, "boss", PASSWORD)
        assert answer.status_code == 200, answer.text
        auth = {"Authorization": f"Bearer {answer.json()['token']}"}
        assert server.http.get("/v1/admin/holders", headers=auth).status_code == 200
        merchant = server.http.post("/v1/admin/merchants", json={"name": "shop"}, headers=auth)
        assert merchant.status_code == 200  # for admins only


def test_refusals_add_nobody_and_print_no_password(fresh, tmp_path):
    mismatch = staff(
        "add", "boss", "--role", "admin", "--data-dir", fresh, stdin="one-pass-1\ntwo-pass-2\n"
    )
    assert mismatch.exit_code != 0 and "one-pass-1" not in mismatch.output
    short = staff("add", "boss", "--role", "admin", "--data-dir", fresh, stdin="short\nshort\n")
    assert short.exit_code == 2 and "8 to 256 characters" in short.output
    bad_role = staff("add", "boss", "--role", "root", "--data-dir", fresh, stdin="")
    assert bad_role.exit_code == 2
    nowhere = staff(
        "add", "boss", "--role", "admin", "--data-dir", tmp_path / "none", stdin=f"{PASSWORD}\n" * 2
    )
    assert nowhere.exit_code == 2 and "serve --init" in nowhere.output
    assert PASSWORD not in nowhere.output
    missing = staff("disable", "nobody", "--data-dir", fresh)
    assert missing.exit_code == 2 and "no staff member 'nobody'" in missing.output
    for server in _served(fresh):
        assert _sign_in(server, "boss", "one-pass-1").status_code == 401
        assert _sign_in(server, "boss", "short").status_code == 401


def test_a_new_password_and_a_disabled_member_end_their_sessions(fresh, tmp_path):
    secret = tmp_path / "operator.pass"
    secret.write_text("operator-pass-1\n")
    added = staff(
        "add", "olga", "--role", "operator", "--password-file", secret, "--data-dir", fresh
    )
    assert added.exit_code == 0, added.output
    assert (
        staff(
            "add", "olga", "--role", "admin", "--password-file", secret, "--data-dir", fresh
        ).exit_code
        == 2
    )
    for server in _served(fresh):
        token = _sign_in(server, "olga", "operator-pass-1").json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        assert server.http.get("/v1/admin/terminals", headers=auth).status_code == 200
        refused = server.http.post("/v1/admin/merchants", json={"name": "x"}, headers=auth)
        assert refused.status_code == 403  # operators do not create merchants

        changed = staff("passwd", "olga", "--data-dir", fresh, stdin="operator-pass-2\n" * 2)
        assert changed.exit_code == 0 and "1 session(s) ended" in changed.stdout
        assert "operator-pass-2" not in changed.output
        assert server.http.get("/v1/admin/terminals", headers=auth).status_code == 401
        assert _sign_in(server, "olga", "operator-pass-1").status_code == 401
        token = _sign_in(server, "olga", "operator-pass-2").json()["token"]
        auth = {"Authorization": f"Bearer {token}"}

        disabled = staff("disable", "olga", "--data-dir", fresh)
        assert disabled.exit_code == 0 and "1 session(s) ended" in disabled.stdout
        assert server.http.get("/v1/admin/terminals", headers=auth).status_code == 401
        answer = _sign_in(server, "olga", "operator-pass-2")
        assert answer.status_code == 401 and answer.json()["code"] == "unauthenticated"

        enabled = staff("enable", "olga", "--data-dir", fresh)
        assert enabled.exit_code == 0 and "olga enabled" in enabled.stdout
        assert _sign_in(server, "olga", "operator-pass-2").status_code == 200
        again = staff("enable", "olga", "--data-dir", fresh)
        assert again.exit_code == 0 and "was not disabled" in again.stdout


def test_staff_are_listed_and_a_password_set_on_a_disabled_member_says_so(fresh, tmp_path):
    secret = tmp_path / "pass"
    secret.write_text("a-long-password\n")
    for login, role in (("zed", "operator"), ("amy", "admin")):
        added = staff("add", login, "--role", role, "--password-file", secret, "--data-dir", fresh)
        assert added.exit_code == 0, added.output
    assert staff("disable", "zed", "--data-dir", fresh).exit_code == 0
    listed = staff("list", "--data-dir", fresh)
    assert listed.exit_code == 0, listed.output
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert rows == [["amy", "admin", "active"], ["zed", "operator", "disabled"]]
    changed = staff("passwd", "zed", "--password-file", secret, "--data-dir", fresh)
    assert changed.exit_code == 0 and "zed is disabled" in changed.stdout
    assert "a-long-password" not in changed.output
