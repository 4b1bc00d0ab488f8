"""Every anchor a server lists is audited, not only the latest (a tampered old token or
cosignature fails the audit); a quorum of witnesses on the latest anchored checkpoint
(`--witness-quorum`); and `--max-anchor-lag` catching a server whose anchors stopped while its
log grew (docs/anchors.md)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from duopass.cli.audit_anchors import AnchorPolicy, check_anchors
from duopass.cli.audit_source import HttpSource
from duopass.ledger import Checkpoint, MemoryTree, hash_leaf, open_checkpoint, sign_checkpoint
from duopass.server.keyring import Keyring
from tests.test_anchors import ORIGIN, Setup, anchoring_server, refused_as_fork, signed_and_anchored
from tests.test_audit import run_audit

HOUR_S = 3600


@pytest.fixture
def anchored(tmp_path: Path) -> Iterator[Setup]:
    with anchoring_server(tmp_path) as setup:
        yield setup


def test_every_anchor_is_listed_and_a_tampered_old_one_fails_the_audit(anchored):
    first = signed_and_anchored(anchored, "ann")
    second = signed_and_anchored(anchored, "bob")
    http = anchored.srv.http
    assert http.get("/v1/ledger/anchors/sizes").json() == {"sizes": [first, second]}
    assert http.get("/v1/ledger/anchors/sizes", params={"after": first}).json()["sizes"] == [second]
    assert http.get("/v1/ledger/anchors/sizes", params={"limit": 1}).json()["sizes"] == [first]
    assert http.get(f"/v1/ledger/anchors/{first}").json()["size"] == first
    assert http.get(f"/v1/ledger/anchors/{second + 1}").status_code == 404
    assert http.get("/v1/ledger/anchors/sizes", params={"limit": 1001}).status_code == 422
    token = anchored.folder(first) / "timestamp.tsr"
    data = bytearray(token.read_bytes())
    data[-3] ^= 0x01
    token.write_bytes(bytes(data))
    code, out = anchored.audit()
    assert code == 1, out
    assert f"FAILED       timestamp of checkpoint {first}: BAD_SIGNATURE" in out
    assert "anchors      1 earlier anchored checkpoints checked: FAILED (above)" in out
    assert "timestamp    OK, " in out  # the latest one's is fine
    data[-3] ^= 0x01
    token.write_bytes(bytes(data))
    (line,) = anchored.folder(first).glob("cosignature-*")
    text = line.read_text()
    line.write_text(text[:-6] + ("A" if text[-6] != "A" else "B") + text[-5:])
    code, out = anchored.audit()
    assert code == 1, out
    assert f"FAILED       witness of checkpoint {first}: BAD_SIGNATURE" in out


def test_an_old_anchor_of_another_tree_fails_the_audit(anchored):
    """The first anchored note replaced by a checkpoint of the same size, signed by the log's
    key, over another tree: the audit's consistency proof to it fails."""
    first = signed_and_anchored(anchored, "ann")
    signed_and_anchored(anchored, "bob")
    signer = Keyring.load(anchored.srv.ctx.settings.data_dir).ledger
    other = MemoryTree()
    for n in range(first):
        other.append(hash_leaf(n.to_bytes(4, "big")))
    forged = sign_checkpoint(Checkpoint(ORIGIN, other.size, other.root()), [signer])
    (anchored.folder(first) / "note").write_bytes(forged)
    code, out = anchored.audit()
    assert code == 1, out
    assert f"FAILED       anchors: the anchored checkpoint {first} fails: " in out


@pytest.fixture
def two(tmp_path: Path) -> Iterator[Setup]:
    with anchoring_server(tmp_path, witnesses=2) as setup:
        yield setup


