"""Idempotency keys bound to their request: the same key with the same request returns the first
answer and changes nothing; the same key with another request is `409 idempotency_mismatch`,
never a 200 for money that did not move. Request ids are scoped so that they are no oracle."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
from alembic import command
from alembic.config import Config
from sqlalchemy import func, select

from duopass.server.services import policy_store
from duopass.server.store.db import MIGRATIONS
from duopass.server.store.tables import LedgerLeaf
from tests.server.harness import (
    Admin,
    TerminalClient,
    Wallet,
    enrolled_till,
    ready_wallet,
    takings,
)


def _mismatch(answer: httpx.Response) -> None:
    assert answer.status_code == 409, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == "idempotency_mismatch"


def _leaves(server) -> int:
    return int(
        server.ctx.run(lambda u: u.session.scalar(select(func.count()).select_from(LedgerLeaf)))
    )


def _refund(
    admin: Admin, handle: str, amount: int, merchant: int, request_id: str
) -> httpx.Response:
    return admin.post(
        f"/v1/admin/holders/{handle}/refunds",
        {"amount": amount, "merchant_account_id": merchant, "request_id": request_id},
    )


def test_a_top_up_key_reused_for_another_request_is_refused(server):
    """The tester's three steps: X 500 K; X 5000 K; Y 700 K. Only the first moves money."""
    admin = server.admin()
    x, y = admin.holder("xavier"), admin.holder("yvonne")
    key = uuid.uuid4().hex
    first = admin.top_up(x["handle"], 500, key)
    assert first.status_code == 200, first.text
    leaves = _leaves(server)
    again = admin.top_up(x["handle"], 500, key)  # the answer was lost: a true retry
    assert again.status_code == 200 and again.json() == first.json()
    _mismatch(admin.top_up(x["handle"], 5_000, key))
    _mismatch(admin.top_up(y["handle"], 700, key))
    assert admin.account(x["account_id"])["balance"] == 500
    assert admin.account(y["account_id"])["balance"] == 0
    assert _leaves(server) == leaves  # nothing was booked after the first
    assert admin.books() == 0


def test_a_refund_key_reused_for_another_request_is_refused(server):
    admin = server.admin()
    x, y = admin.holder("xena", balance=1_000), admin.holder("yuri")
    shop, other_shop = admin.merchant("shop"), admin.merchant("other-shop")
    takings(server.http, admin, shop, 1_000, name="shop")
    takings(server.http, admin, other_shop, 1_000, name="other-shop")
    key = uuid.uuid4().hex
    first = _refund(admin, x["handle"], 300, shop, key)
    assert first.status_code == 200, first.text
    assert _refund(admin, x["handle"], 300, shop, key).json() == first.json()
    _mismatch(_refund(admin, x["handle"], 3_000, shop, key))
    _mismatch(_refund(admin, y["handle"], 300, shop, key))
    _mismatch(_refund(admin, x["handle"], 300, other_shop, key))
    _mismatch(admin.top_up(x["handle"], 300, key))  # the same key for another kind
    assert admin.account(x["account_id"])["balance"] == 1_300
    assert admin.account(y["account_id"])["balance"] == 0
    assert admin.account(shop)["balance"] == 1_000 - 300
    assert admin.account(other_shop)["balance"] == 1_000
    assert admin.books() == 0


def _second_device(server, wallet: Wallet) -> Wallet:
    phone = Wallet(server.http, wallet.login)
    phone.sign_in()
    phone.enrol()
    return phone


def test_a_sync_id_is_bound_to_its_device_and_mark(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "wanda", balance=10_000)
    key = uuid.uuid4().hex
    first = wallet.sync(mark=2, request_id=key)
    assert first.status_code == 200, first.text
    again = wallet.sync(mark=2, request_id=key)
    assert again.json()["cti"] == first.json()["cti"]
    _mismatch(wallet.sync(mark=1, request_id=key))
    _mismatch(wallet.sync(mark=None, request_id=key))
    phone = _second_device(server, wallet)
    _mismatch(phone.sync(mark=2, request_id=key))


