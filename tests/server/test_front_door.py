"""The server's front door, as a newcomer meets it: `make run PORT=...`, a taken port and a second
server on the same SQLite store each refused in one line, a first start that prints no password,
the ledger's verifier key that `duopass audit` takes as the README prints it, the home page, and
API docs that load nothing from another host."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from duopass.demo.serving import free_port, wait_until_up
from duopass.ledger import NoteVerifier, open_checkpoint
from duopass.server.runner import CannotStart, hold_store
from tests.server.conftest import database_url
from tests.server.harness import Running

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
"""The venv running the tests: `make run BIN=...` and `duopass` on PATH use it too."""
COMMAND_TIMEOUT_S = 120


@dataclass
class Served:
    url: str
    port: int
    data: Path
    log: Path  # the server's stdout and stderr, together
    process: subprocess.Popen[bytes]


def _start(command: list[str], *, log: Path, port: int, cwd: Path | None = None) -> Served:
    """Start `command` (a server on `port`) in a process group of its own, and wait until it
    answers; `make` and the server under it are ended together (`_stop`)."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    served = Served(url, port, Path(), log, process)
    try:
        wait_until_up(process, f"{url}/healthz")
    except RuntimeError:
        _stop(served)
        raise RuntimeError(log.read_text()) from None
    return served


def _stop(served: Served) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(served.process.pid, signal.SIGTERM)
    served.process.wait(timeout=COMMAND_TIMEOUT_S)


