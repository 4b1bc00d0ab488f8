"""Deadlines for slow clients: uvicorn's h11 protocol, closing connections that stall.

uvicorn closes a connection left idle after a response (`timeout_keep_alive`) and nothing else:
a client that opens a connection and never finishes its headers, or its body, holds it and a file
descriptor until it goes away, however slowly it sends. Here a request's headers must all arrive
within `header_timeout_s` of its first byte (of the connection's opening, for its first request),
and its body within `body_timeout_s` of the end of its headers. Both deadlines run from their
start: bytes dribbled in do not move them, so a slowloris gains nothing by sending. A request
being answered has no deadline of ours; its handler's own time is not the client's fault.
"""

from __future__ import annotations

import asyncio
import logging
from enum import Enum
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from duopass.server.settings import Settings

__all__ = ["DeadlineH11Protocol", "protocol"]

log = logging.getLogger("duopass.server.api.deadlines")


class _Awaiting(Enum):
    HEADERS = "headers"
    BODY = "body"


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for a request's headers and one for its body."""

    header_timeout_s: float = 5.0
    body_timeout_s: float = 60.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting: _Awaiting | None = None
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._await(None)
        super().connection_lost(exc)

    def _watch(self) -> None:
        """Start the deadline of what the connection now waits for from the client."""
        if self.transport.is_closing():
            self._await(None)
        elif self.conn.their_state is h11.SEND_BODY:
            self._await(_Awaiting.BODY)
        elif self.conn.their_state is h11.IDLE and self.timeout_keep_alive_task is None:
            # No keep-alive timer: either bytes of a request's head are in, or none has come
            # since the connection opened (or since a body uvicorn read past an early answer).
            self._await(_Awaiting.HEADERS)
        else:  # answering, or idle between requests under uvicorn's keep-alive timer
            self._await(None)

    def _await(self, awaiting: _Awaiting | None) -> None:
        if awaiting is self._awaiting:
            return  # a deadline runs from its start
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._awaiting = awaiting
        if awaiting is not None:
            timeout = (
                self.header_timeout_s if awaiting is _Awaiting.HEADERS else self.body_timeout_s
            )
            self._deadline = self.loop.call_later(timeout, self._expired)

    def _expired(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            # Closed without an answer: the client may have sent nothing yet (a connection opened
            # ahead of need), and a 408 read as the answer to the request it sends next is worse
            # than a closed connection it opens again.
            log.debug("closing %s: its %s did not arrive in time", self.client, self._awaiting)
            self.transport.close()


def protocol(settings: Settings) -> type[H11Protocol]:
    """uvicorn's `http=` protocol class, with the deadlines of `settings`."""
    return type(
        "DeadlineH11Protocol",
        (DeadlineH11Protocol,),
        {
            "header_timeout_s": settings.header_timeout_s,
            "body_timeout_s": settings.body_timeout_s,
        },
    )
