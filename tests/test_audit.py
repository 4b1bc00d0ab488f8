"""`duopass audit` and its pure checks: a clean log passes over HTTP and from its database (SQLite
and PostgreSQL); a rewritten leaf, a missing one, a forked or rolled-back log and a wrong key are
each named exactly."""

from __future__ import annotations

import base64
import hashlib
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import cbor2
import pytest
import typer
from cbor2 import CBORTag
from sqlalchemy import create_engine, text
from typer.testing import CliRunner, Result

from duopass.cli.audit import audit
from duopass.demo.serving import free_port
from duopass.ledger import (
    Checkpoint,
    LedgerError,
    LedgerReason,
    MemoryTree,
    NoteSigner,
    RootHash,
    consistency_proof,
    hash_leaf,
    open_checkpoint,
    root_of,
    sign_checkpoint,
    sign_note,
)
from duopass.ledger.audit import (
    FINDINGS_MAX,
    Consistency,
    FindingCode,
    audit_log,
    format_state,
    parse_leaf,
    parse_state,
)
from duopass.ledger.leaf import encode_leaf as leaf_bytes
from tests.pg import postgres_url_fixture  # noqa: F401
from tests.server.harness import Running, ready_wallet, running_server

ORIGIN = "demo-univ/ledger"

# -- the pure checks, against an in-memory log --------------------------------------------------


def _leaf(i: int) -> bytes:
    return leaf_bytes("payment", 1_700_000_000 + i, "demo-univ", {"amount": i, "seq": i})


class MemorySource:
    """A log in memory: the tree holds `signed`, the entries served may differ from them."""

    def __init__(self, signed: Sequence[bytes], served: Sequence[bytes] | None = None) -> None:
        self.tree = MemoryTree()
        for data in signed:
            self.tree.append(hash_leaf(data))
        self.served = list(signed if served is None else served)
        self.signer = NoteSigner.generate(ORIGIN)
        self.note = sign_checkpoint(
            Checkpoint(ORIGIN, self.tree.size, self.tree.root()), [self.signer]
        )

    def entries(self, start: int, count: int, /) -> Sequence[bytes]:
        return self.served[start : start + count]

    def consistency(self, old: int, new: int, /) -> Sequence[bytes]:
        return consistency_proof(self.tree, old, new)


@pytest.mark.parametrize("size", [0, 1, 2, 3, 7, 8, 9, 31, 64, 65, 100])
@pytest.mark.parametrize("page", [1, 3, 8, 1000])
def test_a_clean_log_passes_and_its_root_is_the_reference(size, page):
    leaves = [_leaf(i) for i in range(size)]
    source = MemorySource(leaves)
    report = audit_log(source.note, source, source.signer.verifier, page=page)
    assert report.ok and report.entries == size
    assert report.root == root_of([hash_leaf(data) for data in leaves])
    assert report.types == ((("payment", size),) if size else ())
    assert report.consistency is Consistency.FIRST


