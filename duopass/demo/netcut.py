"""A TCP proxy on 127.0.0.1 that cuts the network between a terminal and the server on demand:
it forwards, holds the server's answers (the request gets through, its answer never comes back),
stops answering altogether (connections accepted, nothing passes) or refuses (closes at once)."""

from __future__ import annotations

import contextlib
import socket
import threading
from enum import StrEnum

_POLL_S = 0.1
_CHUNK = 65536


class Mode(StrEnum):
    FORWARD = "forward"
    HOLD = "hold"
    SILENT = "silent"
    REFUSE = "refuse"


class _Pair:
    def __init__(self, client: socket.socket, upstream: socket.socket | None) -> None:
        self.client, self.upstream = client, upstream
        self.held = False
        self.closed = threading.Event()

    def close(self) -> None:
        self.closed.set()
        for sock in (self.client, self.upstream):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()


class Proxy:
    """`url` points at the proxy; `mode` and `hold_prefix` may change at any time."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.mode = Mode.FORWARD
        self.hold_prefix: bytes | None = None
        """In FORWARD: hold the answers on a connection once a request starts with this."""
        self.held_requests = 0
        self._pairs: list[_Pair] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(_POLL_S)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def set(self, mode: Mode, *, hold_prefix: bytes | None = None) -> None:
        with self._lock:
            self.mode, self.hold_prefix = mode, hold_prefix
            if mode is Mode.REFUSE:
                for pair in self._pairs:
                    pair.close()
                self._pairs.clear()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()
        with self._lock:
            for pair in self._pairs:
                pair.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            mode = self.mode
            if mode is Mode.REFUSE:
                client.close()
                continue
            upstream = None
            if mode is not Mode.SILENT:
                try:
                    upstream = socket.create_connection(("127.0.0.1", self.upstream_port), 5)
                except OSError:
                    client.close()
                    continue
            pair = _Pair(client, upstream)
            with self._lock:
                self._pairs.append(pair)
            threading.Thread(target=self._pump_up, args=(pair,), daemon=True).start()
            if upstream is not None:
                threading.Thread(target=self._pump_down, args=(pair,), daemon=True).start()

    def _pump_up(self, pair: _Pair) -> None:
        """Client to server: dropped while silent; marks the connection held on a prefix."""
        pair.client.settimeout(_POLL_S)
        while not pair.closed.is_set() and not self._stop.is_set():
            try:
                data = pair.client.recv(_CHUNK)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            if self.mode is Mode.SILENT or pair.upstream is None:
                continue
            if self.hold_prefix is not None and data.startswith(self.hold_prefix):
                pair.held = True
                self.held_requests += 1
            try:
                pair.upstream.sendall(data)
            except OSError:
                break
        pair.close()

    def _pump_down(self, pair: _Pair) -> None:
        """Server to client: withheld while holding or silent (the connection stays open)."""
        assert pair.upstream is not None
        pair.upstream.settimeout(_POLL_S)
        while not pair.closed.is_set() and not self._stop.is_set():
            try:
                data = pair.upstream.recv(_CHUNK)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            if pair.held or self.mode in (Mode.HOLD, Mode.SILENT):
                pair.held = True  # the rest of this answer never arrives either
                continue
            try:
                pair.client.sendall(data)
            except OSError:
                break
        if not pair.held:
            pair.close()
