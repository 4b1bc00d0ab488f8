"""The terminal's heartbeat: a small signed request an idle agent sends every `HEARTBEAT_S`
(and at every reconnect), telling the server the bundle version it holds and its journal
backlog; the server reads the terminal's clock from the request's signed time (the fleet
watched: docs/terminal.md)."""

from __future__ import annotations

import json
import logging

from duopass.terminal.client import Client, Refused, Unreachable
from duopass.terminal.store import Store

__all__ = ["beat", "try_beat"]

log = logging.getLogger("duopass.terminal")


def beat(client: Client, *, bundle_seq: int | None, backlog: int, timeout_s: float) -> int:
    """Send one heartbeat; returns the clock offset the server saw (terminal minus server).
    Raises Unreachable or Refused."""
    body = json.dumps({"bundle_seq": bundle_seq, "backlog": backlog}).encode()
    answer = client.request("POST", "/v1/terminal/heartbeat", body=body, timeout=timeout_s)
    offset = answer.json().get("clock_offset_s")
    return offset if isinstance(offset, int) else 0


def try_beat(store: Store, client: Client, *, timeout_s: float) -> bool:
    """`beat` with what the store holds, logging instead of raising: for the background thread."""
    seq = store.get("bundle_seq")
    try:
        beat(
            client,
            bundle_seq=seq if isinstance(seq, int) else None,
            backlog=store.backlog(),
            timeout_s=timeout_s,
        )
    except (Unreachable, Refused) as exc:
        log.info("heartbeat failed: %s", exc)
        return False
    return True
