"""Journals (§5) through a real server: offline acceptances booked once, online verdicts settled
the terminal's way, duplicates and conflicts, pending and review."""

from __future__ import annotations

import base64
import dataclasses
import os
import signal
import threading
import time
from typing import Any

import cbor2
import sqlalchemy

from duopass.protocol import SigningKey, make_code
from duopass.protocol.encoding import b64u_decode
from duopass.server.services import sweep, tlog
from duopass.server.services.journals import verifier
from duopass.server.services.journals.signatures import PARALLEL_FROM
from tests.server.harness import TerminalClient, Wallet, enrolled_till, ready_wallet


def _alerts(admin, **query) -> list[dict[str, Any]]:
    answer = admin.http.get("/v1/admin/alerts", params=query, headers=admin.auth)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def _ledger_payments(http, terminal: str) -> int:
    """What the ledger says a terminal's payments came to (every leaf read and decoded)."""
    leaves = http.get("/v1/ledger/entries", params={"start": 0}).json()["entries"]
    total = 0
    for text in leaves:
        leaf = cbor2.loads(base64.b64decode(text))
        if leaf[1] == "payment" and leaf[4]["terminal"] == terminal:
            total += leaf[4]["amount"]
    return total


def test_an_offline_payment_is_booked_once_and_releases_its_hold(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "olga", balance=10_000)
    till, merchant = enrolled_till(server.http, admin)
    held_before = admin.account(wallet.account_id)["held"]
    entries = [till.entry(wallet.code(), seq=1, amount=1_200), till.entry(wallet.code(), seq=2)]
    answer = till.journal(entries)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"acked_seq": 2, "duplicates": 0, "rejected": []}
    account = admin.account(wallet.account_id)
    assert account["balance"] == 10_000 - 1_700
    assert account["held"] == held_before - 2 * wallet.credential["txmax"]
    assert admin.account(merchant)["balance"] == 1_700
    # the terminal crashed before it saw the answer: the same bytes again change nothing
    again = till.journal(entries, first=1)
    assert again.json() == {"acked_seq": 2, "duplicates": 2, "rejected": []}
    assert admin.account(wallet.account_id)["balance"] == 10_000 - 1_700
    assert admin.books() == 0


def test_the_terminals_verdict_settles_an_online_one(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "pavel", balance=10_000)
    till, merchant = enrolled_till(server.http, admin)
    accepted, refused = wallet.code(), wallet.code()
    assert till.scan(accepted, amount=800, seq=1)["ok"]
    # the server accepted seq 1 but the till never got the answer and refused the customer
    voided = till.journal([till.entry(accepted, seq=1, amount=800, verdict="BAD_SIGNATURE")])
    assert voided.json()["acked_seq"] == 1
    account = admin.account(wallet.account_id)
    assert account["balance"] == 10_000
    assert admin.account(merchant)["balance"] == 0
    # the counter is unseen again: it pays at the next till
    assert till.scan(accepted, amount=800, seq=2)["ok"]
    assert till.journal([till.entry(accepted, seq=2, amount=800, online=True)]).status_code == 200
    # an online refusal the terminal overrode offline (its answer was lost) is booked
    assert not till.scan(refused, amount=900_000, seq=3)["ok"]  # INSUFFICIENT_FUNDS
    booked = till.journal([till.entry(refused, seq=3, amount=900)])
    assert booked.json()["rejected"] == []
    assert admin.account(wallet.account_id)["balance"] == 10_000 - 800 - 900
    assert admin.books() == 0


def test_a_counter_accepted_at_two_tills_is_charged_twice_and_flagged(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "quinn", balance=10_000)
    till, merchant = enrolled_till(server.http, admin)
    other, _ = enrolled_till(server.http, admin, "till-2", merchant=merchant)
    now = int(time.time())
    credential = b64u_decode(wallet.credential["credential"])
    first = make_code(credential, wallet.key, ctr=0, ts=now - 200)
    clone = make_code(credential, wallet.key, ctr=0, ts=now)  # the same counter, later: a clone
    assert till.journal([till.entry(first, seq=1, scanned_at=now - 200)]).status_code == 200
    answer = other.journal([other.entry(clone, seq=1, scanned_at=now)])
    assert answer.json()["rejected"] == []
    assert admin.account(wallet.account_id)["balance"] == 10_000 - 1_000
    kinds = {alert["kind"] for alert in _alerts(admin)}
    assert "clone" in kinds
    # offline use is suspended: the next credential holds nothing and is for online use only
    resynced = wallet.sync()
    assert resynced.status_code == 200 and resynced.json()["offline"] is False
    assert admin.books() == 0


