"""Anchors of signed checkpoints (docs/anchors.md): a server with a local RFC 3161 TSA
(`openssl ts -reply`) and a C2SP witness of our own anchors each new checkpoint in the
background; `duopass audit` checks both, and fails on a tampered token, a token over another
checkpoint, a tampered cosignature, or a TSA or witness it does not trust."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from duopass.cli.app import app
from duopass.demo.witness import Witness, running_witness
from duopass.ledger import Checkpoint, MemoryTree, hash_leaf, open_checkpoint, sign_checkpoint
from duopass.ledger.cosignature import Cosigner
from duopass.server.keyring import Keyring
from tests.server.harness import Running, ready_wallet, running_server
from tests.test_audit import run_audit
from tests.tsa import Authority, make_authority, serving

ORIGIN = "demo-univ/ledger"
WAIT_S = 60.0  # a deadline so a broken anchor fails the test instead of hanging it


@dataclass
class Setup:
    srv: Running
    witnesses: list[Witness]
    authority: Authority
    trust: Path
    state: Path

    @property
    def witness(self) -> Witness:
        return self.witnesses[0]

    @property
    def cosigner(self) -> Cosigner:
        return self.witness.cosigner

    def audit(self, *extra: object, tsa: bool = True) -> tuple[int, str]:
        keys = [arg for w in self.witnesses for arg in ("--witness", w.cosigner.key.vkey())]
        result = run_audit(
            "--url", self.srv.url, "--key", self.srv.ctx.keyring.ledger.verifier.vkey(),
            "--state", self.state, *(("--tsa-trust", self.trust) if tsa else ()), *keys, *extra,
        )  # fmt: skip
        return result.exit_code, result.stdout

    def folder(self, size: int) -> Path:
        return self.srv.ctx.settings.data_dir / "anchors" / str(size)


@contextmanager
def anchoring_server(
    tmp_path: Path, *, witnesses: int = 1, tsa: bool = True, clock: Callable[[], float] = time.time
) -> Iterator[Setup]:
    """A server anchoring to the tests' TSA (unless `tsa` is false) and `witnesses` witnesses of
    our own (their cosignatures stating `clock`'s time), each on 127.0.0.1."""
    data = tmp_path / "data"
    log_key = Keyring.create(data, origin=ORIGIN).ledger.verifier
    authority = make_authority(tmp_path / "tsa")
    trust = tmp_path / "tsa-trust.pem"
    trust.write_bytes(authority.trust)
    kept = [
        Witness(tmp_path / f"witness{n}", log_key, Cosigner.generate(f"witness.test/w{n}"), clock)
        for n in range(1, witnesses + 1)
    ]
    with ExitStack() as stack:
        urls = [stack.enter_context(running_witness(w)) for w in kept]
        srv = stack.enter_context(
            running_server(
                f"sqlite:///{tmp_path / 'd.db'}",
                data,
                anchor_tsa_url=stack.enter_context(serving(authority)) if tsa else None,
                anchor_witnesses=tuple(
                    f"{url} {w.cosigner.key.vkey()}" for url, w in zip(urls, kept, strict=True)
                ),
                anchor_interval_s=0.05,
            )
        )
        yield Setup(srv, kept, authority, trust, tmp_path / "audit-state.json")


@pytest.fixture
def anchored(tmp_path: Path) -> Iterator[Setup]:
    with anchoring_server(tmp_path) as setup:
        yield setup


def signed(setup: Setup, holder: str) -> int:
    """Grow the log by one holder and have the server sign a checkpoint: its size."""
    srv = setup.srv
    ready_wallet(srv.http, srv.admin(), holder, balance=100)
    note = srv.http.get("/v1/ledger/checkpoint").content
    return open_checkpoint(note, srv.ctx.keyring.ledger.verifier).checkpoint.size


def signed_and_anchored(setup: Setup, holder: str) -> int:
    """Grow the log, have the server sign a checkpoint, wait until every anchor holds it."""
    size = signed(setup, holder)
    wanted = len(setup.witnesses)
    tsa = setup.srv.ctx.settings.anchor_tsa_url is not None
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        answer = setup.srv.http.get("/v1/ledger/anchors")
        body = answer.json() if answer.status_code == 200 else {}
        stamped = bool(body.get("timestamp")) or not tsa
        if body.get("size") == size and stamped and len(body["cosignatures"]) == wanted:
            return size
        time.sleep(0.05)
    raise AssertionError(f"checkpoint {size} was not anchored: {body}")


def refused_as_fork(setup: Setup, witness: Witness, caplog: pytest.LogCaptureFixture) -> int:
    """`witness` is shown another tree of this log at the size it holds (as a server rolled
    back and re-signed would make); the server's next checkpoint is signed and refused by it."""
    srv = setup.srv
    held = witness.held
    assert held is not None
    signer = Keyring.load(srv.ctx.settings.data_dir).ledger
    fork = MemoryTree()
    for n in range(held.size):  # the size the witness last cosigned, another root
        fork.append(hash_leaf(n.to_bytes(4, "big")))
    forked = sign_checkpoint(Checkpoint(ORIGIN, fork.size, fork.root()), [signer])
    (witness.folder / "held.note").write_bytes(forked)
    size = signed(setup, f"forked{held.size}")
    said = f"witness {witness.cosigner.key.name} refuses checkpoint {size} as a fork"
    deadline = time.monotonic() + WAIT_S
    while said not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.05)
    assert said in caplog.text
    return size


