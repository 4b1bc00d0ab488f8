"""One scan, start to verdict: a seq taken durably, the server asked within the online timeout,
else the terminal's own verdict (§3 with its durable memory), then the journal entry (§5) and
what was accepted, committed together before the verdict is returned.

A scan that fell back after a timeout keeps its seq: if the server did apply it, the journal
entry for that (terminal_id, seq) settles it the terminal's way (§5.1), never twice.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from duopass.protocol.cbor import MalformedError
from duopass.protocol.code import FormatError, decode_code
from duopass.protocol.encoding import EncodingError, b64u_decode
from duopass.protocol.journal import Entry, encode_entry
from duopass.protocol.limits import CODE_CHARS_MAX, SUB_CHARS_MAX
from duopass.protocol.memory import Acceptance
from duopass.protocol.reasons import Reason
from duopass.protocol.trust import TrustStore
from duopass.protocol.verify import Mode, TerminalConfig, Verifier, accepted
from duopass.terminal.client import Client, Refused, Unreachable
from duopass.terminal.link import Link
from duopass.terminal.store import Config, DurableMemory, Store

__all__ = ["AMOUNT_MAX", "BACKLOG_MARGIN_S", "WAIT_FOR_WALLET", "PinEntry", "Result", "ScanPath"]

log = logging.getLogger("duopass.terminal")

AMOUNT_MAX = 10**9
"""Largest amount a till takes, in minor units: what the server accepts in a scan."""
BACKLOG_MARGIN_S = 12 * 3600
"""§5.5: payments are refused offline while the oldest unacknowledged entry is older than the
late window minus this."""
_NO_TRUST = TrustStore(seq=0, issued_at=0, max_age_s=0, issuers=())
PURSE_REFUSALS = frozenset(
    {"limit_daily_total", "limit_meal_count", "pin_required", "pin_wrong", "pin_not_set"}
    | {"pin_declined", "confirmation_expired", "throttled"}
)
"""The server's refusals of a payment over the holder's purse limits (docs/terminal.md): final,
journalled as INSUFFICIENT_FUNDS, never decided again offline (which would let it through)."""
PIN_TRIES = 3
"""PINs the till asks for one payment before it refuses it."""
PinEntry = Callable[[str, str | None], str | None]
"""Asks the holder for their PIN, given the server's `pin_required` or `pin_wrong` and, when the
holder may confirm the payment in their wallet instead, the confirmation's id: the digits typed
on the till's keypad, `WAIT_FOR_WALLET` (only with an id), or None if they gave up."""
WAIT_FOR_WALLET = ""
"""A `PinEntry`'s answer: wait for the holder to approve the payment in their wallet."""
WALLET_WAIT_S = 60.0
"""How long the till waits for the wallet's approval before it refuses the payment."""
WALLET_POLL_S = 1.5
"""How often, while it waits, the till sends the same seq again (without a PIN)."""


@dataclass(frozen=True, kw_only=True)
class Result:
    """A scan's verdict as the terminal shows it; `online` says whose verdict it is."""

    seq: int
    reason: Reason
    online: bool
    tried: bool
    mode: Mode
    amount: int | None
    currency: str | None
    iss: str | None = None
    sub: str | None = None
    cti: bytes | None = None
    ctr: int | None = None
    note: str | None = None
    """Why a tried scan was decided offline (the server's silence or refusal)."""

    @property
    def ok(self) -> bool:
        return self.reason is Reason.OK