def test_a_conflicting_entry_books_nothing_until_review_books_it(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "rosa", balance=10_000)
    till, merchant = enrolled_till(server.http, admin)
    code = wallet.code()
    assert till.journal([till.entry(code, seq=1, amount=700)]).status_code == 200
    other = till.entry(code, seq=1, amount=2_500)
    conflict = till.journal([other], first=1)
    assert conflict.json()["rejected"] == [{"seq": 1, "reason": "CONFLICT"}]
    # resending the conflicting batch books nothing more
    assert till.journal([other], first=1).status_code == 200
    alert = next(a for a in _alerts(admin) if a["kind"] == "conflict")
    assert (alert["pending"], alert["evidence"]["amount"]) == (0, 2_500)
    assert admin.account(merchant)["balance"] == 700  # §5.2: nothing until a person decides
    review = admin.post(f"/v1/admin/alerts/{alert['id']}/review", {"action": "to_loss"})
    assert review.status_code == 200, review.text
    assert review.json()["state"] == "resolved"
    assert admin.account(merchant)["balance"] == 700 + 2_500
    again = admin.post(f"/v1/admin/alerts/{alert['id']}/review", {"action": "to_loss"})
    assert again.status_code == 409
    assert admin.books() == 0


def test_entries_that_cannot_be_settled_go_to_pending(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "sven", balance=10_000)
    till, _ = enrolled_till(server.http, admin)
    over = till.entry(wallet.code(), seq=1, amount=wallet.credential["txmax"] + 1)
    forged = wallet.code()[:-3] + "AAA"
    answer = till.journal([over, till.entry(forged, seq=2, amount=100)])
    rejected = {r["seq"]: r["reason"] for r in answer.json()["rejected"]}
    assert rejected[1] == "OVER_TX_LIMIT"
    assert rejected[2] in ("BAD_DEVICE_SIGNATURE", "FORMAT", "MALFORMED")
    assert answer.json()["acked_seq"] == 2  # held, for review
    assert admin.account(wallet.account_id)["balance"] == 10_000
    pending = [a for a in _alerts(admin) if a["kind"] == "pending"]
    assert sum(a["pending"] for a in pending) == wallet.credential["txmax"] + 1 + 100
    assert admin.books() == 0


def test_a_batch_must_be_the_terminals_own(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "tara", balance=10_000)
    till, _ = enrolled_till(server.http, admin)
    other, _ = enrolled_till(server.http, admin, "till-2")
    entry = till.entry(wallet.code(), seq=1)
    refused = other.journal([entry], signer=till.key)  # signed with another terminal's key
    assert refused.status_code == 422 and refused.json()["code"] == "bad_batch"
    gap = till.journal([till.entry(wallet.code(), seq=5)], first=5)
    assert gap.json()["acked_seq"] == 0
    assert any(a["kind"] == "gap" for a in _alerts(admin))


def test_time_releases_holds_and_finalises_unjournaled_verdicts(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "uma", balance=10_000)
    till, _ = enrolled_till(server.http, admin)
    assert till.scan(wallet.code(), amount=300, seq=1)["ok"]
    held = admin.account(wallet.account_id)["held"]
    assert held > 0
    ctx = server.ctx
    later = int(time.time()) + 86_400 + ctx.settings.late_window_s + 3_600
    swept = ctx.run(lambda u: sweep.sweep(dataclasses.replace(u, now=later)))
    assert (swept.credentials, swept.released, swept.verdicts) == (1, held, 1)
    assert admin.account(wallet.account_id)["held"] == 0
    assert any(a["kind"] == "missing_entry" for a in _alerts(admin))
    again = ctx.run(lambda u: sweep.sweep(dataclasses.replace(u, now=later)))
    assert (again.credentials, again.verdicts) == (0, 0)  # a hold is released at most once
    assert admin.books() == 0


