"""Reissue of a ticket in three steps (issue 13, PROTOCOL §6): decided by the policy, recorded
on the ledger, stepped up or reviewed where the policy says, and the old credential dead
everywhere: refused online at once, in the next bundle delta for offline gates."""

from __future__ import annotations

import base64
import time
from typing import Any

import pyotp

from duopass.ledger.leaf import parse_leaf
from duopass.protocol.bundle import apply_bundle, open_bundle
from duopass.protocol.cbor import loads
from duopass.protocol.code import decode_credential
from duopass.protocol.encoding import b64u_decode, b64u_encode
from tests.server.harness import SQLITE_ONLY, Wallet
from tests.server.ticketing import HOUR, TicketWallet, entry_gate, event_on_sale, ticket_wallet

DAY = 86_400


def _claims(l1_text: str):
    l1 = b64u_decode(l1_text)
    return decode_credential(loads(l1), l1).claims


def _new_phone(server, holder: TicketWallet, *, otp: str | None = None) -> TicketWallet:
    """The same holder on a second phone: signed in with the password (and the one-time code
    once TOTP is on), its key enrolled."""
    phone = Wallet(server.http, holder.wallet.login)
    phone.handle, phone.account_id = holder.wallet.handle, holder.wallet.account_id
    if otp is None:
        phone.sign_in()
    else:
        login = holder.wallet.login
        answer = server.http.post(
            "/v1/session", json={"login": login, "password": f"pw-{login}-secret", "otp": otp}
        )
        assert answer.status_code == 200, answer.text
        phone.auth = {"Authorization": f"Bearer {answer.json()['token']}"}
    phone.enrol()
    return TicketWallet(phone)


