"""Cut the network between terminal and server: every scan still gets a verdict, marked offline;
after reconnecting, the journals reconcile exactly."""

from __future__ import annotations

import pytest

from duopass.demo.netcut import Mode
from duopass.terminal.client import Unreachable
from duopass.terminal.enrol import enrol, load_key
from tests.server.harness import ready_wallet
from tests.terminal.conftest import (
    TerminalProcess,
    cli,
    enrol_till,
    local,
    server_acked,
    till_code,
    wait_for,
)


def test_scans_go_offline_when_the_proxy_stops_answering_and_reconcile_after(
    server, proxy, tmp_path
):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "ana", balance=100_000)
    code, merchant = till_code(admin)
    data = tmp_path / "till"
    assert "trust bundle seq" in enrol_till(proxy, code, data).stdout
    till = TerminalProcess(data, "--amount", "500")

    first = till.scan(wallet.code())
    assert (first["reason"], first["mode"], first["seq"]) == ("OK", "online", 1)

    proxy.set(Mode.SILENT)
    replayed = wallet.code()
    offline = [
        till.scan(replayed, amount="12.50"),
        till.scan(wallet.code()),
        till.scan(wallet.code()),
    ]
    assert [v["reason"] for v in offline] == ["OK", "OK", "OK"]
    assert {v["mode"] for v in offline} == {"offline"}
    assert offline[0]["tried"] and offline[0]["amount"] == 1250
    again = till.scan(replayed)
    assert (again["reason"], again["mode"]) == ("REPLAY", "offline")
    assert [v["seq"] for v in [*offline, again]] == [2, 3, 4, 5]

    proxy.set(Mode.FORWARD)
    wait_for(lambda: server_acked(server, "till-1") == 5, "the journal upload")
    wait_for(lambda: not local(data, "SELECT seq FROM journal"), "entries deleted after the ack")
    after = till.scan(wallet.code())
    assert (after["reason"], after["mode"], after["seq"]) == ("OK", "online", 6)
    assert till.finish() == 0, till.stderr()

    assert server_acked(server, "till-1") == 6
    paid = 500 + 1250 + 500 + 500 + 500
    assert admin.account(wallet.account_id)["balance"] == 100_000 - paid
    assert admin.account(merchant)["balance"] == paid
    assert admin.books() == 0
    status = cli("status", "--data-dir", str(data), "--json")
    assert '"acked_seq": 6' in status.stdout and '"entries_held": 0' in status.stdout


def test_a_refused_connection_sends_scans_offline_at_once(server, proxy, tmp_path):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "ben", balance=100_000)
    code, merchant = till_code(admin)
    data = tmp_path / "till"
    enrol_till(proxy, code, data)
    proxy.set(Mode.REFUSE)
    till = TerminalProcess(data, "--amount", "700")
    verdicts = [till.scan(wallet.code()) for _ in range(3)]
    assert [(v["reason"], v["mode"]) for v in verdicts] == [("OK", "offline")] * 3
    assert verdicts[0]["tried"] and not verdicts[-1]["tried"]  # offline after the first refusal
    assert till.finish() == 0
    assert server_acked(server, "till-1") == 0  # nothing reached the server yet
    proxy.set(Mode.FORWARD)
    uploaded = cli("upload", "--data-dir", str(data))
    assert uploaded.returncode == 0, uploaded.stderr
    assert server_acked(server, "till-1") == 3
    assert admin.account(wallet.account_id)["balance"] == 100_000 - 2_100
    assert admin.account(merchant)["balance"] == 2_100
    assert admin.books() == 0


def test_an_enrolment_whose_answer_was_lost_is_retried_with_the_same_key(server, proxy, tmp_path):
    """The server bound the key and spent the code, but its answer never came back: the next
    `enrol` of the same terminal id sends the same key and is answered as the first was."""
    code, _merchant = till_code(server.admin(), "till-lost")
    data = tmp_path / "till"
    proxy.set(Mode.FORWARD, hold_prefix=b"POST /v1/terminal/enrol")
    with pytest.raises(Unreachable):
        enrol(data, server=proxy.url, terminal_id="till-lost", code=code, timeout_s=2)
    first_key = load_key(data).public
    proxy.set(Mode.FORWARD)
    config = enrol(data, server=proxy.url, terminal_id="till-lost", code=code)
    assert config.terminal_id == "till-lost"
    assert load_key(data).public == first_key
    assert not (data / "enrolling").exists()
