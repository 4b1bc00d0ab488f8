"""The ledger's vocabulary: every lifecycle event type (§7) and the fields of its body.

A leaf's body is a map with text keys. Personal data never enters it, only keyed digests
(`holder`, `person`: HMAC-SHA-256 under a server secret). The catalogue is checked on every
append (`event`), so a new event, or a new field of one, is added here first; types and fields
are added, never renamed or reused: they are in signed checkpoints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from duopass.ledger.errors import LedgerError, LedgerReason
from duopass.ledger.leaf import encode_leaf

__all__ = ["ALTERNATIVES", "CATALOGUE", "EventType", "Fields", "check_body", "event"]


class EventType(StrEnum):
    """What happened. Grouped as in §7: people, credentials, money, terminals, evidence."""

    HOLDER_CREATE = "holder_create"
    HOLDER_ERASE = "holder_erase"
    DEVICE_ENROL = "device_enrol"
    DEVICE_REVOKE = "device_revoke"
    LOSS_REPORT = "loss_report"
    FREEZE = "freeze"
    UNFREEZE = "unfreeze"
    TOTP_ENABLE = "totp_enable"
    TOTP_CHANGE = "totp_change"
    TOTP_DISABLE = "totp_disable"
    CREDENTIAL_ISSUE = "credential_issue"
    CREDENTIAL_REFRESH = "credential_refresh"
    CREDENTIAL_REVOKE = "credential_revoke"
    HOLD_RELEASE = "hold_release"
    KEY_ROTATION = "key_rotation"
    TOPUP = "topup"
    REFUND = "refund"
    PAYMENT = "payment"
    ENTRY = "entry"
    AMEND = "amend"
    VOID = "void"
    PENDING_MOVE = "pending_move"
    CONFLICT_BOOKED = "conflict_booked"
    SETTLEMENT = "settlement"
    TERMINAL_CREATE = "terminal_create"
    TERMINAL_ENROL = "terminal_enrol"
    JOURNAL_BATCH = "journal_batch"
    ALERT = "alert"
    OFFLINE_SUSPEND = "offline_suspend"
    REVIEW = "review"
    ORDER_PAID = "order_paid"
    ORDER_CANCEL = "order_cancel"
    DECISION = "decision"
    TICKET_TRANSFER = "ticket_transfer"
    CHECKIN = "checkin"
    TERMINAL_REVOKE = "terminal_revoke"
    ALERT_CLEAR = "alert_clear"
    """The server closed an alert by itself: what it was about is over (a terminal recovered)."""
    DISPUTE_OPEN = "dispute_open"
    """A holder disputed a payment (§5.3)."""
    DISPUTE_DECIDE = "dispute_decide"
    """Staff decided a dispute: upheld (charged back to the merchant) or rejected."""
    KEY_REVOKE = "key_revoke"
    """A daily signing key revoked as compromised (`duopass keys revoke-signing`)."""


@dataclass(frozen=True)
class Fields:
    """The keys a body of one event type must and may hold."""

    required: frozenset[str]
    optional: frozenset[str] = frozenset()


def _f(required: str, optional: str = "") -> Fields:
    return Fields(frozenset(required.split()), frozenset(optional.split()))


_SCAN = "cti ctr terminal seq"
CATALOGUE: Mapping[EventType, Fields] = {
    EventType.HOLDER_CREATE: _f("holder person"),
    EventType.HOLDER_ERASE: _f("holder by sessions devices credentials"),
    EventType.DEVICE_ENROL: _f("holder device key"),
    EventType.DEVICE_REVOKE: _f("device"),
    EventType.LOSS_REPORT: _f("devices credentials", "sessions holder"),
    EventType.FREEZE: _f("holder reason by"),
    EventType.UNFREEZE: _f("holder reason by"),
    EventType.TOTP_ENABLE: _f("holder"),
    EventType.TOTP_CHANGE: _f("holder"),
    EventType.TOTP_DISABLE: _f("holder"),
    EventType.CREDENTIAL_ISSUE: _f("cti kid holder uses txmax exp offline", "gen replaces ticket"),
    EventType.CREDENTIAL_REFRESH: _f("cti mark release_mark released"),
    EventType.CREDENTIAL_REVOKE: _f("cti reason"),
    EventType.HOLD_RELEASE: _f("cti released confirmed"),
    EventType.KEY_ROTATION: _f("kid nbf exp", "role previous seq by"),
    EventType.TOPUP: _f("holder amount transaction"),
    EventType.REFUND: _f("holder amount merchant transaction"),
    EventType.PAYMENT: _f(f"{_SCAN} amount transaction online"),
    EventType.ENTRY: _f(_SCAN, "amount transaction online"),
    EventType.AMEND: _f(f"{_SCAN} approved amount transaction"),
    EventType.VOID: _f(f"{_SCAN} amount transaction"),
    EventType.PENDING_MOVE: _f("alert amount transaction to_loss"),
    EventType.CONFLICT_BOOKED: _f("alert terminal seq amount transaction"),
    EventType.SETTLEMENT: _f("day report merchants time_zone"),
    EventType.TERMINAL_CREATE: _f("terminal mode venue"),
    EventType.TERMINAL_ENROL: _f("terminal key"),
    EventType.JOURNAL_BATCH: _f("terminal first last digest entries"),
    EventType.ALERT: _f("alert kind", "holder cti terminal seq pending"),
    EventType.OFFLINE_SUSPEND: _f("holder_id"),
    EventType.REVIEW: _f("alert action by"),
    EventType.ORDER_PAID: _f(
        "order holder event amount currency tickets paid_by", "transaction by partner"
    ),
    EventType.ORDER_CANCEL: _f("order tickets refund", "transaction by partner"),
    EventType.DECISION: _f(
        "action policy sha256 inputs outcome rule",
        "request ticket old_cti new_cti old_gen new_gen by partner",
    ),
    EventType.TICKET_TRANSFER: _f("ticket from to decision"),
    EventType.CHECKIN: _f("ticket list type at", "nonce forced cti gen terminal seq by"),
    EventType.TERMINAL_REVOKE: _f("terminal by"),
    EventType.ALERT_CLEAR: _f("alert kind", "terminal"),
    EventType.DISPUTE_OPEN: _f("dispute holder payment amount merchant"),
    EventType.DISPUTE_DECIDE: _f("dispute outcome by", "amount merchant transaction"),
    EventType.KEY_REVOKE: _f("kid by"),
}
"""Every event type and its body's fields."""

