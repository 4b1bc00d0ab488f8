"""Many clients at once against one account: no overdraft past the limit, no lost update, no
counter paid twice. Bounded: a fixed number of requests, each with a timeout."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager

import httpx

from tests.server.harness import TerminalClient, ready_wallet


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
