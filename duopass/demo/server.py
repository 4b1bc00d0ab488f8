"""The demo's own issuer server: on 127.0.0.1, SQLite in the demo's folder, the demo data of
`duopass serve --demo`, a free port, in this process (uvicorn in a thread)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from duopass.demo.rush import Server, connect
from duopass.server.app import create_app
from duopass.server.config import Settings
from duopass.server.demo import seed
from duopass.server.keyring import Keyring


@contextmanager
def own_server(work_dir: Path) -> Iterator[Server]:
    """A server of our own on 127.0.0.1: SQLite in `work_dir`, demo data, a free port."""
    data = work_dir / "server"
    settings = Settings(db_url=f"sqlite:///{data / 'duopass.db'}", data_dir=data)
    app = create_app(settings, keyring=Keyring.create(data, origin="demo-univ/ledger"))
    document = seed(app.state.context, data / "demo.json")
    assert document is not None, "a new database"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the demo's server did not start")
        time.sleep(0.05)
    try:
        yield connect(f"http://127.0.0.1:{port}", document)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
