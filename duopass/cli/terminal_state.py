"""What `duopass terminal status` shows: one enrolment's state, and with several issuers
(docs/terminal.md, "Several issuers") each of the others' under `issuers`."""

from __future__ import annotations

from typing import Any

from duopass.terminal import TerminalAgent

__all__ = ["status_doc"]


def status_doc(terminal: TerminalAgent, now: int) -> dict[str, Any]:
    """The first enrolment's state as a terminal of one issuer shows it; `issuers` (only when
    there are others) the same for each other enrolment, with its issuer and server."""
    doc = _one(terminal, now)
    if terminal.others:
        doc["issuers"] = [
            {"iss": other.iss, "server": other.store.config().server, **_one(other, now)}
            for other in terminal.others
        ]
    return doc


def _one(terminal: TerminalAgent, now: int) -> dict[str, Any]:
    store = terminal.store
    config = store.config()
    trust = store.trust()
    return {
        "terminal_id": config.terminal_id,
        "server": config.server,
        "mode": config.mode,
        "venue": config.venue,
        "last_seq": store.next_seq - 1,
        "acked_seq": store.acked_seq,
        "entries_held": store.entries(),
        "entries_unsent": store.unsent(),
        "batch_waiting": (batch := store.stored_batch()) is not None and [batch.first, batch.last],
        "bundle_seq": trust.seq if trust else None,
        "bundle_age_s": now + store.clock_offset - trust.issued_at if trust else None,
        "bundle_max_age_s": trust.max_age_s if trust else None,
        "late_window_s": trust.policy(config.iss).late_window_s if trust else None,
        "clock_offset_s": store.clock_offset,
        "link": store.get("link", "online"),
        "link_since": store.get("link_changed_at"),
    }
