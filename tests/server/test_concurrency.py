"""Many clients at once against one account: no overdraft past the limit, no lost update, no
counter paid twice, no hold kept past the sweep. Bounded: a fixed number of requests, each with
a timeout."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import replace

import httpx
import pytest
from sqlalchemy import select

from duopass.protocol.trust import Policy
from duopass.server.services import sweep
from duopass.server.store.tables import Account, Credential, Holder
from tests.server.harness import Running, TerminalClient, Wallet, ready_wallet


@contextmanager
def _tills(server, admin, count: int) -> Iterator[list[TerminalClient]]:
    """Tills with a connection each, closed afterwards."""
    merchant = admin.merchant("canteen-rush")
    with ExitStack() as stack:
        tills = []
        for n in range(count):
            code = admin.terminal(
                f"rush-{n}",
                mode="pay",
                venue="canteen",
                merchant_account_id=merchant,
                currency="CNY",
            )
            http = stack.enter_context(httpx.Client(base_url=server.url, timeout=60))
            till = TerminalClient(http, f"rush-{n}")
            assert till.enrol(code).status_code == 200
            tills.append(till)
        yield tills


def test_concurrent_payments_never_pass_the_overdraft(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "rush", balance=30_000, overdraft=2_000)
    assert (wallet.credential["uses"], wallet.credential["txmax"]) == (10, 3_000)
    codes = [wallet.code() for _ in range(10)]
    # Each payment of 3,300 releases its counter's 3,000 hold and needs 300 of free funds:
    # exactly 6 fit in the 2,000 overdraft, whatever the interleaving.
    with _tills(server, admin, 4) as tills, ThreadPoolExecutor(max_workers=10) as pool:
        verdicts = list(
            pool.map(lambda i: tills[i % 4].scan(codes[i], amount=3_300, seq=i), range(10))
        )
    reasons = sorted(v["reason"] for v in verdicts)
    assert reasons == ["INSUFFICIENT_FUNDS"] * 4 + ["OK"] * 6
    account = admin.account(wallet.account_id)
    assert account["balance"] == 30_000 - 6 * 3_300
    assert account["balance"] + account["overdraft"] - account["held"] >= 0
    assert admin.books() == 0


def test_the_same_code_at_two_tills_at_once_pays_once(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "twin", balance=9_000)
    code = wallet.code()
    with _tills(server, admin, 2) as tills:
        for attempt in range(3):  # a new seq each time: a new scan of the same code
            with ThreadPoolExecutor(max_workers=2) as pool:
                verdicts = list(
                    pool.map(lambda t, a=attempt: t.scan(code, amount=100, seq=100 + a), tills)
                )
            expected = ["OK", "REPLAY"] if attempt == 0 else ["REPLAY", "REPLAY"]
            assert sorted(v["reason"] for v in verdicts) == expected
    assert admin.account(wallet.account_id)["balance"] == 8_900
    assert admin.books() == 0


def _syncs(server: Running, wallet: Wallet, request_ids: list[str], *, mark: int) -> list[str]:
    """POST /v1/wallet/sync once per request id, all at once, each on its own connection;
    the answers' `cti` or problem `code`."""

    def one(request_id: str) -> str:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            answer = http.post(
                "/v1/wallet/sync",
                headers=wallet.auth,
                json={"device_id": wallet.device_id, "request_id": request_id, "mark": mark},
            )
        return str(answer.json()["cti" if answer.status_code == 200 else "code"])

    with ThreadPoolExecutor(max_workers=len(request_ids)) as pool:
        return list(pool.map(one, request_ids))


def _credentials(server: Running, wallet: Wallet) -> list[tuple[object, ...]]:
    """(state, uses, txmax, offline, mark, release_mark, released) of each of its credentials."""

    def read(unit):
        rows = unit.session.scalars(
            select(Credential).join(Holder).where(Holder.account_id == wallet.account_id)
        )
        return sorted(
            (c.state, c.uses, c.txmax, c.offline, c.mark, c.release_mark, c.released) for c in rows
        )

    return server.ctx.run(read)


