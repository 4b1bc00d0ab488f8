"""A reissue a partner asks for on a holder's behalf (issue 17): with `tickets:reissue`, for a
ticket of its own event, to the holder's newest device; decided by the same policy, whose
default asks the holder to step up in their own wallet (`step_up_partner`); on the ledger
naming the partner. Through the real server, with real tokens."""

from __future__ import annotations

import re

import pyotp
import pytest

from duopass.policy import DEFAULT_POLICY
from duopass.protocol.encoding import b64u_encode
from tests.server.conftest import database_url
from tests.server.harness import SQLITE_ONLY, Wallet, running_server
from tests.server.partners import make_client
from tests.server.test_partner_orders import _bearer, _fan, _leaves, _order, _partner_event
from tests.server.test_ticket_reissue import _claims, _turn_on_totp
from tests.server.ticketing import TicketWallet, event_on_sale


def _new_phone(server, fan: TicketWallet, otp: str) -> TicketWallet:
    login = fan.wallet.login
    phone = Wallet(server.http, login)
    phone.handle, phone.account_id = fan.wallet.handle, fan.wallet.account_id
    answer = server.http.post(
        "/v1/session", json={"login": login, "password": f"pw-{login}-secret", "otp": otp}
    )
    assert answer.status_code == 200, answer.text
    phone.auth = {"Authorization": f"Bearer {answer.json()['token']}"}
    phone.enrol()
    return TicketWallet(phone)


@pytest.mark.parametrize("clocked_server", ["sqlite"], indirect=True)
def test_a_partner_asks_and_the_holder_steps_up_in_their_wallet(clocked_server, clock):
    server = clocked_server
    http, admin = server.http, server.admin()
    client = make_client(admin, ["tickets:issue", "tickets:reissue"])
    mine = _bearer(http, client)
    other = _bearer(http, make_client(admin, ["tickets:issue", "tickets:reissue"]))
    issuer_only = _bearer(http, make_client(admin, ["tickets:issue"]))
    type_id = _partner_event(http, admin, mine)
    fan = _fan(http, admin)
    sold = _order(http, mine, "order-0001", type_id, 1)
    assert sold.status_code == 201, sold.text
    (sub,) = sold.json()["tickets"]
    assert fan.sync().status_code == 200
    secret = _turn_on_totp(server, fan, clock)
    clock.advance(30)
    phone = _new_phone(server, fan, pyotp.TOTP(secret).at(int(clock.now)))

    path = f"/v1/partner/tickets/{sub}/reissue"
    scoped = http.post(path, json={}, headers=issuer_only)
    assert (scoped.status_code, scoped.json()["code"]) == (403, "insufficient_scope")
    theirs = http.post(path, json={}, headers=other)
    assert (theirs.status_code, theirs.json()["code"]) == (404, "not_found")
    asked = http.post(path, json={}, headers=mine)  # to the holder's newest device: the phone
    assert asked.status_code == 201, asked.text
    body = asked.json()
    assert (body["outcome"], body["rule"], body["state"]) == (
        "step_up",
        "step_up_partner",
        "step_up",
    )
    assert (body["sub"], body["gen"]) == (sub, 0) and body["policy"]["version"] == "2026-12-06.4"
    request_id = body["request_id"]
    shown = f"/v1/partner/reissues/{request_id}"
    assert http.get(shown, headers=other).json()["code"] == "not_found"
    decision = _leaves(server, "decision")[-1].body
    assert (decision["partner"], decision["rule"]) == (client["client_id"], "step_up_partner")

    # the holder finds it in their wallet, proves it on the phone, and confirms there
    listed = http.get("/v1/me/reissues", headers=phone.wallet.auth).json()["items"]
    assert [(r["request_id"], r["partner"]) for r in listed] == [(request_id, "City Tickets")]
    step = f"/v1/me/reissues/{request_id}/step-up"
    assert http.post(step, headers=phone.wallet.auth, json={"factor": "totp"}).is_success
    clock.advance(30)
    code = pyotp.TOTP(secret).at(int(clock.now))
    proved = http.post(step, headers=phone.wallet.auth, json={"factor": "totp", "code": code})
    assert proved.status_code == 200, proved.text
    done = http.post(f"/v1/me/reissues/{request_id}/confirm", headers=phone.wallet.auth)
    assert done.status_code == 200, done.text
    assert done.json()["gen"] == 1
    now = http.get(shown, headers=mine).json()
    assert (now["state"], now["gen"]) == ("done", 1)
    assert phone.sync().status_code == 200
    assert _claims(phone.tickets[sub]["credential"]).gen == 1


