"""Tickets: the ticketing domain as pure rules over plain values.

A ticket is an entitlement from purchase on; its kind-3 credential (PROTOCOL §2) is minted when
the wallet syncs and the event is near enough: `exp` = the event's end, `nbf` = doors, `scope` =
its venues, `ev` = its id, `ent` = the entries the ticket type allows, bound to the holder's
device. Entries count per ticket across generations (§3 check 19, §6); check-in lists add
exits and re-entry online (`checkin`). The server stores these and calls the rules here.

May import: the standard library and `duopass.protocol`. Never the server, its database or HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass

from duopass.protocol.claims import Claims, Kind

__all__ = [
    "TICKET_USES",
    "EventTerms",
    "MintRefusal",
    "mint_refusal",
    "ticket_claims",
]

TICKET_USES = 16
"""Codes a ticket credential allows (`uses`): enough for a long queue, where a holder opens the
code several times; a ticket whose uses run out is re-minted at the next sync."""


@dataclass(frozen=True)
class EventTerms:
    """What a ticket's credential carries of its event and ticket type."""

    event: str
    doors: int
    ends: int
    venues: tuple[str, ...]
    entries: int


class MintRefusal:
    """Why a ticket gets no credential now (stable words, shown to the holder)."""

    ENDED = "ended"
    TOO_EARLY = "too_early"
    CANCELLED = "cancelled"
    OTHER_DEVICE = "other_device"


def mint_refusal(terms: EventTerms, *, now: int, max_lifetime_s: int) -> str | None:
    """None when a credential for the event can be minted at `now`: the event has not ended,
    and `exp - iat` (its end minus now) is within the issuer's ticket lifetime (check 6)."""
    if now >= terms.ends:
        return MintRefusal.ENDED
    if terms.ends - now > max_lifetime_s:
        return MintRefusal.TOO_EARLY
    return None


def ticket_claims(
    terms: EventTerms,
    *,
    iss: str,
    sub: str,
    cti: bytes,
    now: int,
    device_key: bytes,
    gen: int,
    uses: int = TICKET_USES,
) -> Claims:
    """The claims of a ticket's credential (§2 kind 3): valid from doors to the end, at the
    event's venues, for its entries."""
    return Claims(
        iss=iss,
        sub=sub,
        iat=now,
        exp=terms.ends,
        cti=cti,
        kind=Kind.TICKET,
        nbf=terms.doors,
        device_key=device_key,
        uses=uses,
        scope=terms.venues or None,
        ev=terms.event,
        gen=gen,
        ent=terms.entries,
    )