class ScanPath:
    """The scan path of one enrolled terminal. Thread-safe: scans run one at a time."""

    def __init__(
        self,
        store: Store,
        client: Client,
        link: Link,
        *,
        timeout_s: float,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        wallet_wait_s: float = WALLET_WAIT_S,
    ) -> None:
        self.store, self.client, self.link = store, client, link
        self.timeout_s, self.clock, self.sleep = timeout_s, clock, sleep
        self.wallet_wait_s = wallet_wait_s
        config: Config = store.config()
        self.settings = config
        self.config = TerminalConfig(
            mode=Mode(config.mode),
            currency=config.currency,
            venue=config.venue,
            event=config.event,
        )
        self.verifier = Verifier(store.trust() or _NO_TRUST, self.config, DurableMemory(store))
        self._lock = threading.Lock()

    def set_trust(self, trust: TrustStore) -> None:
        with self._lock:
            self.verifier.trust = trust

    # -- recovery --------------------------------------------------------------------------

    def recover(self) -> list[int]:
        """Journal the scans a crash interrupted after they took a seq: the terminal accepted
        nothing for them (its entry and acceptance commit together), so each is INTERRUPTED,
        which voids a charge the server may have made online (§5.1)."""
        done = []
        for held in self.store.open_scans():
            scan = _Scan(
                held.seq, held.code, Mode(held.mode), held.amount, held.scanned_at, held.tried
            )
            with self.store.transaction() as db:
                self.store.close_scan(db, scan.seq, self._entry(scan, Reason.INTERRUPTED), None)
            done.append(scan.seq)
        return done

    # -- a scan ----------------------------------------------------------------------------

    def scan(
        self, text: str, *, amount: int | None = None, pin_entry: PinEntry | None = None
    ) -> Result:
        """Decide one scanned text (one line, its line ending removed); `pin_entry` asks for
        the PIN when the server wants it for this payment (or whether to wait for the holder's
        wallet to confirm it)."""
        mode, amount = self.config.mode, self._amount(text, amount)
        with self._lock:
            return self._scan(text, mode, amount, pin_entry)

    def refuse(self, text: str, *, amount: int | None, reason: Reason, iss: str) -> Result:
        """Journal a scan this terminal refuses before any check, in this enrolment's chain
        (a code of an issuer it is not enrolled with: docs/terminal.md, "Several issuers")."""
        mode, amount = self.config.mode, self._amount(text, amount)
        with self._lock:
            scan = _Scan(0, text, mode, amount, int(self.clock()), False)
            seq = self.store.open_scan(
                scanned_at=scan.scanned_at,
                mode=mode.value,
                amount=amount,
                code=text[:CODE_CHARS_MAX],
                tried=False,
            )
            scan = dataclasses.replace(scan, seq=seq)
            with self.store.transaction() as db:
                self.store.close_scan(db, seq, self._entry(scan, reason), None)
        currency = self.config.currency if mode is Mode.PAY else None
        return Result(
            seq=seq, reason=reason, online=False, tried=False, mode=mode, amount=amount,
            currency=currency, iss=iss,
        )  # fmt: skip

    def _amount(self, text: str, amount: int | None) -> int | None:
        if self.config.mode is not Mode.PAY:
            amount = None
        elif amount is None or not 1 <= amount <= AMOUNT_MAX:
            raise ValueError("a payment needs an amount of 1 .. AMOUNT_MAX minor units")
        if not text:
            raise ValueError("nothing scanned")
        return amount

    def _scan(
        self, text: str, mode: Mode, amount: int | None, pin_entry: PinEntry | None
    ) -> Result:
        scanned_at = int(self.clock())
        code = text[:CODE_CHARS_MAX]  # longer is no code (MALFORMED or FORMAT): kept in part
        ask = self.link.online and len(text) <= CODE_CHARS_MAX
        seq = self.store.open_scan(
            scanned_at=scanned_at, mode=mode.value, amount=amount, code=code, tried=ask
        )
        scan = _Scan(seq, text, mode, amount, scanned_at, ask)
        if not ask:
            return self._close_offline(scan, None)
        try:
            result = self._ask_with_pin(scan, pin_entry)
        except Unreachable as exc:
            self.link.failed(exc)
            return self._close_offline(scan, f"server: {exc}")
        except Refused as exc:
            if exc.code in PURSE_REFUSALS:
                return self._close_refused(scan, exc.code)
            log.warning("server refused scan seq %s: %s", seq, exc)
            return self._close_offline(scan, f"server: {exc}")
        return self._close_online(scan, result)

    def _ask_with_pin(self, scan: _Scan, pin_entry: PinEntry | None) -> Result:
        """Ask the server; when it wants the holder's PIN, ask them and send the same seq again
        with it (the server recorded nothing for the seq), at most `PIN_TRIES` PINs; or, when
        they choose to confirm in their wallet, wait for that (`_wait_for_wallet`)."""
        pin, tries = None, 0
        while True:
            try:
                return self._ask(scan, pin)
            except Refused as exc:
                if pin_entry is None or exc.code not in ("pin_required", "pin_wrong"):
                    raise
                if tries == PIN_TRIES:
                    raise
                confirmation = exc.confirmation if exc.code == "pin_required" else None
                typed = pin_entry(exc.code, confirmation)
                if typed is None or (typed == WAIT_FOR_WALLET and confirmation is None):
                    raise
                if typed == WAIT_FOR_WALLET:
                    return self._wait_for_wallet(scan)
                pin, tries = typed, tries + 1

    def _wait_for_wallet(self, scan: _Scan) -> Result:
        """Send the same seq again without a PIN every `WALLET_POLL_S` until the holder's
        approval lets it through or another answer comes, for at most `wallet_wait_s`: then the
        last `pin_required` is the answer (the payment is refused)."""
        polls = max(1, int(self.wallet_wait_s / WALLET_POLL_S))
        for poll in range(polls):
            self.sleep(WALLET_POLL_S)
            try:
                return self._ask(scan)
            except Refused as exc:
                if exc.code != "pin_required" or poll == polls - 1:
                    raise
        raise AssertionError("unreachable")

    def _ask(self, scan: _Scan, pin: str | None = None) -> Result:
        fields = {
            "code": scan.text,
            "mode": scan.mode.value,
            "amount": scan.amount,
            "terminal_id": self.settings.terminal_id,
            "seq": scan.seq,
            "scanned_at": scan.scanned_at + self.client.offset,
        }
        body = json.dumps(fields if pin is None else {**fields, "pin": pin}).encode()
        answer = self.client.request_within(self.timeout_s, "POST", "/v1/terminal/scans", body=body)
        self.link.succeeded()
        return _online_result(answer.json(), scan, self.config.currency)

    def _close_online(self, scan: _Scan, result: Result) -> Result:
        acceptance = self._acceptance(scan.text, result) if result.ok else None
        entry = self._entry(scan, result.reason, online=True)
        with self.store.transaction() as db:
            self.store.close_scan(db, scan.seq, entry, acceptance)
        return result

    def _close_refused(self, scan: _Scan, code: str) -> Result:
        """The server refused the payment over a purse limit: journalled as an online refusal
        (nothing is charged, nothing accepted), the server's code as the note."""
        entry = self._entry(scan, Reason.INSUFFICIENT_FUNDS, online=True)
        with self.store.transaction() as db:
            self.store.close_scan(db, scan.seq, entry, None)
        return Result(
            seq=scan.seq,
            reason=Reason.INSUFFICIENT_FUNDS,
            online=True,
            tried=True,
            mode=scan.mode,
            amount=scan.amount,
            currency=self.config.currency,
            note=code,
        )

    def _close_offline(self, scan: _Scan, note: str | None) -> Result:
        now = scan.scanned_at + self.client.offset
        with self.store.transaction() as db:
            if scan.mode is Mode.PAY and self._backlogged(now):
                stale = dataclasses.replace(self.verifier.trust, issued_at=0, max_age_s=0)
                verdict = Verifier(stale, self.config, self.verifier.memory).scan(
                    scan.text, now=now, amount=scan.amount
                )
            else:  # records what it accepts, inside this transaction
                verdict = self.verifier.scan(scan.text, now=now, amount=scan.amount)
            self.store.close_scan(db, scan.seq, self._entry(scan, verdict.reason), None)
        claims = verdict.claims
        return Result(
            seq=scan.seq,
            reason=verdict.reason,
            online=False,
            tried=scan.tried,
            mode=scan.mode,
            amount=scan.amount,
            currency=self.config.currency if scan.mode is Mode.PAY else None,
            iss=claims.iss if claims else None,
            sub=claims.sub if claims else None,
            cti=claims.cti if claims else None,
            ctr=verdict.ctr,
            note=note,
        )

    def _backlogged(self, now: int) -> bool:
        """§5.5: the oldest unacknowledged entry is older than the late window minus 12 h; the
        late window is the issuer's, from the trust bundle (§5.4; 72 h until one says)."""
        oldest = self.store.oldest_unacked()
        if oldest is None:
            return False
        age = now - (oldest + self.client.offset)
        late_window_s = self.verifier.trust.policy(self.settings.iss).late_window_s
        return age > late_window_s - BACKLOG_MARGIN_S

    def _acceptance(self, text: str, result: Result) -> Acceptance | None:
        """What the server's acceptance adds to this terminal's memory (§3: online acceptances
        are kept too), from the code's own claims."""
        try:
            claims = decode_code(text).credential.claims
        except (FormatError, MalformedError):
            return None
        return accepted(
            claims, result.ctr, self.config.mode, self.verifier.trust.policy(claims.iss)
        )

    def _entry(self, scan: _Scan, verdict: Reason, *, online: bool = False) -> bytes:
        pay = scan.mode is Mode.PAY
        return encode_entry(
            Entry(
                seq=scan.seq,
                scanned_at=scan.scanned_at,
                clock_offset=self.client.offset,
                mode=scan.mode,
                amount=scan.amount if pay else None,
                currency=self.config.currency if pay else None,
                venue=self.config.venue,
                verdict=verdict,
                online=online,
                tried=scan.tried,
                bundle_seq=self.verifier.trust.seq,
                code=scan.text[:CODE_CHARS_MAX],
            )
        )


