"""Journals (§5): a terminal's signed batches, each entry settled exactly once.

One verdict per (terminal_id, seq), the terminal's. An entry the server decided online confirms
it, voids the charge the terminal did not make, or books the acceptance the server had refused.
Any other acceptance is re-checked (§5.3: both signatures, §3 at the scan time under the bundle
the entry names) and booked against the holder's hold (§4), with alerts for the evidence §4.4-4.5
lists. What cannot be settled goes to the pending account for review. The entry's bytes are kept
as evidence, and `acked_seq` says up to where the terminal may delete.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from duopass.protocol.cbor import MalformedError
from duopass.protocol.code import Code as DecodedCode
from duopass.protocol.code import FormatError, decode_code
from duopass.protocol.encoding import b64u_decode
from duopass.protocol.journal import GENESIS, Batch, Entry, parse_entry
from duopass.protocol.memory import MemoryStore
from duopass.protocol.reasons import Reason
from duopass.protocol.trust import Policy
from duopass.protocol.verify import Mode, TerminalConfig, verify_code
from duopass.server.config import Settings
from duopass.server.keyring import Keyring
from duopass.server.services import accounts, credentials, ledger
from duopass.server.services.alerts import Kind, raise_alert
from duopass.server.services.scans import ServerTrust
from duopass.server.store.tables import (
    Alert,
    CounterSeen,
    Credential,
    Holder,
    JournalBatch,
    JournalEntry,
    Scan,
    Terminal,
    TrustChange,
)

LATE = "LATE"
"""A charging entry whose code is older than the late window (§5.4): pending."""
CONFLICT = "CONFLICT"
"""Different bytes for a (terminal_id, seq) already held (§5.2): pending."""
CURRENCY = "CURRENCY"
"""The entry's currency is not the till's."""


@dataclass
class Receipt:
    """The answer to one batch (§8): `{"acked_seq", "duplicates", "rejected"}`."""

    acked_seq: int
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def answer(self) -> dict[str, Any]:
        return {
            "acked_seq": self.acked_seq,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
        }


@dataclass(frozen=True)
class _Settled:
    outcome: str
    reason: str | None = None
    transaction_id: int | None = None


class _Journal:
    """One batch's settlement, in one transaction, with the terminal's row locked."""

    def __init__(
        self, session: Session, keyring: Keyring, settings: Settings, terminal: Terminal, now: int
    ) -> None:
        self.session, self.keyring, self.settings = session, keyring, settings
        self.terminal, self.now = terminal, now

    # -- the batch ---------------------------------------------------------------------------

    def ingest(self, batch: Batch, data: bytes) -> Receipt:
        session, terminal = self.session, self.terminal
        known = dict(
            session.execute(
                select(JournalEntry.seq, JournalEntry.data).where(
                    JournalEntry.terminal_id == terminal.id,
                    JournalEntry.seq.between(batch.first, batch.last),
                )
            ).all()
        )
        row = session.scalars(
            select(JournalBatch).where(
                JournalBatch.terminal_id == terminal.id, JournalBatch.digest == batch.digest
            )
        ).first()
        if row is None:
            row = self._store_batch(batch, data)
        receipt = Receipt(acked_seq=terminal.acked_seq)
        added = 0
        for offset, raw in enumerate(batch.entries):
            seq = batch.first + offset
            stored = known.get(seq)
            if stored == raw:
                receipt.duplicates += 1
                continue
            if stored is not None:
                settled = self._conflict(seq, stored, raw)
            else:
                settled = self._settle(seq, raw)
                session.add(
                    JournalEntry(
                        terminal_id=terminal.id,
                        seq=seq,
                        data=raw,
                        batch_id=row.id,
                        received_at=self.now,
                        outcome=settled.outcome,
                        reason=settled.reason,
                        transaction_id=settled.transaction_id,
                    )
                )
                added += 1
            if settled.reason is not None:
                receipt.rejected.append({"seq": seq, "reason": settled.reason})
        if added:
            session.flush()
            terminal.acked_seq = self._acked(terminal.acked_seq)
            ledger.append(
                session,
                "journal_batch",
                self.now,
                self.settings.issuer,
                {
                    "terminal": terminal.id,
                    "first": batch.first,
                    "last": batch.last,
                    "digest": batch.digest,
                    "entries": added,
                },
            )
        receipt.acked_seq = terminal.acked_seq
        return receipt

    def _store_batch(self, batch: Batch, data: bytes) -> JournalBatch:
        """Keep the batch's bytes; a batch that skips entries or breaks the chain is an alert."""
        session, terminal = self.session, self.terminal
        if batch.first > terminal.acked_seq + 1:
            self._alert(
                Kind.GAP, {"expected_seq": terminal.acked_seq + 1, "batch_first": batch.first}
            )
        if batch.first == 1:
            chained = batch.prev == GENESIS
        else:
            before = session.scalars(
                select(JournalBatch.digest).where(
                    JournalBatch.terminal_id == terminal.id, JournalBatch.last == batch.first - 1
                )
            ).all()
            chained = not before or batch.prev in before
        if not chained:
            self._alert(
                Kind.GAP,
                {"chain": "prev does not match the batch before", "batch_first": batch.first},
            )
        row = JournalBatch(
            terminal_id=terminal.id,
            first=batch.first,
            last=batch.last,
            digest=batch.digest,
            prev=batch.prev,
            received_at=self.now,
            data=data,
        )
        session.add(row)
        session.flush()
        return row

    def _acked(self, acked: int) -> int:
        """The highest seq up to which every entry is held."""
        following = self.session.scalars(
            select(JournalEntry.seq)
            .where(JournalEntry.terminal_id == self.terminal.id, JournalEntry.seq > acked)
            .order_by(JournalEntry.seq)
        )
        for seq in following:
            if seq != acked + 1:
                break
            acked = seq
        return acked

    def _conflict(self, seq: int, stored: bytes, raw: bytes) -> _Settled:
        """Other bytes for a seq already held: an alert, and the new entry's amount to pending,
        once per distinct entry however often the batch is resent."""
        digest = hashlib.sha256(raw).hexdigest()
        for earlier in self.session.scalars(
            select(Alert.evidence).where(
                Alert.kind == Kind.CONFLICT.value,
                Alert.terminal_id == self.terminal.id,
                Alert.seq == seq,
            )
        ):
            if json.loads(earlier).get("received_sha256") == digest:
                return _Settled("pending", CONFLICT)
        entry = _parsed(raw)
        amount, txn = self._to_pending(entry)
        self._alert(
            Kind.CONFLICT,
            {"stored": stored, "received": raw, "received_sha256": digest},
            seq=seq,
            pending=amount,
        )
        return _Settled("pending", CONFLICT, txn)

    # -- one entry ---------------------------------------------------------------------------

    def _settle(self, seq: int, raw: bytes) -> _Settled:
        entry = _parsed(raw)
        if entry is None or entry.seq != seq:
            self._alert(Kind.PENDING, {"reason": Reason.MALFORMED.value, "entry": raw}, seq=seq)
            return _Settled("pending", Reason.MALFORMED.value)
        scan = self.session.execute(
            select(Scan.verdict).where(Scan.terminal_id == self.terminal.id, Scan.seq == seq)
        ).first()
        if scan is not None:
            return self._settle_online(entry, json.loads(scan.verdict))
        if entry.verdict is not Reason.OK or entry.mode is Mode.IDENTITY:
            return _Settled("recorded")
        return self._book(entry)

    def _settle_online(self, entry: Entry, answer: dict[str, Any]) -> _Settled:
        """The terminal's verdict on a scan the server decided online settles it (§5.1)."""
        self.session.execute(
            update(Scan)
            .where(Scan.terminal_id == self.terminal.id, Scan.seq == entry.seq)
            .values(provisional=False)
        )
        accepted = entry.verdict is Reason.OK and entry.mode is not Mode.IDENTITY
        if bool(answer["ok"]) == (entry.verdict is Reason.OK) or entry.mode is Mode.IDENTITY:
            return _Settled("confirmed")
        if not accepted:
            return self._void(entry, answer)
        # the server refused but the terminal accepted (its answer never arrived): book it as
        # the offline acceptance it is
        return self._book(entry)

    def _void(self, entry: Entry, answer: dict[str, Any]) -> _Settled:
        """The terminal rejected what the server accepted: the counter becomes unseen again, its
        hold returns and the charge is reversed."""
        cti, ctr = b64u_decode(answer["cti"]), answer["ctr"]
        seen = self.session.get(CounterSeen, (cti, ctr)) if ctr is not None else None
        if seen is None or (seen.terminal_id, seen.seq) != (self.terminal.id, entry.seq):
            return _Settled("confirmed")  # the server's acceptance moved nothing to reverse
        credential = self.session.get(Credential, cti)
        assert credential is not None, "the server accepted it"
        holder = self.session.get(Holder, credential.holder_id)
        assert holder is not None
        account = accounts.lock(self.session, holder.account_id)
        txn = None
        if seen.amount:
            assert self.terminal.merchant_account_id is not None
            txn = accounts.post(
                self.session,
                kind="void",
                legs=[(account.id, seen.amount), (self.terminal.merchant_account_id, -seen.amount)],
                now=self.now,
                occurred_at=entry.server_time,
                zone=self.settings.zone,
                terminal_id=self.terminal.id,
                memo=f"void of seq {entry.seq}",
            )
        accounts.change_held(self.session, account.id, seen.hold)
        self.session.execute(
            delete(CounterSeen).where(CounterSeen.cti == cti, CounterSeen.ctr == ctr)
        )
        ledger.append(
            self.session,
            "void",
            self.now,
            self.settings.issuer,
            {
                "cti": cti,
                "ctr": ctr,
                "amount": seen.amount,
                "terminal": self.terminal.id,
                "seq": entry.seq,
                "transaction": txn if txn is not None else -1,
            },
        )
        return _Settled("voided", None, txn)

    def _book(self, entry: Entry) -> _Settled:
        """An acceptance the terminal decided offline (whatever the entry claims, unless the
        server holds its online verdict): re-checked, then charged against the counter's hold
        (§4.1, §5.4)."""
        session, terminal = self.session, self.terminal
        try:
            code = decode_code(entry.code)
        except FormatError:
            return self._pending(entry, Reason.FORMAT.value)
        except MalformedError:
            return self._pending(entry, Reason.MALFORMED.value)
        claims = code.credential.claims
        credential = (
            session.get(Credential, claims.cti) if claims.iss == self.settings.issuer else None
        )
        if credential is None:
            return self._pending(entry, Reason.UNKNOWN_KEY.value)
        holder = session.get(Holder, credential.holder_id)
        assert holder is not None
        reason = self._recheck(entry, code)
        if reason not in (Reason.OK, Reason.USES_EXHAUSTED):
            return self._pending(entry, reason.value, holder=holder, cti=claims.cti)
        ctr, ts = code.dynamic.ctr if code.dynamic else None, code.dynamic.ts if code.dynamic else 0
        if entry.mode is Mode.PAY:
            assert entry.amount is not None and claims.txmax is not None
            if entry.currency != terminal.currency:
                return self._pending(entry, CURRENCY, holder=holder, cti=claims.cti)
            if entry.amount > claims.txmax:
                return self._pending(
                    entry, Reason.OVER_TX_LIMIT.value, holder=holder, cti=claims.cti
                )
            if self.now - ts > self.settings.late_window_s:
                return self._pending(entry, LATE, holder=holder, cti=claims.cti)
        evidence: list[Kind] = []
        if reason is Reason.USES_EXHAUSTED:
            evidence.append(Kind.USES_EXCEEDED)
        if ctr is not None and credential.mark is not None and ctr > credential.mark:
            evidence.append(Kind.ABOVE_MARK)
        if self._revoked_by_bundle(claims.cti, claims.sub, entry.bundle_seq):
            evidence.append(Kind.REVOKED_ACCEPTED)
        account = accounts.lock(session, holder.account_id)
        seen = session.get(CounterSeen, (claims.cti, ctr)) if ctr is not None else None
        hold = (
            credential.txmax
            if seen is None and ctr is not None and credentials.is_held(session, credential, ctr)
            else 0
        )
        txn = None
        if entry.mode is Mode.PAY:
            assert entry.amount is not None
            txn = self._charge(entry, credential, account.id, hold)
        ledger.append(
            session,
            "payment" if entry.mode is Mode.PAY else "entry",
            self.now,
            self.settings.issuer,
            {
                "cti": claims.cti,
                "ctr": -1 if ctr is None else ctr,
                "amount": entry.amount or 0,
                "terminal": terminal.id,
                "seq": entry.seq,
                "transaction": -1 if txn is None else txn,
                "online": 0,
            },
        )
        outcome = "booked"
        if seen is not None:
            outcome = "duplicate"
            close = abs(ts - seen.ts) <= Policy().freshness_s
            evidence.append(Kind.RELAY_SUSPECTED if close else Kind.CLONE)
            if accounts.free_funds(accounts.lock(session, holder.account_id)) < 0:
                evidence.append(Kind.NEGATIVE_FUNDS)
        elif ctr is not None:
            session.add(
                CounterSeen(
                    cti=claims.cti,
                    ctr=ctr,
                    ts=ts,
                    terminal_id=terminal.id,
                    seq=entry.seq,
                    amount=entry.amount or 0,
                    hold=hold,
                    transaction_id=txn,
                )
            )
        for kind in evidence:
            details: dict[str, Any] = {"ctr": ctr, "ts": ts, "bundle_seq": entry.bundle_seq}
            if seen is not None:
                details["first"] = {"terminal": seen.terminal_id, "seq": seen.seq, "ts": seen.ts}
            raise_alert(
                session,
                self.settings,
                self.keyring,
                kind,
                now=self.now,
                evidence=details,
                holder=holder,
                cti=claims.cti,
                terminal_id=terminal.id,
                seq=entry.seq,
            )
        return _Settled(outcome, None, txn)

    def _charge(self, entry: Entry, credential: Credential, account_id: int, hold: int) -> int:
        """Debit the holder (hold released; beyond free funds as debt) and credit the merchant.
        A lost credential's acceptance after the report costs the holder at most its hold; the
        rest is the loss account's (§6)."""
        assert entry.amount is not None and self.terminal.merchant_account_id is not None
        accounts.change_held(self.session, account_id, -hold)
        holder_part = entry.amount
        if credential.lost_at is not None and entry.server_time >= credential.lost_at:
            holder_part = min(entry.amount, hold)
        legs = [(self.terminal.merchant_account_id, entry.amount)]
        if holder_part:
            legs.append((account_id, -holder_part))
        if entry.amount - holder_part:
            currency = self.terminal.currency or self.settings.currency
            loss = accounts.system_account(self.session, "loss", currency)
            legs.append((loss.id, holder_part - entry.amount))
        return accounts.post(
            self.session,
            kind="payment",
            legs=legs,
            now=self.now,
            occurred_at=entry.server_time,
            zone=self.settings.zone,
            terminal_id=self.terminal.id,
        )

    def _recheck(self, entry: Entry, code: DecodedCode) -> Reason:
        """§3 again at the scan time (§5.3): signatures, windows, kind and scope against the
        terminal's registered configuration, `ts` within freshness + skew of the scan time.
        Revocations, freezes and counters are evidence here, not refusals: they are checked
        against the bundle the entry names and the whole system's counters instead."""
        terminal = self.terminal
        if entry.mode.value != terminal.mode and entry.mode is not Mode.IDENTITY:
            return Reason.WRONG_KIND
        if entry.venue != terminal.venue:
            return Reason.OUT_OF_SCOPE
        config = TerminalConfig(
            mode=entry.mode, currency=terminal.currency, venue=terminal.venue, event=terminal.event
        )
        verdict = verify_code(
            code,
            trust=_Recheck(self.session, self.settings, entry.server_time),
            config=config,
            memory=MemoryStore(),
            now=entry.server_time,
            amount=entry.amount,
            online=True,  # check 18 is the caller's, after check 16's evidence
        )
        return verdict.reason

    def _revoked_by_bundle(self, cti: bytes, sub: str, bundle_seq: int) -> bool:
        """Whether the bundle version the terminal held had revoked the credential or frozen its
        subject (§4.5)."""
        revoked = self.session.scalars(
            select(TrustChange.id)
            .where(TrustChange.cti == cti, TrustChange.change == "revoke")
            .where(TrustChange.seq <= bundle_seq)
            .limit(1)
        ).first()
        if revoked is not None:
            return True
        last = self.session.scalars(
            select(TrustChange.change)
            .where(TrustChange.sub == sub, TrustChange.change.in_(("freeze", "unfreeze")))
            .where(TrustChange.seq <= bundle_seq)
            .order_by(TrustChange.seq.desc())
            .limit(1)
        ).first()
        return last == "freeze"

    def _pending(
        self, entry: Entry, reason: str, *, holder: Holder | None = None, cti: bytes | None = None
    ) -> _Settled:
        """An acceptance that cannot be settled: debit pending, credit the merchant, and an alert
        for review (§5.4)."""
        amount, txn = self._to_pending(entry)
        self._alert(
            Kind.PENDING,
            {"reason": reason, "code": entry.code, "scanned_at": entry.scanned_at},
            seq=entry.seq,
            pending=amount,
            holder=holder,
            cti=cti,
        )
        return _Settled("pending", reason, txn)

    def _to_pending(self, entry: Entry | None) -> tuple[int, int | None]:
        terminal = self.terminal
        if entry is None or not entry.charges or entry.currency != terminal.currency:
            return 0, None
        assert entry.amount is not None and entry.currency is not None
        assert terminal.merchant_account_id is not None, "a till has a merchant"
        pending = accounts.system_account(self.session, "pending", entry.currency)
        txn = accounts.post(
            self.session,
            kind="pending",
            legs=[(pending.id, -entry.amount), (terminal.merchant_account_id, entry.amount)],
            now=self.now,
            occurred_at=entry.server_time,
            zone=self.settings.zone,
            terminal_id=terminal.id,
            memo=f"seq {entry.seq}",
        )
        return entry.amount, txn

    def _alert(
        self,
        kind: Kind,
        evidence: dict[str, Any],
        *,
        seq: int | None = None,
        pending: int = 0,
        holder: Holder | None = None,
        cti: bytes | None = None,
    ) -> None:
        raise_alert(
            self.session,
            self.settings,
            self.keyring,
            kind,
            now=self.now,
            evidence=evidence,
            holder=holder,
            cti=cti,
            terminal_id=self.terminal.id,
            seq=seq,
            pending=pending,
            currency=self.terminal.currency if pending else None,
        )