def test_a_lost_phone_costs_the_holder_at_most_its_holds(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "vera", balance=10_000)
    till, merchant = enrolled_till(server.http, admin)
    txmax = wallet.credential["txmax"]
    thief = wallet.code(now=int(time.time()) + 5)
    assert server.http.post("/v1/me/loss-report", headers=wallet.auth).status_code in (200, 204)
    # an offline till without the new bundle accepts the thief's code after the report
    answer = till.journal([till.entry(thief, seq=1, amount=txmax, scanned_at=int(time.time()) + 5)])
    assert answer.json()["rejected"] == []
    assert admin.account(wallet.account_id)["balance"] == 10_000 - txmax
    assert admin.account(merchant)["balance"] == txmax
    # the same counter again, elsewhere: the holder's liability stays at the hold
    other, _ = enrolled_till(server.http, admin, "till-2", merchant=merchant)
    other.journal([other.entry(thief, seq=1, amount=txmax, scanned_at=int(time.time()) + 5)])
    assert admin.account(wallet.account_id)["balance"] == 10_000 - txmax
    assert admin.account(merchant)["balance"] == 2 * txmax
    assert admin.books() == 0


def test_settlement_totals_are_the_merchants_postings(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "wes", balance=10_000)
    till, merchant = enrolled_till(server.http, admin)
    online = wallet.code()
    assert till.scan(online, amount=450, seq=1)["ok"]
    entries = [till.entry(online, seq=1, amount=450, online=True)]
    assert till.journal([*entries, till.entry(wallet.code(), seq=2, amount=550)]).status_code == 200
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 8 * 3600))  # Asia/Shanghai
    report = admin.http.get(f"/v1/admin/settlement/{day}", headers=admin.auth).json()
    line = next(line for line in report["lines"] if line["terminal"] == "till-1")
    assert (line["payments"], line["count"], line["net"]) == (1_000, 2, 1_000)
    assert report["net"] == admin.account(merchant)["balance"]
    assert line["payments"] == _ledger_payments(server.http, "till-1")
    csv = admin.http.get(f"/v1/admin/settlement/{day}?format=csv", headers=admin.auth)
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0].startswith("day,time_zone,merchant,terminal")
    not_ended = admin.post(f"/v1/admin/settlement/{day}/prepare", {})
    assert not_ended.status_code == 409 and not_ended.json()["code"] == "conflict"


def test_a_counter_above_the_refresh_mark_is_evidence_and_review_freezes(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "xena", balance=10_000)
    till, _ = enrolled_till(server.http, admin)
    old = b64u_decode(wallet.credential["credential"])
    assert wallet.sync(mark=1).status_code == 200  # the wallet promised no counter above 1
    above = make_code(old, wallet.key, ctr=2, ts=int(time.time()))
    assert till.journal([till.entry(above, seq=1)]).json()["rejected"] == []
    alert = next(a for a in _alerts(admin) if a["kind"] == "above_mark")
    assert alert["evidence"]["ctr"] == 2
    frozen = admin.post(f"/v1/admin/alerts/{alert['id']}/review", {"action": "freeze"})
    assert frozen.status_code == 200, frozen.text
    # the evidence had already revoked the live credential; the freeze now refuses a new one
    assert till.scan(wallet.code(), amount=100, seq=2)["reason"] == "REVOKED"
    refused = wallet.sync()
    assert refused.status_code == 403 and refused.json()["code"] == "frozen"
    assert admin.books() == 0


