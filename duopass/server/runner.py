"""How the server runs on uvicorn, once for every caller (`duopass serve`, the servers tests and
the demo start, the benchmark's): the deadlines slow clients get (`api.deadlines`), no `Date`
header of uvicorn's own, since the app dates its answers by its own clock
(`api.middleware.DateHeader`), and none of its proxy headers (the app reads them itself, from
trusted proxies only: `api.forwarded`). And what `duopass serve` takes before it builds the app,
so that a server that cannot start says why in one line: its listening socket, and the lock that
makes it the one server on a SQLite store."""

from __future__ import annotations

import errno
import socket
from pathlib import Path
from typing import Any, Final

import uvicorn
from fastapi import FastAPI
from sqlalchemy import make_url

from duopass import lockfile
from duopass.server.api import deadlines
from duopass.server.limits import REQUEST_HEAD_BYTES_MAX

__all__ = ["CannotStart", "hold_store", "listen", "uvicorn_config"]

BACKLOG: Final = 2048
"""Connections the kernel queues for a listener (uvicorn's default)."""
STORE_LOCK_SUFFIX: Final = ".lock"
"""The lock file of a SQLite store is the database file's name with this added."""


class CannotStart(Exception):
    """The server cannot start: the message is the one line that says why."""


def uvicorn_config(app: FastAPI, *, host: str, port: int, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for `app` on `host:port`; `options` are uvicorn's (logging)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=deadlines.protocol(app.state.context.settings),
        h11_max_incomplete_event_size=REQUEST_HEAD_BYTES_MAX,
        loop="uvloop",
        date_header=False,
        # uvicorn would trust X-Forwarded-For from 127.0.0.1 (or $FORWARDED_ALLOW_IPS) even
        # with no proxy in front: any local client could name its address
        proxy_headers=False,
        **options,
    )


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on `host:port`, for `uvicorn.Server.run(sockets=[...])`. Taken before
    the app is built, so a port in use is known before anything is migrated or printed;
    connections made while the app is built wait in the backlog."""
    where = f"{host}:{port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise CannotStart(f"cannot listen on {where}: {exc.strerror}") from exc
    sock = socket.socket(family, kind, proto)
    # as uvicorn does: a restart needn't wait out the old connections' TIME_WAIT
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CannotStart(
                f"port {port} on {host} is in use (another server?): choose another with --port"
            ) from exc
        raise CannotStart(f"cannot listen on {where}: {exc.strerror}") from exc
    return sock


def hold_store(db_url: str) -> int | None:
    """Make this process the one server on a SQLite store: a lock on `<database>.lock` beside
    the file, held until the returned descriptor is closed (or the process ends). Servers of one
    issuer may share a PostgreSQL database, so for one the answer is None and nothing is held."""
    url = make_url(db_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    database = Path(url.database)
    path = database.with_name(database.name + STORE_LOCK_SUFFIX)
    try:
        return lockfile.hold(path)
    except lockfile.Held as exc:
        raise CannotStart(
            f"another duopass server runs on {database}: stop it, or give this one "
            "another --data-dir"
        ) from exc
    except OSError as exc:
        raise CannotStart(f"cannot lock {path}: {exc.strerror}") from exc
