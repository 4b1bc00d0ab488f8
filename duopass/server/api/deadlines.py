"""Deadlines for slow clients: uvicorn's HTTP protocols, closing connections that stall.

uvicorn closes a connection left idle after a response (`timeout_keep_alive`) and nothing else:
a client that opens a connection and never finishes its headers, or its body, holds it and a file
descriptor until it goes away, however slowly it sends. Here a request's headers must all arrive
within `header_timeout_s` of its first byte (of the connection's opening, for its first request),
and its body within `body_timeout_s` of the end of its headers. Both deadlines run from their
start: bytes dribbled in do not move them, so a slowloris gains nothing by sending. A request
being answered has no deadline of ours; its handler's own time is not the client's fault.

Two parsers, one behaviour: httptools (llhttp, in C: the server's, some 0.3 ms of CPU a request
cheaper) and h11 (pure Python: `Settings.http_parser = "h11"`). llhttp streams a head through
callbacks and buffers nothing, so the httptools protocol also refuses a head that grows past
`REQUEST_HEAD_BYTES_MAX` before it is complete, as h11 does: 400, connection closed.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from enum import Enum
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from duopass.server.api.one_write import OneWrite
from duopass.server.limits import REQUEST_HEAD_BYTES_MAX
from duopass.server.settings import Settings

__all__ = ["DeadlineH11Protocol", "DeadlineHttpToolsProtocol", "protocol"]

log = logging.getLogger("duopass.server.api.deadlines")


class _Awaiting(Enum):
    HEADERS = "headers"
    BODY = "body"


class _Deadlines(asyncio.Protocol, ABC):
    """The timer of whatever the connection waits for from the client; the protocol says what
    that is (`_awaited`) after each event that may change it."""

    header_timeout_s: float = 5.0
    body_timeout_s: float = 60.0
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    client: Any

    def _start_deadlines(self) -> None:
        self._awaiting: _Awaiting | None = None
        self._deadline: asyncio.TimerHandle | None = None

    @abstractmethod
    def _awaited(self) -> _Awaiting | None:
        """What the connection now waits for from the client, if anything (the parser's view)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._await(None)
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._watch()

    def _watch(self) -> None:
        """Start the deadline of what the connection now waits for from the client."""
        self._await(None if self.transport.is_closing() else self._awaited())

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


class DeadlineH11Protocol(_Deadlines, H11Protocol):
    """uvicorn's h11 protocol with a deadline for a request's headers and one for its body."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._start_deadlines()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def _awaited(self) -> _Awaiting | None:
        if self.conn.their_state is h11.SEND_BODY:
            return _Awaiting.BODY
        if self.conn.their_state is h11.IDLE and self.timeout_keep_alive_task is None:
            # No keep-alive timer: either bytes of a request's head are in, or none has come
            # since the connection opened (or since a body uvicorn read past an early answer).
            return _Awaiting.HEADERS
        return None  # answering, or idle between requests under uvicorn's keep-alive timer


class DeadlineHttpToolsProtocol(_Deadlines, HttpToolsProtocol):
    """uvicorn's httptools protocol with the same two deadlines, and h11's limit on a head."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._start_deadlines()
        self._reading: _Awaiting | None = None  # the part of a request the parser is in
        self._head_bytes = 0

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._reading is not _Awaiting.HEADERS:
            self._watch()
            return
        # a head still incomplete counts every segment it spans, the one it began in whole
        # (at most a pipelined request's tail over): a head that came in one piece counts too
        self._head_bytes += len(data)
        if self._head_bytes > REQUEST_HEAD_BYTES_MAX:
            msg = "Invalid HTTP request received."  # uvicorn's words for h11's refusal
            self.logger.warning(msg)
            self.send_400_response(msg)
        self._watch()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading, self._head_bytes = _Awaiting.HEADERS, 0

    def on_headers_complete(self) -> None:
        self._reading = _Awaiting.BODY
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.transport is self.transport:  # a new request's cycle
            cycle.transport = OneWrite(self.transport, cycle)  # its head and body in one write

    def on_message_complete(self) -> None:
        self._reading = None
        super().on_message_complete()

    def _awaited(self) -> _Awaiting | None:
        if self._reading is not None:
            return self._reading  # a head or a body begun (the head from its first byte)
        idle = self.cycle is None or self.cycle.response_complete
        if idle and self.timeout_keep_alive_task is None:
            return _Awaiting.HEADERS  # nothing since the connection opened
        return None  # answering, or idle between requests under uvicorn's keep-alive timer


def protocol(settings: Settings) -> type[asyncio.Protocol]:
    """uvicorn's `http=` protocol class for `settings.http_parser`, with its deadlines."""
    base: type[_Deadlines] = (
        DeadlineH11Protocol if settings.http_parser == "h11" else DeadlineHttpToolsProtocol
    )
    return type(
        base.__name__,
        (base,),
        {
            "header_timeout_s": settings.header_timeout_s,
            "body_timeout_s": settings.body_timeout_s,
        },
    )
