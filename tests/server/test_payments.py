"""Online payments through a real HTTP server: exactly once, double-entry, funds and holds."""

from __future__ import annotations

import json
import time
import uuid

from duopass.protocol import make_code
from duopass.protocol.bundle import apply_bundle, open_bundle
from duopass.protocol.encoding import b64u_decode
from tests.server.harness import TerminalClient, Wallet, enrolled_till, ready_wallet


def _till(server, admin, name: str = "till-1") -> tuple[TerminalClient, int]:
    return enrolled_till(server.http, admin, name)


def test_health_and_openapi(server):
    assert server.http.get("/healthz").json()["status"] == "ok"
    paths = server.http.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/terminal/scans",
        "/v1/terminal/bundle",
        "/v1/ledger/checkpoint",
        "/v1/ledger/proofs/inclusion",
        "/v1/ledger/proofs/consistency",
        "/v1/ledger/entries/{index}",
    ):
        assert path in paths


def test_a_payment_is_applied_exactly_once(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "alice", balance=10_000)
    till, merchant = _till(server, admin)
    assert wallet.credential is not None
    assert (wallet.credential["uses"], wallet.credential["txmax"]) == (3, 3_000)
    code = wallet.code()
    first = till.scan(code, amount=1_250, seq=7)
    assert first["ok"] and first["reason"] == "OK" and first["mode"] == "online"
    again = till.scan(code, amount=1_250, seq=7)  # the answer was lost; the till retries
    assert again == first
    other = TerminalClient(server.http, "till-2")
    assert (
        other.enrol(
            admin.terminal(
                "till-2", mode="pay", venue="canteen", merchant_account_id=merchant, currency="CNY"
            )
        ).status_code
        == 200
    )
    assert other.scan(code, amount=1_250)["reason"] == "REPLAY"  # the same counter, elsewhere
    account = admin.account(wallet.account_id)
    assert account["balance"] == 10_000 - 1_250
    assert account["held"] == 2 * 3_000  # counter 0's hold released by the payment
    assert admin.account(merchant)["balance"] == 1_250
    assert admin.books() == 0


def test_funds_rule_online(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "bob", balance=5_000)
    till, _ = _till(server, admin)
    assert wallet.credential["uses"] == 1 and wallet.credential["txmax"] == 3_000
    # an online payment above txmax is fine while funds cover it (check 18 is offline only)
    assert till.scan(wallet.code(), amount=4_000)["reason"] == "OK"
    # online too, a counter at or past `uses` is refused (check 16): the wallet must sync
    assert till.scan(wallet.code(), amount=1)["reason"] == "USES_EXHAUSTED"
    assert admin.account(wallet.account_id)["balance"] == 1_000
    assert admin.books() == 0


def test_refused_scans_consume_nothing(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "carol", balance=2_000)
    till, _ = _till(server, admin)
    code = wallet.code()
    assert till.scan(code, amount=9_999)["reason"] == "INSUFFICIENT_FUNDS"
    assert till.scan(code, amount=500)["reason"] == "OK"  # the counter was not consumed
    assert till.scan("DP1:garbage", amount=5)["reason"] == "MALFORMED"
    assert till.scan("https://example.com", amount=5)["reason"] == "FORMAT"


def test_top_ups_are_idempotent(server):
    admin = server.admin()
    holder = admin.holder("dave")
    request_id = uuid.uuid4().hex
    first = admin.top_up(holder["handle"], 700, request_id)
    second = admin.top_up(holder["handle"], 700, request_id)
    assert first.json() == second.json()
    assert admin.account(holder["account_id"])["balance"] == 700


def test_loss_report_revokes_online_at_once_and_in_the_next_bundle(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "erin", balance=9_000)
    till, _ = _till(server, admin)
    before = open_bundle(till.bundle(), till.root_key)
    code = wallet.code()
    assert server.http.post("/v1/me/loss-report", headers=wallet.auth).json()["revoked"] == 1
    assert till.scan(code, amount=100)["reason"] == "REVOKED"
    delta = open_bundle(till.bundle(since=before.seq), till.root_key)
    store = apply_bundle(apply_bundle(None, before), delta)
    assert store.is_revoked("demo-univ", b64u_decode(wallet.credential["cti"]))
    # The lost credential's holds stay until §4 releases them (its offline counters may still
    # arrive): they cap the holder's liability for the lost phone. A new phone enrols at once (a
    # loss report does not freeze) and pays with what is not held.
    assert admin.account(wallet.account_id)["held"] == 9_000
    assert admin.top_up(wallet.handle, 2_000).status_code == 200
    phone = Wallet(server.http, "erin")
    phone.sign_in()
    phone.enrol()
    assert phone.sync().status_code == 200
    assert till.scan(phone.code(), amount=100)["reason"] == "OK"


def test_freeze_refuses_online_and_lists_the_subject(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "frank", balance=9_000)
    till, _ = _till(server, admin)
    assert (
        admin.post(
            f"/v1/admin/holders/{wallet.handle}/freeze", {"reason": "clone suspected"}
        ).status_code
        == 204
    )
    assert till.scan(wallet.code(), amount=100)["reason"] == "FROZEN"
    store = apply_bundle(None, open_bundle(till.bundle(), till.root_key))
    assert store.is_frozen("demo-univ", wallet.handle)


