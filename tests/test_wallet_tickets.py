"""Tickets in the wallet, through the real command against a real server (issue 13): bought
and listed, synced beside the purse, shown as kind-3 codes whose L2 the device key signed with
a new counter each display (PROTOCOL.md §2); used-up codes refused until a sync brings a new
credential (also when the purse's refresh is refused that day); a ticket too early says from
when; a purchase retried after a lost answer is charged once; a state file from before tickets
opens and syncs."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from duopass.cli.app import app
from duopass.cli.people import local_time
from duopass.protocol import decode_code
from duopass.protocol.claims import Kind
from duopass.protocol.keys import verify_signature
from duopass.qr import read_image_file
from duopass.wallet import EXIT_STATUS, Failure, Wallet, WalletError
from duopass.wallet.device import load_key
from tests.server.harness import Running, running_server
from tests.server.ticketing import HOUR, event_on_sale

DAY = 24 * HOUR


@pytest.fixture
def server(tmp_path):
    with running_server(f"sqlite:///{tmp_path / 'duopass.db'}", tmp_path / "data") as running:
        yield running


def _cli(data: Path, *args: object) -> Result:
    return CliRunner().invoke(
        app, ["wallet", *(str(arg) for arg in args)], env={"DUOPASS_WALLET_DIR": str(data)}
    )


def _enrolled(server: Running, data: Path, login: str, *, balance: int = 20_000) -> None:
    server.admin().holder(login, balance=balance)
    with Wallet(data) as wallet:
        wallet.enrol(server=server.url, login=login, password=f"pw-{login}-secret")


def _as_holder(server: Running, data: Path, path: str) -> Any:
    """What the server says at `path` to the wallet's session."""
    with Wallet(data) as wallet:
        account = wallet.state.read().account
    assert account is not None
    answer = server.http.get(path, headers={"Authorization": f"Bearer {account.token}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _bought(data: Path, type_id: int) -> str:
    bought = _cli(data, "buy", "--type", type_id)
    assert bought.exit_code == 0, bought.stderr
    assert "order " in bought.stderr and "1 ticket" in bought.stderr
    return bought.stdout.strip()


def _shown(data: Path, *args: object) -> str:
    shown = _cli(data, "code", "--no-qr", *args)
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout.count("\n") == 1 and shown.stdout.startswith("DP1:")
    return shown.stdout.strip()


def test_a_bought_ticket_syncs_lists_ready_and_shows_codes_signed_by_the_device(server, tmp_path):
    data = tmp_path / "wallet"
    sale = event_on_sale(server.admin(), "concert", venues=("hall-a",))
    _enrolled(server, data, "tia")
    listed = _cli(data, "events")
    assert listed.exit_code == 0, listed.stderr
    assert f"--type {sale.type_id}  Standing, 20.00 CNY, 1 entry" in listed.stdout
    sub = _bought(data, sale.type_id)
    synced = _cli(data, "sync")
    assert synced.exit_code == 0, synced.stderr
    assert "credential valid until" in synced.stderr
    assert "tickets: 1 ticket, 1 ready" in synced.stderr
    table = _cli(data, "tickets")
    assert table.exit_code == 0, table.stderr
    assert f"{sub}  Concert, Standing" in table.stdout
    assert f"doors {local_time(sale.doors)}, ends {local_time(sale.ends)}" in table.stdout
    assert "valid, entries 0 of 1: ready, 16 codes left" in table.stdout
    [status] = json.loads(_cli(data, "tickets", "--json").stdout)
    assert (status["ready"], status["codes_left"], status["uses"]) == (True, 16, 16)

    device = load_key(data / "device.jwk").public
    png = tmp_path / "ticket.png"
    texts = [_shown(data, "--ticket", sub[:8]), _shown(data, "--ticket", sub, "--png", png)]
    texts.append(_shown(data, "--ticket", sub))
    assert read_image_file(png) == [texts[1]]
    counters = []
    for text in texts:
        code = decode_code(text)
        claims = code.credential.claims
        assert (claims.kind, claims.sub, claims.ev) == (Kind.TICKET, sub, sale.event)
        assert claims.device_key == device and claims.nbf == sale.doors
        assert code.dynamic is not None
        assert verify_signature(device, code.dynamic.signed, code.dynamic.signature)
        counters.append(code.dynamic.ctr)
    assert counters == [0, 1, 2]
    purse = decode_code(_shown(data))  # the purse keeps its own counters
    assert purse.credential.claims.kind is Kind.PURSE and purse.dynamic is not None
    assert purse.dynamic.ctr == 0
    [status] = json.loads(_cli(data, "tickets", "--json").stdout)
    assert status["codes_left"] == 13


def test_used_up_ticket_codes_are_refused_until_a_sync_brings_a_new_credential(tmp_path):
    data = tmp_path / "wallet"
    with running_server(
        f"sqlite:///{tmp_path / 'duopass.db'}", tmp_path / "data", refresh_max_per_day=1
    ) as server:
        sale = event_on_sale(server.admin(), "play", venues=("stage",))
        _enrolled(server, data, "uma")
        sub = _bought(data, sale.type_id)
        assert _cli(data, "sync").exit_code == 0
        with Wallet(data) as wallet:
            wallet.sync()  # the day's one purse refresh: the next is refused
            first = wallet.tickets.find(sub)
            assert first.credential is not None
            uses = first.credential.claims.uses or 0
            assert [wallet.show_ticket(sub).ctr for _ in range(uses)] == list(range(uses))
            with pytest.raises(WalletError) as caught:
                wallet.show_ticket(sub)
            assert caught.value.failure is Failure.USED_UP
        refused = _cli(data, "code", "--no-qr", "--ticket", sub)
        assert refused.exit_code == EXIT_STATUS[Failure.USED_UP] and refused.stdout == ""
        assert "used up" in refused.stderr and "duopass wallet sync" in refused.stderr
        assert "codes used up" in _cli(data, "tickets").stdout

        synced = _cli(data, "sync")  # the purse is refused, the tickets still sync
        assert synced.exit_code == EXIT_STATUS[Failure.REFUSED]
        assert "purse: " in synced.stderr and "refresh" in synced.stderr
        assert "tickets: 1 ticket, 1 ready" in synced.stderr
        code = decode_code(_shown(data, "--ticket", sub))
        assert code.dynamic is not None and code.dynamic.ctr == 0
        assert code.credential.claims.cti != first.credential.claims.cti
        online = _as_holder(server, data, f"/v1/me/tickets/{sub}")
        assert online["cti"] == code.credential.claims.cti.hex()


class _LoseOrderAnswers(httpx.HTTPTransport):
    """An order reaches the server; its answer never comes back."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.url.path != "/v1/me/orders":
            return response
        response.close()
        raise httpx.ReadError("connection reset", request=request)


def test_a_state_file_from_before_tickets_opens_and_a_ticket_too_early_says_from_when(
    server, tmp_path
):
    data = tmp_path / "wallet"
    now = int(time.time())
    sale = event_on_sale(server.admin(), "gala", doors=now + 40 * DAY, venues=("ballroom",))
    _enrolled(server, data, "vera")
    with Wallet(data) as wallet:
        wallet.sync()
    with sqlite3.connect(data / "wallet.db") as db:  # as the version before tickets left it
        db.execute("DROP TABLE tickets")
        db.execute("DROP TABLE requests")
        db.execute("PRAGMA user_version=2")
    db.close()
    assert _cli(data, "tickets").stdout.startswith("no tickets")
    assert _shown(data).startswith("DP1:")  # the purse credential is kept

    with Wallet(data, transport=_LoseOrderAnswers()) as wallet:
        with pytest.raises(WalletError) as caught:
            wallet.buy(sale.type_id)
        assert caught.value.failure is Failure.OFFLINE
    sub = _bought(data, sale.type_id)  # the retry: the same request id, the first order
    orders = _as_holder(server, data, "/v1/me/orders")
    assert [order["tickets"] for order in orders["items"]] == [[sub]]

    synced = _cli(data, "sync")
    assert synced.exit_code == 0, synced.stderr
    assert "tickets: 1 ticket, 0 ready" in synced.stderr
    from_when = local_time(sale.ends - 30 * DAY)
    assert f"too early: codes from {from_when}" in _cli(data, "tickets").stdout
    refused = _cli(data, "code", "--ticket", sub)
    assert refused.exit_code == EXIT_STATUS[Failure.NO_CREDENTIAL]
    assert "too early" in refused.stderr and from_when in refused.stderr
