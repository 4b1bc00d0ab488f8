"""Offline acceptances (§4.1, §5.3, §5.4): re-checked, then charged against the counter's hold,
with the alerts the evidence rules (`duopass.risk`) find; or, when they cannot be settled,
booked to the pending account for review."""

from __future__ import annotations

from typing import Any

from duopass.ledger.events import EventType
from duopass.protocol.journal import Entry
from duopass.protocol.reasons import Reason, Unsettled
from duopass.protocol.verify import Mode
from duopass.risk import Acceptance, AlertKind, Earlier, evidence
from duopass.server import domain
from duopass.server.domain import Outcome
from duopass.server.services import accounts
from duopass.server.services.journals.entries import journal_entry
from duopass.server.services.journals.lookups import CredentialRef, HolderRef, Item, Seen
from duopass.server.services.journals.settling import Settled, Settling

__all__ = ["book", "pending"]


def book(st: Settling, item: Item, entry: Entry) -> Settled:
    """An acceptance the terminal decided offline (whatever the entry claims, unless the server
    holds its online verdict): re-checked, then charged against the counter's hold."""
    code = item.code
    if code is None:
        return pending(st, entry, (item.error or Reason.MALFORMED).value)
    claims = code.credential.claims
    credential = st.refs.credentials.get(claims.cti)
    if credential is None:  # not a credential this issuer issued
        return pending(st, entry, Reason.UNKNOWN_KEY.value)
    holder = st.refs.holders[credential.holder_id]
    device_signature = st.signatures.verdict(item.seq)
    reason = st.recheck(entry, code, device_signature=device_signature)
    if reason not in (Reason.OK, Reason.USES_EXHAUSTED):
        return pending(st, entry, reason.value, holder=holder, cti=claims.cti)
    ctr = code.dynamic.ctr if code.dynamic is not None else None
    ts = code.dynamic.ts if code.dynamic is not None else entry.server_time
    if entry.mode is Mode.PAY:
        refused = _unpayable(st, entry, claims.txmax, ts)
        if refused == Reason.OVER_TX_LIMIT.value:  # more than the credential allows
            st.risk_seen.misreported.append(entry.server_time)
        if refused is not None:
            return pending(st, entry, refused, holder=holder, cti=claims.cti)
    first = st.refs.counters.get((claims.cti, ctr)) if ctr is not None else None
    held = first is None and ctr is not None and st.refs.is_held(credential, ctr)
    hold = credential.txmax if held else 0
    txn = _charge(st, entry, credential, holder, hold) if entry.mode is Mode.PAY else None
    body = {"cti": claims.cti, "ctr": -1 if ctr is None else ctr, "terminal": st.terminal_id}
    body.update(seq=entry.seq, amount=entry.amount or 0, online=0)
    body["transaction"] = -1 if txn is None else txn
    st.leaf(EventType.PAYMENT if entry.mode is Mode.PAY else EventType.ENTRY, body)
    st.risk_seen.accepted.append((holder.id, entry.server_time))
    if first is None and ctr is not None:
        st.seen(claims.cti, ctr, ts, entry, hold=hold, txn=txn)
    in_bundle = st.refs.revoked_by_bundle(claims.cti, claims.sub, entry.bundle_seq)
    found = evidence(
        Acceptance(
            ctr=ctr,
            ts=ts,
            past_uses=reason is Reason.USES_EXHAUSTED,
            mark=credential.mark,
            revoked_in_bundle=in_bundle,
            earlier=None if first is None else Earlier(first.ts, first.terminal_id, first.seq),
            free_funds_after=st.free_funds(holder) if first is not None else 0,
            freshness_s=st.policy.freshness_s,
        )
    )
    _raise(st, found, entry, ctr=ctr, ts=ts, first=first, holder=holder, cti=claims.cti)
    if entry.mode is Mode.ENTRY:
        journal_entry(st, entry, credential, holder, claims, revoked_in_bundle=in_bundle, ts=ts)
    return Settled(Outcome.DUPLICATE if first is not None else Outcome.BOOKED, None, txn)


def _raise(
    st: Settling,
    found: list[AlertKind],
    entry: Entry,
    *,
    ctr: int | None,
    ts: int,
    first: Seen | None,
    holder: HolderRef,
    cti: bytes,
) -> None:
    for kind in found:
        details: dict[str, Any] = {
            "ctr": ctr,
            "ts": ts,
            "amount": entry.amount or 0,
            "bundle_seq": entry.bundle_seq,
        }
        if first is not None:
            details["first"] = {"terminal": first.terminal_id, "seq": first.seq, "ts": first.ts}
        st.alert(kind, details, seq=entry.seq, holder=holder, cti=cti)


def _unpayable(st: Settling, entry: Entry, txmax: int | None, ts: int) -> str | None:
    """Why an offline payment cannot be settled automatically (§5.4), if it cannot."""
    assert entry.amount is not None
    if entry.currency != st.currency:
        return Unsettled.CURRENCY.value
    if txmax is None or entry.amount > txmax:
        return Reason.OVER_TX_LIMIT.value
    if st.unit.now - ts > st.policy.late_window_s:
        return Unsettled.LATE.value
    return None


def _charge(
    st: Settling, entry: Entry, credential: CredentialRef, holder: HolderRef, hold: int
) -> int:
    """Debit the holder (hold released; beyond free funds as debt) and credit the merchant. A
    lost credential's acceptance after the report costs the holder at most its hold; the rest
    is the loss account's (§6)."""
    assert entry.amount is not None
    account = holder.account_id
    st.books.release(account, hold)
    lost = credential.lost_at is not None and entry.server_time >= credential.lost_at
    holder_part, loss_part = domain.lost_split(entry.amount, hold=hold, after_loss_report=lost)
    legs = [(st.merchant, entry.amount)]
    if holder_part:
        legs.append((account, -holder_part))
    if loss_part:
        currency = st.terminal.currency or st.unit.settings.currency
        loss = accounts.system_account(st.unit.session, "loss", currency)
        legs.append((loss.id, -loss_part))
    return st.books.add(
        kind="payment", legs=legs, occurred_at=entry.server_time, terminal_id=st.terminal_id
    )


def pending(
    st: Settling,
    entry: Entry,
    reason: str,
    *,
    holder: HolderRef | None = None,
    cti: bytes | None = None,
) -> Settled:
    """An acceptance that cannot be settled: debit pending, credit the merchant, and an alert
    for review (§5.4)."""
    amount, txn = to_pending(st, entry)
    st.alert(
        AlertKind.PENDING,
        {"reason": reason, "code": entry.code, "scanned_at": entry.scanned_at},
        seq=entry.seq,
        pending=amount,
        holder=holder,
        cti=cti,
    )
    return Settled(Outcome.PENDING, reason, txn)


def to_pending(st: Settling, entry: Entry) -> tuple[int, int | None]:
    amount = st.charged(entry)
    if not amount:
        return 0, None
    assert entry.currency is not None
    pending_account = accounts.system_account(st.unit.session, "pending", entry.currency)
    txn = st.books.add(
        kind="pending",
        legs=[(pending_account.id, -amount), (st.merchant, amount)],
        occurred_at=entry.server_time,
        terminal_id=st.terminal.id,
        memo=f"seq {entry.seq}",
    )
    return amount, txn