@SQLITE_ONLY
def test_a_partner_cannot_ask_for_others_tickets_nor_past_the_policy(server):
    http, admin = server.http, server.admin()
    mine = _bearer(http, make_client(admin, ["tickets:issue", "tickets:reissue"]))
    house = event_on_sale(admin, "house-gig", venues=("hall-a",))
    fan = _fan(http, admin)
    assert admin.top_up(fan.wallet.handle, 10_000).status_code == 200
    bought = fan.buy(house).json()["tickets"][0]
    office = http.post(f"/v1/partner/tickets/{bought}/reissue", json={}, headers=mine)
    assert (office.status_code, office.json()["code"]) == (404, "not_found")
    type_id = _partner_event(http, admin, mine)
    (sub,) = _order(http, mine, "order-0001", type_id, 1).json()["tickets"]
    assert fan.sync().status_code == 200
    path = f"/v1/partner/tickets/{sub}/reissue"
    same = http.post(path, json={}, headers=mine)  # the newest device holds it already
    assert (same.status_code, same.json()["code"]) == (409, "conflict")
    stranger = b64u_encode(bytes(32))
    unknown = http.post(path, json={"device_key": stranger}, headers=mine)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")
    bad = http.post(path, json={"device_key": "!" * 43}, headers=mine)
    assert bad.json()["code"] == "invalid_request"
    assert http.get("/v1/partner/reissues/rq-00", headers=mine).json()["code"] == "not_found"


@SQLITE_ONLY
def test_the_new_partner_routes_are_in_the_openapi_document_with_examples(server):
    paths = server.http.get("/openapi.json").json()["paths"]
    sell = paths["/v1/partner/orders"]["post"]
    assert (
        sell["responses"]["201"]["content"]["application/json"]["example"]["paid_by"] == "partner"
    )
    assert {"401", "403", "404", "409", "422", "429"} <= set(sell["responses"])
    header = [p for p in sell["parameters"] if p["in"] == "header"]
    assert [(p["name"], p["required"]) for p in header] == [("Idempotency-Key", True)]
    cancel = paths["/v1/partner/orders/{code}/cancel"]["post"]["responses"]["200"]
    assert cancel["content"]["application/json"]["example"]["state"] == "cancelled"
    asked = paths["/v1/partner/tickets/{sub}/reissue"]["post"]["responses"]["201"]
    assert asked["content"]["application/json"]["example"]["rule"] == "step_up_partner"
    shown = paths["/v1/partner/reissues/{request_id}"]["get"]["responses"]
    assert shown["200"]["content"]["application/json"]["example"]["state"] == "step_up"


def test_a_policy_that_allows_partners_moves_the_ticket_at_once(request, tmp_path):
    packaged = DEFAULT_POLICY.read_text()
    step_up = re.search(r'\[\[rule\]\]\nname = "step_up_partner"\n.*?\n\n', packaged, re.S)
    assert step_up is not None
    allow = '[[rule]]\nname = "allow_partner"\nwhen = \'auth.method == "partner"\'\n'
    allow += 'outcome = "allow"\n\n'
    path = tmp_path / "policy.toml"
    path.write_text(packaged.replace(step_up.group(0), allow))
    request.param = "sqlite"  # what `database_url` reads
    with running_server(
        database_url(request, tmp_path), tmp_path / "data", policy_file=path
    ) as server:
        http, admin = server.http, server.admin()
        mine = _bearer(http, make_client(admin, ["tickets:issue", "tickets:reissue"]))
        type_id = _partner_event(http, admin, mine)
        fan = _fan(http, admin)
        (sub,) = _order(http, mine, "order-0001", type_id, 1).json()["tickets"]
        assert fan.sync().status_code == 200
        phone = TicketWallet(Wallet(http, fan.wallet.login))
        phone.wallet.sign_in()
        phone.wallet.enrol()
        asked = http.post(f"/v1/partner/tickets/{sub}/reissue", json={}, headers=mine)
        assert asked.status_code == 201, asked.text
        body = asked.json()
        assert (body["rule"], body["state"], body["gen"]) == ("allow_partner", "done", 1)
        assert phone.sync().status_code == 200
        assert _claims(phone.tickets[sub]["credential"]).gen == 1
