"""Anomalies in offline journals through a real server: a holder's habit learnt from the batches
a till uploads, an entry far off it raised for review with its evidence, honest variation and
the warm-up left alone, and the habit erased with the holder; a till far above its venue's other
tills raised."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from duopass.server.store.risk import JournalBaseline, holder_key
from tests.server.conftest import database_url
from tests.server.harness import (
    Running,
    TerminalClient,
    Wallet,
    enrolled_till,
    ready_wallet,
    running_server,
)


@pytest.fixture(params=["sqlite", "postgres"])
def habits_server(request: pytest.FixtureRequest, tmp_path) -> Iterator[Running]:
    """The server on both databases, a credential good for a month of offline meals."""
    url = database_url(request, tmp_path)
    with running_server(url, tmp_path / "data", offline_uses=100) as running:
        yield running


def _anomalies(admin) -> list[dict[str, Any]]:
    answer = admin.http.get("/v1/admin/alerts", params={"state": "open"}, headers=admin.auth)
    assert answer.status_code == 200, answer.text
    return [item for item in answer.json()["items"] if item["kind"] == "journal_anomaly"]


def _meals(till: TerminalClient, wallet: Wallet, amounts: list[int]) -> None:
    """One batch of offline payments of `amounts` at the till, each settled."""
    first = till.journaled + 1
    entries = [
        till.entry(wallet.code(), seq=seq, amount=amount)
        for seq, amount in enumerate(amounts, first)
    ]
    answer = till.journal(entries)
    assert answer.status_code == 200, answer.text
    assert answer.json()["rejected"] == [], answer.text


def _habit(count: int, seed: int = 7) -> list[int]:
    """A holder's lunches: 1.50 to 2.60, as a canteen's prices go."""
    rng = random.Random(seed)
    return [rng.randint(150, 260) for _ in range(count)]


def test_an_entry_far_off_the_habit_is_raised_with_its_evidence(habits_server):
    admin = habits_server.admin()
    wallet = ready_wallet(habits_server.http, admin, "ingrid", balance=400_000)
    till, _ = enrolled_till(habits_server.http, admin)
    meals = _habit(30)
    for first in range(0, 30, 10):
        _meals(till, wallet, meals[first : first + 10])
    assert _anomalies(admin) == []  # prices vary from one lunch to the next: no one is told
    _meals(till, wallet, [220, 2_900, 180])
    raised = {alert["evidence"]["key"]: alert for alert in _anomalies(admin)}
    alert = raised.pop(holder_key(_holder_id(habits_server, wallet)))
    assert set(raised) <= {"terminal:till-1"}  # the till never took so much either
    assert alert["holder_handle"] == wallet.handle
    assert (alert["terminal_id"], alert["seq"]) == ("till-1", 32)
    evidence = alert["evidence"]
    assert evidence["entry"]["amount"] == 2_900 and evidence["entry"]["venue"] == "canteen"
    local = datetime.fromtimestamp(evidence["entry"]["at"], ZoneInfo("Asia/Shanghai"))
    assert evidence["entry"]["hour"] == local.hour  # the campus's hours
    assert "amount" in evidence["score"]["rules"] and evidence["score"]["amount_z"] >= 3.5
    assert evidence["baseline"]["entries"] == 30  # the habit as the batch found it
    assert 150 <= evidence["baseline"]["amount_typical"] <= 260
    assert evidence["flagged_in_batch"] == 1
    # the next lunch is the habit again
    _meals(till, wallet, [200])
    assert len(_anomalies(admin)) == 1 + len(raised)


def test_no_entry_is_flagged_before_the_warm_up_and_the_habit_goes_with_an_erasure(
    habits_server,
):
    admin = habits_server.admin()
    wallet = ready_wallet(habits_server.http, admin, "jonas", balance=400_000)
    till, _ = enrolled_till(habits_server.http, admin)
    _meals(till, wallet, [*_habit(12), 2_900])
    assert _anomalies(admin) == []  # thirteen meals are no habit yet
    holder_id = _holder_id(habits_server, wallet)
    assert _baseline(habits_server, holder_id) == 13
    path = f"/v1/admin/holders/{wallet.handle}/erase"
    assert admin.post(path, {"keep_money": True}).status_code == 200
    assert _baseline(habits_server, holder_id) is None


def test_a_till_journalling_more_than_its_venue_s_other_tills_is_raised(habits_server):
    admin = habits_server.admin()
    wallet = ready_wallet(habits_server.http, admin, "kofi", balance=400_000)
    tills = [enrolled_till(habits_server.http, admin, f"till-{n}")[0] for n in range(3)]
    honest, rogue = tills[:2], tills[2]
    for n, till in enumerate(honest):
        _meals(till, wallet, _habit(8, seed=n))
    assert _anomalies(admin) == []  # one menu: neither honest till stands out
    _meals(rogue, wallet, [amount * 2 for amount in _habit(8, seed=9)])
    [alert] = _anomalies(admin)
    assert (alert["terminal_id"], alert["seq"], alert["holder_handle"]) == ("till-2", 8, None)
    evidence = alert["evidence"]
    assert evidence["key"] == "terminal:till-2" and evidence["score"]["rules"] == ["venue"]
    score = evidence["score"]
    assert score["evidence"] >= score["rule"]["evidence_at_least"]
    assert score["venue"]["entries"] == 16 and 150 <= score["venue"]["amount_high"] <= 260
    assert score["terminal"] == {"entries": 8, "compared": 8, "above_venue_high": 8, "at_cap": 0}
    _meals(honest[0], wallet, _habit(4, seed=5))  # the honest tills go on unflagged
    assert len(_anomalies(admin)) == 1


def test_a_till_clipping_amounts_at_the_credential_s_cap_is_raised(habits_server):
    """Three entries at exactly the credential's offline cap (the server's offline_txmax,
    3,000): raised though no other till has taken anything yet."""
    admin = habits_server.admin()
    wallet = ready_wallet(habits_server.http, admin, "lena", balance=400_000)
    till, _ = enrolled_till(habits_server.http, admin, "till-9")
    _meals(till, wallet, [3_000, 2_990])
    assert _anomalies(admin) == []  # one at the cap is a dear meal
    _meals(till, wallet, [3_000, 3_000])
    [alert] = _anomalies(admin)
    assert (alert["terminal_id"], alert["seq"]) == ("till-9", 4)
    score = alert["evidence"]["score"]
    assert score["rules"] == ["venue"] and score["terminal"]["at_cap"] == 3


def _holder_id(running: Running, wallet: Wallet) -> int:
    from duopass.server.store.tables import Holder

    query = select(Holder.id).where(Holder.handle == wallet.handle)
    return int(running.ctx.run(lambda unit: unit.session.scalars(query).one()))


def _baseline(running: Running, holder_id: int) -> int | None:
    """How many entries the holder's baseline holds (None: no row)."""
    return running.ctx.run(
        lambda unit: unit.session.scalar(
            select(JournalBaseline.entries).where(JournalBaseline.key == holder_key(holder_id))
        )
    )
