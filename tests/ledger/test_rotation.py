"""The ledger key's rotation, pure: an auditor and a witness that trust the old key follow the
chain through the key_rotation leaf and the handover checkpoint signed by both keys, and refuse
what an attacker without the old key can make (a handover signed by the new key alone, a
rotation the source hides), and a checkpoint the retired key signs after the handover."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from duopass.ledger import (
    Checkpoint,
    LedgerError,
    LedgerReason,
    MemoryTree,
    NoteSignature,
    NoteSigner,
    RootHash,
    consistency_proof,
    hash_leaf,
    sign_checkpoint,
)
from duopass.ledger.audit import Consistency, FindingCode, audit_log
from duopass.ledger.audit_state import format_state, read_state
from duopass.ledger.cosignature import Cosigner
from duopass.ledger.events import EventType, event
from duopass.ledger.leaf import encode_leaf, parse_leaf
from duopass.ledger.rotation import (
    Rotation,
    follow,
    handover_extension,
    rotation_body,
    rotation_of,
)
from duopass.ledger.witness import AddCheckpoint, decide

ORIGIN = "demo-univ/ledger"


def _leaf(i: int) -> bytes:
    return encode_leaf("payment", 1_700_000_000 + i, "demo-univ", {"amount": i, "seq": i})


class RotatingLog:
    """A log in memory whose key rotates: checkpoints signed as the server signs them."""

    def __init__(self) -> None:
        self.tree = MemoryTree()
        self.leaves: list[bytes] = []
        self.notes: dict[int, bytes] = {}
        self.rotated: list[int] = []
        self.signer = self.first = NoteSigner.generate(ORIGIN)

    def grow(self, count: int) -> None:
        for _ in range(count):
            self.append(_leaf(len(self.leaves)))

    def append(self, data: bytes) -> None:
        self.leaves.append(data)
        self.tree.append(hash_leaf(data))

    def sign(
        self, signers: Sequence[NoteSigner] | None = None, extensions: tuple[str, ...] = ()
    ) -> bytes:
        checkpoint = Checkpoint(ORIGIN, self.tree.size, self.tree.root(), extensions)
        note = sign_checkpoint(checkpoint, signers or [self.signer])
        self.notes[self.tree.size] = note
        return note

    def rotate(self, new: NoteSigner, handover_signers: Sequence[NoteSigner] | None = None) -> int:
        body = rotation_body(self.signer.verifier, new.verifier)
        self.append(event(EventType.KEY_ROTATION, 1_700_000_500, "demo-univ", body))
        self.rotated.append(len(self.leaves) - 1)
        self.sign(handover_signers or [self.signer, new], (handover_extension(new.verifier),))
        self.signer = new
        return len(self.leaves) - 1

    # LogSource and KeySource
    def entries(self, start: int, count: int, /) -> Sequence[bytes]:
        return self.leaves[start : start + count]

    def consistency(self, old: int, new: int, /) -> Sequence[bytes]:
        return consistency_proof(self.tree, old, new)

    def rotations(self) -> Sequence[int]:
        return list(self.rotated)

    def checkpoint_at(self, size: int, /) -> bytes | None:
        return self.notes.get(size)


def _trusted(log: RotatingLog) -> Checkpoint:
    return Checkpoint(ORIGIN, log.tree.size, log.tree.root())


def test_an_audit_from_before_the_rotation_follows_the_chain():
    log = RotatingLog()
    log.grow(5)
    log.sign()
    trusted = _trusted(log)
    old, new, newer = log.first, NoteSigner.generate(ORIGIN), NoteSigner.generate(ORIGIN)
    first_leaf = log.rotate(new)
    log.grow(4)
    second_leaf = log.rotate(newer)
    log.grow(3)
    note = log.sign()
    for state in (trusted, None):  # from a trusted checkpoint, and a first audit
        report = audit_log(note, log, old.verifier, trusted=state, page=4, keys=log)
        assert report.ok, report.findings
        assert report.key == newer.verifier
        assert [r.index for r in report.rotations] == [first_leaf, second_leaf]
        assert report.consistency in (Consistency.EXTENDS, Consistency.FIRST)
    # the handover itself is the latest checkpoint: it verifies, and the chain is at the new key
    log2 = RotatingLog()
    log2.grow(3)
    log2.rotate(new)
    report = audit_log(log2.notes[4], log2, log2.first.verifier, keys=log2)
    assert report.ok and report.key == new.verifier, report.findings
    # an auditor whose state trusts the new key does not go back through the rotation
    again = audit_log(note, log, newer.verifier, trusted=_trusted(log), keys=log)
    assert again.ok and again.consistency is Consistency.SAME and not again.rotations


@pytest.mark.parametrize("forged_line", [False, True])
def test_a_handover_signed_by_the_new_key_alone_fails(forged_line):
    """What an attacker holding the database but not the old key can make: a rotation leaf to
    its own key, a handover signed by that key alone (with or without a line made up under the
    old key's name and hash), later checkpoints signed by its key."""
    log = RotatingLog()
    log.grow(5)
    old = log.first
    log.sign()
    trusted = _trusted(log)
    attacker = NoteSigner.generate(ORIGIN)
    index = log.rotate(attacker, handover_signers=[attacker])
    if forged_line:
        made_up = NoteSignature(ORIGIN, old.key_hash, bytes(64)).line().encode()
        log.notes[index + 1] += made_up
    log.grow(2)
    note = log.sign()
    report = audit_log(note, log, old.verifier, trusted=trusted, keys=log)
    codes = [f.code for f in report.findings]
    assert codes == [FindingCode.KEY_ROTATION, FindingCode.BAD_SIGNATURE], report.findings
    reason = "BAD_SIGNATURE" if forged_line else "UNVERIFIED"
    assert f"the handover checkpoint {index + 1} is refused: {reason}" in report.findings[0].message
    assert report.checkpoint is None and report.key is None


def test_a_rotation_hidden_from_the_key_list_fails():
    log = RotatingLog()
    log.grow(3)
    old = log.first
    index = log.rotate(NoteSigner.generate(ORIGIN))
    log.grow(2)
    log.rotated.clear()  # the source names no rotation
    hidden = log.sign([old])  # and the retired key signs again
    report = audit_log(hidden, log, old.verifier, keys=log)
    assert [(f.code, f.index) for f in report.findings] == [(FindingCode.KEY_ROTATION, index)]
    no_source = audit_log(hidden, log, old.verifier)  # an auditor without a key source
    assert [f.code for f in no_source.findings] == [FindingCode.KEY_ROTATION]


def test_the_retired_key_never_signs_again():
    log = RotatingLog()
    log.grow(3)
    old = log.first
    log.rotate(NoteSigner.generate(ORIGIN))
    log.grow(2)
    forged = log.sign([old])
    report = audit_log(forged, log, old.verifier, keys=log)
    assert [f.code for f in report.findings] == [FindingCode.BAD_SIGNATURE], report.findings


def test_a_rotation_from_a_key_the_chain_does_not_lead_to_fails():
    log = RotatingLog()
    log.grow(2)
    stranger = NoteSigner.generate(ORIGIN)
    log.signer = stranger  # the leaf names a previous key the auditor never trusted
    log.rotate(NoteSigner.generate(ORIGIN))
    report = audit_log(log.sign(), log, log.first.verifier, keys=log)
    assert [f.code for f in report.findings] == [
        FindingCode.KEY_ROTATION,
        FindingCode.BAD_SIGNATURE,
    ]
    assert "which the chain does not lead to" in report.findings[0].message


def test_a_handover_of_another_tree_fails():
    log = RotatingLog()
    log.grow(3)
    old, new = log.first, NoteSigner.generate(ORIGIN)
    index = log.rotate(new)
    log.grow(2)
    note = log.sign()
    size = index + 1
    other = Checkpoint(
        ORIGIN, size, RootHash(hash_leaf(b"another tree")), (handover_extension(new.verifier),)
    )
    log.notes[size] = sign_checkpoint(other, [old, new])  # both keys, another root
    report = audit_log(note, log, old.verifier, keys=log)
    assert [(f.code, f.index) for f in report.findings] == [(FindingCode.KEY_ROTATION, index)]
    assert "rotation leaf is not proved included" in report.findings[0].message


def test_the_state_records_the_key_trusted_now():
    log = RotatingLog()
    log.grow(2)
    note = log.sign()
    new = NoteSigner.generate(ORIGIN)
    log.rotate(new)
    handover = log.notes[3]
    signed, key = read_state(format_state(handover, new.verifier), log.first.verifier)
    assert key == new.verifier and signed.checkpoint.size == 3
    signed, key = read_state(format_state(note), log.first.verifier)  # version 1
    assert key == log.first.verifier and signed.checkpoint.size == 2
    with pytest.raises(LedgerError) as refused:
        read_state(format_state(note, new.verifier), log.first.verifier)
    assert refused.value.reason is LedgerReason.UNVERIFIED


def test_the_witness_follows_the_handover():
    log = RotatingLog()
    old, new = log.first, NoteSigner.generate(ORIGIN)
    cosigner = Cosigner.generate("witness.test/w1")
    log.grow(3)
    first = log.sign()
    decision = decide(AddCheckpoint(0, (), first), None, old.verifier, cosigner, 1)
    assert decision.status == 200 and decision.log_key == old.verifier
    held = decision.checkpoint
    index = log.rotate(new)
    handover = log.notes[index + 1]
    proof = tuple(log.consistency(3, index + 1))
    decision = decide(AddCheckpoint(3, proof, handover), held, old.verifier, cosigner, 2)
    assert decision.status == 200 and decision.log_key == new.verifier
    held = decision.checkpoint
    assert held is not None
    log.grow(2)
    later = log.sign()
    proof = tuple(log.consistency(held.size, log.tree.size))
    request = AddCheckpoint(held.size, proof, later)
    assert decide(request, held, old.verifier, cosigner, 3).status == 403  # the old key: no
    assert decide(request, held, new.verifier, cosigner, 3).status == 200
    retired = sign_checkpoint(Checkpoint(ORIGIN, log.tree.size, log.tree.root()), [old])
    refused = decide(AddCheckpoint(held.size, proof, retired), held, new.verifier, cosigner, 3)
    assert refused.status == 403


def test_a_witness_refuses_a_handover_the_next_key_did_not_sign():
    old, new = NoteSigner.generate(ORIGIN), NoteSigner.generate(ORIGIN)
    checkpoint = Checkpoint(
        ORIGIN, 1, RootHash(hash_leaf(b"x")), (handover_extension(new.verifier),)
    )
    with pytest.raises(LedgerError) as refused:
        follow(sign_checkpoint(checkpoint, [old]), old.verifier)
    assert refused.value.reason is LedgerReason.UNVERIFIED
    signed, key = follow(sign_checkpoint(checkpoint, [old, new]), old.verifier)
    assert key == new.verifier and signed.checkpoint.size == 1
    with pytest.raises(LedgerError):  # signed by the new key alone: not the log's key
        follow(sign_checkpoint(checkpoint, [new]), old.verifier)


def test_the_catalogue_takes_each_key_rotation_body_and_no_mixture():
    old, new = NoteSigner.generate(ORIGIN).verifier, NoteSigner.generate(ORIGIN).verifier
    ledger = rotation_body(old, new)
    daily = {"kid": "k1", "nbf": 1, "exp": 2}
    root = {**daily, "role": "root", "previous": "k0", "seq": 1, "by": 7}
    for body in (ledger, daily, root):
        event(EventType.KEY_ROTATION, 0, "demo-univ", body)
        assert rotation_of(0, parse_leaf(encode_leaf("key_rotation", 0, "demo-univ", body))) == (
            None if body is not ledger else Rotation(0, old, new)
        )
    mixtures = ({**daily, **ledger}, {**ledger, "kid": "k1"}, {**ledger, "role": "root"})
    for body in ({"ledger_key": new.vkey()}, *mixtures, {**root, "ledger_key": new.vkey()}):
        with pytest.raises(LedgerError) as refused:
            event(EventType.KEY_ROTATION, 0, "demo-univ", body)
        assert refused.value.reason is LedgerReason.MALFORMED
    other_log = NoteSigner.generate("other/log").verifier
    for body in (
        {"ledger_key": "not a key", "previous": old.vkey()},
        rotation_body(old, other_log),
    ):
        leaf = parse_leaf(encode_leaf("key_rotation", 0, "demo-univ", body))
        with pytest.raises(LedgerError):
            rotation_of(7, leaf)
    daily_leaf = parse_leaf(encode_leaf("key_rotation", 0, "demo-univ", daily))
    assert rotation_of(7, daily_leaf) is None
