"""The server under test, on a real SQLite file (and PostgreSQL where the test asks for both).

Each test's database starts as a copy of one migrated by Alembic once per test process (a file
copy on SQLite, `CREATE DATABASE ... TEMPLATE` on PostgreSQL): the same schema, without running
every migration for every test. The migrations themselves run on both databases in every
process that uses these fixtures, and tests of migrations make databases of their own."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from duopass.server.store.db import Database
from tests.mail import Mailbox, smtp_fixture  # noqa: F401
from tests.pg import postgres_url_fixture  # noqa: F401
from tests.server.harness import ManualClock, Running, running_server


@pytest.fixture(scope="session")
def sqlite_schema(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to the newest revision, that tests' databases are copies of."""
    path = tmp_path_factory.mktemp("schema") / "migrated.db"
    database = Database(f"sqlite:///{path}")
    database.migrate()
    assert database.checkpoint()  # everything in the file itself: no write-ahead log to copy
    database.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_schema(postgres_url: str) -> str:
    """The name of a PostgreSQL database migrated to the newest revision, nobody's connection
    open on it, that tests' databases are made from (`TEMPLATE`)."""
    name = _created(postgres_url, "schema_" + uuid.uuid4().hex[:12], template=None)
    database = Database(_on(postgres_url, name))
    database.migrate()
    database.dispose()
    return name


def _on(base_url: str, name: str) -> str:
    return base_url.rsplit("/", 1)[0] + f"/{name}"


def _created(base_url: str, name: str, *, template: str | None) -> str:
    engine = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        like = f' TEMPLATE "{template}"' if template else ""
        connection.execute(text(f'CREATE DATABASE "{name}"{like}'))
    engine.dispose()
    return name


def _postgres_database(request: pytest.FixtureRequest) -> str:
    """A fresh, migrated database on the test run's PostgreSQL server."""
    base_url = request.getfixturevalue("postgres_url")
    template = request.getfixturevalue("postgres_schema")
    return _on(base_url, _created(base_url, "t_" + uuid.uuid4().hex[:12], template=template))


def _sqlite_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated SQLite file in the test's folder."""
    path = tmp_path / "duopass.db"
    shutil.copyfile(request.getfixturevalue("sqlite_schema"), path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path) -> Iterator[Running]:
    """The server on SQLite and on PostgreSQL: every test using it runs on both."""
    url = database_url(request, tmp_path)
    with running_server(url, tmp_path / "data") as running:
        yield running


def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A fresh, migrated database of the kind the test's `request.param` names."""
    if request.param == "sqlite":
        return _sqlite_database(request, tmp_path)
    return _postgres_database(request)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=["sqlite", "postgres"])
def clocked_server(request: pytest.FixtureRequest, tmp_path, clock) -> Iterator[Running]:
    """The server on both databases, on a clock the test moves (`clock`)."""
    url = database_url(request, tmp_path)
    with running_server(url, tmp_path / "data", clock=clock) as running:
        yield running


@pytest.fixture(params=["sqlite", "postgres"])
def mail_server(
    request: pytest.FixtureRequest, tmp_path, clock, smtp: Mailbox
) -> Iterator[Running]:
    """`clocked_server` that mails through the test's SMTP server (`smtp`)."""
    url = database_url(request, tmp_path)
    mail = {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_from": "cards@example.edu"}
    with running_server(url, tmp_path / "data", clock=clock, **mail) as running:
        yield running


@pytest.fixture
def postgres_server(request: pytest.FixtureRequest, tmp_path) -> Iterator[Running]:
    """The server on PostgreSQL only, for what only row locks can show."""
    with running_server(_postgres_database(request), tmp_path / "data") as running:
        yield running


@pytest.fixture
def sqlite_server(request: pytest.FixtureRequest, tmp_path) -> Iterator[Running]:
    url = _sqlite_database(request, tmp_path)
    with running_server(url, tmp_path / "data") as running:
        yield running
