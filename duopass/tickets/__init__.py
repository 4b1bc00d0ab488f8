"""Tickets (a room, empty until the tickets issue builds it): the ticketing domain as pure rules.

What will live here: events (venues, doors, end), ticket types (price, entries allowed, quota,
whether a static printed code is allowed), orders and their states (paid from an account or
marked paid, cancelled, refunded, transferred), and check-in rules (entries counted across a
ticket's generations, check-in lists), as frozen dataclasses and functions over plain values.
Their storage and HTTP routes are the server's (`server/services/`, `server/api/routes/`), which
call these rules; a ticket's kind-3 credential is minted by the server (PROTOCOL §2, §6).

May import: the standard library and `duopass.protocol`. Never the server, its database or HTTP.
"""

__all__: list[str] = []
