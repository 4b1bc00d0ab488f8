"""A real issuer server on 127.0.0.1 for tests, and the clients that talk to it as the parties do:
a card-office admin, a holder's wallet (device key, codes) and a terminal (signed requests)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from duopass.demo.serving import serving
from duopass.protocol import SigningKey, make_code
from duopass.protocol.encoding import b64u_decode, b64u_encode
from duopass.protocol.journal import GENESIS, Entry, batch_hash, encode_batch, encode_entry
from duopass.protocol.reasons import Reason
from duopass.protocol.signed_requests import (
    device_enrolment_message,
    device_sign_in_message,
    enrolment_message,
    sign_request,
)
from duopass.protocol.verify import Mode
from duopass.server.app import create_app
from duopass.server.context import AppContext
from duopass.server.hsm import HsmConfig
from duopass.server.keyring import Keyring
from duopass.server.services.auth import hash_password
from duopass.server.settings import Settings
from duopass.server.store.access import Staff

ADMIN_PASSWORD = "admin-password-for-tests"
SQLITE_ONLY = pytest.mark.parametrize("server", ["sqlite"], indirect=True)
"""The `server` fixture on SQLite alone, for a test whose subject the database cannot change:
concurrency, row locks, money, the ledger and migrations stay on both."""


@dataclass
class Running:
    url: str
    ctx: AppContext
    http: httpx.Client

    def admin(self) -> Admin:
        token = self.http.post(
            "/v1/admin/session", json={"login": "admin", "password": ADMIN_PASSWORD}
        ).json()
        return Admin(self.http, {"Authorization": f"Bearer {token['token']}"})


@dataclass
class ManualClock:
    """A server clock the test moves: frozen unless advanced."""

    now: float = field(default_factory=time.time)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@contextmanager
def running_server(
    db_url: str,
    data_dir: Path,
    *,
    clock: Callable[[], float] = time.time,
    **settings: Any,
) -> Iterator[Running]:
    """Start the server in this process (uvicorn in a thread) on a free 127.0.0.1 port; a second
    one on the same database and data directory is another server process of the same issuer.
    `hsm=` an `HsmConfig` names keys in a token the keyring loads instead of files."""
    hsm: HsmConfig | None = settings.pop("hsm", None)
    settings.setdefault("test_cheap_password_hashing", True)  # argon2 at full cost: 0.3 s a hash
    settings.setdefault("webhook_delivery", False)  # nothing leaves unless a test asks for it
    config = Settings(db_url=db_url, data_dir=data_dir, **settings)
    keyring = Keyring.create(data_dir, origin="demo-univ/ledger", hsm=hsm)
    app = create_app(config, keyring=keyring, clock=clock, testing=True)
    ctx: AppContext = app.state.context

    def admin(unit: Any) -> None:
        session = unit.session
        if session.scalars(select(Staff).where(Staff.login == "admin")).first() is None:
            hashed = hash_password(config, ADMIN_PASSWORD)
            session.add(Staff(login="admin", password_hash=hashed, role="admin"))

    ctx.run(admin)
    with serving(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        try:
            yield Running(url, ctx, http)
        finally:
            ctx.db.dispose()


@dataclass
class Admin:
    http: httpx.Client
    auth: dict[str, str]

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return self.http.post(path, json=body, headers=self.auth)

    def holder(
        self, login: str, *, balance: int = 0, overdraft: int = 0, **person: str
    ) -> dict[str, Any]:
        """A new holder; `person` overrides the name, number, e-mail or phone made up from the
        login."""
        created = self.post(
            "/v1/admin/holders",
            {
                "login": login,
                "name": f"Holder {login}",
                "number": f"N-{uuid.uuid4().hex[:12]}",
                "email": f"{login}@example.edu",
                **person,
                "password": f"pw-{login}-secret",
                "overdraft": overdraft,
            },
        )
        assert created.status_code == 200, created.text
        holder: dict[str, Any] = created.json()
        if balance:
            assert self.top_up(holder["handle"], balance).status_code == 200
        return holder

    def top_up(self, handle: str, amount: int, request_id: str | None = None) -> httpx.Response:
        return self.post(
            f"/v1/admin/holders/{handle}/topups",
            {"amount": amount, "request_id": request_id or uuid.uuid4().hex},
        )

    def merchant(self, name: str) -> int:
        return int(self.post("/v1/admin/merchants", {"name": name}).json()["account_id"])

    def terminal(self, terminal_id: str, **fields: Any) -> str:
        answer = self.post("/v1/admin/terminals", {"terminal_id": terminal_id, **fields})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["enrol_code"])

    def account(self, account_id: int) -> dict[str, Any]:
        return dict(self.http.get(f"/v1/admin/accounts/{account_id}", headers=self.auth).json())

    def books(self) -> int:
        return int(self.http.get("/v1/admin/books", headers=self.auth).json()["sum_of_balances"])


@dataclass
class Wallet:
    """A holder's wallet: signs in, enrols a device key, syncs, makes codes."""

    http: httpx.Client
    login: str
    key: SigningKey = field(default_factory=SigningKey.generate)
    auth: dict[str, str] = field(default_factory=dict)
    device_id: int | None = None
    credential: dict[str, Any] = field(default_factory=dict)
    counter: int = 0
    handle: str = ""
    account_id: int = 0
    password: str = ""

    def sign_in(self) -> None:
        password = self.password or f"pw-{self.login}-secret"
        answer = self.http.post("/v1/session", json={"login": self.login, "password": password})
        assert answer.status_code == 200, answer.text
        self.auth = {"Authorization": f"Bearer {answer.json()['token']}"}

    def device_sign_in(self) -> httpx.Response:
        """Sign in with the device key: the server's challenge, signed."""
        challenge = self.http.post("/v1/session/challenge").json()["challenge"]
        signature = self.key.sign(device_sign_in_message(self.login, b64u_decode(challenge)))
        answer = self.http.post(
            "/v1/session/device",
            json={
                "login": self.login,
                "public_key": b64u_encode(self.key.public),
                "challenge": challenge,
                "signature": b64u_encode(signature),
            },
        )
        if answer.status_code == 200:
            self.auth = {"Authorization": f"Bearer {answer.json()['token']}"}
        return answer

    def enrol(self) -> None:
        proof = self.key.sign(device_enrolment_message(self.login, self.key.public))
        answer = self.http.post(
            "/v1/me/devices",
            headers=self.auth,
            json={"public_key": b64u_encode(self.key.public), "proof": b64u_encode(proof)},
        )
        assert answer.status_code == 200, answer.text
        self.device_id = int(answer.json()["device_id"])

    def sync(self, *, mark: int | None = None, request_id: str | None = None) -> httpx.Response:
        answer = self.http.post(
            "/v1/wallet/sync",
            headers=self.auth,
            json={
                "device_id": self.device_id,
                "request_id": request_id or uuid.uuid4().hex,
                "mark": mark,
            },
        )
        if answer.status_code == 200:
            self.credential, self.counter = answer.json(), 0
        return answer

    def code(self, now: int | None = None) -> str:
        assert self.credential, "sync first"
        ctr, self.counter = self.counter, self.counter + 1
        return make_code(
            b64u_decode(self.credential["credential"]),
            self.key,
            ctr=ctr,
            ts=now or int(time.time()),
        )

    def account(self) -> dict[str, Any]:
        return dict(self.http.get("/v1/me/account", headers=self.auth).json())


