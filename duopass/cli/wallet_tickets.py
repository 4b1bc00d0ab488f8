"""`duopass wallet tickets`, `events`, `buy` and the ticket line of `sync` for people: times in
local time, money in yuan, and for each ticket whether a code can be shown now or why not;
`--json` keeps the raw fields (`duopass.wallet.tickets.ticket_status`)."""

from __future__ import annotations

from typing import Any

from duopass.cli.people import count, local_time, money

__all__ = ["event_lines", "order_lines", "sync_line", "ticket_lines"]

_INDENT = "    "


def sync_line(statuses: list[dict[str, Any]]) -> str:
    """`2 tickets, 1 ready`."""
    if not statuses:
        return "no tickets"
    ready = sum(1 for status in statuses if status["ready"])
    return f"{count(len(statuses), 'ticket')}, {ready} ready"


def ticket_lines(statuses: list[dict[str, Any]]) -> list[str]:
    """Three lines a ticket: which, when, and whether a code can be shown."""
    if not statuses:
        return ["no tickets: `duopass wallet sync` fetches the ones you bought"]
    lines: list[str] = []
    for doc in statuses:
        lines.append(
            f"{doc['sub']}  {doc['event']['name']}, {doc['ticket_type']['name']}"
            f" (order {doc['order']})"
        )
        lines.append(f"{_INDENT}doors {local_time(doc['doors'])}, ends {local_time(doc['ends'])}")
        used = f"entries {doc['entries_used']} of {doc['entries']}"
        lines.append(f"{_INDENT}{doc['state']}, {used}: {_readiness(doc)}")
    return lines


def _readiness(doc: dict[str, Any]) -> str:
    if doc["ready"]:
        return f"ready, {count(doc['codes_left'], 'code')} left (`--ticket {doc['sub']}`)"
    reason = doc["reason"]
    if reason == "too_early":
        return f"too early: codes from {local_time(doc['available_from'])} (sync then)"
    if reason == "other_device":
        return f"not here: bound to another device (device {doc['device_id']})"
    if reason == "used_up":
        return "codes used up: run `duopass wallet sync` while online"
    if reason == "restored":
        return "this wallet was restored or copied: run `duopass wallet sync` while online"
    if reason in ("expired", "ended"):
        return "the event has ended"
    if reason == "cancelled":
        return "cancelled: no codes"
    return f"no codes ({reason}): run `duopass wallet sync` while online"


def event_lines(events: list[dict[str, Any]]) -> list[str]:
    """What is on sale: an event, then one line a ticket type with the id `buy --type` takes."""
    if not events:
        return ["nothing on sale"]
    lines: list[str] = []
    for event in events:
        at = ", ".join(event["venues"])
        lines.append(
            f"{event['id']}  {event['name']}: doors {local_time(event['doors'])},"
            f" ends {local_time(event['ends'])}, at {at}"
        )
        for kind in event["ticket_types"]:
            price = money(kind["price"], kind["currency"])
            lines.append(
                f"{_INDENT}--type {kind['id']}  {kind['name']}, {price},"
                f" {count(kind['entries'], 'entry', 'entries')}, {kind['available']} left"
            )
    return lines


def order_lines(order: dict[str, Any]) -> list[str]:
    """The order for standard error (its tickets' subs go to standard output)."""
    amount = money(order["amount"], order["currency"])
    tickets = count(order["quantity"], "ticket")
    return [
        f"order {order['code']}: {tickets}, {amount}, {order['state']}",
        "next: `duopass wallet sync` fetches them, `duopass wallet tickets` lists them",
    ]
