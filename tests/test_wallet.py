"""The wallet against a real server on 127.0.0.1: enrol, sync, codes made with the network off
and accepted by an offline terminal, counters unique across processes, refusals, refresh at the
mark with a lost answer, and restored-state detection (PROTOCOL.md §2, §4.2)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from duopass.protocol import MemoryStore, Mode, Reason, TerminalConfig, Verifier, decode_code
from duopass.protocol.bundle import apply_bundle, open_bundle
from duopass.protocol.trust import TrustStore
from duopass.qr import read_image_file
from duopass.server.services import sweep
from duopass.server.store.tables import Credential
from duopass.wallet import EXIT_STATUS, Failure, SystemClock, Wallet, WalletError
from duopass.wallet.client import Client
from duopass.wallet.state import Held
from tests.server.harness import Running, TerminalClient, running_server

TXMAX = 3_000  # the server's default offline_txmax: a balance of n * TXMAX gives n uses


@pytest.fixture
def server(tmp_path):
    with running_server(f"sqlite:///{tmp_path / 'duopass.db'}", tmp_path / "data") as running:
        yield running


def _holder(server: Running, login: str, uses: int) -> None:
    server.admin().holder(login, balance=uses * TXMAX)


def _wallet_cli(data_dir: Path, *args: str, login: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DUOPASS_WALLET_DIR": str(data_dir)}
    if login:
        env["DUOPASS_WALLET_PASSWORD"] = f"pw-{login}-secret"
    return subprocess.run(
        [sys.executable, "-m", "duopass", "wallet", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def _ready(server: Running, data_dir: Path, login: str, *, uses: int, **options) -> Wallet:
    """An enrolled, synced wallet (the library, as the CLI drives it)."""
    _holder(server, login, uses)
    wallet = Wallet(data_dir, **options)
    wallet.enrol(server=server.url, login=login, password=f"pw-{login}-secret")
    wallet.sync()
    return wallet


def _trust(server: Running) -> TrustStore:
    """What an offline till holds: the bundle it fetched while online."""
    admin = server.admin()
    merchant = admin.merchant("canteen")
    code = admin.terminal(
        "till-1", mode="pay", venue="canteen", merchant_account_id=merchant, currency="CNY"
    )
    till = TerminalClient(server.http, "till-1")
    assert till.enrol(code).status_code == 200
    return apply_bundle(None, open_bundle(till.bundle(), till.root_key))


def _till(trust: TrustStore) -> Verifier:
    return Verifier(trust, TerminalConfig(mode=Mode.PAY, currency="CNY"), MemoryStore())


def _ctr(text: str) -> int:
    dynamic = decode_code(text).dynamic
    assert dynamic is not None
    return dynamic.ctr


def _refused(call, failure: Failure) -> WalletError:
    with pytest.raises(WalletError) as caught:
        call()
    assert caught.value.failure is failure, caught.value.message
    return caught.value


def test_codes_made_with_the_network_off_are_accepted_offline_until_uses(tmp_path):
    data = tmp_path / "wallet"
    with running_server(f"sqlite:///{tmp_path / 'd.db'}", tmp_path / "data") as server:
        _holder(server, "alice", uses=3)
        enrolled = _wallet_cli(data, "enrol", "--server", server.url, "--login", "alice", login="a")
        assert enrolled.returncode == EXIT_STATUS[Failure.REFUSED]  # a wrong password
        enrolled = _wallet_cli(
            data, "enrol", "--server", server.url, "--login", "alice", login="alice"
        )
        assert enrolled.returncode == 0, enrolled.stderr
        assert _wallet_cli(data, "code").returncode == EXIT_STATUS[Failure.NO_CREDENTIAL]
        synced = _wallet_cli(data, "sync")
        assert synced.returncode == 0, synced.stderr
        trust = _trust(server)
        now = server.ctx.now()
    # The server is gone: the wallet makes codes, the till verifies them on its own.
    till = _till(trust)
    png = tmp_path / "code.png"
    texts = []
    for extra in ([], ["--png", str(png)], ["--no-qr"]):
        shown = _wallet_cli(data, "code", *extra)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.count("\n") == 1 and shown.stdout.startswith("DP1:")
        texts.append(shown.stdout.strip())
    assert read_image_file(png) == [texts[1]]
    assert [_ctr(text) for text in texts] == [0, 1, 2]
    for text in texts:
        assert till.scan(text, now=now, amount=1_250).reason is Reason.OK
    past_uses = _wallet_cli(data, "code")
    assert past_uses.returncode == EXIT_STATUS[Failure.USED_UP]
    assert past_uses.stdout == "" and "offline codes" in past_uses.stderr
    assert _wallet_cli(data, "sync").returncode == EXIT_STATUS[Failure.OFFLINE]


_SHOW_MANY = """
import sys, time
from pathlib import Path
from duopass.wallet import Wallet
go = Path(sys.argv[2])
with Wallet(Path(sys.argv[1])) as wallet:
    while not go.exists():
        time.sleep(0.001)
    for _ in range(int(sys.argv[3])):
        print(wallet.show().ctr, flush=True)
        time.sleep(0.002)  # room for the other process to take the lock
