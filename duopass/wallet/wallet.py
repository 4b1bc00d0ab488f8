"""A wallet in its data directory: enrol, sign in, sync, show codes, report its status; and
the tickets beside the purse: sync them, show one, buy more (`tickets.py`).

The data directory (mode 0700) holds `device.jwk`, the device key (mode 0600, never sent
anywhere), and `wallet.db`, the state (`state.py`). Codes need no network: only `enrol`,
`login`, `sync` and `status` (for the funds) talk to the server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx

from duopass.protocol.cbor import MalformedError
from duopass.protocol.claims import Kind
from duopass.protocol.code import make_code
from duopass.protocol.encoding import b64u_encode
from duopass.protocol.keys import SigningKey
from duopass.protocol.signed_requests import device_enrolment_message, device_sign_in_message
from duopass.wallet.client import Client, SyncAnswer, check_server_url
from duopass.wallet.clock import Clock, ClockSample, SystemClock, server_now
from duopass.wallet.device import load_key, load_or_create_key
from duopass.wallet.errors import Failure, WalletError
from duopass.wallet.files import make_private
from duopass.wallet.limits import HTTP_TIMEOUT_DEFAULT_S, ROW_ID_MAX, TICKETS_PER_ORDER_MAX
from duopass.wallet.state import Account, Held, State, decode_l1, usable
from duopass.wallet.tickets import HeldTicket, Tickets, usable_ticket

__all__ = ["Display", "Wallet"]

_T = TypeVar("_T")
KEY_FILE = "device.jwk"
STATE_FILE = "wallet.db"


@dataclass(frozen=True)
class Display:
    """One display of a code: one counter, re-signed with a new `ts` while shown (§2), hidden
    at `hide_at` (server time). `ctr` is None for a static code."""

    l1: bytes
    key: SigningKey | None
    ctr: int | None
    hide_at: int

    def text(self, ts: int) -> str:
        """The DP1 text for wallet time `ts`."""
        if self.key is None or self.ctr is None:
            return make_code(self.l1, None)
        return make_code(self.l1, self.key, ctr=self.ctr, ts=ts)


class Wallet:
    """One data directory. Use as a context manager; every method may raise `WalletError`."""

    def __init__(
        self,
        data_dir: Path,
        *,
        clock: Clock | None = None,
        timeout: float = HTTP_TIMEOUT_DEFAULT_S,
        transport: httpx.BaseTransport | None = None,
        create: bool = True,
        installation: str | None = None,
    ) -> None:
        """The wallet in `data_dir`, created unless `create` is false (then a missing folder is
        NOT_ENROLLED, and nothing is written); `installation`, the id its requests name
        (`wallet.installation`; None: none)."""
        if not create and not (data_dir / STATE_FILE).is_file():
            raise WalletError(
                Failure.NOT_ENROLLED,
                f"{data_dir} holds no wallet: run `duopass wallet enrol`",
            )
        try:
            data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise WalletError(Failure.STATE, f"{data_dir}: {exc.strerror}") from exc
        make_private(data_dir, leave=KEY_FILE)
        self.data_dir = data_dir
        self.clock: Clock = clock or SystemClock()
        self._timeout = timeout
        self._transport = transport
        self._installation = installation
        self.state = State(data_dir / STATE_FILE)
        self.tickets = Tickets(self.state)

    def __enter__(self) -> Wallet:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.state.close()

    def _client(self, server: str) -> Client:
        return Client(
            server,
            timeout=self._timeout,
            transport=self._transport,
            installation=self._installation,
        )

    def now(self) -> int:
        """The server's time as this wallet knows it (§2's `ts`)."""
        return server_now(self.state.read().clock, self.clock)

    def enrol(self, *, server: str, login: str, password: str, otp: str | None = None) -> int:
        """Sign in, create the device key and register it with a proof of possession."""
        account = self.state.read().account
        if account is not None:
            raise WalletError(
                Failure.REFUSED,
                f"already enrolled at {account.server} as {account.login} (device"
                f" {account.device_id}); use another --data-dir for another wallet",
            )
        client = self._client(server)  # refuses a bad URL before a key is made
        try:
            key = load_or_create_key(self.data_dir / KEY_FILE)
            token, expires = client.sign_in(login, password, otp)
            proof = key.sign(device_enrolment_message(login, key.public))
            device_id = client.enrol_device(token, key.public, proof)
        finally:
            client.close()
        self.state.enrol(
            server=check_server_url(server),
            login=login,
            token=token,
            expires=expires,
            device_id=device_id,
        )
        return device_id

    def login(self, *, password: str, otp: str | None = None) -> None:
        """A new session for an enrolled wallet (sessions last hours; the device stays)."""
        account = self._account()
        client = self._client(account.server)
        try:
            token, expires = client.sign_in(account.login, password, otp)
        finally:
            client.close()
        self.state.set_session(token, expires)

    def sync(self) -> Held:
        """Fetch a credential and the server's time: a refresh with its request id and mark,
        stored before sending and reused until an answer is stored (§4.2)."""
        account = self._account()
        key = load_key(self.data_dir / KEY_FILE)
        pending = self.state.begin_sync()
        answer, sample = self.online(
            lambda client, token: self._timed(
                lambda: client.sync(token, account.device_id, pending.request_id, pending.mark)
            )
        )
        _check_answer(answer, key)
        return self.state.finish_sync(
            pending.request_id,
            l1=answer.l1,
            offline=answer.offline,
            clock=ClockSample(answer.server_time, *sample, self.clock.boot()),
            policy=answer.policy,
        )

    def sync_tickets(self) -> list[HeldTicket]:
        """Fetch the holder's tickets for this device: each with its credential or why it has
        none; tickets whose codes are used up (or whose credential was copied here) are named
        `exhausted`, and get a new credential that starts at counter 0 (§2)."""
        account = self._account()
        key = load_key(self.data_dir / KEY_FILE)
        exhausted = self.tickets.exhausted()
        answer, sample = self.online(
            lambda client, token: self._timed(
                lambda: client.sync_tickets(token, account.device_id, exhausted)
            )
        )
        for item in answer.tickets:
            if item.l1 is not None:
                _check_ticket(item.info.sub, item.l1, key)
        clock = ClockSample(answer.server_time, *sample, self.clock.boot())
        self.state.set_clock(clock, answer.policy)
        return self.tickets.store(answer)

    def store_ticket_credential(self, sub: str, l1: bytes) -> HeldTicket:
        """Keep a ticket credential the server handed over outside a sync (a reissue's
        confirmation): it must be the ticket's and bound to this device; a new `cti` starts
        at counter 0."""
        _check_ticket(sub, l1, load_key(self.data_dir / KEY_FILE))
        return self.tickets.replace_credential(sub, l1)

    def events(self) -> list[dict[str, Any]]:
        """What is on sale: events not yet ended, with their ticket types (`Client.events`)."""
        self._account()
        return self.online(lambda client, token: client.events(token))

    def buy(self, type_id: int, quantity: int = 1) -> dict[str, Any]:
        """An order paid from the account. Its request id is stored before it is sent, and a
        retry of the same purchase (same type and quantity) whose answer never came sends it
        again: the server returns the first order and charges nothing (`Client.buy`)."""
        self._account()
        if not 1 <= quantity <= TICKETS_PER_ORDER_MAX or not 1 <= type_id <= ROW_ID_MAX:
            raise WalletError(
                Failure.REFUSED, f"a quantity is 1 to {TICKETS_PER_ORDER_MAX}, a type id >= 1"
            )
        request_id = self.tickets.request_id("order", {"type": type_id, "quantity": quantity})
        order = self.online(lambda client, token: client.buy(token, type_id, quantity, request_id))
        self.tickets.request_done("order", request_id)
        return order

    def online(self, call: Callable[[Client, str], _T]) -> _T:
        """`call(client, token)` with a session. When the server ended it, the device signs in
        and `call` runs once more, so it must be safe to repeat (carry a request id)."""
        account = self._account()
        key = load_key(self.data_dir / KEY_FILE)
        client = self._client(account.server)
        try:
            token = self._session(client, account, key, renew=False)
            try:
                return call(client, token)
            except WalletError as exc:  # the session ended: the device signs in, same request
                if exc.failure is not Failure.SIGNED_OUT:
                    raise
                return call(client, self._session(client, account, key, renew=True))
        finally:
            client.close()

    def _timed(self, request: Callable[[], _T]) -> tuple[_T, tuple[float, float]]:
        """The answer and the wall and boot-time clocks at the middle of the request (the
        server read its clock in between)."""
        wall, elapsed = self.clock.wall(), self.clock.elapsed()
        answer = request()
        return answer, ((wall + self.clock.wall()) / 2, (elapsed + self.clock.elapsed()) / 2)

    def _session(self, client: Client, account: Account, key: SigningKey, *, renew: bool) -> str:
        """The session token; when there is none, it has expired or `renew` says the server
        ended it, the device key signs the server's challenge for a new one (no password)."""
        now = server_now(self.state.read().clock, self.clock)
        if not renew and account.token is not None and now < account.token_expires:
            return account.token
        challenge = client.challenge()
        signature = key.sign(device_sign_in_message(account.login, challenge))
        try:
            token, expires = client.device_sign_in(account.login, key.public, challenge, signature)
        except WalletError as exc:
            if exc.failure is not Failure.REFUSED:
                raise
            raise WalletError(
                Failure.SIGNED_OUT,
                f"{exc.message}; this device can no longer sign in by itself (reported lost?):"
                " run `duopass wallet login`",
            ) from exc
        self.state.set_session(token, expires)
        return token

    def show(self) -> Display:
        """A new display: the next counter, used durably before anything is signed (§2), hidden
        the issuer's `freshness_s` later (§6: from the last sync answer; §3's default before)."""
        snapshot = self.state.read()
        now = server_now(snapshot.clock, self.clock)
        usable(snapshot, now)  # says why not before the key file is even read
        key = load_key(self.data_dir / KEY_FILE)
        held, ctr = self.state.reserve(now)
        device_key = held.credential.claims.device_key
        if device_key is not None and device_key != key.public:
            raise WalletError(Failure.STATE, "the device key does not match the credential")
        hide_at = now + snapshot.policy.freshness_s
        return Display(held.l1, key if ctr is not None else None, ctr, hide_at)

    def show_ticket(self, sub: str) -> Display:
        """A new display of ticket `sub` (or the one ticket whose sub starts so): its next
        counter, used durably before anything is signed (§2), hidden as `show` hides one."""
        self._account()
        snapshot = self.state.read()
        now = server_now(snapshot.clock, self.clock)
        ticket = self.tickets.find(sub)
        usable_ticket(ticket, now, snapshot.policy)  # says why not before the key file is read
        key = load_key(self.data_dir / KEY_FILE)
        ticket, ctr = self.tickets.reserve(ticket.sub, now, snapshot.policy)
        assert ticket.credential is not None and ticket.l1 is not None
        device_key = ticket.credential.claims.device_key
        if device_key is not None and device_key != key.public:
            raise WalletError(Failure.STATE, "the device key does not match the credential")
        hide_at = now + snapshot.policy.freshness_s
        if device_key is None:  # a static ticket (§2): its L1 alone, no counter signed
            return Display(ticket.l1, None, None, hide_at)
        return Display(ticket.l1, key, ctr, hide_at)

    def status(self, *, online: bool) -> dict[str, Any]:
        """What the wallet holds and may still do; the funds too when `online` and reachable."""
        snapshot = self.state.read()
        now = server_now(snapshot.clock, self.clock)
        doc: dict[str, Any] = {"enrolled": snapshot.account is not None, "now": now}
        if snapshot.account is not None:
            account = snapshot.account
            doc.update(server=account.server, login=account.login, device_id=account.device_id)
            doc["signed_in"] = account.token is not None and now < account.token_expires
        if snapshot.clock is not None:
            doc["clock_offset_s"] = round(snapshot.clock.server - snapshot.clock.wall)
        doc["restored"] = snapshot.restored
        doc["freshness_s"] = snapshot.policy.freshness_s
        policy = snapshot.policy
        doc["hold_horizon_s"] = policy.freshness_s + policy.clock_skew_s + policy.late_window_s
        if snapshot.held is not None:
            doc["credential"] = _held_json(snapshot.held, now)
        if snapshot.pending is not None:
            doc["refresh_pending"] = {
                "request_id": snapshot.pending.request_id,
                "mark": snapshot.pending.mark,
            }
        try:
            usable(snapshot, now)
            doc["codes"] = "ok"
        except WalletError as exc:
            doc["codes"] = exc.failure.value
        if online and snapshot.account is not None and doc["signed_in"]:
            doc["account"] = self._funds(snapshot.account)
        return doc

    def _funds(self, account: Account) -> dict[str, Any]:
        assert account.token is not None
        client = self._client(account.server)
        try:
            return dict(client.account(account.token))
        except WalletError as exc:
            return {"error": exc.failure.value, "message": exc.message}
        finally:
            client.close()

    def _account(self) -> Account:
        account = self.state.read().account
        if account is None:
            raise WalletError(
                Failure.NOT_ENROLLED, "this wallet is not enrolled: run `duopass wallet enrol`"
            )
        return account