@pytest.mark.parametrize("page", [1, 4, 1000])
def test_a_rewritten_entry_is_named_whatever_the_page(page):
    for size in (1, 2, 5, 16, 37):
        for bad in {0, size // 2, size - 1}:
            served = [_leaf(i) for i in range(size)]
            served[bad] = _leaf(size + 1000)  # well-formed, but not what the tree holds
            source = MemorySource([_leaf(i) for i in range(size)], served)
            report = audit_log(source.note, source, source.signer.verifier, page=page)
            assert [f.code for f in report.findings] == [FindingCode.LEAF_HASH], (size, bad)
            assert report.findings[0].index == bad
            assert report.findings[0].message.startswith(f"entry {bad}: leaf hash does not match")


def test_missing_and_malformed_entries_are_named():
    leaves = [_leaf(i) for i in range(10)]
    served = leaves[:7]
    served[3] = b"\xa0"  # an empty map
    source = MemorySource(leaves, served)
    report = audit_log(source.note, source, source.signer.verifier, page=4)
    codes = [(f.code, f.index) for f in report.findings]
    assert codes == [(FindingCode.MALFORMED_LEAF, 3), (FindingCode.MISSING_ENTRY, 7)]
    assert report.root is None and report.entries == 7


def test_findings_beyond_the_limit_are_counted():
    leaves = [_leaf(i) for i in range(FINDINGS_MAX + 5)]
    source = MemorySource(leaves, [b"\x00"] * len(leaves))
    report = audit_log(source.note, source, source.signer.verifier)
    assert len(report.findings) == FINDINGS_MAX and report.unlisted == 6  # 25 leaves + the hash


def test_consistency_with_the_trusted_checkpoint():
    leaves = [_leaf(i) for i in range(20)]
    source = MemorySource(leaves)
    verifier = source.signer.verifier
    earlier = Checkpoint(ORIGIN, 13, root_of([hash_leaf(d) for d in leaves[:13]]))
    forged = Checkpoint(ORIGIN, 13, root_of([hash_leaf(d) for d in leaves[1:14]]))
    latest = open_checkpoint(source.note, verifier).checkpoint
    cases = [
        (earlier, Consistency.EXTENDS, []),
        (latest, Consistency.SAME, []),
        (Checkpoint(ORIGIN, 0, root_of([])), Consistency.EXTENDS, []),
        (forged, Consistency.FAILED, [FindingCode.INCONSISTENT]),
        (Checkpoint(ORIGIN, 20, forged.root), Consistency.FAILED, [FindingCode.INCONSISTENT]),
        (Checkpoint(ORIGIN, 21, forged.root), Consistency.FAILED, [FindingCode.ROLLBACK]),
    ]
    for trusted, consistency, codes in cases:
        report = audit_log(source.note, source, verifier, trusted=trusted)
        assert report.consistency is consistency, trusted
        assert [f.code for f in report.findings] == codes


def test_a_checkpoint_refused_stops_the_audit():
    source = MemorySource([_leaf(0)])
    other = NoteSigner.generate(ORIGIN).verifier
    malformed = FindingCode.MALFORMED_CHECKPOINT
    for note, key, code in [
        (source.note, other, FindingCode.BAD_SIGNATURE),
        (source.note, NoteSigner.generate("other/log").verifier, FindingCode.BAD_SIGNATURE),
        (b"not a note", source.signer.verifier, malformed),
        (sign_note("one line\n", [source.signer]), source.signer.verifier, malformed),
        (None, source.signer.verifier, FindingCode.NO_CHECKPOINT),
    ]:
        report = audit_log(note, source, key)
        assert [f.code for f in report.findings] == [code]
        assert report.consistency is Consistency.NOT_CHECKED and report.entries == 0
    wrong_origin = NoteSigner.generate("other/log")
    note = sign_checkpoint(Checkpoint(ORIGIN, 1, root_of([hash_leaf(_leaf(0))])), [wrong_origin])
    report = audit_log(note, source, wrong_origin.verifier)
    assert [f.code for f in report.findings] == [FindingCode.WRONG_LOG]


def _map(*pairs: bytes) -> bytes:
    return bytes([0xA0 + len(pairs)]) + b"".join(pairs)


def _nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth):
        value = [value]
    return value


