"""An older ticket generation at an offline gate after its reissue (issue 13, §4.5, §6): the
journal entry is evidence (`revoked_accepted`, offline use suspended) when the bundle the gate
held had already revoked it, and an informational `old_generation` alert, with no suspension,
when the gate could not know yet."""

from __future__ import annotations

import time

from duopass.protocol.bundle import open_bundle
from duopass.protocol.encoding import b64u_encode
from tests.server.harness import SQLITE_ONLY, TerminalClient, Wallet
from tests.server.ticketing import TicketWallet, entry_gate, event_on_sale, ticket_wallet


def _reissued(server, admin) -> tuple[TicketWallet, str, str, TerminalClient]:
    """A ticket reissued to a new phone at an open event (asked from the venue's network, so
    allowed); returns the old phone, the sub, an old-generation code signed before, the gate."""
    sale = event_on_sale(admin, doors=int(time.time()) - 60, entries=2, networks=("127.0.0.0/8",))
    fan = ticket_wallet(server.http, admin, "fan", balance=10_000)
    sub = fan.buy(sale).json()["tickets"][0]
    fan.sync()
    gate = entry_gate(server.http, admin, "gate-1", event=sale.event, venue="hall-a")
    phone = Wallet(server.http, "fan")
    phone.sign_in()
    phone.enrol()
    asked = server.http.post(
        f"/v1/me/tickets/{sub}/reissue",
        headers=phone.auth,
        json={"device_key": b64u_encode(phone.key.public)},
    ).json()
    assert asked["outcome"] == "allow", asked
    done = server.http.post(f"/v1/me/reissues/{asked['request_id']}/confirm", headers=phone.auth)
    assert done.status_code == 200, done.text
    return fan, sub, asked["request_id"], gate


def _alerts(admin) -> list[str]:
    items = admin.http.get("/v1/admin/alerts", headers=admin.auth).json()["items"]
    return [item["kind"] for item in items]


@SQLITE_ONLY
def test_a_gate_that_could_not_know_raises_an_informational_alert(server):
    admin = server.admin()
    fan, sub, _, gate = _reissued(server, admin)
    # the gate's bundle predates the reissue (version 0: it never fetched one)
    entry = gate.entry(fan.code(sub), seq=1, mode="entry", amount=None, venue="hall-a")
    uploaded = gate.journal([entry])
    assert uploaded.status_code == 200 and uploaded.json()["rejected"] == [], uploaded.text
    assert _alerts(admin) == ["old_generation"]
    holder = admin.http.get(f"/v1/admin/holders/{fan.wallet.handle}", headers=admin.auth).json()
    assert holder["offline_suspended"] is False


@SQLITE_ONLY
def test_a_gate_whose_bundle_revoked_it_is_evidence(server):
    admin = server.admin()
    fan, sub, _, gate = _reissued(server, admin)
    bundle = open_bundle(gate.bundle(), gate.root_key)  # after the reissue: it revokes the old
    entry = gate.entry(
        fan.code(sub), seq=1, mode="entry", amount=None, venue="hall-a", bundle_seq=bundle.seq
    )
    uploaded = gate.journal([entry])
    assert uploaded.status_code == 200, uploaded.text
    assert "revoked_accepted" in _alerts(admin) and "old_generation" not in _alerts(admin)
    holder = admin.http.get(f"/v1/admin/holders/{fan.wallet.handle}", headers=admin.auth).json()
    assert holder["offline_suspended"] is True
