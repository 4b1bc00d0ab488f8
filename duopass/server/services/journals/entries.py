"""An offline gate's acceptance of a ticket (§5.3): the gate opened, so the entry happened. It
is recorded on the gate's check-in list at its scan time and counts against the ticket's
entries; an entry the list would have refused online (no entries left, re-entry not allowed,
a type it does not admit) is recorded all the same, with that refusal, and one past the
ticket's entries is evidence for review (`entries_exceeded`), never a refusal."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from duopass.ledger.events import EventType
from duopass.protocol.claims import Claims
from duopass.protocol.journal import Entry
from duopass.risk import AlertKind
from duopass.server.partners.outbox import WebhookEvent
from duopass.server.services import checkins
from duopass.server.services.journals.lookups import CredentialRef, HolderRef
from duopass.server.services.journals.settling import Settling
from duopass.server.store.tables import Credential
from duopass.server.store.tickets import Ticket
from duopass.tickets.checkin import ENTRY, Refusal

__all__ = ["journal_entry"]


def _reissued_at(session: Session, ticket_id: int, gen: int) -> int | None:
    """When the ticket's generation `gen` was first issued (its reissue), if it was."""
    return session.scalar(
        select(func.min(Credential.iat)).where(
            Credential.ticket_id == ticket_id, Credential.gen >= gen
        )
    )


def journal_entry(
    st: Settling,
    entry: Entry,
    credential: CredentialRef,
    holder: HolderRef,
    claims: Claims,
    *,
    revoked_in_bundle: bool,
    ts: int,
) -> None:
    """Record the gate's offline entry on its list, with the alert its excess raises, and the
    informational one an older generation scanned after its reissue raises when the gate's
    bundle could not know yet (with the bundle's revocation it is evidence, §4.5, raised by
    the caller)."""
    session = st.unit.session
    ticket = session.get(Ticket, credential.ticket_id) if credential.ticket_id else None
    row = checkins.gate_list(session, st.terminal.id, st.terminal.event)
    if ticket is None or row is None:
        return
    if not revoked_in_bundle and claims.gen < ticket.gen:
        reissued = _reissued_at(session, ticket.id, claims.gen + 1)
        # scanned after the reissue (the gate's scan time; a code's `ts` is the phone's word)
        if reissued is not None and max(ts, entry.server_time) >= reissued:
            evidence = {"ticket": ticket.sub, "gen": claims.gen, "current_gen": ticket.gen}
            evidence.update(reissued_at=reissued, ts=ts, bundle_seq=entry.bundle_seq)
            st.alert(
                AlertKind.OLD_GENERATION, evidence, seq=entry.seq, holder=holder, cti=claims.cti
            )
    allowed = claims.ent or 1
    decision, _ = checkins.decide_for(session, row, ticket, entries_allowed=allowed, type=ENTRY)
    refusal = decision.refusal
    checkin = checkins.record(
        st.unit,
        row,
        ticket,
        type=ENTRY,
        successful=True,
        counted=decision.counted or refusal is not None,
        reason=None if refusal is None else refusal.value,
        at=entry.server_time,
        claims=claims,
        made=checkins.Made("journal", terminal_id=st.terminal.id, seq=entry.seq),
    )
    st.leaf(EventType.CHECKIN, checkins.leaf_body(checkin, ticket))
    data = checkins.webhook_data(checkin, ticket, row.event_id)
    st.webhooks.append((WebhookEvent.TICKET_CHECKED_IN, data))
    if refusal is Refusal.ALREADY_USED:
        evidence = {
            "ticket": ticket.sub,
            "list": row.id,
            "entries_allowed": allowed,
            "scanned_at": entry.scanned_at,
            "gen": claims.gen,
        }
        st.alert(AlertKind.ENTRIES_EXCEEDED, evidence, seq=entry.seq, holder=holder, cti=claims.cti)
