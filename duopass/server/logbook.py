"""What the card office reads: one JSON object a line on standard output for every record the
server logs (its events, the access log, uvicorn's own lines, errors), with secrets blanked; and
events a unit of work notes, logged only once it has committed.

Each line has `time` (UTC, ISO 8601), `level`, `logger`, `event` (a stable `Event` name; `error`
for any error, `log` for other lines) and `message`, then the event's fields (ids and counts,
never a password, token, key, one-time or enrolment code). docs/server.md lists the events.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache, partial
from typing import Any, TextIO

from sqlalchemy.orm import Session

from duopass.server.store.db import after_commit

__all__ = ["ACCESS", "EVENTS", "Event", "JsonLines", "configure", "emit", "note", "redact"]

EVENTS = logging.getLogger("duopass.server.events")
ACCESS = logging.getLogger("duopass.server.access")
REDACTED = "[redacted]"
LOG_TEXT_CHARS_MAX = 4096
"""Longest message or field text in a line; the rest is cut (a line stays one line)."""


class Event(StrEnum):
    """The `event` of a line; added, never renamed or reused."""

    SERVING = "serving"
    DEMO_LOADED = "demo_loaded"
    DEMO_LOGINS = "demo_logins"
    NO_STAFF = "no_staff_account"
    FILES_MADE_PRIVATE = "files_made_private"
    ALERT_RAISED = "alert_raised"
    ALERT_REVIEWED = "alert_reviewed"
    OFFLINE_SUSPENDED = "offline_suspended"
    HOLDER_FROZEN = "holder_frozen"
    HOLDER_UNFROZEN = "holder_unfrozen"
    LOSS_REPORTED = "loss_reported"
    JOURNAL_BATCH_ACCEPTED = "journal_batch_accepted"
    JOURNAL_BATCH_REFUSED = "journal_batch_refused"
    SIGN_IN_THROTTLED = "sign_in_throttled"
    STEP_UP_SENT = "step_up_sent"
    POLICY_LOADED = "policy_loaded"
    RISK_DECISION = "risk_decision"
    SIGNATURE_WORKER_STALLED = "signature_worker_stalled"
    STORE_ROLLED_BACK = "store_rolled_back"
    STORE_GUARD_RELEASED = "store_guard_released"
    ROLLBACK_ACCEPTED = "rollback_accepted"
    REQUEST = "request"
    PARTNER_CALL = "partner_call"
    ERROR = "error"


_SECRET_NAME = re.compile(
    r"pass|token|secret|otp|code|key|auth|cookie|signature|proof|challenge", re.IGNORECASE
)
"""Field and query parameter names whose values are never logged."""
_SECRET_IN_TEXT = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[^\s\"',;]+"), rf"\1 {REDACTED}"),
    (
        re.compile(
            r"(?i)\b([\w-]*(?:password|passwd|token|secret|otp|enrol_code|authorization)[\w-]*)"
            r"([\"']?\s*[=:]\s*[\"']?)[^\s\"'&,;}]+"
        ),
        rf"\1\2{REDACTED}",
    ),
    (re.compile(r"whsec_[A-Za-z0-9+/=_-]+"), f"whsec_{REDACTED}"),  # a webhook's secret
    (re.compile(r"dpsec_[A-Za-z0-9_-]+"), f"dpsec_{REDACTED}"),  # a partner client's secret
)
"""Secrets in free text (an exception's message, a third party's line)."""


def note(session: Session, event: Event, message: str, **fields: Any) -> None:
    """Log `event` once the unit `session` belongs to has committed; never if it rolls back."""
    after_commit(session, partial(emit, event, message, **fields))


WARNING_EVENTS = frozenset(
    {
        Event.ALERT_RAISED,
        Event.OFFLINE_SUSPENDED,
        Event.JOURNAL_BATCH_REFUSED,
        Event.SIGN_IN_THROTTLED,
        Event.SIGNATURE_WORKER_STALLED,
        Event.STORE_ROLLED_BACK,
        Event.ROLLBACK_ACCEPTED,
    }
)
"""What a person should look at: a log filtered to WARNING and above still shows them."""


def emit(event: Event, message: str, **fields: Any) -> None:
    """Log `event` now."""
    level = logging.INFO
    if event is Event.ERROR:
        level = logging.ERROR
    elif event in WARNING_EVENTS:
        level = logging.WARNING
    EVENTS.log(
        level,
        message,
        extra={"event": event.value, "fields": fields},
    )


_SECRET_WORDS = (
    "bearer",
    "basic",
    "password",
    "passwd",
    "token",
    "secret",
    "otp",
    "enrol_code",
    "authorization",
    "whsec_",
    "dpsec_",
)
"""A word one of `_SECRET_IN_TEXT` needs in an ASCII text, in lower case: without any, none can
match. A line of the access log has none; the patterns cost a quarter of a request's time, run
on its fields, and a screen by a case-blind regular expression 5 µs a line: the lowered text's
substrings, a tenth of that."""


def redact(text: str) -> str:
    """`text` with what looks like a secret blanked, cut at `LOG_TEXT_CHARS_MAX`."""
    # Only ASCII is screened: the patterns ignore case as Unicode does (the Kelvin sign matches
    # "k"), the screen as ASCII does.
    if not text.isascii() or _may_hold_secret(text.lower()):
        for pattern, replacement in _SECRET_IN_TEXT:
            text = pattern.sub(replacement, text)
    return text[:LOG_TEXT_CHARS_MAX]


def _may_hold_secret(lowered: str) -> bool:
    for word in _SECRET_WORDS:  # noqa: SIM110 (a loop: any() over a generator is slower)
        if word in lowered:
            return True
    return False


@lru_cache(maxsize=1024)
def secret_name(name: str) -> bool:
    return _SECRET_NAME.search(name) is not None


def _field(name: str, value: Any) -> Any:
    if secret_name(name):
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    return redact(str(value))


class JsonLines(logging.Formatter):
    """One JSON object a line, secrets blanked (defence in depth: events carry none); in a
    worker of `duopass serve --workers`, every line says which (`worker`, from 0)."""

    worker: int | None = None

    def format(self, record: logging.LogRecord) -> str:
        event = getattr(record, "event", None)
        if event is None:
            event = Event.ERROR.value if record.levelno >= logging.ERROR else "log"
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": event,
            "message": redact(record.getMessage()),
        }
        if JsonLines.worker is not None:
            entry["worker"] = JsonLines.worker
        fields = getattr(record, "fields", None) or {}
        for name, value in fields.items():
            entry.setdefault(str(name), _field(str(name), value))
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry)


def configure(*, stream: TextIO | None = None, access_log: bool = True) -> None:
    """Every record of this process as JSON lines on `stream` (standard output); the access
    log (`duopass.server.access`) on or off."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonLines())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    ACCESS.setLevel(logging.INFO if access_log else logging.WARNING)