def _check_answer(answer: SyncAnswer, key: SigningKey) -> None:
    """The credential must be for this device and say what the answer says of it."""
    try:
        claims = decode_l1(answer.l1).claims
    except MalformedError as exc:
        raise WalletError(Failure.BAD_ANSWER, f"the credential is malformed: {exc}") from exc
    if claims.device_key != key.public:
        raise WalletError(Failure.BAD_ANSWER, "the credential is not bound to this device's key")
    if (claims.cti, claims.uses, claims.exp) != (answer.cti, answer.uses, answer.exp):
        raise WalletError(Failure.BAD_ANSWER, "the credential disagrees with the sync answer")


def _check_ticket(sub: str, l1: bytes, key: SigningKey) -> None:
    """A ticket's credential must be well-formed, of kind 3, for that ticket and this device."""
    try:
        claims = decode_l1(l1).claims
    except MalformedError as exc:
        raise WalletError(Failure.BAD_ANSWER, f"ticket {sub}'s credential: {exc}") from exc
    if claims.kind is not Kind.TICKET or claims.sub != sub:
        raise WalletError(Failure.BAD_ANSWER, f"ticket {sub}'s credential is not that ticket's")
    if claims.device_key != key.public:
        raise WalletError(Failure.BAD_ANSWER, f"ticket {sub}'s credential is not for this device")


def _held_json(held: Held, now: int) -> dict[str, Any]:
    claims = held.credential.claims
    return {
        "iss": claims.iss,
        "sub": claims.sub,
        "cti": b64u_encode(claims.cti),
        "kind": claims.kind.policy_name,
        "uses": claims.uses,
        "txmax": claims.txmax,
        "cur": claims.cur,
        "exp": claims.exp,
        "expires_in_s": max(0, claims.exp - now),
        "offline": held.offline,
        "next_counter": held.next_ctr,
        "ceiling": held.ceiling,
        "left": held.left,
    }