def password_session(running: Running, login: str) -> dict[str, str]:
    """A holder's session as a password sign-in just made it, opened in process: for tests that
    guess wrong passwords on purpose (the fuzzer), whose own sign-ins would be throttled."""
    from duopass.server.services import sessions
    from duopass.server.store.tables import Holder

    def opened(unit: Any) -> sessions.Issued:
        holder = unit.session.scalars(select(Holder).where(Holder.login == login)).one()
        return sessions.open_session(
            unit, role="holder", principal_id=holder.id, method="password", device_id=None
        )

    return {"Authorization": f"Bearer {running.ctx.run(opened).token}"}


def ready_wallet(
    http: httpx.Client, admin: Admin, login: str, *, balance: int, overdraft: int = 0
) -> Wallet:
    holder = admin.holder(login, balance=balance, overdraft=overdraft)
    wallet = Wallet(http, login)
    wallet.handle, wallet.account_id = holder["handle"], holder["account_id"]
    wallet.sign_in()
    wallet.enrol()
    assert wallet.sync().status_code == 200
    return wallet


@dataclass
class TerminalClient:
    """A terminal: its key, enrolled with the one-time code; every request signed."""

    http: httpx.Client
    terminal_id: str
    key: SigningKey = field(default_factory=SigningKey.generate)
    seq: int = 0
    root_key: bytes = b""
    journaled: int = 0
    prev: bytes = GENESIS

    def enrol(self, code: str) -> httpx.Response:
        proof = self.key.sign(enrolment_message(self.terminal_id, code, self.key.public))
        answer = self.http.post(
            "/v1/terminal/enrol",
            json={
                "terminal_id": self.terminal_id,
                "enrol_code": code,
                "public_key": b64u_encode(self.key.public),
                "proof": b64u_encode(proof),
            },
        )
        if answer.status_code == 200:
            self.root_key = b64u_decode(answer.json()["root_key"])
        return answer

    def _signed(self, method: str, target: str, body: bytes) -> dict[str, str]:
        return sign_request(
            self.key,
            self.terminal_id,
            method=method,
            target=target,
            time=int(time.time()),
            body=body,
        )

    def scan(
        self, code: str, *, mode: str = "pay", amount: int | None = None, seq: int | None = None
    ) -> dict[str, Any]:
        answer = self.scan_answer(code, mode=mode, amount=amount, seq=seq)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def scan_answer(
        self, code: str, *, mode: str = "pay", amount: int | None = None, seq: int | None = None
    ) -> httpx.Response:
        """The server's answer to a scan, whatever its status."""
        if seq is None:
            self.seq += 1
            seq = self.seq
        body = json.dumps(
            {
                "code": code,
                "mode": mode,
                "amount": amount,
                "terminal_id": self.terminal_id,
                "seq": seq,
                "scanned_at": int(time.time()),
            }
        ).encode()
        return self.http.post(
            "/v1/terminal/scans",
            content=body,
            headers={
                **self._signed("POST", "/v1/terminal/scans", body),
                "Content-Type": "application/json",
            },
        )

    def journal(
        self, entries: list[bytes], *, first: int | None = None, signer: SigningKey | None = None
    ) -> httpx.Response:
        """Upload entries as the next batch of the hash chain (or from `first`, unchained),
        the batch signed with this terminal's key (or `signer`'s)."""
        start = self.journaled + 1 if first is None else first
        data = encode_batch(
            signer or self.key, self.terminal_id, first=start, prev=self.prev, entries=entries
        )
        body = json.dumps({"batch": b64u_encode(data)}).encode()
        answer = self.http.post(
            "/v1/terminal/journal",
            content=body,
            headers={
                **self._signed("POST", "/v1/terminal/journal", body),
                "Content-Type": "application/json",
            },
        )
        if answer.status_code == 200 and first is None:
            self.prev, self.journaled = batch_hash(data), start + len(entries) - 1
        return answer

    def entry(
        self,
        code: str,
        *,
        seq: int,
        amount: int | None = 500,
        verdict: str = "OK",
        online: bool = False,
        mode: str = "pay",
        venue: str | None = "canteen",
        bundle_seq: int = 0,
        scanned_at: int | None = None,
    ) -> bytes:
        """A journal entry as this terminal records one."""
        return encode_entry(
            Entry(
                seq=seq,
                scanned_at=scanned_at or int(time.time()),
                clock_offset=0,
                mode=Mode(mode),
                amount=amount if mode == "pay" else None,
                currency="CNY" if mode == "pay" else None,
                venue=venue,
                verdict=Reason(verdict),
                online=online,
                tried=online,
                bundle_seq=bundle_seq,
                code=code,
            )
        )

    def bundle(self, since: int = 0) -> bytes:
        target = f"/v1/terminal/bundle?since={since}"
        answer = self.http.get(target, headers=self._signed("GET", target, b""))
        assert answer.status_code == 200, answer.text
        return answer.content


def enrolled_till(
    http: httpx.Client, admin: Admin, name: str = "till-1", *, merchant: int | None = None
) -> tuple[TerminalClient, int]:
    """A till at the canteen (CNY) enrolled for a merchant (a new one unless given)."""
    if merchant is None:
        merchant = admin.merchant(f"canteen-{name}")
    code = admin.terminal(
        name, mode="pay", venue="canteen", merchant_account_id=merchant, currency="CNY"
    )
    till = TerminalClient(http, name)
    assert till.enrol(code).status_code == 200
    return till, merchant


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def takings(http: httpx.Client, admin: Admin, merchant: int, amount: int, *, name: str) -> None:
    """The merchant takes `amount` in (at most one offline hold, 30.00): a holder pays it online
    at a till of theirs, so that a refund has takings to come back from."""
    payer = ready_wallet(http, admin, f"payer-{name}", balance=amount)
    till, _ = enrolled_till(http, admin, f"till-{name}", merchant=merchant)
    assert till.scan(payer.code(), amount=amount)["ok"]
