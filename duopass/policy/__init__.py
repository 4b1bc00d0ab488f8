"""Policy (a room, empty until the reissue issue builds it): the written rules that decide.

What will live here: policies in CEL (Common Expression Language; DOMAIN.md), versioned,
hash-pinned and named, evaluated first match wins over plain facts: whether a reissue or a
transfer of a ticket is allowed, asks for a step-up (a one-time code, a passkey), goes to a
person, or is refused (original purchase proof, device history, place, timing, reissue count,
already used); the risk engine's rules (`duopass.risk`) use the same policies. Each decision
names the policy version and the checks that ran, for the ledger (PROTOCOL §6).

May import: the standard library, the CEL library and `duopass.protocol`. Never the server.
"""

__all__: list[str] = []
