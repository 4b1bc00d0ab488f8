"""An enrolled terminal put together: store, client, link, agent, and the background threads
(link probe, bundle sync, uploader, heartbeat). One agent per data directory, held by a lock file;
`duopass terminal upload` and `status` may run beside it."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from duopass import lockfile
from duopass.protocol.reasons import Reason
from duopass.terminal.bundles import BundleSync
from duopass.terminal.client import Client, Unreachable
from duopass.terminal.enrol import load_key
from duopass.terminal.heartbeat import try_beat
from duopass.terminal.issuers import IssuerError, issuer_dirs, issuer_of, pick
from duopass.terminal.link import Link, State
from duopass.terminal.scan import PinEntry, Result, ScanPath
from duopass.terminal.store import DB_NAME, Store
from duopass.terminal.uploader import Uploader

__all__ = ["AgentSettings", "Busy", "NotEnrolled", "TerminalAgent"]

log = logging.getLogger("duopass.terminal")

_BACKOFF_MAX_S = 60.0
_LOCK_NAME = "agent.lock"


class Busy(Exception):
    """Another agent holds this data directory."""


class NotEnrolled(Exception):
    """The data directory holds no enrolled terminal."""


@dataclass(frozen=True, kw_only=True)
class AgentSettings:
    timeout_s: float = 0.3
    """The online timeout of a scan (§ PRODUCT: the terminal fallback)."""
    timeouts_max: int = 2
    probe_s: float = 1.0
    upload_s: float = 5.0
    upload_timeout_s: float = 10.0
    bundle_s: float = 300.0
    heartbeat_s: float = 300.0
    """An idle terminal's heartbeat (duopass.risk.fleet.HEARTBEAT_S): the server alerts after
    two missed and a minute's grace."""
    server: str | None = None
    """Another URL for the enrolled server (a proxy, a new address)."""


class _Periodic:
    """Run `work` every `every_s`, at once when woken, backing off while it fails."""

    def __init__(self, name: str, every_s: float, work: Callable[[], bool]) -> None:
        self.every_s, self.work = every_s, work
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout_s: float) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout_s)

    def _run(self) -> None:
        delay = 0.0
        while not self._stop.is_set():
            self._wake.wait(delay)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                ok = self.work()
            except Exception:  # a background job must never die; the next round retries
                log.exception("%s failed", self._thread.name)
                ok = False
            delay = self.every_s if ok else min(max(delay * 2, self.every_s), _BACKOFF_MAX_S)


