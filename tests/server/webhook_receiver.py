"""A webhook receiver on 127.0.0.1 for tests: a small HTTP server that verifies every request
with standardwebhooks' own `Webhook.verify` (against each secret it is given), keeps what it
accepted in arrival order, and answers as the test says. It can go down (its socket closed:
connections are refused) and come back on the same port."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from duopass.demo.serving import free_port


@dataclass(frozen=True)
class Got:
    webhook_id: str
    body: dict[str, Any]
    verified_by: tuple[int, ...]
    """Which of the receiver's secrets (by index) verify the request on their own."""
    signatures: int


@dataclass
class Receiver:
    secrets: list[str] = field(default_factory=list)
    status: int = 204
    """What it answers a request that verifies."""
    port: int = field(default_factory=free_port)
    got: list[Got] = field(default_factory=list)
    """Requests that verified and were answered 2xx, in arrival order."""
    tried: int = 0
    refused: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                status = receiver.receive(body, dict(self.headers.items()))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        self._server = None

    def receive(self, body: bytes, headers: dict[str, str]) -> int:
        verified = []
        for n, secret in enumerate(self.secrets):
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            verified.append(n)
        with self._lock:
            self.tried += 1
            if not verified:
                self.refused += 1
                return 401
            if 200 <= self.status < 300:
                lowered = {k.lower(): v for k, v in headers.items()}
                self.got.append(
                    Got(
                        lowered["webhook-id"],
                        json.loads(body),
                        tuple(verified),
                        len(lowered["webhook-signature"].split(" ")),
                    )
                )
            return self.status

    def ids(self) -> list[str]:
        return [got.webhook_id for got in self.got]

    def types(self) -> list[str]:
        return [got.body["type"] for got in self.got]
