"""How the server runs on uvicorn, once for every caller (`duopass serve`, the servers tests and
the demo start, the benchmark's): the deadlines slow clients get (`api.deadlines`), and no
`Date` header of uvicorn's own, since the app dates its answers by its own clock
(`api.middleware.DateHeader`)."""

from __future__ import annotations

from typing import Any

import uvicorn
from fastapi import FastAPI

from duopass.server.api import deadlines

__all__ = ["uvicorn_config"]


def uvicorn_config(app: FastAPI, *, host: str, port: int, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for `app` on `host:port`; `options` are uvicorn's (logging)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=deadlines.protocol(app.state.context.settings),
        date_header=False,
        **options,
    )
