"""What `duopass backup` and `restore` hand pg_dump and pg_restore as the database: libpq's own
spelling of the server's URL, never its password (PGPASSWORD carries it), and both hosts of a
failover pair (docs/deploy.md, "Failover") so that the tools reach the primary too."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from duopass.server.store.backup_pg import _libpq


@pytest.mark.parametrize(
    ("url", "conninfo"),
    [
        (
            "postgresql+psycopg://u:secret@db.example:5433/duopass",
            "postgresql://u@db.example:5433/duopass",
        ),
        (
            "postgresql+psycopg://u:secret@/duopass?host=10.0.0.1:5432&host=10.0.0.2:5432"
            "&target_session_attrs=read-write",
            "postgresql://u@10.0.0.1:5432,10.0.0.2:5432/duopass?target_session_attrs=read-write",
        ),
        ("postgresql+psycopg:///duopass?host=a:1&host=b:2", "postgresql://a:1,b:2/duopass"),
    ],
)
def test_libpq_gets_every_host_and_no_password(url: str, conninfo: str) -> None:
    found, env = _libpq(make_url(url))
    assert found == conninfo
    assert "secret" not in found
    if "secret" in url:
        assert env["PGPASSWORD"] == "secret"
