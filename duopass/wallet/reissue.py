"""Reissue in three steps for the holder, from the new phone (issue 13): *prove who you are*
(signed in; a step-up when the policy asks), *confirm* (this ticket, to this device), *receive*
(the new credential stored here; the old one is revoked everywhere). And "I lost my phone" as
one action: a password sign-in, the loss report, every ticket and the purse moved here.

The server names each request (`rq-...`); the wallet keeps that id in its state (the
`requests` table, purpose `reissue:SUB`) from the answer on until the new credential is
stored, so a run whose answer was lost, or that stopped at a step-up, goes on with the same
request instead of asking anew (and a request at review is never asked for twice).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from duopass.protocol.encoding import b64u_encode
from duopass.wallet.device import load_key
from duopass.wallet.errors import Failure, WalletError
from duopass.wallet.limits import STEP_UP_TRIES_MAX
from duopass.wallet.reissue_client import Decision, LostTicket, ReissueCalls, Waiting
from duopass.wallet.state import Held
from duopass.wallet.tickets import HeldTicket
from duopass.wallet.wallet import KEY_FILE, Wallet

__all__ = ["Conversation", "LostReport", "Moved", "Reissuer"]

_RESUMABLE = ("step_up", "review", "ready", "done")
_T = TypeVar("_T")


@dataclass(frozen=True)
class Conversation:
    """How the wallet talks to the holder while it drives a request: `decided` hears the
    policy's decision, `note` a line (a wrong code), and `code(factor, begun)` asks for the
    step-up's code (`begun`: `expires_at`, `sent_to` for a mailed one) or returns None when
    there is no one to ask (the request then waits: exit PENDING)."""

    decided: Callable[[Decision], None]
    note: Callable[[str], None]
    code: Callable[[str, dict[str, Any]], str | None]


@dataclass(frozen=True)
class Moved:
    """A ticket moved here: its new generation, and the ticket as now held (its credential
    is None while the event is too far ahead: `refusal` says so, a later sync mints it)."""

    sub: str
    gen: int
    ticket: HeldTicket | None
    refusal: str | None


@dataclass(frozen=True)
class LostReport:
    """What "I lost my phone" did: credentials revoked, each ticket's state, the purse."""

    revoked_credentials: int
    tickets: tuple[LostTicket, ...]
    purse: Held | None
    purse_error: WalletError | None


