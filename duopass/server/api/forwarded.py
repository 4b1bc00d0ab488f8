"""The client's address behind trusted reverse proxies: an ASGI step, installed only when
`trusted_proxies` is set, that puts the address `X-Forwarded-For` names in `scope["client"]`,
so throttles, the access log and the risk engine all read the same one.

A request whose TCP peer is a trusted proxy is read from the right of its `X-Forwarded-For`
(each proxy appends the address it was reached from), skipping hops that are trusted proxies
themselves: the first untrusted hop is the client; if every hop is trusted, the leftmost. What
lies left of the client's own address is the client's to write, so it is never parsed: no
client can make its address unreadable or the header too long to read. A hop that is not an IP
address (a misconfigured proxy writes `unknown` or `unix:`) or a chain of more trusted proxies
than `FORWARDED_HOPS_MAX` leaves the peer's address: never an error, the request is counted
against the proxy. Any other peer's header is ignored.

uvicorn's own `ProxyHeadersMiddleware` is not used (`runner.uvicorn_config` turns it off): it
trusts 127.0.0.1 unless told otherwise, so a local client could name any address, and it takes
any text as the client (an address the throttles cannot count).

The same trusted proxy's `X-Forwarded-Proto` (its last value: the nearest proxy's word) sets
`scope["scheme"]` when it is `https` or `http`, so a proxy that ends TLS still gets the console's
cookies marked `Secure`; any other value, or any other peer's header, is ignored."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from functools import lru_cache

from starlette.types import ASGIApp, Receive, Scope, Send

from duopass.server.limits import FORWARDED_HOP_CHARS_MAX, FORWARDED_HOPS_MAX

__all__ = ["PEER_KEY", "ForwardedFor", "Proxies", "ip_of"]

PEER_KEY = "duopass.peer"
"""Where the scope keeps the proxy's own `(host, port)` once the client is the forwarded one."""
_HEADER = b"x-forwarded-for"
_PROTO = b"x-forwarded-proto"
_SCHEMES = {b"https": "https", b"http": "http"}
_MAPPED = bytes(10) + b"\xff\xff"
"""The first 12 bytes of an IPv4 address mapped into IPv6 (`::ffff:a.b.c.d`)."""
CACHED = 4096
"""Peers, and headers, whose answers are kept: a proxy forwards the same clients again and
again."""
HEADER_CACHED_BYTES = 256
"""Longest header whose answer is kept (a key the cache holds on to)."""

Ip = tuple[str, int, int]
"""An IP address: its canonical text, its width in bits (32 or 128) and its value."""


def ip_of(text: str) -> Ip | None:
    """The IP address `text` is (an IPv4 address mapped into IPv6 as IPv4), or None. By
    `inet_pton`, some ten times faster than `ipaddress` (which costs 7 us a parse): this runs
    for every hop read."""
    family, bits = (socket.AF_INET6, 128) if ":" in text else (socket.AF_INET, 32)
    try:
        packed = socket.inet_pton(family, text)
    except (OSError, ValueError):  # not an address; a NUL or a character not ASCII
        return None
    if bits == 128 and packed[:12] == _MAPPED:
        family, bits, packed = socket.AF_INET, 32, packed[12:]
    return socket.inet_ntop(family, packed), bits, int.from_bytes(packed)


class Proxies:
    """The trusted proxies' networks."""

    def __init__(self, networks: Iterable[str]) -> None:
        parsed = (ipaddress.ip_network(network, strict=False) for network in networks)
        self.networks = tuple(
            (net.max_prefixlen, int(net.network_address), int(net.netmask)) for net in parsed
        )
        self.peer = lru_cache(maxsize=CACHED)(self._peer)
        self._kept = lru_cache(maxsize=CACHED)(self._client)

    def trust(self, ip: Ip) -> bool:
        _, bits, value = ip
        return any(bits == width and value & mask == net for width, net, mask in self.networks)

    def _peer(self, host: str) -> bool:
        """Whether a TCP peer's host is a trusted proxy (cached: peers are few and recur)."""
        ip = ip_of(host)
        return ip is not None and self.trust(ip)

    def client(self, header: bytes) -> tuple[str, int] | None:
        """The client `header` (every `X-Forwarded-For` line, joined by commas) names, as
        `(host, port)`; None if the peer's address stands (module docstring)."""
        if len(header) <= HEADER_CACHED_BYTES:
            return self._kept(header)
        return self._client(header)

    def _client(self, header: bytes) -> tuple[str, int] | None:
        hops = header.rsplit(b",", FORWARDED_HOPS_MAX)
        unread = len(hops) > FORWARDED_HOPS_MAX
        hop = None
        for raw in reversed(hops[1:] if unread else hops):
            hop = _hop(raw)
            if hop is None:
                return None
            if not self.trust(hop[0]):
                return hop[0][0], hop[1]
        if unread or hop is None:
            return None  # all trusted, and more of them than are read
        return hop[0][0], hop[1]  # all trusted: the leftmost


def _hop(raw: bytes) -> tuple[Ip, int] | None:
    """One hop: `ip`, `ipv4:port` or `[ipv6]:port`; None if it is none of these."""
    text = raw.strip().decode("latin-1")
    if len(text) > FORWARDED_HOP_CHARS_MAX:
        return None
    port = "0"
    if text.startswith("["):
        text, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port = rest[1:] if rest else port
    elif text.count(":") == 1:
        text, _, port = text.partition(":")
    ip = ip_of(text)
    if ip is None or not (port.isdigit() and port.isascii() and int(port) <= 65535):
        return None
    return ip, int(port)


class ForwardedFor:
    """Put the forwarded client in `scope["client"]` for a request from a trusted proxy; the
    proxy itself in `scope[PEER_KEY]`."""

    def __init__(self, app: ASGIApp, trusted: Iterable[str]) -> None:
        self.app, self.proxies = app, Proxies(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client")
        if scope["type"] == "http" and peer and self.proxies.peer(peer[0]):
            lines = [value for name, value in scope["headers"] if name == _HEADER]
            client = self.proxies.client(b",".join(lines)) if lines else None
            if client is not None:
                scope[PEER_KEY], scope["client"] = peer, client
            protos = [value for name, value in scope["headers"] if name == _PROTO]
            scheme = (
                _SCHEMES.get(protos[-1].rsplit(b",", 1)[-1].strip().lower()) if protos else None
            )
            if scheme is not None:
                scope["scheme"] = scheme
        await self.app(scope, receive, send)