def test_request_ids_are_per_holder(server):
    """Another holder's request id is a fresh id for this holder: it issues, it reveals nothing."""
    admin = server.admin()
    alice = ready_wallet(server.http, admin, "alicia", balance=5_000)
    bob = ready_wallet(server.http, admin, "bobby", balance=5_000)
    key = uuid.uuid4().hex
    theirs = alice.sync(request_id=key)
    assert theirs.status_code == 200, theirs.text
    ours = bob.sync(request_id=key)
    assert ours.status_code == 200, ours.text
    assert ours.json()["cti"] != theirs.json()["cti"]
    assert bob.sync(request_id=key).json()["cti"] == ours.json()["cti"]


def test_sync_answers_alike_for_a_missing_and_another_holders_device(server):
    admin = server.admin()
    alice = ready_wallet(server.http, admin, "amelie", balance=5_000)
    bob = ready_wallet(server.http, admin, "bruno", balance=5_000)
    bob.device_id, own = alice.device_id, bob.device_id
    theirs = bob.sync()
    bob.device_id = 999_999
    missing = bob.sync()
    assert theirs.status_code == missing.status_code == 404, theirs.text
    assert theirs.json() == missing.json()
    assert theirs.json()["code"] == "not_found"
    bob.device_id = own
    revoked = server.http.delete(f"/v1/me/devices/{own}", headers=bob.auth)
    assert revoked.status_code == 204, revoked.text
    refused = bob.sync()
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"


def _scan(till: TerminalClient, code: str, *, seq: int, mode: str = "pay", amount: Any = 500):
    """A scan request as any terminal may send it; the answer unchecked."""
    body = json.dumps(
        {
            "code": code,
            "mode": mode,
            "amount": amount,
            "terminal_id": till.terminal_id,
            "seq": seq,
            "scanned_at": int(time.time()),
        }
    ).encode()
    headers = till._signed("POST", "/v1/terminal/scans", body)
    return till.http.post(
        "/v1/terminal/scans",
        content=body,
        headers={**headers, "Content-Type": "application/json"},
    )


def test_a_scan_retry_must_be_the_same_scan(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "sam", balance=10_000)
    till, merchant = enrolled_till(server.http, admin)
    code, other_code = wallet.code(), wallet.code()
    first = _scan(till, code, seq=7, amount=1_250)
    assert first.status_code == 200 and first.json()["reason"] == "OK", first.text
    retry = _scan(till, code + "\r\n", seq=7, amount=1_250)  # the same scan, as a wedge sends it
    assert retry.status_code == 200 and retry.json() == first.json()
    _mismatch(_scan(till, code, seq=7, amount=2_500))
    _mismatch(_scan(till, other_code, seq=7, amount=1_250))
    _mismatch(_scan(till, code, seq=7, mode="identity", amount=None))
    assert admin.account(wallet.account_id)["balance"] == 10_000 - 1_250
    assert admin.account(merchant)["balance"] == 1_250
    assert _scan(till, other_code, seq=8, amount=2_500).json()["reason"] == "OK"  # unused
    assert admin.books() == 0


def test_a_scan_for_a_journalled_seq_must_be_the_journalled_scan(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "jules", balance=10_000)
    till, _ = enrolled_till(server.http, admin)
    code, other_code = wallet.code(), wallet.code()
    assert till.journal([till.entry(code, seq=1, amount=500)]).status_code == 200
    late = _scan(till, code, seq=1, amount=500)  # its terminal gave up on it and journalled it
    assert late.status_code == 200, late.text
    assert (late.json()["reason"], late.json()["mode"]) == ("OK", "offline")
    _mismatch(_scan(till, other_code, seq=1, amount=500))
    _mismatch(_scan(till, code, seq=1, amount=5_000))
    assert admin.account(wallet.account_id)["balance"] == 10_000 - 500


