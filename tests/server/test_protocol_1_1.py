"""PROTOCOL.md revision 1.1 through a real server (SQLite and PostgreSQL): each point the
revision settles, named by its section. Reissue (§6) is in test_reissue.py, the wallet's policy
in tests/test_wallet.py, the terminal's late window in tests/terminal/test_offline.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from duopass.protocol import make_code
from duopass.protocol.bundle import open_bundle
from duopass.protocol.encoding import b64u_decode
from duopass.protocol.trust import dump_policy
from duopass.server.services import accounts
from duopass.server.store.tables import CounterSeen
from tests.server.conftest import database_url
from tests.server.harness import Running, enrolled_till, ready_wallet, running_server

ISSUER: dict[str, Any] = {
    "timezone": "Pacific/Kiritimati",  # UTC+14: the booking day is rarely the UTC day
    "late_window_s": 13 * 3600,
    "freshness_s": 20,
    "clock_skew_s": 120,
}
"""An issuer whose policy and time zone are not the defaults."""


@pytest.fixture(params=["sqlite", "postgres"])
def issuer(request: pytest.FixtureRequest, tmp_path) -> Iterator[Running]:
    with running_server(database_url(request, tmp_path), tmp_path / "data", **ISSUER) as running:
        yield running


def _alerts(admin, kind: str) -> list[dict[str, Any]]:
    answer = admin.http.get("/v1/admin/alerts", headers=admin.auth)
    assert answer.status_code == 200, answer.text
    return [alert for alert in answer.json()["items"] if alert["kind"] == kind]


def test_4_4_the_first_acceptance_to_reach_the_server_settles(server):
    """§4.4: arrival order, not `ts` order: the acceptance of a counter that reaches the server
    first settles against its hold; one with an earlier `ts` arriving later is the duplicate,
    and the first booking stands."""
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "ada", balance=10_000)
    till, merchant = enrolled_till(server.http, admin)
    other, _ = enrolled_till(server.http, admin, "till-2", merchant=merchant)
    txmax = wallet.credential["txmax"]
    held = admin.account(wallet.account_id)["held"]
    now = int(time.time())
    credential = b64u_decode(wallet.credential["credential"])
    earlier = make_code(credential, wallet.key, ctr=0, ts=now - 30)
    later = make_code(credential, wallet.key, ctr=0, ts=now)
    first = other.journal([other.entry(later, seq=1, amount=400, scanned_at=now)])
    assert first.json()["rejected"] == []
    assert admin.account(wallet.account_id)["held"] == held - txmax
    second = till.journal([till.entry(earlier, seq=1, amount=300, scanned_at=now - 30)])
    assert second.json()["rejected"] == []
    account = admin.account(wallet.account_id)
    assert account["held"] == held - txmax  # the hold was released once, by the first
    assert account["balance"] == 10_000 - 700  # the duplicate is debited too
    assert admin.account(merchant)["balance"] == 700
    (alert,) = _alerts(admin, "relay_suspected")  # the two ts are 30 s apart
    assert alert["terminal_id"] == "till-1"
    assert alert["evidence"]["first"] == {"terminal": "till-2", "seq": 1, "ts": now}
    cti = b64u_decode(wallet.credential["cti"])
    seen = server.ctx.run(lambda u: u.session.get(CounterSeen, (cti, 0)))
    assert (seen.terminal_id, seen.seq, seen.ts) == ("till-2", 1, now)
    assert admin.books() == 0


def test_4_5_a_suspended_holder_gets_the_online_only_form(server):
    """§4.5: evidence revokes the live credential; the next one carries no offline uses (uses 1,
    txmax 1, no hold), is revoked offline in the next bundle, and pays online within free
    funds."""
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "bea", balance=10_000)
    till, _ = enrolled_till(server.http, admin)
    uses = wallet.credential["uses"]
    credential = b64u_decode(wallet.credential["credential"])
    past_uses = make_code(credential, wallet.key, ctr=uses, ts=int(time.time()))
    assert till.journal([till.entry(past_uses, seq=1, amount=100)]).json()["rejected"] == []
    assert _alerts(admin, "uses_exceeded")
    held = admin.account(wallet.account_id)["held"]
    answer = wallet.sync()
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["uses"], body["txmax"], body["offline"]) == (1, 1, False)
    assert admin.account(wallet.account_id)["held"] == held  # no hold for it
    bundle = open_bundle(till.bundle(), till.root_key)
    assert b64u_decode(body["cti"]) in bundle.revoked_added
    # above txmax 1, within free funds (the revoked credential's holds stay, §4.1)
    free = 10_000 - 100 - held
    paid = till.scan(wallet.code(), amount=free, seq=2)
    assert paid["ok"], paid
    assert admin.account(wallet.account_id)["balance"] == 10_000 - 100 - free
    assert admin.books() == 0


def test_5_an_entry_that_claims_the_server_decided_but_has_no_verdict_is_rechecked(server):
    """§5: "decided online" with no server verdict for its (terminal_id, seq) is re-checked as
    an offline acceptance, check 18 included."""
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "cleo", balance=10_000)
    till, merchant = enrolled_till(server.http, admin)
    txmax = wallet.credential["txmax"]
    claimed = [
        till.entry(wallet.code(), seq=1, amount=txmax + 1, online=True),
        till.entry(wallet.code(), seq=2, amount=250, online=True),
    ]
    answer = till.journal(claimed)
    assert answer.json()["rejected"] == [{"seq": 1, "reason": "OVER_TX_LIMIT"}]
    assert admin.account(wallet.account_id)["balance"] == 10_000 - 250
    (pending,) = _alerts(admin, "pending")
    assert pending["pending"] == txmax + 1
    assert admin.account(merchant)["balance"] == txmax + 1 + 250
    assert admin.books() == 0


def test_5_interrupted_voids_what_the_server_charged_and_books_nothing(server):
    """§5: a seq a crash cut short is journalled INTERRUPTED: it voids a charge the server made
    for it online, books nothing, and `acked_seq` passes it."""
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "dina", balance=10_000)
    till, merchant = enrolled_till(server.http, admin)
    held = admin.account(wallet.account_id)["held"]
    charged, never_sent = wallet.code(), wallet.code()
    assert till.scan(charged, amount=600, seq=1)["ok"]
    cut_short = [
        till.entry(charged, seq=1, amount=600, verdict="INTERRUPTED"),
        till.entry(never_sent, seq=2, amount=800, verdict="INTERRUPTED"),
    ]
    answer = till.journal(cut_short)
    assert answer.json() == {"acked_seq": 2, "duplicates": 0, "rejected": []}
    account = admin.account(wallet.account_id)
    assert (account["balance"], account["held"]) == (10_000, held)
    assert admin.account(merchant)["balance"] == 0
    assert till.scan(charged, amount=100, seq=3)["ok"]  # its counter is unseen again
    assert admin.books() == 0


def test_5_2_a_conflict_books_nothing_until_a_person_decides(server):
    """§5.2: other bytes for a (terminal_id, seq) held raise an alert holding both byte strings,
    once per distinct entry, and book nothing; at review a person books the entry's amount to
    the holder (`to_holder`) or to the loss account (`to_loss`), or books nothing (`dismiss`)."""
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "gina", balance=10_000)
    till, merchant = enrolled_till(server.http, admin)
    code = wallet.code()
    stored = till.entry(code, seq=1, amount=700)
    assert till.journal([stored]).json()["rejected"] == []
    others = [till.entry(code, seq=1, amount=amount) for amount in (2_500, 900, 400)]
    for other in [*others, others[0]]:  # the first one twice: a resent batch
        answer = till.journal([other], first=1)
        assert answer.json()["rejected"] == [{"seq": 1, "reason": "CONFLICT"}]
    assert admin.account(merchant)["balance"] == 700  # the merchant is never credited twice
    assert admin.account(wallet.account_id)["balance"] == 10_000 - 700
    conflicts = _alerts(admin, "conflict")
    assert [alert["pending"] for alert in conflicts] == [0, 0, 0]
    assert [alert["evidence"]["amount"] for alert in conflicts] == [2_500, 900, 400]
    assert b64u_decode(conflicts[0]["evidence"]["stored"]) == stored
    assert b64u_decode(conflicts[0]["evidence"]["received"]) == others[0]
    decisions = zip(conflicts, ("to_holder", "to_loss", "dismiss"), strict=True)
    for alert, action in decisions:
        done = admin.post(f"/v1/admin/alerts/{alert['id']}/review", {"action": action})
        assert done.status_code == 200, done.text
        assert (done.json()["state"], done.json()["pending"]) == ("resolved", 0)
    assert admin.account(wallet.account_id)["balance"] == 10_000 - 700 - 2_500
    assert admin.account(merchant)["balance"] == 700 + 2_500 + 900
    pending = server.ctx.run(lambda u: accounts.system_account(u.session, "pending", "CNY").balance)
    assert pending == 0
    again = admin.post(f"/v1/admin/alerts/{conflicts[0]['id']}/review", {"action": "to_loss"})
    assert again.status_code == 409
    assert admin.books() == 0


def test_5_2_a_conflict_that_charges_nothing_has_nothing_to_book(server):
    """§5.2: a conflicting refusal books nothing, at review too: only dismiss or freeze."""
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "hedy", balance=10_000)
    till, _ = enrolled_till(server.http, admin)
    code = wallet.code()
    assert till.journal([till.entry(code, seq=1, amount=700)]).status_code == 200
    refused = till.entry(code, seq=1, amount=700, verdict="REPLAY")
    assert till.journal([refused], first=1).json()["rejected"][0]["reason"] == "CONFLICT"
    (alert,) = _alerts(admin, "conflict")
    assert alert["evidence"]["amount"] == 0
    booked = admin.post(f"/v1/admin/alerts/{alert['id']}/review", {"action": "to_holder"})
    assert booked.status_code == 409
    assert admin.post(f"/v1/admin/alerts/{alert['id']}/review", {"action": "dismiss"}).is_success
    assert admin.books() == 0


def test_5_3_a_revocation_the_entrys_bundle_held_is_evidence_not_a_refusal(server):
    """§5.3: the goods were handed over: an acceptance under a bundle that had revoked the
    credential (here superseded by a refresh) is booked, with a `revoked_accepted` alert."""
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "edda", balance=10_000)
    till, merchant = enrolled_till(server.http, admin)
    old, old_cti = wallet.code(), b64u_decode(wallet.credential["cti"])
    assert wallet.sync(mark=1).status_code == 200  # the old credential is revoked offline
    revoking = open_bundle(till.bundle(), till.root_key)
    assert old_cti in revoking.revoked_added
    entry = till.entry(old, seq=1, amount=300, bundle_seq=revoking.seq)
    assert till.journal([entry]).json()["rejected"] == []
    assert admin.account(wallet.account_id)["balance"] == 10_000 - 300
    assert admin.account(merchant)["balance"] == 300
    (alert,) = _alerts(admin, "revoked_accepted")
    assert alert["evidence"]["bundle_seq"] == revoking.seq
    assert admin.books() == 0


def test_5_3_a_freeze_the_entrys_bundle_held_is_evidence_too(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "elke", balance=10_000)
    till, _ = enrolled_till(server.http, admin)
    code = wallet.code()
    frozen = admin.post(f"/v1/admin/holders/{wallet.handle}/freeze", {"reason": "review"})
    assert frozen.status_code == 204, frozen.text
    freezing = open_bundle(till.bundle(), till.root_key)
    assert wallet.handle in freezing.frozen_added
    entry = till.entry(code, seq=1, amount=300, bundle_seq=freezing.seq)
    assert till.journal([entry]).json()["rejected"] == []
    assert admin.account(wallet.account_id)["balance"] == 10_000 - 300
    assert _alerts(admin, "revoked_accepted")
    assert admin.books() == 0


def test_5_3_check_15_is_widened_by_the_clock_skew_at_reconciliation(server):
    """§5.3: the scan time must be within freshness_s + clock_skew_s (60 + 300) of `ts`."""
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "fern", balance=10_000)
    till, _ = enrolled_till(server.http, admin)
    credential = b64u_decode(wallet.credential["credential"])
    now = int(time.time())
    within = make_code(credential, wallet.key, ctr=0, ts=now - 350)
    beyond = make_code(credential, wallet.key, ctr=1, ts=now - 370)
    answer = till.journal(
        [
            till.entry(within, seq=1, amount=100, scanned_at=now),
            till.entry(beyond, seq=2, amount=100, scanned_at=now),
        ]
    )
    assert answer.json()["rejected"] == [{"seq": 2, "reason": "STALE"}]
    assert admin.account(wallet.account_id)["balance"] == 10_000 - 100
    assert admin.books() == 0


def test_5_3_check_15_is_widened_by_the_issuers_own_skew(issuer):
    """§5.3 with the issuer's policy, not the defaults: freshness 20 s + skew 120 s."""
    admin = issuer.admin()
    wallet = ready_wallet(issuer.http, admin, "gwen", balance=10_000)
    till, _ = enrolled_till(issuer.http, admin)
    credential = b64u_decode(wallet.credential["credential"])
    now = int(time.time())
    within = make_code(credential, wallet.key, ctr=0, ts=now - 130)
    beyond = make_code(credential, wallet.key, ctr=1, ts=now - 150)
    answer = till.journal(
        [
            till.entry(within, seq=1, amount=100, scanned_at=now),
            till.entry(beyond, seq=2, amount=100, scanned_at=now),
        ]
    )
    assert answer.json()["rejected"] == [{"seq": 2, "reason": "STALE"}]


