"""`duopass serve --workers 3` on PostgreSQL, and the key commands run beside it: after
`duopass keys rotate-root` every worker signs its next bundle with the new root (carrying the
link from the old), with no restart; after `duopass keys revoke-signing` no worker's whole
bundle lists the key and a wallet synced through any worker gets a credential under another."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from typer.testing import CliRunner

from duopass.cli.app import app as cli
from duopass.demo.serving import free_port, wait_until_up
from duopass.protocol.bundle import open_bundle
from duopass.protocol.code import decode_code
from duopass.server import roots
from duopass.server.keyring import Keyring
from tests.pg import postgres_url_fixture  # noqa: F401
from tests.server.conftest import _postgres_database
from tests.server.harness import ADMIN_PASSWORD, Admin, enrolled_till, ready_wallet
from tests.server.test_workers import _fresh, _until_every_worker


def test_every_worker_signs_with_the_rotated_root_and_drops_a_revoked_key(tmp_path, request):
    data, port, log = tmp_path / "data", free_port(), tmp_path / "server.log"
    db = _postgres_database(request)
    command = [sys.executable, "-m", "duopass", "serve", "--init", "--workers", "3"]
    command += ["--db", db, "--data-dir", str(data)]
    with log.open("wb") as out:
        server = subprocess.Popen([*command, "--port", str(port)], stdout=out)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(server, f"{url}/healthz", timeout_s=60)
        where = ["--data-dir", str(data), "--db", db]
        password = tmp_path / "password"
        password.write_text(ADMIN_PASSWORD + "\n")
        added = CliRunner().invoke(
            cli,
            ["staff", "add", "admin", "--role", "admin", "--password-file", str(password), *where],
        )
        assert added.exit_code == 0, added.output
        with httpx.Client(base_url=url, **_fresh()) as http:
            _rotate_and_revoke(http, data, log, where)
    finally:
        server.terminate()
        assert server.wait(timeout=60) == 0


def _rotate_and_revoke(http: httpx.Client, data: Path, log: Path, where: list[str]) -> None:
    signed_in = http.post("/v1/admin/session", json={"login": "admin", "password": ADMIN_PASSWORD})
    admin = Admin(http, {"Authorization": f"Bearer {signed_in.json()['token']}"})
    till, _ = enrolled_till(http, admin, "k-till")
    old = till.root_key
    _until_every_worker(log, 0, 200, lambda: open_bundle(till.bundle(), old))  # each has signed

    rotated_at = log.stat().st_size
    done = CliRunner().invoke(cli, ["keys", "rotate-root", "--by", "admin", *where])
    assert done.exit_code == 0, done.output
    new = roots.current(data, Keyring.load(data).root).key.public
    assert new != old

    def under_the_new_root() -> None:
        assert len(open_bundle(till.bundle(), new).root_links) == 1

    _until_every_worker(log, rotated_at, 200, under_the_new_root)

    wallet = ready_wallet(http, admin, "kai", balance=10_000)
    kid = decode_code(wallet.code()).credential.kid
    revoked_at = log.stat().st_size
    done = CliRunner().invoke(cli, ["keys", "revoke-signing", kid.hex(), "--by", "admin", *where])
    assert done.exit_code == 0, done.output

    def without_it() -> None:
        keys = open_bundle(till.bundle(), new).keys_added
        assert keys and kid not in {key.kid for key in keys}

    _until_every_worker(log, revoked_at, 200, without_it)
    for n in range(6):  # each on a fresh connection: whichever worker mints, not with it
        fresh = ready_wallet(http, admin, f"kai-{n}", balance=1_000)
        assert decode_code(fresh.code()).credential.kid != kid
