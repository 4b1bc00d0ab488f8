"""Connections to a partner's webhook endpoint that go only to an address checked to be public.

Checking a name's addresses and then letting httpx connect would resolve it twice, and a name
with a zero TTL can answer a public address to the check and 127.0.0.1 to the connection (DNS
rebinding). Here the network backend under httpx resolves the host once, when httpx asks it
for a connection (`endpoints.public_addresses`: every address public, or `NotPublic`), and
connects to one of those addresses itself; httpx still sends the name as the `Host` header and
as TLS SNI, and verifies the certificate against the name. Redirects are never followed.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from functools import cache

import httpcore
import httpx

from duopass.server.partners.endpoints import public_addresses

__all__ = ["client"]


class _PublicOnly(httpcore.NetworkBackend):
    """httpcore's own sockets, to an address of the host that `public_addresses` checked."""

    def __init__(self) -> None:
        self._sockets = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        failed: httpcore.ConnectError | None = None
        for address in public_addresses(host, port):  # raises NotPublic
            try:
                return self._sockets.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:  # the next address; a timeout ends it
                failed = exc
        assert failed is not None  # public_addresses returns one address or more
        raise failed

    def sleep(self, seconds: float) -> None:
        self._sockets.sleep(seconds)


class _Transport(httpx.HTTPTransport):
    """httpx's transport over `_PublicOnly` (httpx takes no network backend of its own, so its
    connection pool is replaced by one that has it)."""

    def __init__(self, tls: ssl.SSLContext) -> None:
        super().__init__(verify=tls, trust_env=False)
        self._pool = httpcore.ConnectionPool(ssl_context=tls, network_backend=_PublicOnly())


@cache
def _tls() -> ssl.SSLContext:
    return httpx.create_ssl_context(trust_env=False)


def client(timeout: httpx.Timeout) -> httpx.Client:
    """A client for one delivery to a partner's endpoint, closed after it."""
    return httpx.Client(
        transport=_Transport(_tls()), timeout=timeout, follow_redirects=False, trust_env=False
    )
