"""The access log: one line a request in the combined log form (Apache's `combined`), carried as
the `message` of a JSON line whose fields hold the same values apart.

    127.0.0.1 - - [05/Dec/2026:18:41:07 +0800] "GET /healthz HTTP/1.1" 200 15 "-" "curl/8.5.0"

Both, because the server writes one stream in one format (a collector parses JSON once), and the
message can be fed as is to tools that read combined logs (`jq -r 'select(.event=="request")
.message'`). The user field is always `-`: a bearer token is never logged, nor anything made
from it. Query parameters whose names look secret (token, code, password, key...) keep their
names and lose their values. The client is the request's client address: behind a trusted
proxy, the one it forwarded, and the proxy in the JSON line's `proxy` field (api.forwarded).
Off with `duopass serve --no-access-log`.
"""

from __future__ import annotations

import logging
import re
import time
from functools import lru_cache
from urllib.parse import parse_qsl, quote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from duopass.server.api.forwarded import PEER_KEY
from duopass.server.logbook import ACCESS, REDACTED, Event, secret_name

__all__ = ["AccessLog", "combined", "redacted_query"]

FIELD_CHARS_MAX = 1024
"""Longest request target, referer or user agent logged; the rest is cut."""
QUERY_PARAMS_MAX = 50
"""Most query parameters logged; a longer query string is logged as `[redacted]`."""


class AccessLog:
    """Log every HTTP request once its answer is sent (or has failed)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not ACCESS.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started, answer = time.time(), {"status": 500, "bytes": 0}

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = int(message["status"])
            elif message["type"] == "http.response.body":
                answer["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counted)
        finally:
            _log(scope, answer["status"], answer["bytes"], started)


def _log(scope: Scope, status: int, sent: int, started: float) -> None:
    referer = agent = "-"
    for raw_name, value in scope.get("headers", []):
        name = raw_name.lower()
        if name == b"referer":
            referer = _cut(value.decode("latin-1"))
        elif name == b"user-agent":
            agent = _cut(value.decode("latin-1"))
    client = scope.get("client")
    host = client[0] if client else "-"
    proxy = scope.get(PEER_KEY)  # set only behind a trusted proxy (api.forwarded)
    target = (scope.get("raw_path") or scope.get("path", "").encode()).decode("latin-1")
    query = scope.get("query_string", b"").decode("latin-1")
    if query:
        target += "?" + redacted_query(query)
    request_line = f"{scope.get('method', '-')} {target} HTTP/{scope.get('http_version', '1.1')}"
    message = combined(
        host,
        at=started,
        request_line=request_line,
        status=status,
        sent=sent,
        referer=referer,
        agent=agent,
    )
    fields = {
        "client": host,
        "method": scope.get("method"),
        "path": _cut(scope.get("path", "")),
        "status": status,
        "bytes": sent,
        "duration_ms": round((time.time() - started) * 1000, 1),
    }
    if proxy:
        fields["proxy"] = proxy[0]
    # As ACCESS.info(message, extra=...) would, less its search of the stack for the caller's
    # file and line, which no line shows
    extra = {"event": Event.REQUEST.value, "fields": fields}
    ACCESS.handle(
        ACCESS.makeRecord(ACCESS.name, logging.INFO, "", 0, message, (), None, None, extra)
    )


def combined(
    host: str, *, at: float, request_line: str, status: int, sent: int, referer: str, agent: str
) -> str:
    """`host ident user [time] "request" status bytes "referer" "user-agent"`."""
    size = str(sent) if sent else "-"
    return (
        f'{host} - - [{_stamp(int(at))}] "{_quoted(request_line)}" {status} {size} '
        f'"{_quoted(referer)}" "{_quoted(agent)}"'
    )


@lru_cache(maxsize=4)
def _stamp(second: int) -> str:
    """The local time of a second as the combined log form writes it (made once a second)."""
    return time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(second))


PERSONAL_PARAMS = frozenset({"q"})
"""Query parameters that carry what a clerk searched for (a name, a number, an e-mail): personal
data, which an erasure could not reach in a log, so never logged."""


def redacted_query(query: str) -> str:
    """The query string with the values of secret-looking and personal parameters replaced."""
    params = parse_qsl(query, keep_blank_values=True)
    if len(params) > QUERY_PARAMS_MAX:
        return REDACTED
    return "&".join(
        f"{quote(name)}={REDACTED if _hidden(name) else quote(value)}" for name, value in params
    )


def _hidden(name: str) -> bool:
    return secret_name(name) or name.lower() in PERSONAL_PARAMS


_PLAIN = re.compile(r"[ !#-\[\]-~]*")
"""Printable ASCII but `"` and `\\`: a field `_quoted` leaves as it is."""


def _cut(text: str) -> str:
    return text[:FIELD_CHARS_MAX]


def _quoted(text: str) -> str:
    """As Apache writes a quoted field: `"` and `\\` escaped, other controls as `\\xhh`."""
    text = _cut(text)
    if _PLAIN.fullmatch(text):
        return text  # the usual field: printable ASCII, nothing to escape
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif not char.isprintable() or ord(char) > 0x7E:
            out.append(f"\\x{ord(char) & 0xFF:02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "".join(out)
