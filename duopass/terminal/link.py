"""Whether scans go to the server: online, or offline with a background probe.

Online, every scan asks the server. A refused or cut connection sends the link offline at once;
timeouts do after `timeouts_max` in a row (one slow answer is not an outage). Offline, no scan
waits on the network: a probe thread asks `GET /healthz` every `probe_s` and the first answer
brings the link back, telling the listeners (bundle sync, uploader) that it reconnected.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from enum import StrEnum

from duopass.terminal.client import Client, Refused, Unreachable

__all__ = ["Link", "State"]

log = logging.getLogger("duopass.terminal")


class State(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class Link:
    def __init__(
        self,
        client: Client,
        *,
        timeout_s: float,
        probe_s: float,
        timeouts_max: int = 2,
        on_change: Callable[[State], None] | None = None,
    ) -> None:
        self.client, self.timeout_s, self.probe_s = client, timeout_s, probe_s
        self.timeouts_max = timeouts_max
        self._on_change = on_change
        self._listeners: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._state = State.ONLINE
        self._timeouts = 0
        self._stop = threading.Event()
        self._probe: threading.Thread | None = None

    @property
    def state(self) -> State:
        return self._state

    @property
    def online(self) -> bool:
        return self._state is State.ONLINE

    def on_reconnect(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def succeeded(self) -> None:
        """The server answered (any request): the link is up."""
        with self._lock:
            self._timeouts = 0
            changed = self._state is State.OFFLINE
            self._state = State.ONLINE
        if changed:
            self._changed(State.ONLINE)
            for listener in self._listeners:
                listener()

    def failed(self, error: Unreachable) -> None:
        """A scan's request got no usable answer."""
        with self._lock:
            self._timeouts = self._timeouts + 1 if error.timeout else self.timeouts_max
            going = self._state is State.ONLINE and self._timeouts >= self.timeouts_max
            if going:
                self._state = State.OFFLINE
        if going:
            log.warning("server unreachable (%s): offline, probing every %s s", error, self.probe_s)
            self._changed(State.OFFLINE)

    def start(self) -> None:
        """Start the probe thread (it asks the server only while the link is offline)."""
        self._probe = threading.Thread(target=self._run_probe, name="duopass-probe", daemon=True)
        self._probe.start()

    def stop(self) -> None:
        self._stop.set()
        if self._probe is not None and self._probe.is_alive():
            self._probe.join(timeout=self.timeout_s + 5)

    def _changed(self, state: State) -> None:
        if self._on_change is not None:
            self._on_change(state)

    def _run_probe(self) -> None:
        while not self._stop.wait(self.probe_s):
            if self.online:
                continue
            try:
                self.client.request("GET", "/healthz", timeout=self.timeout_s, signed=False)
            except (Unreachable, Refused):
                continue
            log.warning("server answers again: online")
            self.succeeded()
