"""SQLite: a journal batch's unit keeps its savepoint's journal (the pages the batch changes, as
they were) in memory instead of a temporary file, and its connection goes back to the pool as
every other connection is; a large batch rolled back to its savepoint settles as before."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from duopass.protocol import SigningKey
from duopass.server.services.journals.signatures import PARALLEL_FROM
from tests.server.harness import Running, TerminalClient, Wallet, enrolled_till, ready_wallet

MEMORY, DEFAULT = 2, 0
"""`PRAGMA temp_store`'s answers."""


@contextmanager
def temp_stores(running: Running) -> Iterator[tuple[list[int], list[int]]]:
    """The temporary store of each connection as its transaction begins, and as it goes back
    to the pool, while the block runs (listeners on the server's own engine, removed after)."""
    engine = running.ctx.db.engine
    begun: list[int] = []
    returned: list[int] = []

    def at_begin(connection: Any) -> None:
        begun.append(_temp_store(connection.connection.driver_connection))

    def at_checkin(dbapi_connection: Any, _record: Any) -> None:
        if dbapi_connection is not None:  # None: an invalidated connection, closed
            returned.append(_temp_store(dbapi_connection))

    event.listen(engine, "begin", at_begin)
    event.listen(engine.pool, "checkin", at_checkin)
    try:
        yield begun, returned
    finally:
        event.remove(engine, "begin", at_begin)
        event.remove(engine.pool, "checkin", at_checkin)


def _temp_store(driver: Any) -> int:
    return int(driver.execute("PRAGMA temp_store").fetchone()[0])


def _entries(wallet: Wallet, till: TerminalClient, first: int, n: int, forger: SigningKey) -> Any:
    """`n` entries from `first` on, every tenth (seq 3, 13, ...) signed by `forger`."""
    own, entries = wallet.key, []
    for seq in range(first, first + n):
        wallet.key = forger if seq % 10 == 3 else own
        entries.append(till.entry(wallet.code(), seq=seq, amount=10))
    wallet.key = own
    return entries


def test_a_journal_batchs_unit_journals_in_memory_and_gives_its_connection_back_as_it_was(
    sqlite_server: Running,
) -> None:
    admin = sqlite_server.admin()
    wallet = ready_wallet(sqlite_server.http, admin, "molly", balance=10_000)
    till, _ = enrolled_till(sqlite_server.http, admin)
    entries = _entries(wallet, till, 1, PARALLEL_FROM + 7, SigningKey.generate())
    with temp_stores(sqlite_server) as (begun, returned):
        answer = till.journal(entries)
        assert answer.status_code == 200, answer.text
        journal_unit = list(begun)
        other = sqlite_server.http.get("/v1/ledger/entries", params={"start": 0})
        assert other.status_code == 200
    assert MEMORY in journal_unit  # the batch's unit: set before its BEGIN IMMEDIATE
    assert begun.count(MEMORY) == journal_unit.count(MEMORY)  # no other unit's
    assert returned and set(returned) == {DEFAULT}  # every connection given back as it was


def test_a_large_batch_rolled_back_past_64_kib_of_journal_settles_again_right(
    sqlite_server: Running,
) -> None:
    """Held entries first, so that the large batch changes pages that were there before it
    (its savepoint journal past SQLite's 64 KiB, in memory); every tenth entry forged, so it is
    rolled back to its savepoint and settled again on the verdicts read."""
    admin = sqlite_server.admin()
    wallet = ready_wallet(sqlite_server.http, admin, "mabel", balance=100_000)
    till, merchant = enrolled_till(sqlite_server.http, admin)
    forger = SigningKey.generate()
    held = _entries(wallet, till, 1, 300, forger)
    assert till.journal(held).status_code == 200
    first = len(held) + 1
    entries = _entries(wallet, till, first, 300, forger)
    with temp_stores(sqlite_server) as (begun, _returned):
        answer = till.journal(entries)
    assert answer.status_code == 200, answer.text
    assert MEMORY in begun
    forged = [seq for seq in range(1, first + len(entries)) if seq % 10 == 3]
    rejected = {r["seq"]: r["reason"] for r in answer.json()["rejected"]}
    assert rejected == dict.fromkeys([s for s in forged if s >= first], "BAD_DEVICE_SIGNATURE")
    assert answer.json()["acked_seq"] == first + len(entries) - 1
    booked = 10 * (first + len(entries) - 1 - len(forged))
    assert admin.account(wallet.account_id)["balance"] == 100_000 - booked
    assert admin.account(merchant)["balance"] == booked + 10 * len(forged)  # those in pending
    assert admin.books() == 0
