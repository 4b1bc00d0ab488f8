"""Work the server does by itself on a schedule: rotate daily signing keys (publishing them
ahead), release what time settles (the sweep), and sign a checkpoint when the ledger has grown.
One thread, stopped with the app."""

from __future__ import annotations

import logging
import threading

from duopass.server.context import Context
from duopass.server.services import auth, ledger, signing, sweep

log = logging.getLogger("duopass.server.maintenance")
INTERVAL_S = 60.0


def run_once(ctx: Context) -> None:
    now = ctx.now()
    created = ctx.run(lambda s: signing.rotate(s, ctx.keyring, ctx.settings, now))
    if created:
        log.info("created %d signing keys", created)
    swept = ctx.run(lambda s: sweep.sweep(s, ctx.keyring, ctx.settings, now))
    if swept.credentials or swept.verdicts:
        log.info("sweep: %s", swept)
    ctx.run(lambda s: ledger.checkpoint(s, ctx.keyring.ledger, now))
    ctx.run(lambda s: auth.purge(s, now))


class Maintenance:
    """Runs `run_once` every `interval` seconds until `stop`; a failure is logged, not fatal."""

    def __init__(self, ctx: Context, interval: float = INTERVAL_S) -> None:
        self.ctx, self.interval = ctx, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="duopass-maintenance", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                run_once(self.ctx)
            except Exception:
                log.exception("maintenance failed; retrying next interval")