def _sweep_past_the_late_window(server: Running) -> None:
    """The sweep once every credential's counters can no longer arrive (§4.2), and not before."""
    ctx, policy = server.ctx, Policy()
    horizon = policy.freshness_s + policy.clock_skew_s + ctx.settings.late_window_s
    exps = ctx.run(lambda u: list(u.session.scalars(select(Credential.exp))))
    at_the_horizon = ctx.run(lambda u: sweep.sweep(replace(u, now=min(exps) + horizon)))
    assert at_the_horizon.credentials == 0  # until then every hold stays
    ctx.run(lambda u: sweep.sweep(replace(u, now=max(exps) + horizon + 1)))


@pytest.mark.parametrize(
    ("balance", "overdraft", "held_by_ten", "held_by_one"),
    [(22_500, 2_000, 24_500, 24_500), (100_000, 10_000, 110_000, 51_000)],
)
def test_ten_refreshes_at_once_hold_until_the_sweep_and_no_longer(
    server, balance, overdraft, held_by_ten, held_by_one
):
    """Issue 10: ten syncs at once, fresh request ids, one mark. They run one after another
    under the account's lock: four refreshes (the day's limit), each superseding the credential
    the one before issued, at a mark meant for the first; six are refused. What each keeps held
    (counters up to the mark, and above it what the overdraft cannot release on the wallet's
    word) stays until the sweep; the sweep then releases all of it, the holds the overdraft kept
    above the mark included (they used to stay held for ever)."""
    admin = server.admin()
    ten = ready_wallet(server.http, admin, "ten", balance=balance, overdraft=overdraft)
    one = ready_wallet(server.http, admin, "one", balance=balance, overdraft=overdraft)
    answers = _syncs(server, ten, [uuid.uuid4().hex for _ in range(10)], mark=2)
    issued = [answer for answer in answers if answer != "refresh_limit"]
    assert len(issued) == len(set(issued)) == server.ctx.settings.refresh_max_per_day == 4
    assert one.sync(mark=2).status_code == 200
    for wallet, held in ((ten, held_by_ten), (one, held_by_one)):
        account = admin.account(wallet.account_id)
        assert (account["balance"], account["held"]) == (balance, held)
        assert account["free_funds"] == balance + overdraft - held
    if balance == 22_500:  # the figures of the report
        assert _credentials(server, ten) == [
            ("live", 1, 1, False, None, None, 0),  # nothing left to hold: online only
            ("superseded", 1, 1, False, 0, 0, 0),
            ("superseded", 1, 1, False, 0, 0, 0),
            ("superseded", 1, 500, True, 0, 0, 0),  # its counter 0 is at the mark: held
            ("superseded", 8, 3_000, True, 2, 7, 0),  # 3..7 kept: 15,000 > the 2,000 overdraft
        ]
    _sweep_past_the_late_window(server)
    for wallet in (ten, one):
        account = admin.account(wallet.account_id)
        assert (account["held"], account["free_funds"]) == (0, balance + overdraft)
        row = server.ctx.run(
            lambda u, w=wallet: u.session.get(Account, w.account_id).unconfirmed_released
        )
        assert row == 0  # what refreshes released on the wallet's word is confirmed
    assert admin.books() == 0


def test_ten_retries_at_once_with_one_request_id_refresh_once(server):
    """What our wallet sends when several of its processes sync at once, or it retries after a
    lost answer: the request id it stored. However they interleave, one refresh, one answer."""
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "same", balance=100_000, overdraft=10_000)
    once = ready_wallet(server.http, admin, "once", balance=100_000, overdraft=10_000)
    answers = _syncs(server, wallet, [uuid.uuid4().hex] * 10, mark=2)
    assert len(set(answers)) == 1 and answers[0] != wallet.credential["cti"]
    assert once.sync(mark=2).status_code == 200
    assert _credentials(server, wallet) == _credentials(server, once)
    assert admin.account(wallet.account_id)["held"] == admin.account(once.account_id)["held"]
