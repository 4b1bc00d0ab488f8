"""An answer's head and body go to the socket in one write (api/one_write.py), the bytes the same;
what has no body to wait for is written at once, and closing writes a head still waiting."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from duopass.server.api.one_write import OneWrite


class Recorded(asyncio.Transport):
    """A transport that keeps what is written to it, write by write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _cycle(
    method: str = "POST", *, expect_100: bool = False
) -> tuple[RequestResponseCycle, Recorded]:
    socket = Recorded()
    cycle = RequestResponseCycle(
        scope={"type": "http", "method": method, "path": "/", "headers": []},  # type: ignore[typeddict-item]
        transport=socket,
        flow=FlowControl(socket),
        logger=logging.getLogger("test"),
        access_logger=logging.getLogger("test.access"),
        access_log=False,
        default_headers=[],
        message_event=asyncio.Event(),
        expect_100_continue=expect_100,
        keep_alive=True,
        on_response=lambda: None,
    )
    cycle.transport = OneWrite(socket, cycle)
    return cycle, socket


def _start(length: int | None) -> dict[str, Any]:
    headers = [(b"content-type", b"application/json")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http.response.start", "status": 200, "headers": headers}


HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n"


def test_a_head_and_its_body_go_in_one_write() -> None:
    async def answer() -> Recorded:
        cycle, socket = _cycle()
        await cycle.send(_start(11))  # type: ignore[arg-type]
        assert socket.writes == []  # the head waits for its body
        await cycle.send({"type": "http.response.body", "body": b'{"ok":true}'})
        return socket

    socket = asyncio.run(answer())
    assert socket.writes == [HEAD + b'{"ok":true}']


def test_a_body_in_several_parts_after_the_first_is_written_as_it_comes() -> None:
    async def answer() -> Recorded:
        cycle, socket = _cycle()
        await cycle.send(_start(11))  # type: ignore[arg-type]
        await cycle.send({"type": "http.response.body", "body": b'{"ok"', "more_body": True})
        await cycle.send({"type": "http.response.body", "body": b":true}"})
        return socket

    assert asyncio.run(answer()).writes == [HEAD + b'{"ok"', b":true}"]


@pytest.mark.parametrize(
    ("method", "length"),
    [("HEAD", 11), ("POST", 0), ("POST", None)],  # no body sent, an empty one, chunked
)
def test_a_head_with_no_body_to_wait_for_is_written_at_once(
    method: str, length: int | None
) -> None:
    async def answer() -> Recorded:
        cycle, socket = _cycle(method)
        await cycle.send(_start(length))  # type: ignore[arg-type]
        assert len(socket.writes) == 1 and socket.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
        return socket

    asyncio.run(answer())


def test_a_100_continue_is_written_at_once() -> None:
    async def answer() -> Recorded:
        cycle, socket = _cycle(expect_100=True)
        cycle.body, cycle.more_body = bytearray(b"{}"), False
        cycle.message_event.set()  # the body is in, as the protocol says when it is
        await cycle.receive()
        assert socket.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
        await cycle.send(_start(11))  # type: ignore[arg-type]
        await cycle.send({"type": "http.response.body", "body": b'{"ok":true}'})
        return socket

    socket = asyncio.run(answer())
    assert socket.writes[1:] == [HEAD + b'{"ok":true}']


def test_closing_writes_a_head_still_waiting() -> None:
    async def answer() -> Recorded:
        cycle, socket = _cycle()
        await cycle.send(_start(11))  # type: ignore[arg-type]
        cycle.transport.close()  # as uvicorn does when the app fails after starting its answer
        return socket

    socket = asyncio.run(answer())
    assert socket.writes == [HEAD] and socket.closed