def test_a_quorum_of_witnesses_is_enough_and_fewer_fails(two, caplog):
    signed_and_anchored(two, "ann")
    code, out = two.audit()
    assert code == 0, out
    assert "quorum       OK, 2 of 2 witnesses cosigned, quorum 2" in out
    refused = refused_as_fork(two, two.witnesses[0], caplog)  # w1 refuses, w2 cosigns
    deadline = time.monotonic() + 60
    while not list(two.folder(refused).glob("cosignature-*")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    code, out = two.audit()
    assert code == 1 and "FAILED       witness: no cosignature by witness.test/w1" in out, out
    code, out = two.audit("--witness-quorum", 1)
    assert code == 0, out
    assert "witness      witness.test/w1: no cosignature" in out
    assert "witness      witness.test/w2: cosigned at " in out
    assert "quorum       OK, 1 of 2 witnesses cosigned, quorum 1" in out
    code, out = two.audit("--witness-quorum", 3)
    assert code == 2


def test_a_server_that_stopped_anchoring_fails_the_lag(tmp_path, caplog):
    """No TSA, one witness whose cosignatures say an hour ago; once it refuses the log's newer
    checkpoint, the latest anchor is an hour old while the log moved on."""
    with anchoring_server(tmp_path, tsa=False, clock=lambda: time.time() - HOUR_S) as setup:
        first = signed_and_anchored(setup, "ann")
        code, out = setup.audit("--max-anchor-lag", 600, tsa=False)
        assert code == 0, out
        assert "anchor lag   OK, the audited checkpoint is anchored" in out
        later = refused_as_fork(setup, setup.witness, caplog)
        assert later > first
        code, out = setup.audit("--max-anchor-lag", 600, tsa=False)
        assert code == 1, out
        assert f"anchors      latest anchored checkpoint {first}, consistent: " in out
        assert "FAILED       anchor lag: latest anchor " in out and "more than 600" in out
        code, out = setup.audit("--max-anchor-lag", 2 * HOUR_S, tsa=False)
        assert code == 0 and "anchor lag   OK, latest anchor " in out, out


def test_the_lag_and_the_quorum_are_refused_without_what_they_need(anchored):
    key = anchored.srv.ctx.keyring.ledger.verifier.vkey()
    base = ("--url", anchored.srv.url, "--key", key, "--state", anchored.state)
    result = run_audit(*base, "--max-anchor-lag", 60)
    assert result.exit_code == 2 and "--max-anchor-lag needs --tsa-trust or --witness" in (
        result.stderr
    )
    result = run_audit(*base, "--witness-quorum", 1)
    assert result.exit_code == 2 and "more than the 0 --witness given" in result.stderr
    result = run_audit(*base[2:], "--db", "sqlite:///x.db", "--max-anchor-lag", 60)
    assert result.exit_code == 2 and "give --url with the anchor options" in result.stderr


def test_anchors_made_after_the_audited_checkpoint_are_checked_against_it(anchored):
    """The server signs and anchors while an audit reads the log: an anchored checkpoint above
    the audited one must extend it (a consistency proof from it), not fail the audit."""
    first = signed_and_anchored(anchored, "ann")
    second = signed_and_anchored(anchored, "bob")
    verifier = anchored.srv.ctx.keyring.ledger.verifier
    audited = open_checkpoint((anchored.folder(first) / "note").read_bytes(), verifier)
    policy = AnchorPolicy(None, [anchored.cosigner.key], 1, 60, time.time())
    source = HttpSource(anchored.srv.url)
    try:
        check = check_anchors(source, lambda _size: verifier, audited.checkpoint, policy)
        assert check.failed == 0, check.lines
        ahead = second - first
        said = (
            f"anchors      latest anchored checkpoint {second}, consistent: {ahead} entries ahead"
        )
        assert any(line.startswith(said) for line in check.lines), check.lines
        assert "anchor lag   OK, a later one is anchored" in "\n".join(check.lines)
        signer = Keyring.load(anchored.srv.ctx.settings.data_dir).ledger
        other = MemoryTree()
        for n in range(second):
            other.append(hash_leaf(n.to_bytes(4, "big")))
        forged = sign_checkpoint(Checkpoint(ORIGIN, other.size, other.root()), [signer])
        (anchored.folder(second) / "note").write_bytes(forged)
        check = check_anchors(source, lambda _size: verifier, audited.checkpoint, policy)
        said = f"FAILED       anchors: the anchored checkpoint {second} fails: ROOT_MISMATCH"
        assert said in "\n".join(check.lines)
    finally:
        source.close()


def test_the_server_asks_again_from_the_size_a_409_names(anchored):
    """tlog-witness: a witness that holds another size answers 409 with it (here it lost its
    state: 0); the server asks once more from there and is cosigned."""
    signed_and_anchored(anchored, "ann")
    (anchored.witness.folder / "held.note").unlink()
    second = signed_and_anchored(anchored, "bob")
    held = anchored.witness.held
    assert held is not None and held.size == second
    code, out = anchored.audit()
    assert code == 0, out
