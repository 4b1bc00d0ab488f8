"""Payments confirmed in the wallet (purse limits): an online payment above the holder's PIN
amount that came without a PIN is refused `403 pin_required`, and the server records a pending
confirmation whose id the problem carries (`open`). The holder approves it in their wallet
with the PIN (`approve`, throttled as the till's wrong PINs are) or declines it (`decline`);
the till's retry of the same seq without a PIN then passes if an approved, unexpired, unused
confirmation matches its terminal, credential, seq and amount exactly, and uses it in the
payment's own unit (`redeem`, from `scans`).

Nothing is held or booked while a confirmation waits, and the seq stays free: the till may as
well send it again with the PIN typed on its keypad."""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select

from duopass.protocol.encoding import b64u_encode
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import auth, throttle
from duopass.server.store.purse import PaymentConfirmation
from duopass.server.store.tables import Holder, JournalEntry, Scan
from duopass.server.unit_of_work import Unit

if TYPE_CHECKING:
    from duopass.server.context import AppContext

__all__ = [
    "CONFIRMATION_TTL_S",
    "PENDING_MAX",
    "Pending",
    "PinRequired",
    "approve",
    "decline",
    "open_for",
    "pending_of",
    "redeem",
]

CONFIRMATION_TTL_S = 120
"""How long a confirmation waits for the holder, and an approved one for the till's retry."""
PENDING_MAX = 20
"""Confirmations one holder may have waiting at once; past it the till gets a plain
`pin_required` (no id) and the PIN is typed at the till."""
KEEP_S = 24 * 3600
"""How long a confirmation is kept after it expired (what the wallet and the till were told)."""


@dataclass(frozen=True)
class Pending:
    """What a `pin_required` refusal carries for `open_for` (never sent as it is)."""

    holder_id: int
    cti: bytes
    terminal_id: str
    seq: int
    amount: int
    currency: str | None
    venue: str | None


class PinRequired(Problem):
    """`pin_required`, with the payment a wallet could confirm."""

    def __init__(self, detail: str, pending: Pending, confirmation: str | None = None) -> None:
        extra = None if confirmation is None else {"confirmation": confirmation}
        super().__init__(ProblemCode.PIN_REQUIRED, detail, extra=extra)
        self.pending = pending if confirmation is None else None
        """Set while no confirmation is recorded for it: the route records one."""


def _matching(unit: Unit, pending: Pending) -> list[PaymentConfirmation]:
    return list(
        unit.session.scalars(
            select(PaymentConfirmation)
            .where(
                PaymentConfirmation.terminal_id == pending.terminal_id,
                PaymentConfirmation.seq == pending.seq,
                PaymentConfirmation.holder_id == pending.holder_id,
                PaymentConfirmation.cti == pending.cti,
                PaymentConfirmation.amount == pending.amount,
            )
            .with_for_update()
        )
    )


def redeem(unit: Unit, refusal: Problem, pending: Pending) -> None:
    """For a payment the PIN amount refused (`refusal`, pin_required): use an approved,
    unexpired confirmation of exactly this payment (it passes, in this unit), or refuse:
    `pin_declined`, `confirmation_expired`, or `pin_required` with the waiting one's id (or
    with none yet: `PinRequired.pending`, for the route to record)."""
    found = _matching(unit, pending)
    now = unit.now
    for row in found:
        if row.state == "approved" and row.expires_at > now:
            row.state, row.decided_at = "used", now
            return
    if any(row.state == "declined" for row in found):
        raise Problem(ProblemCode.PIN_DECLINED, "the holder declined this payment")
    waiting = [row for row in found if row.state == "pending" and row.expires_at > now]
    if waiting:
        raise PinRequired(refusal.detail, pending, waiting[0].id)
    if any(row.state in ("pending", "approved") for row in found):
        raise Problem(ProblemCode.CONFIRMATION_EXPIRED, "the wallet's confirmation has expired")
    raise PinRequired(refusal.detail, pending)


def open_for(ctx: AppContext, refusal: PinRequired) -> Problem:
    """Record a pending confirmation for the payment `refusal` refused (in a unit of its own:
    the scan's was undone); the same refusal back, with its id (without one if the holder has
    `PENDING_MAX` waiting)."""
    pending = refusal.pending
    assert pending is not None

    def work(unit: Unit) -> str | None:
        session, now = unit.session, unit.now
        session.execute(
            delete(PaymentConfirmation).where(
                PaymentConfirmation.holder_id == pending.holder_id,
                PaymentConfirmation.expires_at < now - KEEP_S,
            )
        )
        found = [r for r in _matching(unit, pending) if r.expires_at > now]
        if found:  # a concurrent retry recorded it first
            return found[0].id
        waiting = session.scalar(
            select(func.count())
            .select_from(PaymentConfirmation)
            .where(
                PaymentConfirmation.holder_id == pending.holder_id,
                PaymentConfirmation.state == "pending",
                PaymentConfirmation.expires_at > now,
            )
        )
        if int(waiting or 0) >= PENDING_MAX:
            return None
        row = PaymentConfirmation(
            id=b64u_encode(secrets.token_bytes(16)),
            **asdict(pending),
            state="pending",
            created_at=now,
            expires_at=now + CONFIRMATION_TTL_S,
        )
        session.add(row)
        return row.id

    confirmation = ctx.run(work)
    extra = None if confirmation is None else {"confirmation": confirmation}
    return Problem(ProblemCode.PIN_REQUIRED, refusal.detail, extra=extra)