def _ask(server, phone: TicketWallet, sub: str, **extra: Any) -> dict[str, Any]:
    answer = server.http.post(
        f"/v1/me/tickets/{sub}/reissue",
        headers=phone.wallet.auth,
        json={"device_key": b64u_encode(phone.wallet.key.public), **extra},
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def _confirm(server, phone: TicketWallet, request_id: str) -> dict[str, Any]:
    answer = server.http.post(f"/v1/me/reissues/{request_id}/confirm", headers=phone.wallet.auth)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _bought(
    server, admin, *, doors: int, entries: int = 1, networks: tuple[str, ...] = ("10.20.0.0/16",)
) -> tuple[TicketWallet, str, Any]:
    sale = event_on_sale(admin, doors=doors, entries=entries, networks=networks)
    fan = ticket_wallet(server.http, admin, "fan", balance=10_000)
    sub = fan.buy(sale).json()["tickets"][0]
    assert fan.sync().status_code == 200
    return fan, sub, sale


def test_an_allowed_reissue_kills_the_old_ticket_online_and_in_the_next_bundle(server):
    admin = server.admin()
    fan, sub, _ = _bought(server, admin, doors=int(time.time()) + 2 * DAY)
    old = _claims(fan.tickets[sub]["credential"])
    phone = _new_phone(server, fan)
    asked = _ask(server, phone, sub)
    assert (asked["outcome"], asked["rule"], asked["state"]) == ("allow", "allow_default", "ready")
    assert len(asked["policy"]["sha256"]) == 64 and asked["policy"]["version"]
    done = _confirm(server, phone, asked["request_id"])
    new = _claims(done["credential"])
    assert (new.sub, new.gen, new.exp, new.nbf, new.ev, new.scope, new.ent) == (
        old.sub,
        old.gen + 1,
        old.exp,
        old.nbf,
        old.ev,
        old.scope,
        old.ent,
    )
    assert new.device_key == phone.wallet.key.public and new.cti != old.cti
    assert done["cti"] == asked["new_cti"] == new.cti.hex()
    shown = server.http.get(f"/v1/me/reissues/{asked['request_id']}", headers=phone.wallet.auth)
    assert shown.json()["state"] == "done"
    # the decision is a ledger leaf naming the policy, the inputs' digest, both ctis and gens
    leaves = _decision_leaves(server)
    body = leaves[-1].body
    assert body["outcome"] == "allow" and body["rule"] == "allow_default"
    assert (body["old_cti"], body["new_cti"], body["old_gen"], body["new_gen"]) == (
        old.cti,
        new.cti,
        0,
        1,
    )
    assert len(body["inputs"]) == 32 and len(body["sha256"]) == 32


def _decision_leaves(server) -> list[Any]:
    size = int(server.http.get("/v1/ledger/checkpoint").text.splitlines()[1])
    out = []
    for index in range(size):
        entry = server.http.get(f"/v1/ledger/entries/{index}").json()
        leaf = parse_leaf(base64.b64decode(entry["data"]))
        if leaf.type == "decision":
            out.append(leaf)
    return out


@SQLITE_ONLY
def test_the_old_generation_is_refused_at_gates_online_and_offline(server):
    admin = server.admin()
    # doors are open, and the request comes from the venue's own network: allowed
    fan, sub, sale = _bought(server, admin, doors=int(time.time()) - 60, networks=("127.0.0.0/8",))
    gate = entry_gate(server.http, admin, "gate-1", event=sale.event, venue="hall-a")
    before = apply_bundle(None, open_bundle(gate.bundle(), gate.root_key))
    old_code = fan.code(sub)
    phone = _new_phone(server, fan)
    asked = _ask(server, phone, sub)
    assert asked["outcome"] == "allow", asked
    _confirm(server, phone, asked["request_id"])
    assert gate.scan(old_code, mode="entry")["reason"] == "REVOKED"
    delta = open_bundle(gate.bundle(before.seq), gate.root_key)
    assert _claims(fan.tickets[sub]["credential"]).cti in delta.revoked_added


def test_step_up_by_totp_then_confirm(clocked_server, clock):
    server = clocked_server
    admin = server.admin()
    # doors within two hours and the request from outside the venue's network: step up
    fan, sub, _ = _bought(server, admin, doors=int(time.time()) + HOUR)
    secret = _turn_on_totp(server, fan, clock)
    clock.advance(30)  # each one-time code is accepted once: the next time step's
    phone = _new_phone(server, fan, otp=pyotp.TOTP(secret).at(int(clock.now)))
    asked = _ask(server, phone, sub)
    assert asked["outcome"] == "step_up" and "totp" in asked["factors"], asked
    early = server.http.post(
        f"/v1/me/reissues/{asked['request_id']}/confirm", headers=phone.wallet.auth
    )
    assert early.status_code == 409 and early.json()["code"] == "conflict"
    path = f"/v1/me/reissues/{asked['request_id']}/step-up"
    begun = server.http.post(path, headers=phone.wallet.auth, json={"factor": "totp"})
    assert begun.status_code == 200 and begun.json()["factor"] == "totp", begun.text
    wrong = server.http.post(
        path, headers=phone.wallet.auth, json={"factor": "totp", "code": "000000"}
    )
    assert wrong.status_code == 403 and wrong.json()["code"] == "step_up_failed"
    clock.advance(30)
    right = pyotp.TOTP(secret).at(int(clock.now))
    proved = server.http.post(
        path, headers=phone.wallet.auth, json={"factor": "totp", "code": right}
    )
    assert proved.status_code == 200, proved.text
    done = _confirm(server, phone, asked["request_id"])
    assert _claims(done["credential"]).gen == 1


def _turn_on_totp(server, fan: TicketWallet, clock) -> str:
    auth = fan.wallet.auth
    secret = server.http.post("/v1/me/totp/new", headers=auth).json()["secret"]
    otp = pyotp.TOTP(secret).at(int(clock.now))
    on = server.http.post("/v1/me/totp", headers=auth, json={"secret": secret, "otp": otp})
    assert on.status_code in (200, 204), on.text
    return str(secret)


def test_a_fully_used_ticket_is_denied_and_the_decision_recorded(server):
    admin = server.admin()
    fan, sub, sale = _bought(server, admin, doors=int(time.time()) - 60)
    gate = entry_gate(server.http, admin, "gate-1", event=sale.event, venue="hall-a")
    assert gate.scan(fan.code(sub), mode="entry")["reason"] == "OK"
    phone = _new_phone(server, fan)
    asked = _ask(server, phone, sub)
    assert (asked["outcome"], asked["rule"], asked["state"]) == (
        "deny",
        "deny_fully_used",
        "denied",
    )
    refused = server.http.post(
        f"/v1/me/reissues/{asked['request_id']}/confirm", headers=phone.wallet.auth
    )
    assert refused.status_code == 409
    assert _decision_leaves(server)[-1].body["outcome"] == "deny"


@SQLITE_ONLY
def test_review_waits_for_a_person_who_approves_or_refuses(server):
    admin = server.admin()
    fan, sub, _ = _bought(server, admin, doors=int(time.time()) + 2 * DAY)
    phones = [fan]
    for _ in range(3):  # three reissues: the fourth goes to review
        phone = _new_phone(server, phones[-1])
        asked = _ask(server, phone, sub)
        assert asked["outcome"] == "allow", asked
        _confirm(server, phone, asked["request_id"])
        phones.append(phone)
    phone = _new_phone(server, phones[-1])
    asked = _ask(server, phone, sub)
    assert (asked["outcome"], asked["rule"]) == ("review", "review_many_reissues")
    again = server.http.post(
        f"/v1/me/tickets/{sub}/reissue",
        headers=phone.wallet.auth,
        json={"device_key": b64u_encode(phone.wallet.key.public)},
    )
    assert again.status_code == 409  # asking again does not slip past the review
    queue = server.http.get("/v1/admin/reviews", headers=admin.auth).json()["items"]
    waiting = [item for item in queue if item["request_id"] == asked["request_id"]]
    assert waiting and waiting[0]["rule"] == "review_many_reissues"
    assert waiting[0]["inputs"]["reissues"]["ticket"] == 3
    approved = admin.post(
        f"/v1/admin/reviews/{asked['request_id']}", {"action": "approve", "reason": "id checked"}
    )
    assert approved.status_code == 200 and approved.json()["state"] == "ready"
    assert _claims(_confirm(server, phone, asked["request_id"])["credential"]).gen == 4
    assert _decision_leaves(server)[-1].body["rule"] == "reviewer"


def test_lost_phone_moves_the_purse_and_every_ticket_in_one_action(server):
    admin = server.admin()
    sale = event_on_sale(admin, doors=int(time.time()) + 2 * DAY)
    fan = ticket_wallet(server.http, admin, "fan", balance=10_000)
    subs = fan.buy(sale, quantity=2).json()["tickets"]
    fan.sync()
    assert fan.wallet.sync().status_code == 200  # and a purse credential
    old_purse = _claims(fan.wallet.credential["credential"])
    phone = _new_phone(server, fan)
    reported = server.http.post(
        "/v1/me/lost",
        headers=phone.wallet.auth,
        json={"device_key": b64u_encode(phone.wallet.key.public)},
    )
    assert reported.status_code == 200, reported.text
    moved = {item["sub"]: item for item in reported.json()["tickets"]}
    assert set(moved) == set(subs)
    for sub in subs:
        assert moved[sub]["state"] == "done" and _claims(moved[sub]["credential"]).gen == 1
    # the old phone is signed out and its key revoked; the new one syncs the replacement purse
    assert fan.sync().status_code in (401, 403)
    assert phone.wallet.sync().status_code == 200
    assert _claims(phone.wallet.credential["credential"]).gen == old_purse.gen + 1
    assert {t["sub"] for t in phone.sync().json()["tickets"] if t["credential"]} == set(subs)


@SQLITE_ONLY
def test_the_counter_reports_a_loss_for_the_holder(server):
    admin = server.admin()
    fan, _, _ = _bought(server, admin, doors=int(time.time()) + 2 * DAY)
    phone = _new_phone(server, fan)
    reported = admin.post(
        f"/v1/admin/holders/{fan.wallet.handle}/lost",
        {"device_key": b64u_encode(phone.wallet.key.public)},
    )
    assert reported.status_code == 200, reported.text
    assert reported.json()["tickets"][0]["state"] == "done"


def test_a_transfer_moves_the_ticket_to_another_holder(clocked_server, clock):
    server = clocked_server
    admin = server.admin()
    fan, sub, _ = _bought(server, admin, doors=int(time.time()) + 2 * DAY)
    secret = _turn_on_totp(server, fan, clock)
    friend = ticket_wallet(server.http, admin, "friend", balance=0)
    asked = server.http.post(
        f"/v1/me/tickets/{sub}/transfer", headers=fan.wallet.auth, json={"to_login": "friend"}
    )
    assert asked.status_code == 201, asked.text
    body = asked.json()
    assert (body["action"], body["outcome"], body["rule"]) == (
        "transfer",
        "step_up",
        "step_up_transfer",
    )
    path = f"/v1/me/reissues/{body['request_id']}/step-up"
    assert server.http.post(path, headers=fan.wallet.auth, json={"factor": "totp"}).is_success
    clock.advance(30)
    code = pyotp.TOTP(secret).at(int(clock.now))
    proved = server.http.post(path, headers=fan.wallet.auth, json={"factor": "totp", "code": code})
    assert proved.status_code == 200, proved.text
    done = _confirm(server, fan, body["request_id"])
    assert _claims(done["credential"]).device_key == friend.wallet.key.public
    assert server.http.get(f"/v1/me/tickets/{sub}", headers=fan.wallet.auth).status_code == 404
    theirs = server.http.get(f"/v1/me/tickets/{sub}", headers=friend.wallet.auth).json()
    assert theirs["gen"] == 1
    missing = server.http.post(
        f"/v1/me/tickets/{sub}/transfer", headers=friend.wallet.auth, json={"to_login": "nobody"}
    )
    assert missing.status_code == 404


def test_reissue_inputs_have_limits_and_stable_reasons(server):
    admin = server.admin()
    fan, sub, _ = _bought(server, admin, doors=int(time.time()) + 2 * DAY)
    bad = [
        {"device_key": "short"},
        {"device_key": "A" * 43, "position": {"lat_e6": 10**9, "lon_e6": 0}},
    ]
    for body in bad:
        answer = server.http.post(
            f"/v1/me/tickets/{sub}/reissue", headers=fan.wallet.auth, json=body
        )
        assert answer.status_code == 422 and answer.json()["code"] == "invalid_request"
    unknown = server.http.post(
        f"/v1/me/tickets/{sub}/reissue",
        headers=fan.wallet.auth,
        json={"device_key": b64u_encode(bytes(range(32)))},
    )
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"
    same = server.http.post(
        f"/v1/me/tickets/{sub}/reissue",
        headers=fan.wallet.auth,
        json={"device_key": b64u_encode(fan.wallet.key.public)},
    )
    assert same.status_code == 409
    assert server.http.get("/v1/me/reissues/rq-00", headers=fan.wallet.auth).status_code == 404


def test_step_up_by_a_code_mailed_through_a_real_smtp_server(mail_server, smtp):
    admin = mail_server.admin()
    fan, sub, _ = _bought(mail_server, admin, doors=int(time.time()) + HOUR)
    phone = _new_phone(mail_server, fan)
    asked = _ask(mail_server, phone, sub)
    assert asked["outcome"] == "step_up" and "email_otp" in asked["factors"], asked
    path = f"/v1/me/reissues/{asked['request_id']}/step-up"
    begun = mail_server.http.post(path, headers=phone.wallet.auth, json={"factor": "email_otp"})
    assert begun.status_code == 200, begun.text
    assert begun.json()["sent_to"].endswith("@example.edu")
    code = smtp.last_code("fan@example.edu")
    proved = mail_server.http.post(
        path, headers=phone.wallet.auth, json={"factor": "email_otp", "code": code}
    )
    assert proved.status_code == 200 and proved.json()["state"] == "ready", proved.text
    again = mail_server.http.post(
        path, headers=phone.wallet.auth, json={"factor": "email_otp", "code": code}
    )
    assert again.status_code in (403, 409)  # used once
    assert _claims(_confirm(mail_server, phone, asked["request_id"])["credential"]).gen == 1
