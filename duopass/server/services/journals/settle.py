"""One entry settled (§5.1): the terminal's verdict on a scan the server decided online confirms
it, amends its amount, voids the charge the terminal did not make, or books the acceptance the
server had refused; any other acceptance is booked as an offline one (`book`)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, select, update

from duopass.ledger.events import EventType
from duopass.protocol.encoding import b64u_decode
from duopass.protocol.journal import Entry
from duopass.protocol.reasons import Reason
from duopass.protocol.verify import Mode
from duopass.risk import AlertKind
from duopass.server import domain
from duopass.server.domain import Outcome
from duopass.server.services import accounts, counters
from duopass.server.services.journals.book import book
from duopass.server.services.journals.lookups import Item, Seen
from duopass.server.services.journals.settling import Settled, Settling
from duopass.server.store.tables import Alert, CounterSeen, Scan
from duopass.server.store.tickets import Checkin

__all__ = ["settle"]


def settle(st: Settling, item: Item) -> Settled:
    """How the entry a terminal sent for a fresh seq settles."""
    entry = item.entry
    if entry is None:
        evidence = {"reason": Reason.MALFORMED.value, "entry": item.raw}
        st.alert(AlertKind.PENDING, evidence, seq=item.seq)
        return Settled(Outcome.PENDING, Reason.MALFORMED.value)
    answer = st.refs.scans.get(item.seq)
    if answer is not None:
        return _settle_online(st, item, entry, answer)
    if entry.verdict is not Reason.OK or entry.mode is Mode.IDENTITY:
        return Settled(Outcome.RECORDED)
    return book(st, item, entry)


def _settle_online(st: Settling, item: Item, entry: Entry, answer: dict[str, Any]) -> Settled:
    """The terminal's verdict on a scan the server decided online settles it (§5.1)."""
    st.unit.session.execute(
        update(Scan)
        .where(Scan.terminal_id == st.terminal.id, Scan.seq == entry.seq)
        .values(provisional=False)
    )
    if bool(answer["ok"]) == (entry.verdict is Reason.OK) or entry.mode is Mode.IDENTITY:
        txn = _amend(st, entry, answer) if answer["ok"] and entry.charges else None
        return Settled(Outcome.CONFIRMED, None, txn)
    if entry.verdict is not Reason.OK:
        return _void(st, entry, answer)
    # the server refused but the terminal accepted (its answer never arrived): book it as the
    # offline acceptance it is
    return book(st, item, entry)


def _own_counter(
    st: Settling, entry: Entry, answer: dict[str, Any]
) -> tuple[bytes, int, Seen] | None:
    """The counter the server's online acceptance of this (terminal, seq) recorded, if it is
    still that acceptance's."""
    cti, ctr = b64u_decode(answer["cti"]), answer["ctr"]
    seen = st.refs.counters.get((cti, ctr)) if ctr is not None else None
    if seen is None or (seen.terminal_id, seen.seq) != (st.terminal.id, entry.seq):
        return None
    return cti, ctr, seen


def _amend(st: Settling, entry: Entry, answer: dict[str, Any]) -> int | None:
    """An online payment the terminal journalled with another amount: the terminal's amount
    stands (§5.1), capped as `domain.amend` says; the excess goes to pending for review."""
    assert entry.amount is not None
    own = _own_counter(st, entry, answer)
    if own is None or entry.amount == own[2].amount:
        return None
    cti, ctr, seen = own
    st.risk_seen.misreported.append(entry.server_time)  # not the amount approved online
    credential = st.refs.credentials[cti]
    holder = st.refs.holders[credential.holder_id]
    approved = seen.amount
    charged, excess = domain.amend(
        approved=approved, journalled=entry.amount, txmax=credential.txmax
    )
    txn = None
    if charged != approved:
        txn = st.books.add(
            kind="amend",
            legs=[(holder.account_id, approved - charged), (st.merchant, charged - approved)],
            occurred_at=entry.server_time,
            terminal_id=st.terminal.id,
            memo=f"seq {entry.seq}: {approved} as journalled {entry.amount}",
        )
    if excess:
        assert entry.currency is not None
        pending = accounts.system_account(st.unit.session, "pending", entry.currency)
        st.books.add(
            kind="pending",
            legs=[(pending.id, -excess), (st.merchant, excess)],
            occurred_at=entry.server_time,
            terminal_id=st.terminal.id,
            memo=f"seq {entry.seq}: above txmax",
        )
        evidence = {"reason": Reason.OVER_TX_LIMIT.value, "approved": approved}
        evidence["journal"] = entry.amount
        st.alert(AlertKind.PENDING, evidence, seq=entry.seq, pending=excess, holder=holder, cti=cti)
    seen.amount = charged
    st.unit.session.execute(
        update(CounterSeen)
        .where(CounterSeen.cti == cti, CounterSeen.ctr == ctr)
        .values(amount=charged)
    )
    body = {"cti": cti, "ctr": ctr, "approved": approved, "amount": entry.amount}
    body.update(terminal=st.terminal.id, seq=entry.seq, transaction=-1 if txn is None else txn)
    st.leaf(EventType.AMEND, body)
    return txn