class Reissuer:
    """Drives reissue requests for one wallet (every method may raise `WalletError`)."""

    def __init__(self, wallet: Wallet) -> None:
        self.wallet = wallet

    def reissue(
        self,
        sub: str,
        talk: Conversation,
        *,
        request_id: str | None = None,
        factor: str | None = None,
        code: str | None = None,
    ) -> Moved:
        """Ticket `sub` moved to this device: the request asked for (or `request_id`, or the
        one kept from an earlier run) taken through its step-up and confirmed, and the new
        credential stored. Review raises PENDING, a refusal REFUSED."""
        sub = self._full_sub(sub)
        purpose, body = self._purpose(sub)
        decision = self._start(sub, request_id, purpose, body)
        talk.decided(decision)
        if decision.state == "step_up":
            self._step_up(sub, decision, talk, factor=factor, code=code)
        elif decision.state == "review":
            raise WalletError(
                Failure.PENDING,
                f"request {decision.request_id} waits for the card office (rule"
                f" {decision.rule}); run `{_again(sub, decision.request_id)}` later",
            )
        elif decision.state in ("denied", "expired"):
            self.wallet.tickets.request_done(purpose, decision.request_id)
            why = f"refused by the policy (rule {decision.rule})"
            if decision.state == "expired":
                why = "expired before it was confirmed: ask again without --request"
            raise WalletError(Failure.REFUSED, f"request {decision.request_id} {why}")
        return self._receive(sub, decision.request_id, purpose)

    def _start(
        self, sub: str, request_id: str | None, purpose: str, body: dict[str, Any]
    ) -> Decision:
        """The request named, else the one kept and still going, else a new one (kept)."""
        tickets = self.wallet.tickets
        if request_id is not None:
            decision = self._online(lambda calls: calls.show(request_id))
            tickets.remember(purpose, decision.request_id, body)
            return decision
        kept = tickets.remembered(purpose, body)
        if kept is not None:
            decision = self._online(lambda calls: calls.show(kept))
            if decision.state in _RESUMABLE:
                return decision
            tickets.request_done(purpose, kept)
        key = self._device_key()
        decision = self._online(lambda calls: calls.ask(sub, key))
        if decision.state != "denied":
            tickets.remember(purpose, decision.request_id, body)
        return decision

    def _step_up(
        self,
        sub: str,
        decision: Decision,
        talk: Conversation,
        *,
        factor: str | None,
        code: str | None,
    ) -> None:
        """Prove it again with `factor`, by default the first the policy lists that this
        holder can use: check `code` when given (a TOTP's is readied first if none was), else
        begin the factor and ask the holder for the code, a few times if it is wrong."""
        rq = decision.request_id
        factors = _factors(decision, factor)
        if code is not None:
            self._first_usable(factors, lambda chosen: self._prove_given(rq, chosen, code))
            return
        chosen, begun = self._first_usable(
            factors, lambda chosen: (chosen, self._online(lambda calls: calls.begin(rq, chosen)))
        )
        for attempt in range(STEP_UP_TRIES_MAX):
            given = talk.code(chosen, begun)
            if given is None:
                raise WalletError(
                    Failure.PENDING,
                    f"request {rq} waits for the {chosen} code: run"
                    f" `{_again(sub, rq)} --factor {chosen} --code CODE`",
                )
            try:
                self._prove(rq, chosen, given)
                return
            except WalletError as exc:
                if exc.code != "step_up_failed" or attempt + 1 == STEP_UP_TRIES_MAX:
                    raise
                talk.note(exc.message)

    @staticmethod
    def _first_usable(factors: list[str], attempt: Callable[[str], _T]) -> _T:
        """`attempt` with each factor in turn until one the holder has (not
        `factor_unavailable`: no authenticator set up, no mail server)."""
        for factor in factors[:-1]:
            try:
                return attempt(factor)
            except WalletError as exc:
                if exc.code != "factor_unavailable":
                    raise
        return attempt(factors[-1])

    def _prove_given(self, request_id: str, factor: str, code: str) -> None:
        """Check a code given on the command line; a TOTP step-up not begun yet is begun
        first (nothing is sent for it)."""
        try:
            self._prove(request_id, factor, code)
        except WalletError as exc:
            if exc.code != "step_up_expired" or factor != "totp":
                raise
            self._online(lambda calls: calls.begin(request_id, factor))
            self._prove(request_id, factor, code)

    def _prove(self, request_id: str, factor: str, code: str) -> None:
        state = self._online(lambda calls: calls.prove(request_id, factor, code))
        if state != "ready":
            raise WalletError(Failure.BAD_ANSWER, f"after the step-up the request is {state}")

    def _receive(self, sub: str, request_id: str, purpose: str) -> Moved:
        """Confirm (again, if an earlier answer was lost: the server returns the same) and
        store the new credential; only then is the request forgotten."""
        confirmed = self._online(lambda calls: calls.confirm(request_id))
        if confirmed.sub != sub:
            raise WalletError(Failure.BAD_ANSWER, f"the confirmation is for {confirmed.sub}")
        ticket = self._store(sub, confirmed.l1)
        self.wallet.tickets.request_done(purpose, request_id)
        return Moved(sub, confirmed.gen, ticket, confirmed.refusal)

    def _store(self, sub: str, l1: bytes | None) -> HeldTicket | None:
        """Keep the ticket's new credential; a ticket this wallet has not synced yet comes
        with a ticket sync first (it also brings a credential minted later, when `l1` is
        None)."""
        held = {ticket.sub for ticket in self.wallet.tickets.all()}
        if sub not in held or l1 is None:
            self.wallet.sync_tickets()
        if l1 is not None:
            return self.wallet.store_ticket_credential(sub, l1)
        matches = [ticket for ticket in self.wallet.tickets.all() if ticket.sub == sub]
        return matches[0] if matches else None

    def lost(self, *, password: str, otp: str | None = None) -> LostReport:
        """I lost my phone, from this (new, enrolled) one: a password sign-in (the server asks
        for a recent one), the loss report, every ticket the policy allows stored here, the
        waiting ones kept for `reissue`, then the purse's replacement and the tickets synced."""
        self.wallet.login(password=password, otp=otp)
        key = self._device_key()
        answer = self._online(lambda calls: calls.lost(key))
        for item in answer.tickets:
            if item.request_id is not None and item.state in ("step_up", "review"):
                purpose, body = self._purpose(item.sub)
                self.wallet.tickets.remember(purpose, item.request_id, body)
        purse: Held | None = None
        purse_error: WalletError | None = None
        try:
            purse = self.wallet.sync()
        except WalletError as exc:
            if exc.failure in (Failure.OFFLINE, Failure.SIGNED_OUT):
                raise
            purse_error = exc
        self.wallet.sync_tickets()
        for item in answer.tickets:
            if item.l1 is not None:
                self.wallet.store_ticket_credential(item.sub, item.l1)
        return LostReport(answer.revoked_credentials, answer.tickets, purse, purse_error)

    def waiting(self) -> tuple[Waiting, ...]:
        """The requests waiting for this holder, newest first: their own, and those a partner
        asked for on their behalf (`duopass wallet reissues`)."""
        return self._online(lambda calls: calls.waiting())

    def sub_of(self, request_id: str) -> str:
        """The ticket a request (a partner's, say) is about, asked of the server."""
        return self._online(lambda calls: calls.sub_of(request_id))

    def decline(self, request_id: str) -> Decision:
        """Say no to a waiting request; the ticket stays where it is."""
        return self._online(lambda calls: calls.decline(request_id))

    def _full_sub(self, sub: str) -> str:
        """The held ticket's whole sub for a prefix; a sub not held (not synced yet) as is."""
        held = self.wallet.tickets.all()
        if any(ticket.sub == sub for ticket in held):
            return sub
        matches = [ticket.sub for ticket in held if sub and ticket.sub.startswith(sub)]
        return matches[0] if len(matches) == 1 else sub

    def _purpose(self, sub: str) -> tuple[str, dict[str, Any]]:
        return f"reissue:{sub}", {"sub": sub, "device_key": b64u_encode(self._device_key())}

    def _device_key(self) -> bytes:
        return load_key(self.wallet.data_dir / KEY_FILE).public

    def _online(self, call: Callable[[ReissueCalls], _T]) -> _T:
        return self.wallet.online(lambda client, token: call(ReissueCalls(client, token)))


def _factors(decision: Decision, factor: str | None) -> list[str]:
    """The factors to try in order: the one asked for, else those the policy lists that a
    wallet can answer."""
    if factor is None:
        usable = [each for each in decision.factors if each != "passkey"]
    else:
        usable = [factor] if factor in decision.factors else []
    if not usable:
        offered = ", ".join(decision.factors) or "none"
        raise WalletError(
            Failure.REFUSED, f"request {decision.request_id} needs a step-up by one of: {offered}"
        )
    return usable


def _again(sub: str, request_id: str) -> str:
    return f"duopass wallet reissue --ticket {sub} --request {request_id}"