def _out(row: PaymentConfirmation) -> dict[str, Any]:
    return {
        "id": row.id,
        "amount": row.amount,
        "currency": row.currency,
        "terminal": row.terminal_id,
        "venue": row.venue,
        "seq": row.seq,
        "state": row.state,
        "created_at": row.created_at,
        "expires_at": row.expires_at,
    }


def pending_of(unit: Unit, holder_id: int) -> list[dict[str, Any]]:
    """The holder's confirmations waiting for them, oldest first (those whose seq the till
    settled another way, with the PIN typed there or a refusal it journalled, are gone)."""
    settled = select(Scan.seq).where(
        Scan.terminal_id == PaymentConfirmation.terminal_id, Scan.seq == PaymentConfirmation.seq
    )
    journaled = select(JournalEntry.seq).where(
        JournalEntry.terminal_id == PaymentConfirmation.terminal_id,
        JournalEntry.seq == PaymentConfirmation.seq,
    )
    rows = unit.session.scalars(
        select(PaymentConfirmation)
        .where(
            PaymentConfirmation.holder_id == holder_id,
            PaymentConfirmation.state == "pending",
            PaymentConfirmation.expires_at > unit.now,
            ~settled.exists(),
            ~journaled.exists(),
        )
        .order_by(PaymentConfirmation.created_at, PaymentConfirmation.id)
        .limit(PENDING_MAX)
    )
    return [_out(row) for row in rows]


def _waiting(unit: Unit, holder_id: int, confirmation: str) -> PaymentConfirmation:
    """The holder's confirmation, still waiting: 404 if it is not theirs (or none),
    `confirmation_expired`, or 409 once decided."""
    row = unit.session.scalars(
        select(PaymentConfirmation)
        .where(PaymentConfirmation.id == confirmation, PaymentConfirmation.holder_id == holder_id)
        .with_for_update()
    ).one_or_none()
    if row is None:
        raise Problem(ProblemCode.NOT_FOUND, "no such confirmation")
    if row.state != "pending":
        raise Problem(ProblemCode.CONFLICT, f"this confirmation is {row.state} already")
    if row.expires_at <= unit.now:
        raise Problem(ProblemCode.CONFIRMATION_EXPIRED, "this confirmation has expired")
    return row


def decline(ctx: AppContext, holder_id: int, confirmation: str) -> dict[str, Any]:
    """The holder refuses the payment: the till's retry is `403 pin_declined`."""

    def work(unit: Unit) -> dict[str, Any]:
        row = _waiting(unit, holder_id, confirmation)
        row.state, row.decided_at = "declined", unit.now
        return _out(row)

    return ctx.run(work)


def approve(ctx: AppContext, holder_id: int, confirmation: str, pin: str) -> dict[str, Any]:
    """The holder approves the payment with their PIN: checked against its hash outside any
    transaction (Argon2 holds no lock) once the holder's PIN key is known not to be blocked
    (429 throttled, before any hashing); a wrong one is `403 pin_wrong`, counted against the
    same key as the till's wrong PINs, and a right one forgets them."""

    secret = ctx.keyring.digest_key

    def look(unit: Unit) -> tuple[str, str | None] | Problem:
        _waiting(unit, holder_id, confirmation)
        holder = unit.session.get(Holder, holder_id)
        assert holder is not None, "a signed-in holder exists"
        try:
            throttle.check(unit.session, [throttle.pin(secret, holder.handle)], unit.now)
        except Problem as refusal:
            return refusal  # committed with the throttle's note
        return holder.handle, holder.pin_hash

    handle, stored = ctx.run_refusable(look)
    if stored is None:
        raise Problem(ProblemCode.PIN_NOT_SET, "no PIN is set: set one first")
    right = auth.secret_matches(ctx.settings, stored, pin)
    keys = [throttle.pin(secret, handle)]

    def decide(unit: Unit) -> dict[str, Any] | Problem:
        try:
            throttle.check(unit.session, keys, unit.now)
            row = _waiting(unit, holder_id, confirmation)
        except Problem as refusal:
            return refusal
        if not right:
            throttle.fail(unit.session, keys, unit.now)
            return Problem(ProblemCode.PIN_WRONG, "wrong PIN")
        throttle.succeed(unit.session, keys)
        row.state, row.decided_at = "approved", unit.now
        return _out(row)

    return ctx.run_refusable(decide)
