"""Trust bundle sync: a delta since the version held on a schedule and at every reconnect, the
whole bundle once a day or when a delta does not apply; each verified against the pinned root
key (protocol.bundle) and refused, the held store kept, when it is not."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from duopass.protocol.bundle import BundleError, apply_bundle, open_bundle
from duopass.protocol.limits import BUNDLE_BYTES_MAX
from duopass.protocol.trust import TrustStore
from duopass.terminal.client import Client, Refused, Unreachable
from duopass.terminal.held_trust import give_back_memory
from duopass.terminal.store import Store

__all__ = ["WHOLE_EVERY_S", "BundleSync"]

log = logging.getLogger("duopass.terminal")

WHOLE_EVERY_S = 86_400
"""A whole bundle at least this often: deltas never remove (expired keys, old revocations)."""


class BundleSync:
    def __init__(
        self,
        store: Store,
        client: Client,
        *,
        timeout_s: float,
        on_update: Callable[[TrustStore], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.client, self.timeout_s = store, client, timeout_s
        self.on_update, self.clock = on_update, clock
        config = store.config()
        self.iss, self.root_key = config.iss, config.root_key

    def sync(self) -> TrustStore:
        """Fetch, verify and apply the next bundle; raises Unreachable, Refused or
        BundleError (the store held is kept)."""
        held = self.store.trust()
        whole_at = self.store.get("bundle_whole_at", 0)
        stale = not isinstance(whole_at, int) or self.clock() - whole_at >= WHOLE_EVERY_S
        since = 0 if held is None or stale else held.seq
        try:
            return self._apply(held, since)
        except BundleError:
            if since == 0:
                raise
            log.info("delta since %s does not apply: fetching the whole bundle", since)
            return self._apply(held, 0)

    def _apply(self, held: TrustStore | None, since: int) -> TrustStore:
        answer = self.client.request(
            "GET",
            f"/v1/terminal/bundle?since={since}",
            timeout=self.timeout_s,
            limit=BUNDLE_BYTES_MAX,
        )
        if answer.offset is not None:
            self.client.offset = answer.offset
        bundle = open_bundle(answer.body, self.root_key)
        if bundle.iss != self.iss:
            raise BundleError(f"bundle for {bundle.iss!r}, not for {self.iss!r}")
        store = apply_bundle(held, bundle)
        whole = bundle.since == 0
        del answer, bundle
        self.store.save_trust(store, whole=whole, now=int(self.clock()), offset=self.client.offset)
        if whole:
            give_back_memory()
        if self.on_update is not None:
            self.on_update(store)
        return store

    def try_sync(self) -> bool:
        """`sync`, logging instead of raising: for the background thread."""
        try:
            store = self.sync()
        except (Unreachable, Refused) as exc:
            log.info("bundle sync failed: %s", exc)
            return False
        except BundleError as exc:
            log.error("trust bundle refused: %s", exc)
            return False
        log.info("trust bundle seq %s, issued at %s", store.seq, store.issued_at)
        return True
