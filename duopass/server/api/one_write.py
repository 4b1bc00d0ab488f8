"""An answer's head and body in one write: one `send()` on the socket, not two.

uvicorn writes a response's head when the app starts it and its body when the app sends it: two
calls into the transport, each a system call on the socket (uvloop writes at once when it can),
and the first of them wakes the client. For the usual answer, a JSON body of a known length sent
right after its start, that is one system call more than needed on every request: some percent
of a small request's CPU. `OneWrite` stands between a request's cycle and its transport: a head
whose body is to follow (a Content-Length above zero, not a HEAD request) waits for the body's
first write and goes with it; anything else (a `100 Continue`, a chunked answer, an empty one)
is written at once, and closing the connection writes what waits first. The bytes on the wire
are the same, in the same order.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

__all__ = ["OneWrite"]


class OneWrite(asyncio.Transport):
    """The transport a request's cycle writes to (module docstring)."""

    __slots__ = ("_cycle", "_head", "_headed", "_transport")

    def __init__(self, transport: asyncio.Transport, cycle: RequestResponseCycle) -> None:
        super().__init__()
        self._transport, self._cycle = transport, cycle
        self._head: bytes | None = None
        self._headed = False
        """Whether the head went by (held or written)."""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._transport.write(head + bytes(data))
            return
        cycle = self._cycle
        if not self._headed and cycle.response_started:
            self._headed = True  # the first write once the answer started is its head
            if (
                cycle.chunked_encoding is False
                and cycle.expected_content_length > 0
                and cycle.scope["method"] != "HEAD"
            ):
                self._head = bytes(data)
                return
        self._transport.write(data)

    def flush(self) -> None:
        """Write a head still waiting for its body."""
        head = self._head
        if head is not None:
            self._head = None
            self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def abort(self) -> None:
        self._head = None
        self._transport.abort()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._head or b"")
