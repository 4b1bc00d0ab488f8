"""ASGI middleware: refuse bodies over the limit before reading them whole; date every answer
by the server's own clock."""

from __future__ import annotations

from collections.abc import Callable
from email.utils import formatdate
from functools import lru_cache
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from duopass.protocol.encoding import EncodingError, parse_digits
from duopass.server.limits import CONTENT_LENGTH_DIGITS_MAX
from duopass.server.problems import ProblemCode, problem_response


class BodyLimit:
    """`limit` bytes for every body, or the limit `paths` names for that exact path."""

    def __init__(self, app: ASGIApp, limit: int, paths: dict[str, int] | None = None) -> None:
        self.app, self.limit, self.paths = app, limit, paths or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.paths.get(scope.get("path", ""), self.limit)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and not _within(declared, limit):
            await _too_large(scope, receive, send, limit)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit)
            return message

        await self.app(scope, limited, send)


def _within(declared: bytes, limit: int) -> bool:
    """Whether a declared body length is a number of at most `limit` (h11 lets only digits
    through, but this middleware may run behind another server)."""
    try:
        length = parse_digits(declared.decode("latin-1"), digits_max=CONTENT_LENGTH_DIGITS_MAX)
    except EncodingError:
        return False
    return length <= limit


class _TooLarge(HTTPException):
    """Raised in the app's own reading of the body (a chunked one: its length was not declared).
    FastAPI's body reader passes an HTTPException on to the problem handler; any other exception
    it turns into 'There was an error parsing the body', a 422."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes")


async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    response: Any = problem_response(ProblemCode.BODY_TOO_LARGE, f"request body over {limit} bytes")
    await response(scope, receive, send)


@lru_cache(maxsize=2)
def _date(second: int) -> bytes:
    """A second as the `Date` header writes it (made once a second)."""
    return formatdate(second, usegmt=True).encode()


class DateHeader:
    """The `Date` header (RFC 9110 §6.6.1) from the server's clock, not the wall clock:
    terminals set their clock offset by it, so it must agree with the times the server
    answers and records (the server is run with uvicorn's own Date header off)."""

    def __init__(self, app: ASGIApp, clock: Callable[[], float]) -> None:
        self.app, self.clock = app, clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def dated(message: Message) -> None:
            if message["type"] == "http.response.start":
                date = _date(int(self.clock()))
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"date"]
                message = {**message, "headers": [*headers, (b"date", date)]}
            await send(message)

        await self.app(scope, receive, dated)
