"""The terminal's HTTP client: every request signed with the terminal key (protocol.requests),
every answer bounded in size, and the server's clock read from its `Date` header.

Two kinds of failure: `Unreachable` (no answer in time, connection refused or cut, a 5xx) is the
link's business and sends scans offline; `Refused` (a 4xx problem document) means the server is
there but will not serve this request.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from duopass.protocol.encoding import EncodingError, parse_digits
from duopass.protocol.keys import SigningKey
from duopass.protocol.signed_requests import sign_request

__all__ = ["ANSWER_BYTES_MAX", "Answer", "Client", "Refused", "Unreachable"]

ANSWER_BYTES_MAX = 1024 * 1024
"""Largest JSON answer read (a journal receipt lists at most 500 rejected entries)."""
_SCAN_WORKERS = 4
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_CONFIRMATION = re.compile(r"[A-Za-z0-9_-]{1,32}")
"""A confirmation id as the server makes them (unpadded base64url)."""
_IMF_FIXDATE = re.compile(
    rf"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (..) ({'|'.join(_MONTHS)}) (....) (..):(..):(..) GMT"
)


class Unreachable(Exception):
    """No usable answer: timeout, refused or cut connection, or a server error (5xx)."""

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


class Refused(Exception):
    """The server answered with a problem document (4xx)."""

    def __init__(
        self, status: int, code: str, offset: int | None = None, confirmation: str | None = None
    ) -> None:
        super().__init__(f"HTTP {status} {code}")
        self.status, self.code, self.offset = status, code, offset
        """`offset`: server time minus terminal time, from the refusal's `Date`, if any."""
        self.confirmation = confirmation
        """A `pin_required`'s confirmation id: the holder may approve it in their wallet."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    offset: int | None
    """Server time minus terminal time when the answer arrived (from `Date`), if it had one."""

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError) as exc:  # also 4,300+ digit numbers, deep nesting
            raise Refused(self.status, "answer is not JSON") from exc


class Client:
    """Signed requests to one server. Thread-safe; `close()` when done."""

    def __init__(
        self,
        server: str,
        *,
        terminal_id: str = "",
        key: SigningKey | None = None,
        offset: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.terminal_id, self.key, self.offset, self.clock = terminal_id, key, offset, clock
        self._http = httpx.Client(base_url=server.rstrip("/"), follow_redirects=False)
        self._pool = ThreadPoolExecutor(_SCAN_WORKERS, thread_name_prefix="duopass-scan")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._http.close()

    def request(
        self,
        method: str,
        target: str,
        *,
        body: bytes = b"",
        timeout: float,
        signed: bool = True,
        limit: int = ANSWER_BYTES_MAX,
    ) -> Answer:
        """One request, its answer read up to `limit` bytes; raises Unreachable or Refused."""
        headers = {"Content-Type": "application/json"} if body else {}
        if signed:
            assert self.key is not None, "an enrolled terminal signs its requests"
            headers |= sign_request(
                self.key,
                self.terminal_id,
                method=method,
                target=target,
                time=int(self.clock()) + self.offset,
                body=body,
            )
        try:
            with self._http.stream(
                method, target, content=body or None, headers=headers, timeout=timeout
            ) as response:
                data = bytearray()
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) > limit:
                        raise Refused(response.status_code, "answer too large")
                offset = _offset(response.headers.get("date"), self.clock())
                status = response.status_code
        except httpx.TimeoutException as exc:
            raise Unreachable(f"no answer within {timeout} s", timeout=True) from exc
        except httpx.HTTPError as exc:
            raise Unreachable(f"{type(exc).__name__}: {exc}") from exc
        if status >= 500:
            raise Unreachable(f"server error {status}")
        if status >= 400:
            code, confirmation = _problem(bytes(data))
            raise Refused(status, code, offset, confirmation)
        return Answer(status, bytes(data), offset)

    def request_within(self, deadline_s: float, method: str, target: str, **kw: Any) -> Answer:
        """`request` bounded in total time (connect, send and read together), for scans: after
        `deadline_s` the caller moves on, and the request finishes or fails on its own."""
        future: Future[Answer] = self._pool.submit(
            self.request, method, target, timeout=deadline_s, **kw
        )
        try:
            return future.result(timeout=deadline_s)
        except FutureTimeout as exc:
            future.cancel()  # still queued behind stuck requests: never sent
            raise Unreachable(f"no answer within {deadline_s} s", timeout=True) from exc


def _offset(date: str | None, now: float) -> int | None:
    """Server time minus `now`, from a `Date` in IMF-fixdate, the one form a server sends
    (RFC 9110 §5.6.7). `email.utils` reads any Unicode digit and underscores in a date; an
    answer without a readable date leaves the clock offset as it was."""
    match = _IMF_FIXDATE.fullmatch(date) if date is not None else None
    if match is None:
        return None
    day, month, year, hour, minute, second = match.groups()
    try:
        when = datetime(
            parse_digits(year, digits_max=4),
            _MONTHS.index(month) + 1,
            parse_digits(day, digits_max=2),
            parse_digits(hour, digits_max=2),
            parse_digits(minute, digits_max=2),
            parse_digits(second, digits_max=2),
            tzinfo=UTC,
        )
    except (EncodingError, ValueError):  # ValueError: 31 Feb, hour 24, a leap second
        return None
    return round(when.timestamp() - now)


def _problem(body: bytes) -> tuple[str, str | None]:
    """A problem document's code, and its confirmation id if it has a well-formed one."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return "unknown", None
    if not isinstance(doc, dict):
        return "unknown", None
    code, confirmation = doc.get("code"), doc.get("confirmation")
    if not isinstance(confirmation, str) or not _CONFIRMATION.fullmatch(confirmation):
        confirmation = None
    return (code[:64] if isinstance(code, str) else "unknown"), confirmation
