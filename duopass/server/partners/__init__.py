"""Partners: ticketing platforms and outside verifiers that integrate over standard APIs.

Webhooks live here: lifecycle events written to a transactional outbox in the same unit of
work as the event (`outbox`), the endpoints admins manage and their sealed signing secrets
(`endpoints`), the delivery worker that sends them signed by the Standard Webhooks scheme, in
order per endpoint, with retries (`delivery`), and the delivery log (`deliveries`). OAuth 2.0
client-credentials clients live here too: the clients admins make, with scopes, secrets kept as
keyed digests, rotation and revocation (`clients`), the token endpoint's rules
(`token_endpoint`), RFC 9068 access tokens and the JWKS (`tokens`), and the check every partner
call passes: token, client state, scope, rate limit, log (`guard`). A partner's own events are
`catalogue`; its orders for holders (paid to it: what it owes) and the reissues it asks for on a
holder's behalf are `sales`.

May import: the server's services, unit of work and settings, `duopass.protocol`,
`duopass.ledger` and the server's `domain`. Modules are imported by name
(`from duopass.server.partners import outbox`).
"""

__all__: list[str] = []
