"""Work the server does by itself on a schedule: rotate daily signing keys (publishing them
ahead), release what time settles (the sweep), watch the terminal fleet (`fleet_watch`), sign a
checkpoint when the ledger has grown, and forget what sessions, throttles, the risk features,
the risk engine's decision records and the webhooks' delivery log no longer need.
One thread, stopped with the app."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod

from duopass.server.context import AppContext
from duopass.server.partners import deliveries
from duopass.server.services import (
    fleet_watch,
    risk_engine,
    risk_features,
    rollback,
    sessions,
    signing_keys,
    sweep,
    throttle,
    tlog,
)
from duopass.server.store.reach import is_unavailable

log = logging.getLogger("duopass.server.maintenance")
INTERVAL_S = 60.0


def run_once(ctx: AppContext) -> None:
    if not rollback.watch(ctx):  # a store behind the outside checkpoint: nothing is done
        return
    created = ctx.run(signing_keys.rotate)
    if created:
        log.info("created %d signing keys", created)
    swept = ctx.run(sweep.sweep)
    if swept.credentials or swept.verdicts:
        log.info("sweep: %s", swept)
    raised = ctx.run(fleet_watch.watch)
    if raised:
        log.info("fleet: %d alerts raised", raised)
    ctx.run(tlog.checkpoint)
    ctx.run(lambda u: sessions.purge(u.session, u.now))
    ctx.run(lambda u: throttle.purge(u.session, u.now))
    ctx.run(lambda u: risk_features.store_for(u).expire(now=u.now))
    ctx.run(risk_engine.expire)
    ctx.run(deliveries.purge)


class Periodic(ABC):
    """Runs `work` every `interval` seconds in a thread of its own until `stop`; a failure is
    logged, not fatal, and the next interval tries again."""

    def __init__(self, name: str, interval: float) -> None:
        self.name, self.interval = name, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"duopass-{name}", daemon=True)

    @abstractmethod
    def work(self) -> None:
        """One round (a subclass's)."""

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.work()
            except Exception as exc:
                if is_unavailable(exc):  # a failover: said in one line, tried again next time
                    log.warning("%s: database unavailable; retrying next interval", self.name)
                else:
                    log.exception("%s failed; retrying next interval", self.name)


class Maintenance(Periodic):
    """`run_once` every `interval` seconds."""

    def __init__(self, ctx: AppContext, interval: float = INTERVAL_S) -> None:
        super().__init__("maintenance", interval)
        self.ctx = ctx

    def work(self) -> None:
        run_once(self.ctx)
