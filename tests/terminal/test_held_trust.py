"""A terminal's trust store in its SQLite file (terminal.held_trust): the lists packed in rows,
read back equal, rewritten only where they changed, whichever process saved last."""

from __future__ import annotations

import os
from typing import Any

from duopass.protocol.bundle import Bundle, apply_bundle
from duopass.protocol.packed import INDEX_FROM
from duopass.protocol.trust import Policy
from duopass.terminal.store import Store


def _bundle(seq: int, since: int, iss: str, **lists: Any) -> Bundle:
    return Bundle(
        seq=seq, issued_at=seq, max_age_s=60, since=since, iss=iss, policy=Policy(), **lists
    )


def test_the_terminal_file_keeps_the_lists_packed_and_rewrites_only_what_changed(tmp_path):
    """Two processes on one directory: each save leaves exactly the store saved, whichever
    process wrote last, and a delta that revokes nothing leaves every list row as it was."""
    ctis = [os.urandom(12) for _ in range(INDEX_FROM + 10)]
    first, second = Store(tmp_path), Store(tmp_path)
    store = apply_bundle(None, _bundle(1, 0, "demo-univ", revoked_added=tuple(ctis)))
    store = apply_bundle(store, _bundle(2, 0, "other", frozen_added=("h-1", "h-22")))
    first.save_trust(store, whole=True, now=1, offset=0)
    assert first.trust() == store == second.trust()
    assert first.get("trust") is not None and len(first.get("trust")) < 4096  # type: ignore[arg-type]

    quiet = apply_bundle(store, _bundle(3, 2, "other"))
    before = first._db().total_changes
    first.save_trust(quiet, whole=False, now=2, offset=0)
    assert first._db().total_changes - before == 5  # the five meta values; no list row

    changed = apply_bundle(quiet, _bundle(4, 3, "other", frozen_removed=("h-1",)))
    second.save_trust(changed, whole=False, now=3, offset=0)
    later = apply_bundle(
        quiet, _bundle(5, 3, "other", revoked_added=(b"\x07" * 16,), frozen_added=("h-3",))
    )
    first.save_trust(later, whole=False, now=4, offset=0)  # saw generation 2, the file is at 3
    again = Store(tmp_path).trust()
    assert again == later and again.is_frozen("other", "h-1") and not again.is_frozen("other", "x")
    assert again.is_revoked("other", b"\x07" * 16) and again.is_revoked("demo-univ", ctis[-1])
