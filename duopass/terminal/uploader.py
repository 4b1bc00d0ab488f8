"""Store and forward (§5.2): journal entries cut into signed batches chained by hash, each
batch's bytes stored before it is sent and resent exactly after a crash; entries are deleted
only up to the `acked_seq` the server answers."""

from __future__ import annotations

import json
import logging

from duopass.protocol.encoding import b64u_encode
from duopass.protocol.journal import (
    BATCH_BYTES_MAX,
    BATCH_ENTRIES_MAX,
    GENESIS,
    batch_hash,
    encode_batch,
)
from duopass.protocol.keys import SigningKey
from duopass.terminal.client import Client, Refused
from duopass.terminal.store import Store, StoredBatch

__all__ = ["BATCHES_PER_ROUND_MAX", "Uploader"]

log = logging.getLogger("duopass.terminal")

BATCHES_PER_ROUND_MAX = 100
"""Most batches one `upload()` sends before it lets the caller breathe."""
_ENVELOPE_BYTES = 256
"""Room for a batch's envelope and signature around its entries."""


class Uploader:
    def __init__(self, store: Store, client: Client, key: SigningKey, *, timeout_s: float) -> None:
        self.store, self.client, self.key, self.timeout_s = store, client, key, timeout_s
        self.terminal_id = store.config().terminal_id

    def upload(self) -> bool:
        """Send stored and new batches until none is left (True), or one fails or is not fully
        acknowledged (False). Raises Unreachable when the server cannot be reached."""
        for _ in range(BATCHES_PER_ROUND_MAX):
            batch = self.store.stored_batch() or self._cut()
            if batch is None:
                return True
            if not self._send(batch):
                return False
        return self.store.stored_batch() is None and self.store.unsent() == 0

    def _cut(self) -> StoredBatch | None:
        """The next batch from the finished entries after the last one, stored before sending."""
        with self.store.transaction() as db:
            stored = self.store.stored_batch()
            if stored is not None:  # another process cut it first
                return stored
            entries, size = [], 0
            for seq, data in self.store.unbatched(db, BATCH_ENTRIES_MAX):
                size += len(data) + 8
                if size > BATCH_BYTES_MAX - _ENVELOPE_BYTES:
                    break
                entries.append((seq, data))
            if not entries:
                return None
            data = encode_batch(
                self.key,
                self.terminal_id,
                first=entries[0][0],
                prev=self.store.chain_head() or GENESIS,
                entries=[entry for _, entry in entries],
            )
            batch = StoredBatch(entries[0][0], entries[-1][0], data, batch_hash(data))
            self.store.store_batch(db, batch)
        return batch

    def _send(self, batch: StoredBatch) -> bool:
        body = json.dumps({"batch": b64u_encode(batch.data)}).encode()
        try:
            answer = self.client.request(
                "POST", "/v1/terminal/journal", body=body, timeout=self.timeout_s
            )
            receipt = answer.json()
        except Refused as exc:
            log.error("journal batch %s..%s refused: %s", batch.first, batch.last, exc)
            return False
        acked = receipt.get("acked_seq") if isinstance(receipt, dict) else None
        if type(acked) is not int or acked < 0:
            log.error("journal receipt without acked_seq")
            return False
        rejected = receipt.get("rejected")
        if isinstance(rejected, list) and rejected:
            log.warning("held for review by the server: %s", json.dumps(rejected[:20]))
        self.store.acknowledge(acked)
        if acked < batch.last:
            log.error("server acknowledged %s of batch %s..%s", acked, batch.first, batch.last)
            return False
        return True
