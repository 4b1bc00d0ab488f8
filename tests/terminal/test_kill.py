"""Kill a terminal in the middle of an upload, restart it: no payment lost or applied twice;
money conserved. And a scan whose answer was lost keeps its seq, so it is booked once."""

from __future__ import annotations

from sqlalchemy import func, select

from duopass.demo.netcut import Mode
from duopass.server.store.tables import JournalBatch
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


def _batches(server) -> int:
    return int(
        server.ctx.run(lambda u: u.session.scalar(select(func.count()).select_from(JournalBatch)))
    )


def test_killed_mid_upload_the_terminal_resends_the_same_batch_and_nothing_is_booked_twice(
    server, proxy, tmp_path
):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "cleo", balance=100_000)
    code, merchant = till_code(admin)
    data = tmp_path / "till"
    enrol_till(proxy, code, data)
    till = TerminalProcess(data, "--upload-s", "3600")  # uploads when the link comes back

    # the server applies the payment online, but its answer never comes back: the till decides
    # offline under the same seq
    proxy.set(Mode.HOLD)
    lost = till.scan(wallet.code(), amount="250")
    assert (lost["reason"], lost["mode"], lost["tried"], lost["seq"]) == ("OK", "offline", True, 1)
    assert admin.account(wallet.account_id)["balance"] == 100_000 - 250  # booked online

    proxy.set(Mode.SILENT)
    for amount in ("300", "400", "500"):
        assert till.scan(wallet.code(), amount=amount)["mode"] == "offline"

    # the network comes back, but the journal's answer is held: the server settles the batch,
    # and the terminal is killed before it learns so
    proxy.set(Mode.FORWARD, hold_prefix=b"POST /v1/terminal/journal")
    wait_for(lambda: server_acked(server, "till-1") == 4, "the server to settle the batch")
    till.kill()
    assert [row[0] for row in local(data, "SELECT seq FROM journal ORDER BY seq")] == [1, 2, 3, 4]
    assert local(data, "SELECT first, last FROM batches") == [(1, 4)]
    paid = 250 + 300 + 400 + 500
    assert admin.account(wallet.account_id)["balance"] == 100_000 - paid

    # restarted, it sends the stored batch again, byte for byte: duplicates, acknowledged
    proxy.set(Mode.FORWARD)
    uploaded = cli("upload", "--data-dir", str(data))
    assert uploaded.returncode == 0, uploaded.stderr
    assert "acked_seq 4, unsent 0" in uploaded.stdout
    assert local(data, "SELECT seq FROM journal") == []
    assert local(data, "SELECT first FROM batches") == []
    assert _batches(server) == 1  # the same bytes: no second batch on the server
    assert admin.account(wallet.account_id)["balance"] == 100_000 - paid
    assert admin.account(merchant)["balance"] == paid
    assert admin.books() == 0


def test_killed_mid_scan_the_seq_is_journalled_interrupted_and_the_charge_voided(
    server, proxy, tmp_path
):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "dora", balance=100_000)
    code, merchant = till_code(admin)
    data = tmp_path / "till"
    enrol_till(proxy, code, data)
    # the answer is held for far longer than the online timeout
    till = TerminalProcess(data, "--timeout-ms", "60000", "--amount", "900")
    proxy.set(Mode.HOLD)
    till.send(wallet.code())
    wait_for(lambda: admin.account(wallet.account_id)["balance"] == 100_000 - 900, "the charge")
    till.kill()  # before any verdict was shown
    assert local(data, "SELECT seq, data IS NULL FROM journal") == [(1, 1)]

    proxy.set(Mode.FORWARD)
    uploaded = cli("upload", "--data-dir", str(data))
    assert uploaded.returncode == 0, uploaded.stderr
    assert "seq 1 was cut short" in uploaded.stderr
    assert server_acked(server, "till-1") == 1
    assert admin.account(wallet.account_id)["balance"] == 100_000  # the charge was voided
    assert admin.account(merchant)["balance"] == 0
    assert admin.books() == 0