def test_refresh_supersedes_at_the_mark(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "gina", balance=30_000)
    till, _ = _till(server, admin)
    old = dict(wallet.credential)
    assert old["uses"] == 10
    codes = [wallet.code() for _ in range(3)]  # counters 0, 1, 2 shown
    assert till.scan(codes[0], amount=100)["reason"] == "OK"
    held_before = admin.account(wallet.account_id)["held"]
    assert wallet.sync(mark=2 + 2).status_code == 200  # highest shown + refresh_reserve
    assert wallet.credential["cti"] != old["cti"]
    # the old credential stays payable online up to the mark, not above
    assert till.scan(codes[2], amount=100)["reason"] == "OK"
    above = make_code(b64u_decode(old["credential"]), wallet.key, ctr=5, ts=int(time.time()))
    assert till.scan(above, amount=100)["reason"] == "REVOKED"
    account = admin.account(wallet.account_id)
    assert account["held"] < held_before + wallet.credential["uses"] * wallet.credential["txmax"]
    assert admin.books() == 0


def test_sync_retry_returns_the_same_credential(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "hugo", balance=9_000)
    request_id = uuid.uuid4().hex
    first = wallet.sync(request_id=request_id).json()
    held = admin.account(wallet.account_id)["held"]
    second = wallet.sync(request_id=request_id).json()
    assert first["credential"] == second["credential"]
    assert admin.account(wallet.account_id)["held"] == held
    # The first credential's holds (all 9,000) were not released: a sync without a mark
    # releases nothing, so the new credential has nothing to hold and is for online use only.
    assert (held, first["offline"], first["uses"]) == (9_000, False, 1)


def test_refreshes_are_limited_per_day(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "rhea", balance=10_000)  # the day's issue
    for _ in range(server.ctx.settings.refresh_max_per_day):
        assert wallet.sync(mark=0).status_code == 200
    refused = wallet.sync(mark=0)
    assert refused.status_code == 429 and refused.json()["code"] == "refresh_limit"


def test_a_scan_is_answered_alike_by_either_handler(server):
    """A plain JSON scan takes the lean path (api/lean.py); a content type with parameters goes
    to FastAPI's own handler: the same scan, retried, gets the same bytes from both."""
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "bea", balance=10_000)
    till, _ = _till(server, admin)
    body = json.dumps(
        {
            "code": wallet.code(),
            "mode": "pay",
            "amount": 300,
            "terminal_id": till.terminal_id,
            "seq": 1,
            "scanned_at": int(time.time()),
        }
    ).encode()
    answers = [
        server.http.post(
            "/v1/terminal/scans",
            content=body,
            headers={**till._signed("POST", "/v1/terminal/scans", body), "Content-Type": kind},
        )
        for kind in ("application/json", "application/json; charset=utf-8")
    ]
    assert answers[0].status_code == answers[1].status_code == 200
    assert answers[0].json()["reason"] == "OK" and answers[0].json()["mode"] == "online"
    assert answers[0].content == answers[1].content
    assert answers[0].headers["content-type"] == answers[1].headers["content-type"]


def test_a_scan_the_lean_path_leaves_after_reading_its_body_is_answered_by_fastapi(server):
    """A body that parses but does not validate, or a signed header missing, is read by the lean
    handler and given back to FastAPI's: the same answer as a request it never read."""
    admin = server.admin()
    till, _ = _till(server, admin)
    body = json.dumps({"code": "DP1:x", "mode": "pay", "amount": "many", "seq": 1}).encode()
    signed = till._signed("POST", "/v1/terminal/scans", body)
    unsigned = {k: v for k, v in signed.items() if k.lower() != "duopass-signature"}
    assert len(unsigned) == len(signed) - 1
    for headers in (signed, unsigned):
        answers = [
            server.http.post(
                "/v1/terminal/scans", content=body, headers={**headers, "Content-Type": kind}
            )
            for kind in ("application/json", "application/json; charset=utf-8")
        ]
        assert answers[0].status_code == answers[1].status_code == 422
        assert answers[0].content == answers[1].content
        assert answers[0].json()["code"] == "invalid_request"


def test_a_body_nested_past_the_parsers_depth_is_refused_alike_by_either_handler(server):
    """JSON nested deeper than Python's parser goes (a few thousand brackets, well inside the
    body limit) is a 422 from both handlers, never a 500 with a traceback in the log."""
    body = b"[" * 30_000 + b"]" * 30_000
    for path in ("/v1/terminal/scans", "/v1/checkin/redeem"):
        answers = [
            server.http.post(path, content=body, headers={"Content-Type": kind})
            for kind in ("application/json", "application/json; charset=utf-8")
        ]
        assert answers[0].status_code == answers[1].status_code == 422, answers[0].text
        assert answers[0].content == answers[1].content