def _void(st: Settling, entry: Entry, answer: dict[str, Any]) -> Settled:
    """The terminal rejected what the server accepted: the charge is reversed, and the counter
    becomes unseen again with its hold back, unless another acceptance of it was booked
    meanwhile, which then takes the counter over."""
    own = _own_counter(st, entry, answer)
    if own is None:
        return Settled(Outcome.CONFIRMED)  # the server's acceptance moved nothing to reverse
    cti, ctr, seen = own
    st.risk_seen.misreported.append(entry.server_time)  # not the amount approved online
    credential = st.refs.credentials[cti]
    account = st.refs.holders[credential.holder_id].account_id
    if entry.mode is Mode.ENTRY:  # the gate stayed shut: the online check-in did not happen
        st.unit.session.execute(
            update(Checkin)
            .where(Checkin.terminal_id == st.terminal.id, Checkin.seq == entry.seq)
            .where(Checkin.source == "scan")
            .values(successful=False, counted=False, reason="voided")
        )
    txn = None
    if seen.amount:
        txn = st.books.add(
            kind="void",
            legs=[(account, seen.amount), (st.merchant, -seen.amount)],
            occurred_at=entry.server_time,
            terminal_id=st.terminal.id,
            memo=f"void of seq {entry.seq}",
        )
    successor = _duplicate_of(st, cti, ctr, entry.seq)
    where = (CounterSeen.cti == cti, CounterSeen.ctr == ctr)
    if successor is not None:  # the counter was used elsewhere too: that use now settles
        successor.hold = seen.hold  # against the hold already released (§4.4)
        st.unit.session.execute(
            update(CounterSeen)
            .where(*where)
            .values(
                terminal_id=successor.terminal_id,
                seq=successor.seq,
                ts=successor.ts,
                amount=successor.amount,
                transaction_id=None,
            )
        )
        st.refs.counters[cti, ctr] = successor
    else:
        # the hold returns only while the counter could still be charged against it: not
        # after the sweep released the credential's holds, nor above a refresh's release mark,
        # where nothing would ever release it again
        if domain.holds(counters.terms(credential), ctr):
            st.books.hold(account, seen.hold)
        st.unit.session.execute(delete(CounterSeen).where(*where))
        del st.refs.counters[cti, ctr]
    body = {"cti": cti, "ctr": ctr, "amount": seen.amount, "terminal": st.terminal.id}
    body.update(seq=entry.seq, transaction=-1 if txn is None else txn)
    st.leaf(EventType.VOID, body)
    return Settled(Outcome.VOIDED, None, txn)


def _duplicate_of(st: Settling, cti: bytes, ctr: int, seq: int) -> Seen | None:
    """The earliest other acceptance of a counter first accepted at (this terminal, `seq`): a
    duplicate's alert names the acceptance it duplicated."""
    first = {"terminal": st.terminal.id, "seq": seq}
    kinds = (AlertKind.CLONE.value, AlertKind.RELAY_SUSPECTED.value)
    for alert in st.unit.session.scalars(
        select(Alert).where(Alert.cti == cti, Alert.kind.in_(kinds)).order_by(Alert.id)
    ):
        evidence = json.loads(alert.evidence)
        was = evidence.get("first", {})
        if evidence.get("ctr") == ctr and {k: was.get(k) for k in first} == first:
            assert alert.terminal_id is not None and alert.seq is not None
            return Seen(evidence["ts"], alert.terminal_id, alert.seq, evidence["amount"], 0)
    return None
