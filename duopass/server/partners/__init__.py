"""Partners (a room, empty until the partners issue builds it): ticketing platforms and outside
verifiers that integrate over standard APIs.

What will live here: OAuth 2.0 client-credentials clients (created by staff, with scopes,
secrets stored hashed, rotation and revocation) and their tokens, the scope checks of partner
routes, and webhooks: lifecycle events written to a transactional outbox in the same unit of
work as the event, signed by the Standard Webhooks scheme and delivered with retries.

May import: the server's services, unit of work and settings, `duopass.protocol`,
`duopass.ledger` and the server's `domain`.
"""

__all__: list[str] = []
