"""Trust bundle sync: a delta since the version held on a schedule and at every reconnect, the
whole bundle once a day or when a delta does not apply; each verified against the pinned root
key (protocol.bundle) and refused, the held store kept, when it is not. A bundle signed by a
new root whose links lead from the pinned one (protocol.roots) moves the pin to it, saved with
the store (docs/terminal.md, "The root key rotates")."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from duopass.protocol.bundle import BundleError, RootChainError, apply_bundle, open_bundle_following
from duopass.protocol.keys import kid_of
from duopass.protocol.limits import BUNDLE_BYTES_MAX
from duopass.protocol.trust import TrustStore
from duopass.terminal.client import Client, Refused, Unreachable
from duopass.terminal.held_trust import give_back_memory
from duopass.terminal.store import Store

__all__ = ["CLOCK_MOVED_S", "WHOLE_EVERY_S", "BundleSync"]

log = logging.getLogger("duopass.terminal")

CLOCK_MOVED_S = 60
"""A refused request whose answer shows the clock this far from the offset held: read it again."""

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
        held_seq = store.get("root_seq", 0)  # the link seq of the pinned root (0: enrolment's)
        self.root_seq = held_seq if isinstance(held_seq, int) else 0

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
        target = f"/v1/terminal/bundle?since={since}"
        try:
            answer = self.client.request(
                "GET", target, timeout=self.timeout_s, limit=BUNDLE_BYTES_MAX
            )
        except Refused as refused:
            offset = _clock_moved(refused, self.client.offset)
            if offset is None:
                raise
            log.warning(
                "clock moved %+d s: offset read from the refusal", self.client.offset - offset
            )
            self.client.offset = offset
            answer = self.client.request(
                "GET", target, timeout=self.timeout_s, limit=BUNDLE_BYTES_MAX
            )
        if answer.offset is not None:
            self.client.offset = answer.offset
        now = int(self.clock())
        bundle, moved = open_bundle_following(
            answer.body,
            self.root_key,
            iss=self.iss,
            root_seq=self.root_seq,
            now=now + self.client.offset,
        )
        if bundle.iss != self.iss:
            raise BundleError(f"bundle for {bundle.iss!r}, not for {self.iss!r}")
        store = apply_bundle(held, bundle)
        whole = bundle.since == 0
        del answer, bundle
        root = None if moved is None else (moved.key, moved.seq)
        self.store.save_trust(store, whole=whole, now=now, offset=self.client.offset, root=root)
        if moved is not None:
            self.root_key, self.root_seq = moved.key, moved.seq
            pinned = kid_of(moved.key).hex()
            log.warning("root key rotated: pinning %s (link %s)", pinned, moved.seq)
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
        except RootChainError as exc:
            log.error("trust bundle refused (%s): %s", exc.reason, exc)
            return False
        except BundleError as exc:
            log.error("trust bundle refused: %s", exc)
            return False
        log.info("trust bundle seq %s, issued at %s", store.seq, store.issued_at)
        return True


def _clock_moved(refused: Refused, offset: int) -> int | None:
    """The new offset, when a 401's `Date` shows the clock moved (a reset, a jump) since the
    offset held was read: its signed requests fall outside the server's window, and every one
    would be refused until the offset is read again. Read from the refusal as from any answer
    (a `Date` is never signed: it sets a clock, not trust)."""
    if refused.status != 401 or refused.offset is None:
        return None
    return refused.offset if abs(refused.offset - offset) > CLOCK_MOVED_S else None