def _duopass(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "duopass"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`make run PORT=... DATA_DIR=...`, the README's first command, on a port of its own."""
    tmp = tmp_path_factory.mktemp("made")
    port, data = free_port(), tmp / "duopass-data"
    make = ["make", "-o", ".venv/.installed", "run", f"BIN={BIN}"]  # this venv, never rebuilt
    served = _start(
        [*make, f"PORT={port}", f"DATA_DIR={data}"], log=tmp / "make-run.log", port=port, cwd=ROOT
    )
    served.data = data
    try:
        yield served
    finally:
        _stop(served)


def test_make_run_serves_on_the_port_it_is_given(made: Served) -> None:
    assert httpx.get(f"{made.url}/healthz").json() == {"status": "ok", "issuer": "demo-univ"}
    assert f"on http://127.0.0.1:{made.port} " in made.log.read_text()


def test_a_first_start_with_demo_data_prints_no_password_but_where_they_are(made: Served) -> None:
    demo = json.loads((made.data / "demo.json").read_text())
    printed = made.log.read_text()
    assert demo["admin"]["password"] not in printed
    assert demo["holders"]["password"] not in printed
    assert f"demo logins, passwords and enrolment codes: {made.data / 'demo.json'}" in printed
    assert (made.data / "demo.json").stat().st_mode & 0o777 == 0o600
    # the printed way in works: the admin signs in with what demo.json holds
    assert httpx.post(f"{made.url}/v1/admin/session", json=demo["admin"]).status_code == 200


def test_a_second_server_on_the_same_sqlite_store_is_refused_in_one_line(made: Served) -> None:
    second = _duopass("serve", "--data-dir", str(made.data), "--port", str(free_port()))
    assert second.returncode == 2
    assert second.stderr.splitlines() == [
        f"duopass: another duopass server runs on {made.data / 'duopass.db'}: stop it, "
        "or give this one another --data-dir"
    ]
    assert httpx.get(f"{made.url}/healthz").status_code == 200  # the first one serves on


@pytest.mark.parametrize("same_store", [True, False])
def test_a_port_in_use_is_one_line_before_anything_else(
    made: Served, tmp_path: Path, same_store: bool
) -> None:
    data = made.data if same_store else tmp_path / "elsewhere"
    taken = _duopass("serve", "--init", "--data-dir", str(data), "--port", str(made.port))
    assert taken.returncode == 2
    assert taken.stdout == ""
    assert taken.stderr.splitlines() == [
        f"duopass: port {made.port} on 127.0.0.1 is in use (another server?): "
        "choose another with --port"
    ]
    assert same_store or not data.exists()  # refused before it wrote a thing


def test_duopass_audit_runs_as_the_readme_prints_it(made: Served, tmp_path: Path) -> None:
    url = made.url
    line = f'duopass audit --url {url} --key "$(curl -s {url}/v1/ledger/key)"'
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    audit = subprocess.run(
        ["bash", "-c", line],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "audit passed" in audit.stdout
    assert "signature OK" in audit.stdout


@pytest.fixture(params=["postgres"])
def postgres_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return database_url(request, tmp_path)


def test_servers_sharing_postgresql_both_run_and_the_first_says_how_to_add_an_admin(
    postgres_db: str, tmp_path: Path
) -> None:
    data, servers = tmp_path / "data", []
    try:
        for n in range(2):
            port = free_port()
            command = [str(BIN / "duopass"), "serve", "--init", "--db", postgres_db]
            command += ["--data-dir", str(data), "--port", str(port)]
            servers.append(_start(command, log=tmp_path / f"serve-{n}.log", port=port))
        for served in servers:
            assert httpx.get(f"{served.url}/healthz").status_code == 200
        first = servers[0].log.read_text()
        hint = "no staff account yet: create the first admin with `.venv/bin/duopass staff add "
        hint += f"LOGIN --role admin --data-dir {data} --db URL`"
        assert hint in first
        assert not re.search(r"(?i)password", first)
    finally:
        for served in servers:
            _stop(served)


def test_only_a_sqlite_file_is_held_by_one_server(tmp_path: Path) -> None:
    assert hold_store("postgresql+psycopg://postgres@127.0.0.1:5432/duopass") is None
    assert hold_store("sqlite://") is None
    assert hold_store("sqlite:///:memory:") is None
    url = f"sqlite:///{tmp_path / 'duopass.db'}"
    first = hold_store(url)
    assert first is not None
    try:
        with pytest.raises(CannotStart, match="another duopass server runs on"):
            hold_store(url)  # flock: another open file description, refused even in-process
    finally:
        os.close(first)
    again = hold_store(url)  # released with its descriptor
    assert again is not None
    os.close(again)


# -- in process: the key, the page, the docs -------------------------------------------------


def test_the_ledger_key_is_one_line_of_text_that_checks_the_checkpoint(
    sqlite_server: Running,
) -> None:
    answer = sqlite_server.http.get("/v1/ledger/key")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    assert answer.text.endswith("\n")
    assert answer.text.count("\n") == 1
    verifier = NoteVerifier.parse(answer.text.strip())
    assert verifier == sqlite_server.ctx.keyring.ledger.verifier
    assert verifier.name == "demo-univ/ledger"
    note = sqlite_server.http.get("/v1/ledger/checkpoint").content
    assert open_checkpoint(note, verifier).checkpoint.origin == verifier.name


def test_the_ledger_key_is_in_the_openapi_document(sqlite_server: Running) -> None:
    paths = sqlite_server.http.get("/openapi.json").json()["paths"]
    assert "text/plain" in paths["/v1/ledger/key"]["get"]["responses"]["200"]["content"]
    assert "/" not in paths  # the home page is for people, not for API clients


class _Refs(HTMLParser):
    """Every URL a page links, loads or runs."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href", "spec-url"} and value is not None:
                self.refs.append((tag, value))


def _refs(page: str) -> list[tuple[str, str]]:
    parser = _Refs()
    parser.feed(page)
    return parser.refs


def test_the_home_page_says_what_this_server_is_and_links_what_it_serves(
    sqlite_server: Running,
) -> None:
    page = sqlite_server.http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<code>demo-univ</code>" in page.text
    assert "<code>demo-univ/ledger</code>" in page.text
    links = [href for tag, href in _refs(page.text) if tag == "a"]
    wanted = {"/docs", "/redoc", "/healthz", "/v1/ledger/checkpoint", "/v1/ledger/key"}
    assert wanted | {"/console/", "/wallet/"} <= set(links)
    for href in links:  # the console sends a visitor to its sign-in form
        assert sqlite_server.http.get(href, follow_redirects=True).status_code == 200, href
    assert f'duopass audit --url {sqlite_server.url} --key "$(curl -s' in page.text


ASSET_TYPES = {
    "script": ("text/javascript", "application/javascript"),
    "link": ("text/css", "image/png"),
}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_docs_load_nothing_from_another_host(sqlite_server: Running, page: str) -> None:
    answer = sqlite_server.http.get(page)
    assert answer.status_code == 200
    assert re.search(r"https?://|//[a-z]", answer.text) is None, answer.text
    refs = _refs(answer.text)
    assert {tag for tag, _ in refs} >= {"script"}
    for tag, ref in refs:
        assert ref.startswith("/"), ref
        if tag not in ASSET_TYPES:
            continue
        asset = sqlite_server.http.get(ref)
        assert asset.status_code == 200, ref
        assert asset.headers["content-type"].startswith(ASSET_TYPES[tag]), (ref, asset.headers)
        assert len(asset.content) > 1000, ref
    assert sqlite_server.http.get("/openapi.json").status_code == 200


def test_swagger_ui_is_told_not_to_call_its_validator(sqlite_server: Running) -> None:
    """Swagger UI's bundle defaults to a badge from validator.swagger.io (a host off the LAN,
    told the spec's URL): the page turns it off."""
    page = sqlite_server.http.get("/docs").text
    assert '"validatorUrl": null' in page, page
