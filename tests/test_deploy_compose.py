"""compose.yaml's server command and environment run as the container runs them, through
deploy/entrypoint.sh, against a real PostgreSQL and a Redis that wants a password: only the
host names, the port, the data directory and the secrets' paths are replaced (this machine runs
no containers, and a test server binds to 127.0.0.1). The workers start after the parent has
migrated the empty database, answer /healthz, read the Redis password from its file, and stop
on SIGTERM with status 0; `duopass staff add` runs beside them as docs/deploy.md has it run
(there with a password prompt), and the admin it adds signs in (a sign-in the risk engine counts
in Redis, so a wrong Redis password would fail it)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from duopass.demo.serving import free_port, wait_until_up
from tests.deploy import ENTRYPOINT, compose, interpolate, run
from tests.pg import postgres_url_fixture  # noqa: F401
from tests.redis import OwnRedis

VARIABLES = {"DUOPASS_ISSUER": "deploy-univ", "DUOPASS_WORKERS": "2"}
"""What an operator's .env would say (docs/deploy.md); the rest keep compose.yaml's defaults."""
ADMIN_PASSWORD = "a long enough passphrase"
ADMIN = {"login": "admin", "password": ADMIN_PASSWORD}
IN_CONTAINER = {
    "--host": "0.0.0.0",
    "--port": "8000",
    "--data-dir": "/var/lib/duopass",
    "--db": "postgresql+psycopg://duopass@postgres:5432/duopass",
    "--redis-url": "redis://redis:6379/0",
}
"""The values the test replaces, as compose.yaml gives them (checked: a change there is seen)."""


@pytest.fixture
def database(postgres_url: str) -> Iterator[str]:
    """An empty database of its own on the run's server: the server migrates it at start."""
    name = "deploy_" + uuid.uuid4().hex[:12]
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture
def guarded_redis() -> Iterator[tuple[str, str]]:
    """A Redis of the test's own that answers only with a password, as compose.yaml's does."""
    with OwnRedis() as own:
        password = secrets.token_hex(16)
        client = redis.Redis.from_url(own.url)
        client.config_set("requirepass", password)
        client.close()
        yield own.url, password


def _command(port: int, data: Path, db: str, redis_url: str) -> list[str]:
    given = [interpolate(word, VARIABLES) for word in compose()["services"]["server"]["command"]]
    here = {"--host": "127.0.0.1", "--port": str(port), "--data-dir": str(data)}
    here |= {"--db": db, "--redis-url": redis_url}
    for flag, value in here.items():
        at = given.index(flag) + 1
        assert given[at] == IN_CONTAINER[flag], flag
        given[at] = value
    assert given[:2] == ["duopass", "serve"]
    return [str(ENTRYPOINT), sys.executable, "-m", "duopass", *given[1:]]


def _environment(secrets_dir: Path) -> dict[str, str]:
    """compose.yaml's environment for the server, its /run/secrets/NAME files in `secrets_dir`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DUOPASS_"))}
    for name, given in compose()["services"]["server"]["environment"].items():
        value = interpolate(str(given), VARIABLES)
        if value.startswith("/run/secrets/"):
            value = str(secrets_dir / value.removeprefix("/run/secrets/"))
        env[name] = value
    return env


def test_the_compose_server_command_migrates_serves_and_stops(tmp_path, database, guarded_redis):
    redis_url, redis_password = guarded_redis
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "postgres_password").write_text("unused: the test server trusts 127.0.0.1\n")
    (secrets_dir / "redis_password").write_text(redis_password + "\n")
    port, data, log = free_port(), tmp_path / "data", tmp_path / "server.log"
    env = _environment(secrets_dir)
    with log.open("wb") as out:
        server = subprocess.Popen(_command(port, data, database, redis_url), stdout=out, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(server, f"{url}/healthz", timeout_s=120)
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok", "issuer": "deploy-univ"}
        (tmp_path / "admin-password").write_text(ADMIN_PASSWORD + "\n")
        staff_add = ["staff", "add", "admin", "--role", "admin", "--data-dir", str(data)]
        staff_add += ["--db", database, "--password-file", str(tmp_path / "admin-password")]
        added = run([str(ENTRYPOINT), sys.executable, "-m", "duopass", *staff_add], env=env)
        assert added.returncode == 0, added.stderr
        # A sign-in is counted by the risk engine in Redis: with a wrong password (or none) it
        # would be 503 `busy`, Redis refusing the server.
        signed_in = httpx.post(f"{url}/v1/admin/session", json=ADMIN, timeout=30)
        assert signed_in.status_code == 200, signed_in.text
        counted = redis.Redis.from_url(redis_url, password=redis_password)
        assert counted.keys("duopass:*")
        counted.close()
    finally:
        server.terminate()
        assert server.wait(timeout=60) == 0
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert sum(e["event"] == "serving" for e in events) == 1
    names = {path.name for path in data.iterdir()}
    keys = {"digest.key", "ledger.key", "oauth.pem", "root.jwk", "wrap.key"}
    kept = {"ledger-checkpoint.json", ".ledger-checkpoint.lock"}  # once a checkpoint is signed
    assert keys <= names and names - keys <= kept, names  # the keys, and no database file
    assert not [e for e in events if e["level"] in {"ERROR", "CRITICAL"}]