def test_both_anchors_are_made_in_the_background_and_pass_the_audit(anchored):
    first = signed_and_anchored(anchored, "ann")
    code, out = anchored.audit()
    assert code == 0, out
    assert f"anchors      latest anchored checkpoint {first}, consistent: " in out
    assert "timestamp    OK, " in out and "by CN=duopass test TSA" in out
    assert "witness      witness.test/w1: cosigned at " in out
    second = signed_and_anchored(anchored, "bob")  # the witness checks 1st..2nd consistency
    assert second > first
    held = anchored.witness.held
    assert held is not None and held.size == second
    code, out = anchored.audit()
    assert code == 0 and f"anchors      latest anchored checkpoint {second}," in out, out
    assert "anchors      1 earlier anchored checkpoints checked: each OK" in out


def test_a_tampered_token_fails_the_audit(anchored):
    size = signed_and_anchored(anchored, "ann")
    token = anchored.folder(size) / "timestamp.tsr"
    data = bytearray(token.read_bytes())
    data[-3] ^= 0x01  # inside the TSA's signature
    token.write_bytes(bytes(data))
    code, out = anchored.audit()
    assert code == 1 and "FAILED       timestamp: BAD_SIGNATURE" in out, out
    assert "audit FAILED: 1 finding(s)" in out


def test_a_token_over_another_checkpoint_fails_the_audit(anchored):
    first = signed_and_anchored(anchored, "ann")
    second = signed_and_anchored(anchored, "bob")
    shutil.copy(anchored.folder(first) / "timestamp.tsr", anchored.folder(second))
    code, out = anchored.audit()
    assert code == 1 and "FAILED       timestamp: BAD_SIGNATURE" in out, out
    assert "Mismatch between messages" in out


def test_a_token_from_an_untrusted_tsa_fails_the_audit(anchored, tmp_path):
    signed_and_anchored(anchored, "ann")
    other = tmp_path / "other.pem"
    other.write_bytes(make_authority(tmp_path / "other").trust)
    code, out = anchored.audit("--tsa-trust", other)
    assert code == 1 and "FAILED       timestamp: BAD_SIGNATURE" in out, out
    assert "ErrorStack" not in out


def test_a_tampered_cosignature_fails_the_audit(anchored):
    size = signed_and_anchored(anchored, "ann")
    (line,) = anchored.folder(size).glob("cosignature-*")
    text = line.read_text()
    flipped = "A" if text[-6] != "A" else "B"
    line.write_text(text[:-6] + flipped + text[-5:])
    code, out = anchored.audit()
    assert code == 1 and "FAILED       witness: BAD_SIGNATURE" in out, out


def test_a_cosignature_by_another_witness_is_not_counted(anchored):
    signed_and_anchored(anchored, "ann")
    stranger = Cosigner.generate("witness.test/w2")
    code, out = anchored.audit("--witness", stranger.key.vkey())
    assert code == 1 and "FAILED       witness: no cosignature by witness.test/w2" in out, out


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--anchor-witness", "http://127.0.0.1:9 not-a-key"], "a witness's vkey: BAD_KEY"),
        (
            ["--anchor-witness", "127.0.0.1:9 w+00000000+AA=="],
            "a witness is '<http(s) URL> <vkey>'",
        ),
        (["--anchor-tsa-url", "ftp://tsa.example"], "a TSA is an http(s) URL"),
    ],
)
def test_serve_refuses_an_anchor_it_cannot_use_in_one_line(tmp_path, flags, said):
    result = CliRunner().invoke(app, ["serve", "--data-dir", str(tmp_path), *flags])
    assert result.exit_code == 2 and said in result.stderr, result.output


def test_a_witness_holding_a_fork_refuses_the_server_s_checkpoint(anchored, caplog):
    """The witness was shown another tree of this log: it refuses the server's checkpoint; no
    cosignature is kept, and an audit that asks for the witness fails."""
    signed_and_anchored(anchored, "ann")
    second = refused_as_fork(anchored, anchored.witness, caplog)
    deadline = time.monotonic() + WAIT_S  # the timestamp still anchors it
    while anchored.srv.http.get("/v1/ledger/anchors").json()["size"] != second:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert not list(anchored.folder(second).glob("cosignature-*"))
    held = anchored.witness.held
    assert held is not None and held.size < second
    code, out = anchored.audit()
    assert f"anchors      latest anchored checkpoint {second}," in out
    assert code == 1 and "FAILED       witness: no cosignature by witness.test/w1" in out, out