def test_a_late_scan_request_gets_the_journals_verdict_and_changes_nothing(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "yuri", balance=10_000)
    till, merchant = enrolled_till(server.http, admin)
    code = wallet.code()
    # the till gave up on the server and refused; its journal arrives before the request does
    entry = till.entry(code, seq=1, amount=700, verdict="INTERRUPTED")
    assert till.journal([entry]).status_code == 200
    late = till.scan(code, amount=700, seq=1)
    assert (late["ok"], late["reason"], late["mode"]) == (False, "INTERRUPTED", "offline")
    assert admin.account(wallet.account_id)["balance"] == 10_000
    assert admin.account(merchant)["balance"] == 0
    assert till.scan(code, amount=700, seq=2)["ok"]  # the counter was never used


def test_a_void_after_the_sweep_leaves_no_hold_behind(server):
    """Review: a void applies whatever its age (§5.4), but the sweep has already released the
    credential's holds once; returning the voided counter's hold then would hold it for ever."""
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "zoe", balance=10_000)
    till, _ = enrolled_till(server.http, admin)
    code = wallet.code()
    assert till.scan(code, amount=300, seq=1)["ok"]
    ctx = server.ctx
    later = int(time.time()) + 86_400 + ctx.settings.late_window_s + 3_600
    ctx.run(lambda u: sweep.sweep(dataclasses.replace(u, now=later)))
    assert admin.account(wallet.account_id)["held"] == 0
    voided = till.journal([till.entry(code, seq=1, amount=300, verdict="BAD_SIGNATURE")])
    assert voided.status_code == 200, voided.text
    account = admin.account(wallet.account_id)
    assert account["balance"] == 10_000
    assert account["held"] == 0  # nothing can ever release a hold returned now
    assert admin.books() == 0


def test_a_counter_beyond_31_bits_is_booked_not_a_server_error(server):
    """Review: an L2 counter is below 2^32 (limits.COUNTER_LIMIT) and a terminal may misstate a
    verdict (§5.3), so an entry with such a counter must settle (evidence), never answer 500."""
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "abel", balance=10_000)
    till, _ = enrolled_till(server.http, admin)
    credential = b64u_decode(wallet.credential["credential"])
    code = make_code(credential, wallet.key, ctr=2**31, ts=int(time.time()))
    answer = till.journal([till.entry(code, seq=1, amount=100)])
    assert answer.status_code == 200, answer.text
    assert answer.json()["acked_seq"] == 1
    assert any(a["kind"] == "uses_exceeded" for a in _alerts(admin))
    assert admin.books() == 0


def test_a_refresh_committed_while_a_batch_waits_for_its_locks_is_seen(
    postgres_server, monkeypatch
):
    """Review (PostgreSQL): what a batch reads about its credentials and counters must be read
    under the accounts' locks. A refresh that commits after the batch read the credential but
    before it locked the account released counter 5's hold; the batch must not release it again."""
    server = postgres_server  # SQLite's write lock serialises the whole batch
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "bela", balance=10_000, overdraft=100_000)
    till, _ = enrolled_till(server.http, admin)
    credential = b64u_decode(wallet.credential["credential"])
    txmax = wallet.credential["txmax"]
    code = make_code(credential, wallet.key, ctr=5, ts=int(time.time()))
    real = tlog.lock_now
    refreshed: list[int] = []

    def refresh_first(session):
        if not refreshed:  # the wallet refreshes (mark 1) just before the batch takes its locks
            refreshed.append(wallet.sync(mark=1).status_code)
        real(session)

    monkeypatch.setattr(tlog, "lock_now", refresh_first)
    answer = till.journal([till.entry(code, seq=1, amount=100)])
    assert answer.status_code == 200, answer.text
    assert refreshed == [200]
    monkeypatch.setattr(tlog, "lock_now", real)
    # what the account holds: counters 0 and 1 of the old credential (the mark) and the new one's
    new = wallet.credential
    expected = 2 * txmax + (new["uses"] * new["txmax"] if new.get("offline", True) else 0)
    assert admin.account(wallet.account_id)["held"] == expected
    assert any(a["kind"] == "above_mark" for a in _alerts(admin))
    assert admin.books() == 0