def test_5_4_the_trust_bundle_carries_the_issuers_late_window(issuer):
    """§5.4: `late_window_s` travels with the §3 policy fields, whole bundles and deltas."""
    till, _ = enrolled_till(issuer.http, issuer.admin())
    whole = open_bundle(till.bundle(), till.root_key)
    delta = open_bundle(till.bundle(since=whole.seq), till.root_key)
    for bundle in (whole, delta):
        policy = bundle.policy
        assert (policy.freshness_s, policy.clock_skew_s) == (20, 120)
        assert policy.late_window_s == 13 * 3600


def test_6_the_sync_answer_carries_the_issuers_policy(issuer):
    """§6: a wallet's sync (each a refresh once it holds one) answers with the §3 policy, in the
    trust store file's form, so that it hides codes after the issuer's freshness_s."""
    wallet = ready_wallet(issuer.http, issuer.admin(), "hana", balance=10_000)
    policy = wallet.credential["policy"]
    assert policy == dump_policy(issuer.ctx.settings.policy)
    assert (policy["freshness_s"], policy["clock_skew_s"], policy["late_window_s"]) == (
        20,
        120,
        13 * 3600,
    )
    assert wallet.sync(mark=0).json()["policy"] == policy


def _day(when: float) -> str:
    return datetime.fromtimestamp(when, ZoneInfo(ISSUER["timezone"])).date().isoformat()


