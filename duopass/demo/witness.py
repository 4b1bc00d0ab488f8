"""A C2SP tlog-witness of our own (tests and the demo): `POST /add-checkpoint` on 127.0.0.1 for
one log, keeping the latest checkpoint it cosigned in a file of its folder (`held.note`,
replaced atomically before it answers), so a restarted witness still refuses a fork, and the
log's key it follows now (`log.key`, once a handover checkpoint moved it on from the key it was
given). The decision itself is `duopass.ledger.witness.decide`."""

from __future__ import annotations

import http.server
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from duopass.ledger import Checkpoint, LedgerError, NoteVerifier, open_checkpoint
from duopass.ledger.cosignature import Cosigner
from duopass.ledger.rotation import follow
from duopass.ledger.witness import ADD_CHECKPOINT_BYTES_MAX, decide, parse_add_checkpoint

__all__ = ["Witness", "running_witness"]


class Witness:
    """The witness's state: the log's key, its own cosigner, the checkpoint held, and the clock
    its cosignatures state (a test's witness may run behind)."""

    def __init__(
        self,
        folder: Path,
        log_key: NoteVerifier,
        cosigner: Cosigner,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.folder, self.first_key, self.cosigner, self.clock = folder, log_key, cosigner, clock
        self._lock = threading.Lock()
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def log_key(self) -> NoteVerifier:
        """The log's key the witness trusts now: the one it was given, or where the handover
        checkpoints it cosigned led."""
        path, held = self.folder / "log.key", self.folder / "held.note"
        key = NoteVerifier.parse(path.read_text().strip()) if path.exists() else self.first_key
        if held.exists():  # held.note is replaced first: a handover held names the key
            key = follow(held.read_bytes(), key)[1]
        return key

    @property
    def held(self) -> Checkpoint | None:
        path = self.folder / "held.note"
        if not path.exists():
            return None
        return open_checkpoint(path.read_bytes(), self.log_key).checkpoint

    def add_checkpoint(self, body: bytes) -> tuple[int, str, bytes]:
        """(HTTP status, content type, body) for one request."""
        try:
            request = parse_add_checkpoint(body)
        except LedgerError as exc:
            return 400, "text/plain", str(exc).encode()
        with self._lock:
            decision = decide(request, self.held, self.log_key, self.cosigner, int(self.clock()))
            if decision.status == 409:
                return 409, "text/x.tlog.size", f"{decision.held_size}\n".encode()
            if decision.status != 200:
                return decision.status, "text/plain", decision.detail.encode()
            _replace(self.folder / "held.note", request.note)
            if decision.log_key is not None:
                _replace(self.folder / "log.key", f"{decision.log_key.vkey()}\n".encode())
        return 200, "text/plain; charset=utf-8", decision.cosignature


def _replace(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


@contextmanager
def running_witness(witness: Witness) -> Iterator[str]:
    """The witness over HTTP on 127.0.0.1 (a free port) for the block; yields its base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if self.path != "/add-checkpoint":
                status, kind, body = 404, "text/plain", b"not found"
            elif not 0 < length <= ADD_CHECKPOINT_BYTES_MAX:
                status, kind, body = 400, "text/plain", b"a body of bounded length"
            else:
                status, kind, body = witness.add_checkpoint(self.rfile.read(length))
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="duopass-witness", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
