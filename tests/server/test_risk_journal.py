"""The risk engine at journal reconciliation (issue 15, "Rules and score"): offline acceptances
and misreported amounts are counted per batch, and the packaged guards act on them: a holder's
credential accepted at three tills in an hour has its offline use suspended (a ledger event),
two venues too far apart for the time between them are sent for review, and a till whose
amounts differ from what the server approved raises an alert; each names its decision record."""

from __future__ import annotations

import time
from typing import Any

from duopass.protocol import make_code
from duopass.protocol.encoding import b64u_decode
from tests.server.harness import SQLITE_ONLY, TerminalClient, enrolled_till, ready_wallet
from tests.server.test_journals import _alerts
from tests.server.test_risk_engine import _decisions, _leaf_type, _ledger_size, _suspended


def _guarded(admin, guard: str) -> list[dict[str, Any]]:
    return [a for a in _alerts(admin) if a["kind"] == "risk_decision" and guard in str(a)]


def test_a_key_accepted_at_three_tills_loses_offline_use(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "kim", balance=10_000)
    till, merchant = enrolled_till(server.http, admin)
    tills = [till] + [
        enrolled_till(server.http, admin, f"till-{n}", merchant=merchant)[0] for n in (2, 3)
    ]
    now = int(time.time())
    credential = b64u_decode(wallet.credential["credential"])
    for n, at in enumerate(tills[:2]):  # two tills in an hour: a holder going for a coffee
        code = make_code(credential, wallet.key, ctr=n, ts=now - 60 + n)
        assert at.journal([at.entry(code, seq=1, scanned_at=now - 60 + n)]).status_code == 200
    assert not _suspended(server, _holder_id(server, wallet))
    code = make_code(credential, wallet.key, ctr=2, ts=now)
    assert tills[2].journal([tills[2].entry(code, seq=1, scanned_at=now)]).status_code == 200
    assert _suspended(server, _holder_id(server, wallet))
    (alert,) = _guarded(admin, "cloned_key_at_tills")
    assert alert["evidence"]["action"] == "suspend_offline"
    decision = next(d for d in _decisions(server) if d["guard"] == "cloned_key_at_tills")
    assert decision["features"]["account.offline_acceptance.distinct_terminal.1h"] == 3
    assert decision["point"] == "journal" and "terminal:till-3" in decision["subject"]
    assert alert["evidence"]["decision"] is not None
    leaves = [_leaf_type(server, n) for n in range(_ledger_size(server))]
    assert "offline_suspend" in leaves
    assert wallet.sync().json()["offline"] is False


def _holder_id(server, wallet) -> int:
    from sqlalchemy import select

    from duopass.server.store.tables import Holder

    return int(
        server.ctx.run(
            lambda unit: unit.session.scalars(
                select(Holder.id).where(Holder.login == wallet.login)
            ).one()
        )
    )


def _till_at(server, admin, name: str, venue: str, merchant: int) -> TerminalClient:
    code = admin.terminal(
        name, mode="pay", venue=venue, merchant_account_id=merchant, currency="CNY"
    )
    till = TerminalClient(server.http, name)
    assert till.enrol(code).status_code == 200
    return till


@SQLITE_ONLY
def test_two_venues_too_far_apart_are_sent_for_review(server):
    admin = server.admin()
    for venue, lat in (("north", 40_000_000), ("south", 39_100_000)):  # 100 km apart
        made = admin.post(
            "/v1/admin/venues", {"id": venue, "name": venue, "lat_e6": lat, "lon_e6": 116_000_000}
        )
        assert made.status_code == 201, made.text
    wallet = ready_wallet(server.http, admin, "lea", balance=10_000)
    merchant = admin.merchant("two-sites")
    north = _till_at(server, admin, "till-n", "north", merchant)
    south = _till_at(server, admin, "till-s", "south", merchant)
    now = int(time.time())
    credential = b64u_decode(wallet.credential["credential"])
    first = make_code(credential, wallet.key, ctr=0, ts=now)
    assert (
        north.journal([north.entry(first, seq=1, scanned_at=now, venue="north")]).status_code == 200
    )
    second = make_code(credential, wallet.key, ctr=1, ts=now)  # within a minute, 100 km off
    assert south.journal([south.entry(second, seq=1, venue="south")]).status_code == 200
    (alert,) = _guarded(admin, "impossible_travel")
    assert alert["evidence"]["action"] == "review"
    features = {f["feature"]: f["value"] for f in alert["evidence"]["features"]}
    assert 5_500 <= features["account.geovelocity_kmh"] <= 6_500  # 100 km in (at least) a minute
    assert not _suspended(server, _holder_id(server, wallet))  # a person looks first


@SQLITE_ONLY
def test_a_till_misreporting_amounts_raises_an_alert(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "max", balance=10_000)
    till, _ = enrolled_till(server.http, admin)
    for seq in (1, 2, 3):  # approved 500 online, journalled as 700
        code = wallet.code()
        assert till.scan(code, amount=500, seq=seq)["ok"]
        journal = till.journal([till.entry(code, seq=seq, amount=700, online=True)])
        assert journal.status_code == 200
        assert not _guarded(admin, "terminal_misreporting") or seq == 3
    (alert,) = _guarded(admin, "terminal_misreporting")
    assert alert["terminal_id"] == "till-1" and alert["holder_id"] is None
    features = {f["feature"]: f["value"] for f in alert["evidence"]["features"]}
    assert features["terminal.amount_mismatch.1d"] == 3
    assert features["terminal.online_scan.1h"] == 3  # the online scans, counted per terminal