GOOD_BODY = cbor2.dumps({"amount": 5}, canonical=True)
MALFORMED_LEAVES = {
    "empty": (b"", "premature end"),
    "not a map": (cbor2.dumps([1, 2, 3, 4]), "keys 1, 2, 3 and 4"),
    "three keys": (cbor2.dumps({1: "topup", 2: 1, 3: "iss"}, canonical=True), "keys 1, 2, 3 and 4"),
    "five keys": (
        cbor2.dumps({1: "t", 2: 1, 3: "i", 4: {}, 5: 0}, canonical=True),
        "keys 1, 2, 3 and 4",
    ),
    "text keys": (
        cbor2.dumps({"1": "t", "2": 1, "3": "i", "4": {}}, canonical=True),
        "keys 1, 2, 3 and 4",
    ),
    "empty type": (cbor2.dumps({1: "", 2: 1, 3: "i", 4: {}}, canonical=True), "event type (1)"),
    "negative time": (cbor2.dumps({1: "t", 2: -1, 3: "i", 4: {}}, canonical=True), "time (2)"),
    "boolean time": (
        cbor2.dumps({1: "t", 2: True, 3: "i", 4: {}}, canonical=True),
        "type bool is not allowed",
    ),
    "integer iss": (cbor2.dumps({1: "t", 2: 1, 3: 7, 4: {}}, canonical=True), "issuer (3)"),
    "list body": (cbor2.dumps({1: "t", 2: 1, 3: "i", 4: []}, canonical=True), "body (4)"),
    "integer body key": (
        cbor2.dumps({1: "t", 2: 1, 3: "i", 4: {1: 2}}, canonical=True),
        "not a text string",
    ),
    "nested integer key": (
        cbor2.dumps({1: "t", 2: 1, 3: "i", 4: {"a": [{1: 2}]}}, canonical=True),
        "not a text string",
    ),
    "float": (
        cbor2.dumps({1: "t", 2: 1, 3: "i", 4: {"a": 1.5}}, canonical=True),
        "type float is not allowed",
    ),
    "null": (
        cbor2.dumps({1: "t", 2: 1, 3: "i", 4: {"a": None}}, canonical=True),
        "type NoneType is not allowed",
    ),
    "tag": (
        cbor2.dumps({1: "t", 2: 1, 3: "i", 4: {"a": CBORTag(1, 0)}}, canonical=True),
        "tags are not allowed",
    ),
    "big tag": (
        cbor2.dumps({1: "t", 2: 1, 3: "i", 4: {"a": CBORTag(99_999, 0)}}, canonical=True),
        "tags are not allowed",
    ),
    "keys out of order": (cbor2.dumps({4: {}, 1: "t", 2: 1, 3: "i"}), "deterministically"),
    "long time": (
        _map(b"\x01\x61t", b"\x02\x1a\x00\x00\x00\x05", b"\x03\x61i", b"\x04\xa0"),
        "deterministically",
    ),
    "duplicate key": (
        _map(b"\x01\x61t", b"\x01\x61t", b"\x03\x61i", b"\x04\xa0"),
        "Duplicate map key",
    ),
    "indefinite body": (
        _map(b"\x01\x61t", b"\x02\x01", b"\x03\x61i", b"\x04\xbf\xff"),
        "indefinite length",
    ),
    "trailing byte": (
        _map(b"\x01\x61t", b"\x02\x01", b"\x03\x61i", b"\x04" + GOOD_BODY) + b"\x00",
        "deterministically",
    ),
    "deep": (
        cbor2.dumps({1: "t", 2: 1, 3: "i", 4: {"a": _nested(20)}}, canonical=True),
        "nesting depth",
    ),
}


@pytest.mark.parametrize("name", sorted(MALFORMED_LEAVES))
def test_malformed_leaves_are_refused(name):
    data, why = MALFORMED_LEAVES[name]
    with pytest.raises(LedgerError) as refused:
        parse_leaf(data)
    assert refused.value.reason is LedgerReason.MALFORMED
    assert why in str(refused.value)


def test_well_formed_leaves_parse():
    good = _map(b"\x01\x61t", b"\x02\x01", b"\x03\x61i", b"\x04" + GOOD_BODY)
    assert parse_leaf(good).body == {"amount": 5}
    body = {"cti": b"\x01" * 16, "ctr": -1, "list": [1, "a", {"k": b""}], "x": ""}
    leaf = parse_leaf(leaf_bytes("entry", 0, "demo-univ", body))
    assert (leaf.type, leaf.time, leaf.iss, leaf.body) == ("entry", 0, "demo-univ", body)


def test_state_round_trip_and_refusals():
    source = MemorySource([_leaf(0), _leaf(1)])
    verifier = source.signer.verifier
    state = parse_state(format_state(source.note), verifier)
    assert state.checkpoint.size == 2
    for data, reason in [
        (b"{", LedgerReason.MALFORMED),
        (b'{"version": 1}', LedgerReason.MALFORMED),
        (b'{"version": true, "checkpoint": ""}', LedgerReason.MALFORMED),
        (b" " * 200_000, LedgerReason.TOO_LARGE),
        (format_state(source.note), None),
    ]:
        key = verifier if reason is not None else NoteSigner.generate(ORIGIN).verifier
        with pytest.raises(LedgerError) as refused:
            parse_state(data, key)
        assert refused.value.reason is (reason or LedgerReason.UNVERIFIED)