class TerminalAgent:
    """Everything `duopass terminal run` needs, as a context manager."""

    def __init__(
        self,
        data_dir: Path,
        settings: AgentSettings | None = None,
        *,
        exclusive: bool = True,
        clock: Callable[[], float] = time.time,
        issuers: bool = True,
    ) -> None:
        """`clock` is the terminal's wall clock (scan times, signed request times, bundle and
        acceptance ages); tests give a manual one to live hours in a moment. With `issuers`, the
        enrolments with other issuers below the data directory are opened too (`others`)."""
        self.settings = settings or AgentSettings()
        self.clock = clock
        self.data_dir = data_dir
        if not (data_dir / DB_NAME).is_file():
            raise NotEnrolled(f"{data_dir} holds no terminal: run `duopass terminal enrol`")
        self._lock_fd: int | None = _lock(data_dir) if exclusive else None
        self.store = Store(data_dir)
        if not self.store.enrolled:
            self.store.close()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
            raise NotEnrolled(f"{data_dir} holds no enrolled terminal")
        config = self.store.config()
        self.client = Client(
            self.settings.server or config.server,
            terminal_id=config.terminal_id,
            key=load_key(data_dir),
            offset=self.store.clock_offset,
            clock=clock,
        )
        self.link = Link(
            self.client,
            timeout_s=self.settings.timeout_s,
            probe_s=self.settings.probe_s,
            timeouts_max=self.settings.timeouts_max,
            on_change=self._link_changed,
        )
        self.scan_path = ScanPath(
            self.store, self.client, self.link, timeout_s=self.settings.timeout_s, clock=clock
        )
        self.bundles = BundleSync(
            self.store,
            self.client,
            timeout_s=self.settings.upload_timeout_s,
            on_update=self.scan_path.set_trust,
            clock=clock,
        )
        self.uploader = Uploader(
            self.store,
            self.client,
            self.client.key,  # type: ignore[arg-type]
            timeout_s=self.settings.upload_timeout_s,
        )
        self._threads = [
            _Periodic("duopass-bundles", self.settings.bundle_s, self._sync),
            _Periodic("duopass-upload", self.settings.upload_s, self.try_upload),
            _Periodic("duopass-heartbeat", self.settings.heartbeat_s, self._beat),
        ]
        for thread in self._threads:
            self.link.on_reconnect(thread.wake)
        self.iss = config.iss
        self.others: list[TerminalAgent] = []
        if issuers:
            self._open_others(exclusive)
        self.by_issuer = {agent.iss: agent for agent in (self, *self.others)}

    def _open_others(self, exclusive: bool) -> None:
        """The enrolments with other issuers (docs/terminal.md, "Several issuers"), each with
        its own server: the `--server` override is the first enrolment's only."""
        settings = dataclasses.replace(self.settings, server=None)
        try:
            for path in issuer_dirs(self.data_dir):
                self.others.append(
                    TerminalAgent(
                        path, settings, exclusive=exclusive, clock=self.clock, issuers=False
                    )
                )
        except IssuerError as exc:
            self.close()
            raise NotEnrolled(f"{self.data_dir}: {exc}") from exc
        except BaseException:
            self.close()
            raise

    @property
    def agents(self) -> tuple[TerminalAgent, ...]:
        """This enrolment and those with other issuers, the first first."""
        return (self, *self.others)

    def scan(
        self, text: str, *, amount: int | None = None, pin_entry: PinEntry | None = None
    ) -> Result:
        """One scan, decided by the enrolment of the issuer the code names, verified against
        that issuer's store only and journalled in its chain; a code of an issuer this terminal
        is not enrolled with is refused (UNKNOWN_KEY) and journalled in the first's. With one
        enrolment, `scan_path.scan`."""
        if not self.others:
            return self.scan_path.scan(text, amount=amount, pin_entry=pin_entry)
        iss = issuer_of(text)
        agent = pick(self.by_issuer, self, iss)
        if agent is None:
            assert iss is not None
            return self.scan_path.refuse(text, amount=amount, reason=Reason.UNKNOWN_KEY, iss=iss)
        return agent.scan_path.scan(text, amount=amount, pin_entry=pin_entry)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def recover(self) -> list[int]:
        """After a crash: journal the interrupted scans, forget expired acceptances."""
        seqs = self.scan_path.recover()
        self.store.forget_until(int(self.clock()) + self.client.offset)
        for other in self.others:
            seqs += other.recover()
        return seqs

    def start(self) -> None:
        """The background threads: probe, bundle sync, uploader and heartbeat (each at once)."""
        self._link_changed(self.link.state)
        self.link.start()
        for thread in self._threads:
            thread.start()
        for other in self.others:
            other.start()

    def _sync(self) -> bool:
        """The bundle job: the trust bundle, and acceptances past their `keep_until` dropped."""
        self.store.forget_until(int(self.clock()) + self.client.offset)
        return self.bundles.try_sync()

    def _beat(self) -> bool:
        return try_beat(self.store, self.client, timeout_s=self.settings.upload_timeout_s)

    def try_upload(self) -> bool:
        """This enrolment's journal to its server (the background job: each enrolment runs
        its own)."""
        try:
            done = self.uploader.upload()
        except Unreachable as exc:
            log.info("upload failed: %s", exc)
            return False
        if done:
            self.link.succeeded()
        return done

    def try_upload_all(self) -> bool:
        """Every enrolment's journal, each to its own issuer's server."""
        results = [agent.try_upload() for agent in self.agents]  # every one, not the first
        return all(results)

    def close(self) -> None:
        while self.others:
            self.others.pop().close()
        for thread in self._threads:
            thread.stop(self.settings.upload_timeout_s + 5)
        self.link.stop()
        self.client.close()
        self.store.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _link_changed(self, state: State) -> None:
        self.store.put(link=state.value, link_changed_at=int(self.clock()))


def _lock(data_dir: Path) -> int:
    try:
        return lockfile.hold(data_dir / _LOCK_NAME)
    except lockfile.Held as exc:
        raise Busy(f"another terminal agent runs on {data_dir}") from exc
