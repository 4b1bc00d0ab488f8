"""The demo's own issuer server: on 127.0.0.1, SQLite in the demo's folder, the demo data of
`duopass serve --demo`, a free port, in this process (uvicorn in a thread)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from duopass.demo.rush import Server, connect
from duopass.demo.seed import seed
from duopass.demo.serving import serving
from duopass.server.app import create_app
from duopass.server.keyring import Keyring
from duopass.server.settings import Settings


@contextmanager
def own_server(work_dir: Path) -> Iterator[Server]:
    """A server of our own on 127.0.0.1: SQLite in `work_dir`, demo data, a free port."""
    data = work_dir / "server"
    settings = Settings(db_url=f"sqlite:///{data / 'duopass.db'}", data_dir=data)
    app = create_app(settings, keyring=Keyring.create(data, origin="demo-univ/ledger"))
    document = seed(app.state.context, data / "demo.json")
    assert document is not None, "a new database"
    with serving(app) as url:
        yield connect(url, document)