class _Recheck(ServerTrust):
    """The server's keys, with revocations and freezes left to the evidence checks, and the
    freshness check widened by the clock skew (§5.3: `ts` within freshness + skew)."""

    def __init__(self, session: Session, settings: Settings, now: int) -> None:
        super().__init__(session, settings, None, None, now)

    def policy(self, iss: str) -> Policy:
        base = Policy(static_tickets=self.settings.static_tickets)
        return Policy(
            static_tickets=base.static_tickets,
            freshness_s=base.freshness_s + base.clock_skew_s,
            clock_skew_s=base.clock_skew_s,
        )

    def is_revoked(self, iss: str, cti: bytes, ctr: int | None = None) -> bool:
        return False

    def is_frozen(self, iss: str, sub: str) -> bool:
        return False


def _parsed(raw: bytes) -> Entry | None:
    try:
        return parse_entry(raw)
    except MalformedError:
        return None


def ingest(
    session: Session,
    keyring: Keyring,
    settings: Settings,
    *,
    terminal_id: str,
    batch: Batch,
    data: bytes,
    now: int,
) -> dict[str, Any]:
    """Settle one verified batch; the answer of §8."""
    terminal = session.scalars(
        select(Terminal).where(Terminal.id == terminal_id).with_for_update()
    ).one()
    return _Journal(session, keyring, settings, terminal, now).ingest(batch, data).answer()
