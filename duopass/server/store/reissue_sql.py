"""Prepared SQL for a reissue (`services.reissue_inputs`, `services.reissue`): the server's
records a decision is made on, and the terms its new credential is minted on, in a few
statements on the driver (`sql.Raw`) instead of one ORM query per fact."""

from __future__ import annotations

from duopass.server.store.sql import statement

__all__ = ["FACTS", "LIVE_CTI", "OPEN", "TERMS", "VENUES"]

FACTS = statement(
    "SELECT o.code, o.paid_by, o.amount, o.currency, o.payment_leaf, o.created_at, "
    "e.doors, e.ends, k.entries, "
    "(SELECT COUNT(*) FROM credentials c WHERE c.device_id = :device), "
    "(SELECT COUNT(*) FROM devices d WHERE d.holder_id = :holder), "
    "(SELECT COUNT(*) FROM devices d WHERE d.holder_id = :holder AND d.revoked_at IS NULL), "
    "(SELECT MAX(d.enrolled_at) FROM devices d WHERE d.holder_id = :holder), "
    "(SELECT COUNT(*) FROM reissue_requests r "
    "WHERE r.holder_id = :holder AND r.created_at > :since), "
    "(SELECT COUNT(*) FROM checkins c "
    "WHERE c.ticket_id = t.id AND c.successful = :yes AND c.counted = :yes), "
    "(SELECT p.email FROM holder_people p WHERE p.holder_id = :holder) "
    "FROM tickets t JOIN orders o ON o.id = t.order_id JOIN events e ON e.id = t.event_id "
    "JOIN ticket_types k ON k.id = t.ticket_type_id WHERE t.id = :ticket"
)
"""A ticket's order, event times and entries; the device's credentials so far; the holder's
devices (enrolled, active, newest), reissue requests since `since` and e-mail address; the
ticket's entries used (successful counted check-ins, check 19's count)."""
VENUES = statement(
    "SELECT v.id, v.networks, v.lat_e6, v.lon_e6, "
    "(SELECT COUNT(*) FROM event_venues x WHERE x.event_id = :event AND x.venue_id = v.id) "
    "FROM venues v ORDER BY v.id"
)
"""Every venue, with whether it is one of the event's."""
TERMS = statement(
    "SELECT e.doors, e.ends, k.entries FROM events e, ticket_types k "
    "WHERE e.id = :event AND k.id = :kind"
)
"""What minting a ticket's credential needs of its event and ticket type (with the event's
venues, `checkin_sql.VENUES`)."""
OPEN = statement(
    "SELECT COUNT(*) FROM reissue_requests "
    "WHERE ticket_id = :ticket AND state IN ('step_up', 'review', 'ready')"
)
"""How many of the ticket's requests are still open (`services.reissue.OPEN_STATES`)."""
LIVE_CTI = statement(
    "SELECT cti FROM credentials WHERE ticket_id = :ticket AND state = 'live' "
    "ORDER BY iat DESC LIMIT 1"
)
"""The `cti` of the ticket's newest live credential (`services.tickets.live_credential`)."""
