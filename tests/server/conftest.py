"""The server under test, on a real SQLite file (and PostgreSQL where the test asks for both)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from tests.mail import Mailbox, smtp_fixture  # noqa: F401
from tests.pg import postgres_url_fixture  # noqa: F401
from tests.server.harness import ManualClock, Running, running_server


def _postgres_database(base_url: str) -> str:
    """A fresh database on the test run's PostgreSQL server."""
    name = "t_" + uuid.uuid4().hex[:12]
    engine = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return base_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path) -> Iterator[Running]:
    """The server on SQLite and on PostgreSQL: every test using it runs on both."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'duopass.db'}"
    else:
        url = _postgres_database(request.getfixturevalue("postgres_url"))
    with running_server(url, tmp_path / "data") as running:
        yield running


def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A fresh database of the kind the test's `request.param` names."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'duopass.db'}"
    return _postgres_database(request.getfixturevalue("postgres_url"))


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
    url = _postgres_database(request.getfixturevalue("postgres_url"))
    with running_server(url, tmp_path / "data") as running:
        yield running


@pytest.fixture
def sqlite_server(tmp_path) -> Iterator[Running]:
    with running_server(f"sqlite:///{tmp_path / 'duopass.db'}", tmp_path / "data") as running:
        yield running