def test_a_batch_never_waits_holding_locks_it_tries_again(postgres_server):
    """PostgreSQL: a batch takes the ledger's append lock and its accounts' locks without waiting
    (a wait could close a cycle with a group commit); finding one taken, it is rolled back and
    tried again after a pause, and answers 503 `busy` only if the lock stays taken."""
    server = postgres_server  # SQLite's write lock serialises every writer
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "dora", balance=10_000)
    till, merchant = enrolled_till(server.http, admin)
    entries = [till.entry(wallet.code(), seq=1, amount=400)]
    engine = sqlalchemy.create_engine(server.ctx.settings.db_url)
    with engine.connect() as other:
        other.execute(
            sqlalchemy.text("SELECT value FROM meta WHERE name = 'ledger_size' FOR UPDATE")
        )
        busy = till.journal(entries)  # the lock stays taken through every attempt
        assert busy.status_code == 503 and busy.json()["code"] == "busy"
        assert admin.account(merchant)["balance"] == 0
        threading.Timer(0.3, other.rollback).start()  # taken, then released mid-attempts
        answer = till.journal(entries)
    engine.dispose()
    assert answer.status_code == 200, answer.text
    assert answer.json()["acked_seq"] == 1
    assert admin.account(merchant)["balance"] == 400


def test_a_void_hands_the_counter_to_its_duplicate(server):
    """Review: a counter accepted online at one till and offline at another; the first till's
    journal then says it refused. The charge is reversed, but the counter was used: the other
    acceptance takes it over, and its hold stays released."""
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "erin", balance=10_000)
    till, merchant = enrolled_till(server.http, admin)
    other, _ = enrolled_till(server.http, admin, "till-2", merchant=merchant)
    code = wallet.code()
    assert till.scan(code, amount=600, seq=1)["ok"]
    held = admin.account(wallet.account_id)["held"]
    assert other.journal([other.entry(code, seq=1, amount=700)]).json()["rejected"] == []
    voided = till.journal([till.entry(code, seq=1, amount=600, verdict="INTERRUPTED")])
    assert voided.status_code == 200, voided.text
    account = admin.account(wallet.account_id)
    assert account["balance"] == 10_000 - 700
    assert account["held"] == held  # not returned: the counter was used at till-2
    assert admin.account(merchant)["balance"] == 700
    third = till.scan(code, amount=100, seq=2)
    assert third["reason"] == "REPLAY"  # the counter is still seen, now as till-2's
    assert admin.books() == 0


def test_the_terminals_amount_stands_for_an_online_payment(server):
    """§5.1: a journal entry settles an online verdict the terminal's way, amount included; what
    it adds beyond txmax and the approved amount goes to pending (§5.3)."""
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "faye", balance=10_000)
    till, merchant = enrolled_till(server.http, admin)
    txmax = wallet.credential["txmax"]
    lower, higher = wallet.code(), wallet.code()
    assert till.scan(lower, amount=900, seq=1)["ok"]
    assert till.scan(higher, amount=500, seq=2)["ok"]
    answer = till.journal(
        [
            till.entry(lower, seq=1, amount=700, online=True),  # the cashier corrected it
            till.entry(higher, seq=2, amount=txmax + 250, online=True),  # beyond txmax
        ]
    )
    assert answer.json()["rejected"] == []
    assert admin.account(wallet.account_id)["balance"] == 10_000 - 700 - txmax
    assert admin.account(merchant)["balance"] == 700 + txmax + 250
    pending = [a for a in _alerts(admin) if a["kind"] == "pending"]
    assert [a["pending"] for a in pending] == [250]
    assert admin.books() == 0


