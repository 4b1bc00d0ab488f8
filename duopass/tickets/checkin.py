"""Check-in rules: whether a ticket may enter or leave on a check-in list, given the list's
configuration and the ticket's check-in history. Online only (the server and its redeem route);
offline gates apply `ev`, `scope` and `ent` as PROTOCOL §3 says, with no lists.

- A list admits some ticket types, or all of its event's (`product` otherwise).
- An entry *uses* one of the ticket's entries: at most `ent` across every list and generation
  (§3 check 19), and at most the list's `entry_limit` on the list when it has one
  (`ALREADY_USED` past either).
- On a list with re-entry, an entry after an exit there is a *re-entry*: it uses nothing. On a
  list without, an entry after an exit is refused (`rules`).
- An exit needs the ticket inside on the list (its last check-in there an entry): `rules`.

Pure: plain values in, a decision out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from duopass.protocol.reasons import Reason

__all__ = [
    "Decision",
    "ListRules",
    "Past",
    "Refusal",
    "decide",
    "entries_used",
    "inside",
]

ENTRY, EXIT = "entry", "exit"


class Refusal(StrEnum):
    """Why a check-in is refused by a list (pretix's names where §3 has no code)."""

    ALREADY_USED = Reason.ALREADY_USED.value
    """No entries left: the ticket's `ent` across all lists, or the list's entry limit."""
    PRODUCT = "product"
    """The list does not admit the ticket's type."""
    RULES = "rules"
    """Entry after an exit on a list without re-entry, or an exit of a ticket not inside."""
    CANCELED = "canceled"
    """The ticket's order was cancelled."""


@dataclass(frozen=True)
class ListRules:
    """One check-in list's configuration."""

    list_id: int
    ticket_types: frozenset[int] | None
    """The ticket types it admits; None: all of its event's."""
    allow_reentry: bool
    entry_limit: int | None
    """Entries a ticket may use on this list; None: only the ticket's `ent` limits them."""


@dataclass(frozen=True)
class Past:
    """One successful check-in of the ticket, on any list, in the order they happened."""

    list_id: int
    type: str
    counted: bool
    """An entry that used one of the ticket's entries (not a re-entry)."""


@dataclass(frozen=True)
class Decision:
    """None when allowed; `counted`: an allowed entry uses one of the ticket's entries."""

    refusal: Refusal | None
    counted: bool

    @property
    def ok(self) -> bool:
        return self.refusal is None


def entries_used(history: Sequence[Past], list_id: int | None = None) -> int:
    """Entries the ticket used (re-entries are free), on one list or on all of them."""
    return sum(1 for p in history if p.counted and p.type == ENTRY and list_id in (None, p.list_id))


def _last_on(history: Sequence[Past], list_id: int) -> str | None:
    for past in reversed(history):
        if past.list_id == list_id:
            return past.type
    return None


def inside(history: Sequence[Past], list_id: int) -> bool:
    """Whether the ticket is inside on the list: its last check-in there is an entry."""
    return _last_on(history, list_id) == ENTRY


def decide(
    rules: ListRules,
    *,
    ticket_type: int,
    cancelled: bool,
    entries_allowed: int,
    history: Sequence[Past],
    type: str,
) -> Decision:
    """Whether the ticket may check in (`type` entry) or out (exit) on the list now."""
    if type not in (ENTRY, EXIT):
        raise ValueError(f"a check-in is an entry or an exit, not {type!r}")
    if cancelled:
        return Decision(Refusal.CANCELED, False)
    if rules.ticket_types is not None and ticket_type not in rules.ticket_types:
        return Decision(Refusal.PRODUCT, False)
    last = _last_on(history, rules.list_id)
    if type == EXIT:
        return Decision(None if last == ENTRY else Refusal.RULES, False)
    if last == EXIT:
        return Decision(None, False) if rules.allow_reentry else Decision(Refusal.RULES, False)
    if entries_used(history) >= entries_allowed or (
        rules.entry_limit is not None and entries_used(history, rules.list_id) >= rules.entry_limit
    ):
        return Decision(Refusal.ALREADY_USED, False)
    return Decision(None, True)