"""


def test_concurrent_processes_never_share_a_counter(tmp_path):
    data, go = tmp_path / "wallet", tmp_path / "go"
    with running_server(
        f"sqlite:///{tmp_path / 'd.db'}", tmp_path / "data", offline_uses=208
    ) as server:
        _ready(server, data, "bob", uses=208).state.close()
    env = {**os.environ, "DUOPASS_WALLET_DIR": str(data)}
    loops = [
        subprocess.Popen(
            [sys.executable, "-c", _SHOW_MANY, str(data), str(go), "100"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    clis = [
        subprocess.Popen(
            [sys.executable, "-m", "duopass", "wallet", "code", "--no-qr"],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    go.touch()
    counters = []
    for process in loops:
        counters += [int(line) for line in process.communicate(timeout=120)[0].split()]
    for process in clis:
        counters.append(_ctr(process.communicate(timeout=120)[0].strip()))
    assert all(process.returncode == 0 for process in loops + clis)
    assert sorted(counters) == list(range(208))
    assert _wallet_cli(data, "code").returncode == EXIT_STATUS[Failure.USED_UP]


def test_watch_re_signs_one_counter_per_display(server, tmp_path):
    data = tmp_path / "wallet"
    _ready(server, data, "carol", uses=3).state.close()
    watched = _wallet_cli(data, "code", "--watch", "--interval", "1", "--count", "2", "--no-qr")
    assert watched.returncode == 0, watched.stderr
    lines = watched.stdout.splitlines()
    assert len(lines) == 2 and {_ctr(line) for line in lines} == {0}
    assert _ctr(_wallet_cli(data, "code").stdout.strip()) == 1  # the next display, next counter


class _LoseAnswers(httpx.HTTPTransport):
    """The request reaches the server; its answer never comes back."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        super().handle_request(request).close()
        raise httpx.ReadError("connection reset", request=request)


def _server_credential(server: Running, **where):
    def read(unit):
        query = select(Credential)
        for name, value in where.items():
            query = query.where(getattr(Credential, name) == value)
        return unit.session.scalars(query).one()

    return server.ctx.run(read)


def test_refresh_stores_its_mark_first_and_a_retry_gets_the_same_answer(server, tmp_path):
    wallet = _ready(server, tmp_path / "wallet", "dave", uses=4)
    old = wallet.state.read().held
    assert old is not None
    assert [wallet.show().ctr for _ in range(2)] == [0, 1]
    lossy = Wallet(tmp_path / "wallet", transport=_LoseAnswers())
    _refused(lossy.sync, Failure.OFFLINE)
    pending = wallet.state.read().pending
    assert pending is not None and pending.mark == 1 + 2  # highest displayed + reserve
    # The server did refresh; the wallet does not know it and stays below the mark.
    assert _server_credential(server, cti=old.credential.claims.cti).mark == 3
    issued = _server_credential(server, request_id=pending.request_id)
    assert [wallet.show().ctr for _ in range(2)] == [2, 3]
    assert "mark" in _refused(wallet.show, Failure.USED_UP).message
    _refused(lossy.sync, Failure.OFFLINE)  # retried with the same id and mark
    assert wallet.state.read().pending == pending
    held = wallet.sync()
    assert held.credential.claims.cti == issued.cti and held.next_ctr == 0
    assert wallet.state.read().pending is None
    assert wallet.show().ctr == 0
    # Two credentials in all: the retries issued nothing more.
    count = server.ctx.run(lambda u: len(u.session.scalars(select(Credential)).all()))
    assert count == 2