def test_a_large_batch_verifies_device_signatures_ahead_with_the_same_verdicts(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "wanda", balance=10_000)
    till, merchant = enrolled_till(server.http, admin)
    own, forger = wallet.key, SigningKey.generate()
    entries, forged = [], set()
    for seq in range(1, PARALLEL_FROM + 7):  # enough to go to the pool
        wallet.key = forger if seq % 10 == 3 else own
        forged.update({seq} if wallet.key is forger else set())
        entries.append(till.entry(wallet.code(), seq=seq, amount=10))
    wallet.key = own
    answer = till.journal(entries)
    assert answer.status_code == 200, answer.text
    rejected = {r["seq"]: r["reason"] for r in answer.json()["rejected"]}
    assert rejected == dict.fromkeys(forged, "BAD_DEVICE_SIGNATURE")
    booked = 10 * (len(entries) - len(forged))
    assert admin.account(wallet.account_id)["balance"] == 10_000 - booked
    assert admin.account(merchant)["balance"] == booked + 10 * len(forged)  # those in pending
    # settled ahead of the worker, then again once a forged verdict came: only the second stays
    pending = _alerts(admin, kind="pending", limit=100)
    assert sorted(a["seq"] for a in pending) == sorted(forged)
    assert _ledger_payments(server.http, till.terminal_id) == booked
    leaves = server.http.get("/v1/ledger/entries", params={"start": 0}).json()["entries"]
    kinds = [cbor2.loads(base64.b64decode(text))[1] for text in leaves]
    assert kinds.count("journal_batch") == 1
    # a small batch (verified one by one in the re-check) gives the same verdict
    wallet.key = forger
    small = till.journal([till.entry(wallet.code(), seq=len(entries) + 1, amount=10)])
    assert small.json()["rejected"] == [{"seq": len(entries) + 1, "reason": "BAD_DEVICE_SIGNATURE"}]
    assert admin.books() == 0


def forged_batch(
    wallet: Wallet, till: TerminalClient, forger: SigningKey, first: int
) -> list[bytes]:
    """Entries from `first` on, enough to go to the signature worker, every tenth (seq 3, 13,
    ...) signed by `forger` instead of the wallet's own key."""
    own, entries = wallet.key, []
    for seq in range(first, first + PARALLEL_FROM + 7):
        wallet.key = forger if seq % 10 == 3 else own
        entries.append(till.entry(wallet.code(), seq=seq, amount=10))
    wallet.key = own
    return entries


def test_a_large_batch_decoded_half_in_the_worker_settles_as_on_one_thread(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "wilma", balance=10_000)
    till, _ = enrolled_till(server.http, admin)
    forger = SigningKey.generate()
    assert till.journal(forged_batch(wallet, till, forger, 1)).status_code == 200  # one started
    first = PARALLEL_FROM + 8
    entries = forged_batch(wallet, till, forger, first)
    last = first + len(entries) - 1
    odd = {last - 1: b"\xa1\x01", last - 8: till.entry("DP1:not a code", seq=last - 8, amount=10)}
    odd[last - 20] = till.entry(wallet.code(), seq=last - 19, amount=10)  # another seq's
    for seq, raw in odd.items():  # among the last entries: the worker's to decode
        entries[seq - first] = raw
    answer = till.journal(entries)
    assert answer.status_code == 200, answer.text
    rejected = {r["seq"]: r["reason"] for r in answer.json()["rejected"]}
    forged = [seq for seq in range(first, last + 1) if seq % 10 == 3 and seq not in odd]
    expected = dict.fromkeys(forged, "BAD_DEVICE_SIGNATURE")
    expected.update(dict.fromkeys(odd, "MALFORMED"))
    assert rejected == expected
    assert admin.books() == 0


def test_a_large_batch_whose_signature_worker_died_is_verified_in_the_recheck(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "wendy", balance=10_000)
    till, _ = enrolled_till(server.http, admin)
    forger = SigningKey.generate()

    def batch(first: int) -> list[bytes]:
        return forged_batch(wallet, till, forger, first)

    assert till.journal(batch(1)).status_code == 200  # a worker started
    assert verifier.pids()
    for pid in verifier.pids():  # the server runs in this process
        os.kill(pid, signal.SIGKILL)
    first = PARALLEL_FROM + 8
    entries = batch(first)
    answer = till.journal(entries)
    assert answer.status_code == 200, answer.text
    forged = [seq for seq in range(first, first + len(entries)) if seq % 10 == 3]
    rejected = {r["seq"]: r["reason"] for r in answer.json()["rejected"]}
    assert rejected == dict.fromkeys(forged, "BAD_DEVICE_SIGNATURE")
    assert admin.books() == 0
