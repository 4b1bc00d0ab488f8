"""Raw HTTP/1.1 over a socket, for requests no client library would send, and what the server
logs meanwhile."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

HANG_GUARD_S = 20.0
"""No answer within this means the server hangs: a guard, never a measured timing."""


@dataclass
class Raw:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def parse(data: bytes) -> Raw:
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", ""):
        body = dechunk(body)
    return Raw(int(status_line.split()[1]), headers, body)


def dechunk(data: bytes) -> bytes:
    out = b""
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return out
        out, data = out + data[:size], data[size + 2 :]


def exchange(url: str, request: bytes) -> Raw:
    """Send `request` as is (it asks for `Connection: close`); the whole answer."""
    with socket.create_connection(address(url), timeout=HANG_GUARD_S) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return parse(data)


def request(method: str, target: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body


class Records(logging.Handler):
    """What the server logged, warnings and up."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def logged() -> Iterator[list[logging.LogRecord]]:
    """What the server and uvicorn log (warnings and up); uvicorn's loggers do not propagate."""
    records = Records()
    loggers = [logging.getLogger(name) for name in ("duopass.server", "uvicorn.error", "uvicorn")]
    for logger in loggers:
        logger.addHandler(records)
    try:
        yield records.records
    finally:
        for logger in loggers:
            logger.removeHandler(records)


def chunked(method: str, target: str, headers: dict[str, str], body: bytes) -> bytes:
    """A request whose body comes in 8 KiB chunks, its length declared nowhere."""
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append("Transfer-Encoding: chunked")
    out = "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n"
    for start in range(0, len(body), 8192):
        piece = body[start : start + 8192]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    return out + b"0\r\n\r\n"


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closes the connection before the hang guard (reading what it sends)."""
    sock.settimeout(HANG_GUARD_S)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True