def test_an_enrolment_whose_answer_was_lost_can_be_retried(server):
    admin = server.admin()
    merchant = admin.merchant("kiosk")
    code = admin.terminal("till-r", mode="pay", merchant_account_id=merchant, currency="CNY")
    till = TerminalClient(server.http, "till-r")
    first = till.enrol(code)
    assert first.status_code == 200, first.text
    leaves = _leaves(server)
    again = till.enrol(code)  # the same code and the same key
    assert again.status_code == 200 and again.json() == first.json()
    assert _leaves(server) == leaves
    thief = TerminalClient(server.http, "till-r").enrol(code)  # the spent code, another key
    assert thief.status_code == 403 and thief.json()["code"] == "bad_enrolment_code"
    assert till.bundle()  # the first key is still the terminal's


def _migrate(server, step: str) -> None:
    """Run Alembic on the live database (the server idle), then drop pooled connections."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with server.ctx.db.engine.begin() as connection:
        config.attributes["connection"] = connection
        if step == "down":  # to before 0005, the migration under test
            command.downgrade(config, "0004")
        else:
            command.upgrade(config, "head")
    server.ctx.db.engine.dispose()
    if step == "up":  # the policy's table came back empty: pin it, as a restarted server does
        pinned = server.ctx.pinned_policy
        server.ctx.run(lambda unit: policy_store.activate(unit, pinned.policy))


def test_requests_made_before_the_migration_keep_their_meaning(server):
    """Rows written before fingerprints existed: top-ups and refunds get theirs from their
    postings; a sync keeps its device (its mark was never stored, so any mark is its retry)."""
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "old-timer", balance=5_000)
    shop = admin.merchant("old-shop")
    takings(server.http, admin, shop, 1_000, name="old-shop")
    top_key, refund_key, sync_key = (uuid.uuid4().hex for _ in range(3))
    top = admin.top_up(wallet.handle, 700, top_key)
    back = _refund(admin, wallet.handle, 200, shop, refund_key)
    synced = wallet.sync(mark=1, request_id=sync_key)
    assert top.status_code == back.status_code == synced.status_code == 200
    _migrate(server, "down")
    _migrate(server, "up")
    assert admin.top_up(wallet.handle, 700, top_key).json() == top.json()
    assert _refund(admin, wallet.handle, 200, shop, refund_key).json() == back.json()
    _mismatch(admin.top_up(wallet.handle, 7_000, top_key))
    new_shop = admin.merchant("new-shop")
    takings(server.http, admin, new_shop, 1_000, name="new-shop")
    _mismatch(_refund(admin, wallet.handle, 200, new_shop, refund_key))
    assert wallet.sync(mark=0, request_id=sync_key).json()["cti"] == synced.json()["cti"]
    _mismatch(_second_device(server, wallet).sync(mark=1, request_id=sync_key))
    assert admin.account(wallet.account_id)["balance"] == 5_000 + 700 + 200


def test_a_refund_comes_back_from_what_the_merchant_took_in(server):
    """A refund moves money the merchant received back to the holder: never more than the
    merchant holds (a mistyped refund would otherwise mint money into a holder's account)."""
    admin = server.admin()
    holder, shop = admin.holder("rhea"), admin.merchant("rhea-shop")
    answer = _refund(admin, holder["handle"], 1, shop, uuid.uuid4().hex)
    assert answer.status_code == 409 and answer.json()["code"] == "no_funds"
    takings(server.http, admin, shop, 2_000, name="rhea")
    assert _refund(admin, holder["handle"], 1_500, shop, uuid.uuid4().hex).status_code == 200
    answer = _refund(admin, holder["handle"], 501, shop, uuid.uuid4().hex)
    assert answer.status_code == 409 and answer.json()["code"] == "no_funds"
    assert _refund(admin, holder["handle"], 500, shop, uuid.uuid4().hex).status_code == 200
    assert admin.account(shop)["balance"] == 0
    assert admin.account(holder["account_id"])["balance"] == 2_000
    assert admin.books() == 0