ALTERNATIVES: Mapping[EventType, Fields] = {
    EventType.KEY_ROTATION: _f("ledger_key previous"),
}
"""A second body an event type may have instead, never mixed with the first: the ledger key's
own rotation names the new verifier key and the one it replaces (`ledger.rotation`), where a
daily signing key's names its `kid` (and the issuer root's, its `kid` with `role` "root",
`previous`, `seq` and `by`: the catalogue's optional fields)."""


_CHECKED: set[tuple[EventType, tuple[str, ...]]] = set()
"""(type, a body's keys in order) found whole: a journal batch's 500 payments name the same."""


def check_body(event_type: EventType, body: Mapping[str, Any]) -> None:
    """Refuse (MALFORMED) a body that lacks a field its type requires or holds one it does
    not know: the catalogue is the one place the ledger's vocabulary is written."""
    shape = (event_type, tuple(body))
    if shape in _CHECKED:
        return
    _check_body(event_type, body)
    if len(_CHECKED) < 4096:
        _CHECKED.add(shape)


def _check_body(event_type: EventType, body: Mapping[str, Any]) -> None:
    fields = CATALOGUE[event_type]
    keys = body.keys()
    other = ALTERNATIVES.get(event_type)
    if other is not None and other.required <= keys <= other.required | other.optional:
        return
    missing = fields.required - keys
    unknown = keys - fields.required - fields.optional
    if missing or unknown:
        raise LedgerError(
            LedgerReason.MALFORMED,
            f"{event_type} body: missing {sorted(missing)}, unknown {sorted(unknown)}",
        )


def event(event_type: EventType, time: int, iss: str, body: Mapping[str, Any]) -> bytes:
    """The leaf bytes of one event, its body checked against the catalogue."""
    check_body(event_type, body)
    return encode_leaf(event_type.value, time, iss, body)