class _Held(httpx.HTTPTransport):
    """Records each sync's request id; sends it only once `go` is set (`reached` says it waits)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []
        self.reached, self.go = threading.Event(), threading.Event()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/wallet/sync":
            self.sent.append(json.loads(request.content)["request_id"])
            self.reached.set()
            assert self.go.wait(60)
        return super().handle_request(request)


def test_two_instances_syncing_at_once_send_one_request_and_refresh_once(server, tmp_path):
    """Issue 10: a wallet must not refresh twice at once with two request ids (each refresh
    keeps its own holds until the sweep). A second instance on the same data dir finds the
    first one's request stored and sends that; the first one's late answer keeps the counters
    the second one has used since."""
    data = tmp_path / "wallet"
    old = _ready(server, data, "hana", uses=10).state.read().held
    assert old is not None
    assert [Wallet(data).show().ctr for _ in range(2)] == [0, 1]
    slow, fast = _Held(), _Held()
    fast.go.set()
    late: list[Held] = []

    def first() -> None:  # another instance, as another process would be
        with Wallet(data, transport=slow) as wallet:
            late.append(wallet.sync())

    syncing = threading.Thread(target=first)
    syncing.start()
    assert slow.reached.wait(60)  # the first has stored its request and is sending it
    held = Wallet(data, transport=fast).sync()
    assert fast.sent == slow.sent and Wallet(data).show().ctr == 0
    slow.go.set()
    syncing.join(60)
    assert late[0].credential.claims.cti == held.credential.claims.cti
    assert late[0].next_ctr == 1 and Wallet(data).state.read().pending is None
    credentials = server.ctx.run(lambda u: u.session.scalars(select(Credential)).all())
    assert len(credentials) == 2  # the first issue and one refresh
    assert _server_credential(server, cti=old.credential.claims.cti).mark == 1 + 2
    assert _server_credential(server, request_id=slow.sent[0]).cti == held.credential.claims.cti


def test_each_sync_refreshes_and_the_sweep_releases_what_refreshes_kept(tmp_path):
    """Issue 10, one sync after another: each is a refresh, and each superseded credential keeps
    its holds (counters up to the mark, and above it what the overdraft cannot release) until the
    sweep. After the day's limit the wallet keeps its request and mark (§4.2; the server changed
    nothing) and resends them until they go through. The sweep then releases every hold."""
    data = tmp_path / "wallet"
    with running_server(f"sqlite:///{tmp_path / 'd.db'}", tmp_path / "data") as server:
        server.admin().holder("ivan", balance=100_000, overdraft=10_000)
        wallet = Wallet(data)
        wallet.enrol(server=server.url, login="ivan", password="pw-ivan-secret")
        held = [wallet.sync().credential.claims.uses]
        held += [wallet.sync().credential.claims.uses for _ in range(4)]  # nothing shown
        assert held == [10, 10, 10, 9, 1]
        funds = wallet.status(online=True)["account"]
        assert (funds["held"], funds["free_funds"]) == (110_000, 0)
        assert wallet.show().ctr == 0
        assert "refresh_limit" in _refused(wallet.sync, Failure.REFUSED).message
        pending = wallet.state.read().pending
        assert pending is not None and pending.mark == 0  # the credential's one counter
        _refused(wallet.sync, Failure.REFUSED)
        assert wallet.state.read().pending == pending
        _refused(wallet.show, Failure.USED_UP)
        assert wallet.status(online=True)["account"] == funds
        server.ctx.clock = lambda: time.time() + 86_400  # tomorrow, for the server
        wallet.login(password="pw-ivan-secret")
        cti = wallet.sync().credential.claims.cti
        assert cti == _server_credential(server, request_id=pending.request_id).cti
        assert wallet.state.read().pending is None
        ctx = server.ctx
        later = ctx.now() + 86_400 + ctx.settings.late_window_s + 3_600
        ctx.run(lambda u: sweep.sweep(dataclasses.replace(u, now=later)))
        funds = wallet.status(online=True)["account"]
        assert (funds["held"], funds["free_funds"]) == (0, 110_000)


class _Later(SystemClock):
    """The system clock, `ahead` seconds on, as if the holder came back tomorrow."""

    def __init__(self, ahead: int) -> None:
        self.ahead = ahead

    def wall(self) -> float:
        return super().wall() + self.ahead

    def elapsed(self) -> float:
        return super().elapsed() + self.ahead


def test_an_expired_credential_makes_no_code(server, tmp_path):
    data = tmp_path / "wallet"
    _ready(server, data, "erin", uses=3).state.close()
    tomorrow = Wallet(data, clock=_Later(2 * 86_400))
    assert "expired" in _refused(tomorrow.show, Failure.EXPIRED).message
    assert tomorrow.status(online=False)["codes"] == "expired"
    assert Wallet(data).show().ctr == 0  # no counter was used by the refusal


def test_a_restored_copy_signs_nothing_until_a_sync(server, tmp_path):
    original = _ready(server, tmp_path / "wallet", "frank", uses=4)
    assert original.show().ctr == 0
    old = original.state.read().held
    assert old is not None
    original.state.close()
    shutil.copytree(tmp_path / "wallet", tmp_path / "restored")
    restored = Wallet(tmp_path / "restored")
    assert restored.status(online=False)["restored"] is True
    _refused(restored.show, Failure.RESTORED)
    copy = _wallet_cli(tmp_path / "restored", "code")
    assert copy.returncode == EXIT_STATUS[Failure.RESTORED] and "restored" in copy.stderr
    # Its own refresh is retried as any other (the original's in-flight one never is).
    _refused(Wallet(tmp_path / "restored", transport=_LoseAnswers()).sync, Failure.OFFLINE)
    pending = restored.state.read().pending
    assert pending is not None and pending.mark is None
    issued = _server_credential(server, request_id=pending.request_id)
    held = restored.sync()
    assert held.credential.claims.cti == issued.cti != old.credential.claims.cti
    # It sent no mark: the server releases nothing on the word of a copy.
    assert _server_credential(server, cti=old.credential.claims.cti).mark == 3
    assert restored.show().ctr == 0
    assert restored.status(online=False)["restored"] is False


def test_refusals_are_clear_and_distinct(server, tmp_path):
    assert len(set(EXIT_STATUS.values())) == len(Failure)
    empty = _wallet_cli(tmp_path / "empty", "code")
    assert empty.returncode == EXIT_STATUS[Failure.NOT_ENROLLED] and "enrol" in empty.stderr
    wallet = _ready(server, tmp_path / "wallet", "gina", uses=2)
    status = wallet.status(online=True)
    assert status["account"]["free_funds"] == 0 and status["credential"]["left"] == 2
    _refused(lambda: wallet.enrol(server=server.url, login="gina", password="x"), Failure.REFUSED)
    (tmp_path / "wallet" / "device.jwk").chmod(0o644)
    _refused(wallet.show, Failure.STATE)
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "wallet.db").write_bytes(b"not a database" * 100)
    _refused(lambda: Wallet(garbage), Failure.STATE)
    nowhere = _wallet_cli(tmp_path / "wallet", "code", "--png", str(tmp_path / "no" / "c.png"))
    assert nowhere.returncode == 2 and nowhere.stdout == ""
    _refused(
        lambda: Wallet(tmp_path / "other").enrol(server="ftp://x", login="a", password="b"),
        Failure.REFUSED,
    )


@pytest.mark.parametrize(
    "answer",
    [b'{"token": ' + b"1" * 5000 + b"}", b"[" * 100_000, b'{"code": 1' + b"0" * 4400 + b"}"],
)
def test_an_answer_json_cannot_hold_is_a_bad_answer(answer):
    """json.loads raises a plain ValueError past 4,300 digits and RecursionError when deep."""
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=answer))
    client = Client("http://127.0.0.1:9", timeout=5, transport=transport)
    try:
        _refused(lambda: client.sign_in("ann", "pw-ann-secret", None), Failure.BAD_ANSWER)
    finally:
        client.close()


def test_a_wallet_signs_in_with_its_device_key_when_its_session_ends(server, tmp_path):
    """Sessions last hours and may be ended from another phone: sync signs in again with the
    device key (no password, never throttled by guesses); a device reported lost cannot."""
    wallet = _ready(server, tmp_path / "wallet", "dora", uses=3)
    other = httpx.post(
        f"{server.url}/v1/session", json={"login": "dora", "password": "pw-dora-secret"}
    ).json()["token"]
    ended = httpx.delete(
        f"{server.url}/v1/me/sessions", headers={"Authorization": f"Bearer {other}"}
    )
    assert ended.json() == {"ended": 1}  # the wallet's session
    before = wallet.state.read().account
    assert before is not None
    wallet.sync()
    after = wallet.state.read().account
    assert after is not None and after.token != before.token
    for _ in range(6):  # someone guesses the password: the wallet does not care
        httpx.post(f"{server.url}/v1/session", json={"login": "dora", "password": "guess"})
    wallet.state.set_session(None, 0)
    wallet.sync()
    lost = httpx.post(
        f"{server.url}/v1/me/loss-report", headers={"Authorization": f"Bearer {other}"}
    )
    assert lost.status_code == 200
    refused = _refused(wallet.sync, Failure.SIGNED_OUT)
    assert "reported lost" in refused.message
