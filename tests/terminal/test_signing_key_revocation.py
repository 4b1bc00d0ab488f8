"""A compromised daily signing key revoked (issue 17, docs/server.md "A signing key revoked"):
minted with no more by any process, its codes refused online at once and offline once the
terminal takes the next bundle, left out of whole bundles and removed by deltas; wallets get
credentials under the replacement at their next sync; a ledger leaf records it."""

from __future__ import annotations

import base64
from typing import Any

import cbor2
import httpx
from typer.testing import CliRunner

from duopass.cli.app import app
from duopass.demo.netcut import Mode
from duopass.protocol.bundle import open_bundle
from duopass.protocol.code import decode_code
from duopass.protocol.encoding import b64u_encode
from duopass.protocol.reasons import Reason
from duopass.terminal import AgentSettings, TerminalAgent, enrol
from tests.server.harness import Running, Wallet, enrolled_till, ready_wallet, running_server
from tests.server.ticketing import event_on_sale, ticket_wallet
from tests.terminal.conftest import till_code

OFFLINE = AgentSettings(timeout_s=2.0)


def _kid(wallet: Wallet) -> bytes:
    return decode_code(wallet.code()).credential.kid


def _leaves(http: httpx.Client, kind: str) -> list[dict[str, Any]]:
    entries = http.get("/v1/ledger/entries", params={"start": 0}).json()["entries"]
    found = [cbor2.loads(base64.b64decode(text)) for text in entries]
    return [leaf[4] for leaf in found if leaf[1] == kind]


def test_a_revoked_keys_codes_are_refused_online_and_offline_after_the_next_bundle(
    server, proxy, tmp_path
):
    admin = server.admin()
    data = tmp_path / "till"
    code, _ = till_code(admin)
    enrol(data, server=proxy.url, terminal_id="till-1", code=code)
    online, _ = enrolled_till(server.http, admin, "till-2")
    wallet = ready_wallet(server.http, admin, "rui", balance=1_000_000)
    kid = _kid(wallet)
    with TerminalAgent(data, OFFLINE) as terminal:
        held = terminal.bundles.sync()
        assert held.key("demo-univ", kid) is not None
    revoke = f"/v1/admin/keys/{b64u_encode(kid)}/revoke"
    assert admin.post(revoke, {}).json() == {"revoked": True}
    assert admin.post(revoke, {}).json() == {"revoked": False}
    assert admin.post("/v1/admin/keys/AAAAAAAAAAA/revoke", {}).status_code == 404
    stray = admin.post("/v1/admin/keys/AAAAAAAAAAB/revoke", {})  # bits past the 8 bytes
    assert (stray.status_code, stray.json()["code"]) == (422, "invalid_request")
    assert server.http.post(revoke).status_code in {401, 403}  # admins only
    # online: refused at once
    assert online.scan(wallet.code(), amount=100)["reason"] == Reason.UNKNOWN_KEY
    # offline: refused once the terminal took the next bundle (a delta removes the key)
    with TerminalAgent(data, OFFLINE) as terminal:
        trust = terminal.bundles.sync()
        assert trust.key("demo-univ", kid) is None
        proxy.set(Mode.REFUSE)
        refused = terminal.scan_path.scan(wallet.code(), amount=100)
        assert (refused.reason, refused.online) == (Reason.UNKNOWN_KEY, False)
        proxy.set(Mode.FORWARD)
    # the whole bundle does not list it
    whole = open_bundle(online.bundle(), online.root_key)
    assert kid not in {key.kid for key in whole.keys_added} and whole.keys_added
    # the wallet's next sync gives a credential under the replacement, accepted both ways
    assert wallet.sync(mark=wallet.counter - 1).status_code == 200
    assert _kid(wallet) != kid
    assert online.scan(wallet.code(), amount=100)["reason"] == Reason.OK
    with TerminalAgent(data, OFFLINE) as terminal:
        terminal.bundles.sync()
        proxy.set(Mode.REFUSE)
        assert terminal.scan_path.scan(wallet.code(), amount=100).reason is Reason.OK
    (leaf,) = _leaves(server.http, "key_revoke")
    assert leaf["kid"] == kid


def test_no_server_process_mints_with_a_key_revoked_elsewhere(server: Running):
    """A second process on the same database and data dir has minted with today's key (it is
    unsealed in its keyring); the key is revoked by the `duopass keys revoke-signing` command
    beside both: neither mints with it again, both refuse its codes online."""
    data_dir, db = server.ctx.settings.data_dir, server.ctx.settings.db_url
    with running_server(db, data_dir) as second:
        wallet = ready_wallet(second.http, second.admin(), "sol", balance=10_000)
        kid = _kid(wallet)
        where = ["--by", "admin", "--data-dir", str(data_dir), "--db", db]
        done = CliRunner().invoke(app, ["keys", "revoke-signing", kid.hex(), *where])
        assert done.exit_code == 0, done.output
        assert f"signing key {kid.hex()} revoked" in done.output
        for running, name in ((server, "till-a"), (second, "till-b")):
            till, _ = enrolled_till(running.http, running.admin(), name)
            assert till.scan(wallet.code(), amount=100)["reason"] == Reason.UNKNOWN_KEY
        assert wallet.sync().status_code == 200  # at the second process, which had it unsealed
        fresh = ready_wallet(second.http, second.admin(), "tao", balance=10_000)
        assert _kid(fresh) != kid and _kid(wallet) != kid
        refused = CliRunner().invoke(app, ["keys", "revoke-signing", "nope", *where])
        assert refused.exit_code == 2 and "16 hex digits" in refused.output


def test_a_tickets_credential_under_a_revoked_key_is_minted_again_at_the_next_sync(server):
    """A ticket's live credential is otherwise handed out as it is at every sync."""
    admin = server.admin()
    sale = event_on_sale(admin)
    fan = ticket_wallet(server.http, admin, "uma", balance=10_000)
    assert fan.buy(sale).status_code == 201
    assert fan.sync().status_code == 200
    ((sub, held),) = fan.tickets.items()
    kid = decode_code(fan.code(sub)).credential.kid
    assert fan.sync().status_code == 200 and fan.tickets[sub] == held  # the same, unrevoked
    revoke = f"/v1/admin/keys/{b64u_encode(kid)}/revoke"
    assert admin.post(revoke, {}).json() == {"revoked": True}
    assert fan.sync().status_code == 200
    assert decode_code(fan.code(sub)).credential.kid != kid
    assert fan.tickets[sub]["credential"] != held["credential"]
