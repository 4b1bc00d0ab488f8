"""A request a partner opened on the holder's behalf, from the wallet's command line, against a
real server (issue 17): `duopass wallet reissues` lists it (ticket, event, the partner's name,
what it needs), `duopass wallet reissue --request RQ` steps up by TOTP and confirms it (the
ticket's new code lands on this phone), `--decline RQ` says no and the ticket stays put."""

from __future__ import annotations

import json

import pytest

from duopass.protocol import decode_code
from duopass.wallet.device import load_key
from tests.server.harness import running_server
from tests.server.partners import make_client
from tests.server.test_partner_orders import _bearer, _fan, _order, _partner_event
from tests.test_wallet_reissue import _cli, _code, _next, _turn_on_totp


@pytest.fixture
def server(tmp_path):
    with running_server(f"sqlite:///{tmp_path / 'duopass.db'}", tmp_path / "data") as running:
        yield running


def test_a_partners_request_is_listed_stepped_up_and_confirmed_or_declined(server, tmp_path):
    http, admin = server.http, server.admin()
    mine = _bearer(http, make_client(admin, ["tickets:issue", "tickets:reissue"]))
    type_id = _partner_event(http, admin, mine)
    fan = _fan(http, admin)  # the old phone, through the API
    first, second = _order(http, mine, "order-0001", type_id, 2).json()["tickets"]
    assert fan.sync().status_code == 200
    phone = tmp_path / "fan-new"
    enrolled = _cli(phone, "enrol", "--server", server.url, "--login", "fan")
    assert enrolled.exit_code == 0, enrolled.stderr
    assert "no reissue request is waiting" in _cli(phone, "reissues").stderr
    asked = [
        http.post(f"/v1/partner/tickets/{sub}/reissue", json={}, headers=mine).json()
        for sub in (first, second)
    ]
    rq_first, rq_second = (answer["request_id"] for answer in asked)

    listed = _cli(phone, "reissues")
    assert listed.exit_code == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert sorted(line.split()[0] for line in lines) == sorted([rq_first, rq_second])
    mine_line = next(line for line in lines if line.startswith(rq_first))
    assert f"ticket {first} (Gig), asked by City Tickets at" in mine_line
    assert "needs a step-up (totp, email_otp, passkey), then your confirmation" in mine_line
    as_json = json.loads(_cli(phone, "reissues", "--json").stdout)
    assert {item["partner"] for item in as_json} == {"City Tickets"}

    declined = _cli(phone, "reissues", "--decline", rq_second)
    assert declined.exit_code == 0, declined.stderr
    assert f"request {rq_second} declined" in declined.stdout
    again = _cli(phone, "reissues", "--decline", rq_second)
    assert again.exit_code != 0 and "declined" not in again.stdout
    assert [
        item["request_id"] for item in json.loads(_cli(phone, "reissues", "--json").stdout)
    ] == [rq_first]

    secret = _turn_on_totp(server, phone)
    moved = _cli(
        phone, "reissue", "--request", rq_first, "--factor", "totp", "--code", _next(secret)
    )
    assert moved.exit_code == 0, moved.stderr
    assert "the policy says step_up (rule step_up_partner" in moved.stderr
    assert f"ticket {first} moved here (generation 1)" in moved.stderr
    claims = decode_code(_code(phone, first)).credential.claims
    assert claims.gen == 1 and claims.device_key == load_key(phone / "device.jwk").public
    assert http.get(f"/v1/partner/reissues/{rq_first}", headers=mine).json()["state"] == "done"
    assert http.get(f"/v1/partner/reissues/{rq_second}", headers=mine).json()["state"] == "denied"
    assert json.loads(_cli(phone, "reissues", "--json").stdout) == []
