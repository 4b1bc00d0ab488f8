"""C2SP tlog-cosignature and the tlog-witness add-checkpoint exchange: cosignatures verify and
refuse tampering; our witness (over HTTP on 127.0.0.1) cosigns a log that grows consistently,
answers 409 with the size it holds, and refuses a fork, also after a restart."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from duopass.demo.witness import Witness, running_witness
from duopass.ledger import (
    Checkpoint,
    LedgerError,
    LedgerReason,
    MemoryTree,
    NoteSigner,
    consistency_proof,
    hash_leaf,
    sign_checkpoint,
)
from duopass.ledger.cosignature import (
    Cosigner,
    CosignerKey,
    cosign,
    cosigned_message,
    verify_cosignatures,
)
from duopass.ledger.witness import format_add_checkpoint, parse_add_checkpoint

ORIGIN = "example.test/log"


def _tree(leaves: list[bytes]) -> MemoryTree:
    tree = MemoryTree()
    for leaf in leaves:
        tree.append(hash_leaf(leaf))
    return tree


def _note(signer: NoteSigner, tree: MemoryTree) -> bytes:
    return sign_checkpoint(Checkpoint(ORIGIN, tree.size, tree.root()), [signer])


def test_a_cosignature_verifies_and_states_its_time():
    log = NoteSigner.generate(ORIGIN)
    witness = Cosigner.generate("witness.test/w1")
    note = _note(log, _tree([b"a", b"b"]))
    cosigned = cosign(note, witness, 1_700_000_000)
    (found,) = verify_cosignatures(cosigned, [witness.key])
    assert found.key == witness.key and found.timestamp == 1_700_000_000
    assert verify_cosignatures(cosigned, [Cosigner.generate("other").key]) == []
    assert CosignerKey.parse(witness.key.vkey()) == witness.key


def test_the_signed_message_is_the_spec_s():
    text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    assert cosigned_message(text, 1679315147) == (
        b"cosignature/v1\ntime 1679315147\n" + text.encode()
    )


def test_a_witness_key_id_uses_type_0x04():
    witness = Cosigner.generate("witness.test/w1")
    public = witness.key.public_key
    digest = hashlib.sha256(b"witness.test/w1\n\x04" + public).digest()
    assert witness.key.key_hash == int.from_bytes(digest[:4], "big")
    note_key = NoteSigner.generate("witness.test/w1").verifier.vkey()  # type 0x01
    with pytest.raises(LedgerError) as refused:
        CosignerKey.parse(note_key)
    assert refused.value.reason is LedgerReason.BAD_KEY


@pytest.mark.parametrize("where", [-6, -90])  # in the signature, in the timestamp
def test_a_tampered_cosignature_is_refused(where):
    log, witness = NoteSigner.generate(ORIGIN), Cosigner.generate("witness.test/w1")
    cosigned = cosign(_note(log, _tree([b"a"])), witness, 1_700_000_000).decode()
    flipped = "A" if cosigned[where] != "A" else "B"
    tampered = (cosigned[:where] + flipped + cosigned[where + 1 :]).encode()
    with pytest.raises(LedgerError) as refused:
        verify_cosignatures(tampered, [witness.key])
    assert refused.value.reason in (LedgerReason.BAD_SIGNATURE, LedgerReason.MALFORMED)


def test_add_checkpoint_requests_round_trip_and_refuse_junk():
    request = parse_add_checkpoint(format_add_checkpoint(3, [b"\x01" * 32], b"note\n"))
    assert (request.old, request.proof, request.note) == (3, (b"\x01" * 32,), b"note\n")
    for junk in (b"", b"old 01\n\nx", b"old 1\nnot base64\n\nx", b"new 1\n\nx"):
        with pytest.raises(LedgerError):
            parse_add_checkpoint(junk)


def _post(url: str, old: int, proof: list[bytes], note: bytes) -> httpx.Response:
    return httpx.post(f"{url}/add-checkpoint", content=format_add_checkpoint(old, proof, note))


def test_the_witness_cosigns_a_growing_log_and_refuses_a_fork(tmp_path: Path):
    log, cosigner = NoteSigner.generate(ORIGIN), Cosigner.generate("witness.test/w1")
    leaves = [bytes([i]) for i in range(9)]
    honest, fork = _tree(leaves), _tree([leaves[0], b"other", *leaves[2:]])  # leaf 1 rewritten
    three, honest9 = _tree(leaves[:3]), _note(log, honest)
    witness = Witness(tmp_path / "w", log.verifier, cosigner)
    with running_witness(witness) as url:
        first = _post(url, 0, [], _note(log, three))
        assert first.status_code == 200
        assert verify_cosignatures(_note(log, three) + first.content, [cosigner.key])
        stale = _post(url, 0, [], honest9)
        assert stale.status_code == 409 and stale.text == "3\n"
        forked = _post(url, 3, list(consistency_proof(fork, 3, 9)), _note(log, fork))
        assert forked.status_code == 422
        assert witness.held is not None and witness.held.size == 3
        stranger = _post(url, 3, [], _note(NoteSigner.generate(ORIGIN), honest))
        assert stranger.status_code == 403
    restarted = Witness(tmp_path / "w", log.verifier, cosigner)
    with running_witness(restarted) as url:
        again = _post(url, 3, list(consistency_proof(fork, 3, 9)), _note(log, fork))
        assert again.status_code == 422
        grown = _post(url, 3, list(consistency_proof(honest, 3, 9)), honest9)
        assert grown.status_code == 200
        assert restarted.held is not None and restarted.held.size == 9


def test_the_witness_answers_as_tlog_witness_says(tmp_path: Path):
    """c2sp.org/tlog-witness: 404 for another origin, 403 for a key it does not trust, 400 for
    an old size above the checkpoint's, a proof from size 0 or more than 63 proof lines, 409
    (with the size held, text/x.tlog.size) for another old size or another root at the size
    held, and the same checkpoint again cosigned."""
    log, cosigner = NoteSigner.generate(ORIGIN), Cosigner.generate("witness.test/w1")
    leaves = [bytes([i]) for i in range(5)]
    three, five = _tree(leaves[:3]), _tree(leaves)
    other3 = _tree([b"x", b"y", b"z"])
    witness = Witness(tmp_path / "w", log.verifier, cosigner)
    elsewhere = NoteSigner.generate("elsewhere.test/log")
    with running_witness(witness) as url:
        foreign = sign_checkpoint(Checkpoint("elsewhere.test/log", 3, three.root()), [elsewhere])
        assert _post(url, 0, [], foreign).status_code == 404
        stranger = _post(url, 0, [], _note(NoteSigner.generate(ORIGIN), three))
        assert stranger.status_code == 403
        assert _post(url, 4, [], _note(log, three)).status_code == 400  # old above the size
        assert _post(url, 0, [b"\x00" * 32], _note(log, three)).status_code == 400
        assert _post(url, 0, [b"\x00" * 32] * 64, _note(log, three)).status_code == 400
        assert witness.held is None
        assert _post(url, 0, [], _note(log, three)).status_code == 200
        again = _post(url, 3, [], _note(log, three))  # the same checkpoint: cosigned again
        assert again.status_code == 200 and again.text.startswith("— witness.test/w1 ")
        forked = _post(url, 3, [], _note(log, other3))  # another root at the size held
        assert forked.status_code == 409 and forked.text == "3\n"
        assert forked.headers["content-type"] == "text/x.tlog.size"
        behind = _post(url, 2, list(consistency_proof(five, 2, 5)), _note(log, five))
        assert behind.status_code == 409 and behind.text == "3\n"
        grown = _post(url, 3, list(consistency_proof(five, 3, 5)), _note(log, five))
        assert grown.status_code == 200
    assert witness.held is not None and witness.held.size == 5
