"""What time settles by itself (§4.2, §5.1): holds of counters that can no longer arrive, and
online verdicts whose journal entry never came.

A credential's counters can arrive until `exp + freshness_s + clock_skew_s + late window`; after
that its remaining holds are released (once: `holds_released`), and what a refresh released on
the wallet's word counts as confirmed. An online verdict with no journal entry by its time plus
the late window becomes final, with an alert for the gap.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update

from duopass.ledger.events import EventType
from duopass.protocol.claims import Kind
from duopass.risk import AlertKind
from duopass.server.services import accounts, alerts, counters, tlog
from duopass.server.store.tables import Credential, Holder, Scan
from duopass.server.unit_of_work import Unit

__all__ = ["BATCH_MAX", "Swept", "sweep"]

BATCH_MAX = 500
"""Most credentials (and most verdicts) one sweep settles: a sweep is one short transaction."""


@dataclass(frozen=True)
class Swept:
    credentials: int
    released: int
    verdicts: int


def sweep(unit: Unit) -> Swept:
    """Release what time settled, at most `BATCH_MAX` credentials and verdicts at a time."""
    session, settings, now = unit.session, unit.settings, unit.now
    policy = settings.policy
    horizon = policy.freshness_s + policy.clock_skew_s + policy.late_window_s
    expired = session.scalars(
        select(Credential)
        .where(
            Credential.kind == Kind.PURSE,
            Credential.holds_released.is_(False),
            Credential.exp + horizon < now,
        )
        .order_by(Credential.exp)
        .limit(BATCH_MAX)
    ).all()
    released_total = 0
    for credential in expired:
        holder = session.get(Holder, credential.holder_id)
        assert holder is not None
        account = accounts.lock(session, holder.account_id)
        released = counters.outstanding(session, credential) * credential.txmax
        accounts.release(session, account.id, released)
        account.unconfirmed_released = max(0, account.unconfirmed_released - credential.released)
        credential.holds_released = True
        released_total += released
        body = {"cti": credential.cti, "released": released, "confirmed": credential.released}
        tlog.append(unit, EventType.HOLD_RELEASE, body)
    late = session.execute(
        select(Scan.terminal_id, Scan.seq, Scan.received_at)
        .where(Scan.provisional.is_(True), Scan.received_at + settings.late_window_s < now)
        .limit(BATCH_MAX)
    ).all()
    for terminal_id, seq, received_at in late:
        session.execute(
            update(Scan)
            .where(Scan.terminal_id == terminal_id, Scan.seq == seq)
            .values(provisional=False)
        )
        alerts.raise_alert(
            unit,
            AlertKind.MISSING_ENTRY,
            evidence={"received_at": received_at},
            terminal_id=terminal_id,
            seq=seq,
        )
    return Swept(len(expired), released_total, len(late))