@dataclass(frozen=True)
class _Scan:
    """A scan in progress: its seq is taken, its verdict not yet given."""

    seq: int
    text: str
    mode: Mode
    amount: int | None
    scanned_at: int
    tried: bool


def _online_result(doc: object, scan: _Scan, currency: str | None) -> Result:
    """The server's verdict (§8), checked like any input; anything else is a refusal."""
    if not isinstance(doc, dict) or not isinstance(doc.get("reason"), str):
        raise Refused(200, "verdict without a reason")
    try:
        reason = Reason(doc["reason"])
    except ValueError as exc:
        raise Refused(200, "unknown reason") from exc
    if doc.get("ok") is not (reason is Reason.OK):
        raise Refused(200, "ok and reason disagree")
    iss, sub, cti, ctr = doc.get("iss"), doc.get("sub"), doc.get("cti"), doc.get("ctr")
    try:
        raw_cti = b64u_decode(cti) if isinstance(cti, str) and len(cti) <= 32 else None
    except EncodingError:
        raw_cti = None
    return Result(
        seq=scan.seq,
        reason=reason,
        online=True,
        tried=True,
        mode=scan.mode,
        amount=scan.amount,
        currency=currency if scan.mode is Mode.PAY else None,
        iss=iss if isinstance(iss, str) and len(iss) <= SUB_CHARS_MAX else None,
        sub=sub if isinstance(sub, str) and len(sub) <= SUB_CHARS_MAX else None,
        cti=raw_cti,
        ctr=ctr if type(ctr) is int else None,
    )