# -- the command, against a real server and its database ----------------------------------------

_app = typer.Typer()
_app.command()(audit)


def run_audit(*args: object) -> Result:
    return CliRunner().invoke(_app, [str(arg) for arg in args])


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[Running]:
    with running_server(f"sqlite:///{tmp_path / 'd.db'}", tmp_path / "data") as running:
        ready_wallet(running.http, running.admin(), "ann", balance=500)
        running.http.get("/v1/ledger/checkpoint")  # the server signs when asked
        yield running


def _vkey(server: Running) -> str:
    return server.ctx.keyring.ledger.verifier.vkey()


def _trusted_size(server: Running, state: Path) -> int:
    return parse_state(state.read_bytes(), server.ctx.keyring.ledger.verifier).checkpoint.size


def _latest(server: Running) -> Checkpoint:
    note = server.http.get("/v1/ledger/checkpoint").content
    return open_checkpoint(note, server.ctx.keyring.ledger.verifier).checkpoint


def test_clean_audits_over_http_and_the_database_advance_the_state(srv, tmp_path):
    state, db = tmp_path / "audit-state.json", f"sqlite:///{tmp_path / 'd.db'}"
    first = run_audit("--url", srv.url, "--key", _vkey(srv), "--state", state, "--page", 4)
    assert first.exit_code == 0, first.output
    assert "first audit" in first.stdout and first.stdout.endswith("audit passed\n")
    size1 = _trusted_size(srv, state)
    assert f"entries      {size1} of {size1} checked; root matches" in first.stdout
    assert "holder_create 1" in first.stdout and "credential_issue 1" in first.stdout

    ready_wallet(srv.http, srv.admin(), "bob", balance=100)
    key_file = tmp_path / "ledger.vkey"
    key_file.write_text(_vkey(srv) + "\n")
    second = run_audit("--url", srv.url, "--key-file", key_file, "--state", state)
    assert second.exit_code == 0, second.output
    size2 = _trusted_size(srv, state)
    assert size2 > size1 and f"extends the trusted checkpoint {size1}" in second.stdout

    ready_wallet(srv.http, srv.admin(), "cy", balance=100)
    size3 = _latest(srv).size  # the server signs when asked; the database then holds it
    ready_wallet(srv.http, srv.admin(), "di", balance=100)  # not signed yet
    third = run_audit("--db", db, "--key", _vkey(srv), "--state", state, "--page", 3)
    assert third.exit_code == 0, third.output
    assert _trusted_size(srv, state) == size3 > size2
    assert f"extends the trusted checkpoint {size2}" in third.stdout
    assert "newer entries are not in a checkpoint yet" in third.stdout

    again = run_audit("--db", db, "--key", _vkey(srv), "--state", state)
    assert (
        again.exit_code == 0 and f"the same tree as the trusted checkpoint {size3}" in again.stdout
    )
    assert "unchanged" in again.stdout


def test_the_database_audit_writes_nothing(tmp_path):
    folder = tmp_path / "db"
    with running_server(f"sqlite:///{folder / 'd.db'}", tmp_path / "data") as server:
        ready_wallet(server.http, server.admin(), "ann", balance=500)
        _latest(server)
        vkey = _vkey(server)

    def files() -> dict[str, bytes]:
        return {path.name: hashlib.sha256(path.read_bytes()).digest() for path in folder.iterdir()}

    before = files()
    state = tmp_path / "s.json"
    result = run_audit("--db", f"sqlite:///{folder / 'd.db'}", "--key", vkey, "--state", state)
    assert result.exit_code == 0, result.output
    after = files()
    # A WAL reader, even a read-only one, needs the -shm index (and leaves an empty -wal beside it)
    assert after.pop("d.db-wal", hashlib.sha256(b"").digest()) == hashlib.sha256(b"").digest()
    after.pop("d.db-shm", None)
    assert after == before and state.exists()