def test_5_4_the_booking_day_is_in_the_issuers_zone_and_every_report_names_it(issuer):
    """§5.4: an entry books on the day the server books it in the issuer's configured time zone,
    and the settlement report says which zone: JSON, CSV and `duopass settlement`."""
    admin = issuer.admin()
    wallet = ready_wallet(issuer.http, admin, "ines", balance=10_000)
    till, _ = enrolled_till(issuer.http, admin)
    before = time.time()
    assert till.scan(wallet.code(), amount=450, seq=1)["ok"]
    reports = {
        day: admin.http.get(f"/v1/admin/settlement/{day}", headers=admin.auth).json()
        for day in {_day(before), _day(time.time())}  # one day, unless midnight passed
    }
    day, report = next((d, r) for d, r in reports.items() if r["lines"])
    assert report["time_zone"] == "Pacific/Kiritimati"
    assert [line["payments"] for line in report["lines"]] == [450]
    csv = admin.http.get(f"/v1/admin/settlement/{day}?format=csv", headers=admin.auth).text
    header, row = csv.splitlines()
    assert header.startswith("day,time_zone,merchant,terminal")
    assert row.startswith(f"{day},Pacific/Kiritimati,canteen-till-1,till-1,")
    env = {**os.environ, "DUOPASS_TIMEZONE": "Pacific/Kiritimati"}
    command = [
        sys.executable,
        "-m",
        "duopass",
        "settlement",
        day,
        "--db",
        issuer.ctx.settings.db_url,
    ]
    for extra in ([], ["--csv"]):
        printed = subprocess.run(
            [*command, *extra],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert printed.returncode == 0, printed.stderr
        assert "Pacific/Kiritimati" in printed.stdout
    assert printed.stdout == csv
