"""Prepared SQL for the redeem route (`services.redeem`): what one check-in reads, in one round
trip on PostgreSQL, and the row it writes (`sql.Raw`, as online scans do)."""

from __future__ import annotations

from duopass.server.store.sql import statement

__all__ = [
    "HISTORY",
    "INSERT_CHECKIN",
    "LIST",
    "NEXT_CHECKIN_ID",
    "NEXT_CHECKIN_ID_SQLITE",
    "TICKET",
    "VENUES",
]

LIST = statement(
    "SELECT l.id, l.event_id, l.name, l.ticket_types, l.allow_reentry, l.entry_limit, "
    "(SELECT c.answer FROM checkins c WHERE c.list_id = l.id AND c.nonce = :nonce) "
    "FROM checkin_lists l WHERE l.id = :id"
)
"""A check-in list, with the answer already given on it to the request's nonce (NULL: none)."""
TICKET = statement(
    "SELECT t.id, t.sub, t.event_id, t.ticket_type_id, t.state, t.gen, o.code "
    "FROM tickets t JOIN orders o ON o.id = t.order_id WHERE t.sub = :sub"
)
"""A ticket with its order's code."""
HISTORY = statement(
    "SELECT c.list_id, c.type, c.counted FROM checkins c JOIN tickets t ON t.id = c.ticket_id "
    "WHERE t.sub = :sub AND c.successful = :yes ORDER BY c.at, c.id"
)
"""A ticket's successful check-ins on every list, in the order they happened."""
VENUES = statement("SELECT venue_id FROM event_venues WHERE event_id = :event ORDER BY venue_id")
NEXT_CHECKIN_ID = statement("SELECT nextval(pg_get_serial_sequence('checkins', 'id'))")
"""PostgreSQL: the check-in's id taken ahead, so that its answer (which names it) goes in with
its insert; an id taken and not used leaves a gap, as a rollback does."""
NEXT_CHECKIN_ID_SQLITE = statement("SELECT COALESCE(MAX(id), 0) + 1 FROM checkins")
"""SQLite: the id the table would give the next row (the write transaction holds the lock)."""
INSERT_CHECKIN = statement(
    "INSERT INTO checkins (id, list_id, ticket_id, type, successful, counted, reason, at, "
    "received_at, gen, cti, nonce, forced, source, terminal_id, seq, staff_id, answer) "
    "VALUES (:id, :list_id, :ticket_id, :type, :successful, :counted, :reason, :at, "
    ":received_at, :gen, :cti, :nonce, :forced, :source, :terminal_id, :seq, :staff_id, :answer)"
)