def _rewrite(db: Path, index: int, data: bytes | None) -> None:
    """What an attacker with the database file does: drop the guard, then change the past."""
    connection = sqlite3.connect(db)
    with connection:
        if data is None:
            connection.execute("DROP TRIGGER ledger_leaves_no_delete")
            connection.execute('DELETE FROM ledger_leaves WHERE "index" = ?', (index,))
        else:
            connection.execute("DROP TRIGGER IF EXISTS ledger_leaves_no_update")
            connection.execute('UPDATE ledger_leaves SET data = ? WHERE "index" = ?', (data, index))
    connection.close()


@pytest.mark.parametrize("via", ["url", "db"])
def test_a_rewritten_leaf_is_named(srv, tmp_path, via):
    state, db = tmp_path / "audit-state.json", tmp_path / "d.db"
    source = ["--url", srv.url] if via == "url" else ["--db", f"sqlite:///{db}"]
    assert run_audit(*source, "--key", _vkey(srv), "--state", state).exit_code == 0
    trusted = state.read_bytes()
    entry = srv.http.get("/v1/ledger/entries/5").json()
    leaf = cbor2.loads(base64.b64decode(entry["data"]))
    _rewrite(db, 5, leaf_bytes(leaf[1], leaf[2] + 1, leaf[3], leaf[4]))  # well-formed, a lie
    _rewrite(db, 7, b"\xff")
    result = run_audit(*source, "--key", _vkey(srv), "--state", state, "--page", 2)
    assert result.exit_code == 1, result.output
    failures = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert failures == [
        "FAILED       entry 7: not a well-formed leaf: not CBOR as a leaf must be: not CBOR: "
        "CBORDecodeError: "
        "break code encountered where a data item was expected",
        "FAILED       entry 5: leaf hash does not match the signed tree "
        "(the first 5 entries match it, the first 6 do not)",
    ]
    assert result.stdout.endswith("audit FAILED: 2 finding(s)\n")
    assert state.read_bytes() == trusted


def test_a_missing_leaf_is_named(srv, tmp_path):
    db = tmp_path / "d.db"
    _rewrite(db, 3, None)
    args = ["--key", _vkey(srv), "--state", tmp_path / "s.json"]
    from_db = run_audit("--db", f"sqlite:///{db}", *args)
    assert from_db.exit_code == 1
    assert f"FAILED       entry 3: missing (the checkpoint covers {_latest(srv).size})" in (
        from_db.stdout
    )
    over_http = run_audit("--url", srv.url, *args)
    assert over_http.exit_code == 1
    assert "answered 500" in over_http.stdout and "entry 3 is missing" in over_http.stdout
    assert not (tmp_path / "s.json").exists()


@pytest.mark.parametrize("shift", [0, -3, +5])
def test_a_forked_or_rolled_back_log_is_refused(srv, tmp_path, shift):
    state = tmp_path / "audit-state.json"
    latest = _latest(srv)
    other_root = RootHash(hashlib.sha256(b"another history").digest())
    forged = Checkpoint(ORIGIN, latest.size + shift, other_root)  # signed by the log's own key
    state.write_bytes(format_state(sign_checkpoint(forged, [srv.ctx.keyring.ledger])))
    result = run_audit("--url", srv.url, "--key", _vkey(srv), "--state", state)
    assert result.exit_code == 1, result.output
    if shift > 0:
        expected = f"checkpoint {latest.size} is smaller than the trusted checkpoint {forged.size}"
    else:
        expected = (
            f"checkpoint {latest.size} (root {base64.b64encode(latest.root).decode()}) is not "
            f"consistent with the trusted checkpoint {forged.size} "
            f"(root {base64.b64encode(other_root).decode()})"
        )
    assert f"FAILED       {expected}" in result.stdout
    assert "FAILED against the trusted checkpoint" in result.stdout
    assert parse_state(state.read_bytes(), srv.ctx.keyring.ledger.verifier).checkpoint == forged


def test_a_wrong_key_is_a_bad_signature(srv, tmp_path):
    state = tmp_path / "s.json"
    for signer in (NoteSigner.generate(ORIGIN), NoteSigner.generate("someone/else")):
        result = run_audit("--url", srv.url, "--key", signer.verifier.vkey(), "--state", state)
        assert result.exit_code == 1, result.output
        assert "FAILED       bad checkpoint signature" in result.stdout
        assert not state.exists()


