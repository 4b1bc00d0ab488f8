"""The anchored sizes come from an index (`anchors/sizes.u64`, duopass/server/anchor_index.py),
not a listing of the anchors folder on every `GET /v1/ledger/anchors/sizes`: the sizes listed
with folders that hold no anchor left out, pages by `after` and `limit`, a lost or short index
rebuilt, appends from several processes kept, and no folder created by a round whose anchors
all failed (docs/anchors.md)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from duopass.ledger import open_checkpoint
from duopass.server import anchor_index, anchoring
from tests.server.harness import Running, ready_wallet, running_server


def _anchor(folder: Path, size: int, kind: str = "timestamp.tsr") -> None:
    """A folder as the anchoring thread leaves it: the note, one anchor, the size indexed."""
    where = folder / str(size)
    where.mkdir(parents=True, exist_ok=True)
    (where / "note").write_bytes(b"note\n")
    (where / kind).write_bytes(b"anchor\n")
    anchor_index.add(folder, size)


def _empty(folder: Path, size: int) -> None:
    """A folder an older version left when every anchor of its round failed: a note alone."""
    (folder / str(size)).mkdir(parents=True)
    (folder / str(size) / "note").write_bytes(b"note\n")


def _all(folder: Path) -> list[int]:
    return anchor_index.page(folder, 0, 10**6, 2**63)


def test_sizes_are_listed_in_order_by_page_and_empty_folders_are_not(tmp_path):
    folder = tmp_path / "anchors"
    for size in (3, 5, 9, 12):
        _anchor(folder, size)
    _anchor(folder, 7, "cosignature-1a2b3c4d")  # a handover cosigned after 12 was stamped
    _anchor(folder, 9, "cosignature-1a2b3c4d")  # a second anchor: indexed once
    _empty(folder, 4)
    _empty(folder, 10)
    assert (folder / anchor_index.FILE_NAME).stat().st_size == 5 * 8
    assert _all(folder) == [3, 5, 7, 9, 12]
    assert anchor_index.page(folder, 0, 2, 100) == [3, 5]
    assert anchor_index.page(folder, 5, 2, 100) == [7, 9]
    assert anchor_index.page(folder, 4, 1000, 100) == [5, 7, 9, 12]
    assert anchor_index.page(folder, 6, 1000, 9) == [7, 9]  # none above `latest`
    assert anchor_index.page(folder, 12, 1000, 100) == []
    assert anchor_index.page(folder, 2**62, 1000, 2**63) == []
    assert [s for s in range(14) if anchor_index.holds(folder, s)] == [3, 5, 7, 9, 12]
    assert not anchor_index.repair(folder)  # the index says what the folders say


def test_a_lost_short_or_torn_index_is_rebuilt_from_the_folders(tmp_path):
    folder = tmp_path / "anchors"
    for size in range(1, 40):
        if size % 3:
            _anchor(folder, size)
        else:
            _empty(folder, size)
    wanted = [size for size in range(1, 40) if size % 3]
    index = folder / anchor_index.FILE_NAME
    index.unlink()  # lost (or written by no older version): the first reader builds it
    assert anchor_index.page(folder, 10, 3, 100) == [11, 13, 14]
    assert _all(folder) == wanted
    # A crash between an anchor and its record: the anchoring thread's start repairs it.
    (folder / "41").mkdir()
    (folder / "41" / "timestamp.tsr").write_bytes(b"anchor\n")
    index.write_bytes(index.read_bytes()[:-16])
    assert _all(folder) == wanted[:-2]
    assert anchor_index.repair(folder)
    assert _all(folder) == [*wanted, 41]
    # A record half appended is not read, and the next one is appended after the whole ones.
    with index.open("ab") as handle:
        handle.write(b"\x00\x00\x01")
    assert _all(folder) == [*wanted, 41]
    _anchor(folder, 50)
    assert _all(folder) == [*wanted, 41, 50]
    assert index.stat().st_size == (len(wanted) + 2) * 8


def _adds(folder: Path, sizes: list[int]) -> None:
    for size in sizes:
        anchor_index.add(folder, size)


def test_adds_from_several_processes_are_all_kept_in_order(tmp_path):
    folder = tmp_path / "anchors"
    _anchor(folder, 1)
    sizes = list(range(2, 402))
    for size in sizes:
        (folder / str(size)).mkdir()
        (folder / str(size) / "timestamp.tsr").write_bytes(b"anchor\n")
    forked = multiprocessing.get_context("fork")
    workers = [forked.Process(target=_adds, args=(folder, sizes[n::3])) for n in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert _all(folder) == [1, *sizes]
    assert not anchor_index.repair(folder)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Running]:
    with running_server(f"sqlite:///{tmp_path / 'd.db'}", tmp_path / "data") as srv:
        yield srv


def test_a_page_of_the_route_does_not_list_the_anchors_folder(server, monkeypatch):
    """1,500 anchored sizes and as many empty folders: once the index is built (the first
    request, as after an upgrade), a page is read from it and the folder is never listed."""
    folder = server.ctx.settings.data_dir / "anchors"
    for size in range(1, 3_001):
        (folder / str(size)).mkdir(parents=True)
        (folder / str(size) / "note").write_bytes(b"note\n")
        if size % 2:
            (folder / str(size) / "timestamp.tsr").write_bytes(b"anchor\n")
    (folder / "latest").write_text("2999\n")
    anchored = list(range(1, 3_000, 2))
    listings: list[str] = []
    for name in ("listdir", "scandir"):
        real = getattr(os, name)

        def counted(path: Any = ".", real: Callable[..., Any] = real) -> Any:
            if str(path) == str(folder):  # the anchors folder itself, not one size's
                listings.append(str(path))
            return real(path)

        monkeypatch.setattr(os, name, counted)
    http = server.http
    assert http.get("/v1/ledger/anchors/sizes").json()["sizes"] == anchored[:1000]
    assert listings, "the first request builds the index from the folders"
    listings.clear()
    after, found = 0, []
    while page := http.get("/v1/ledger/anchors/sizes", params={"after": after}).json()["sizes"]:
        found.extend(page)
        after = page[-1]
    assert found == anchored
    said = http.get("/v1/ledger/anchors/sizes", params={"after": 1000, "limit": 3}).json()
    assert said["sizes"] == [1001, 1003, 1005]
    assert http.get("/v1/ledger/anchors/sizes", params={"after": 2_999}).json()["sizes"] == []
    assert http.get("/v1/ledger/anchors/5").status_code == 200
    assert http.get("/v1/ledger/anchors/6").status_code == 404  # a folder, no anchor
    assert listings == []


def test_a_round_whose_anchors_all_fail_leaves_no_folder(tmp_path):
    with running_server(
        f"sqlite:///{tmp_path / 'd.db'}",
        tmp_path / "data",
        anchor_tsa_url="http://127.0.0.1:9/tsr",  # nothing listens there
        anchor_interval_s=3600,  # the thread waits; the test runs the round itself
    ) as srv:
        ready_wallet(srv.http, srv.admin(), "ann", balance=100)
        note = srv.http.get("/v1/ledger/checkpoint").content
        size = open_checkpoint(note, srv.ctx.keyring.ledger.verifier).checkpoint.size
        with httpx.Client(timeout=5) as client:
            assert anchoring.anchor_once(srv.ctx, client) == 0
        assert not (srv.ctx.settings.data_dir / "anchors" / str(size)).exists()
        assert srv.http.get("/v1/ledger/anchors/sizes").json() == {"sizes": []}