def test_usage_errors_exit_2(tmp_path):
    vkey = NoteSigner.generate(ORIGIN).verifier.vkey()
    other = NoteSigner.generate(ORIGIN)
    signed_by_other = tmp_path / "other.json"
    signed_by_other.write_bytes(
        format_state(sign_checkpoint(Checkpoint(ORIGIN, 0, root_of([])), [other]))
    )
    (tmp_path / "garbage.json").write_text("not json")
    url, db = f"http://127.0.0.1:{free_port()}", f"sqlite:///{tmp_path / 'none.db'}"
    state = ["--state", tmp_path / "s.json"]
    for args in [
        ["--key", vkey, *state],
        ["--url", url, "--db", db, "--key", vkey, *state],
        ["--url", url, *state],
        ["--url", url, "--key", vkey, "--key-file", tmp_path / "k", *state],
        ["--url", url, "--key-file", tmp_path / "absent", *state],
        ["--url", url, "--key", "not-a-key", *state],
        ["--url", url, "--key", vkey, *state],  # nothing listens there
        ["--url", "ftp://example.org", "--key", vkey, *state],
        ["--db", db, "--key", vkey, *state],  # no such file
        ["--db", "mysql://x/y", "--key", vkey, *state],
        ["--url", url, "--key", vkey, "--state", tmp_path / "garbage.json"],
        ["--url", url, "--key", vkey, "--state", signed_by_other],
        ["--url", url, "--key", vkey, *state, "--page", 0],
        ["--url", url, "--key", vkey, *state, "--page", 1001],
    ]:
        result = run_audit(*args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stdout == "", args
    assert not (tmp_path / "s.json").exists()


def test_entries_in_bulk(srv):
    size = _latest(srv).size
    pages = [
        srv.http.get("/v1/ledger/entries", params={"start": s, "count": 3})
        for s in range(0, size, 3)
    ]
    assert all(page.status_code == 200 for page in pages)
    assert [page.json()["start"] for page in pages] == list(range(0, size, 3))
    bulk = [entry for page in pages for entry in page.json()["entries"]]
    assert bulk == [srv.http.get(f"/v1/ledger/entries/{i}").json()["data"] for i in range(size)]
    whole = srv.http.get("/v1/ledger/entries", params={"start": 0}).json()["entries"]
    assert whole == bulk[: len(whole)] and len(whole) >= size
    end = srv.http.get("/v1/ledger/entries", params={"start": len(whole)})
    assert end.status_code == 200 and end.json() == {"start": len(whole), "entries": []}
    for params, code in [
        ({"start": len(whole) + 1}, "out_of_range"),
        ({"start": 0, "count": 0}, "invalid_request"),
        ({"start": 0, "count": 1001}, "invalid_request"),
        ({"start": -1}, "invalid_request"),
        ({}, "invalid_request"),
    ]:
        answer = srv.http.get("/v1/ledger/entries", params=params)
        assert answer.status_code == 422, params
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["code"] == code


def test_audit_of_a_postgresql_database(tmp_path, postgres_url):
    name = "t_" + uuid.uuid4().hex[:12]
    engine = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    url = postgres_url.rsplit("/", 1)[0] + f"/{name}"
    state = tmp_path / "s.json"
    with running_server(url, tmp_path / "data") as server:
        ready_wallet(server.http, server.admin(), "ann", balance=500)
        over_http = run_audit("--url", server.url, "--key", _vkey(server), "--state", state)
        assert over_http.exit_code == 0, over_http.output
        ready_wallet(server.http, server.admin(), "bob", balance=500)
        _latest(server)
        from_db = run_audit("--db", url, "--key", _vkey(server), "--state", state, "--page", 5)
        assert from_db.exit_code == 0, from_db.output
        assert "extends the trusted checkpoint" in from_db.stdout
        assert "postgresql" in from_db.stdout


@pytest.mark.parametrize(
    "url", ["mysql://auditor:hunter2-secret@db/ledger", "auditor:hunter2-secret at db"]
)
def test_a_database_url_refused_never_repeats_its_password(url):
    from duopass.server.store.db import read_only_engine

    with pytest.raises(ValueError, match=r"database URL|only sqlite") as refused:
        read_only_engine(url)
    assert "hunter2-secret" not in str(refused.value)
