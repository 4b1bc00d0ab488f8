"""transparency-dev/tessera's 15-entry log: every signed checkpoint reproduced byte for byte."""

from __future__ import annotations

import pytest

from duopass.ledger import (
    Checkpoint,
    LedgerError,
    LedgerReason,
    MemoryTree,
    NoteSigner,
    NoteVerifier,
    RootHash,
    hash_leaf,
    open_checkpoint,
    sign_checkpoint,
)
from tests.vectors import vector_dir

FOLDER = vector_dir("tlog", "tessera_log")
ORIGIN = "example.com/log/testdata"
VKEY = "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx"
SKEY = "PRIVATE+KEY+example.com/log/testdata+33d7b496+AeymY/SZAX0jZcJ8enZ5FY1Dz+wTML2yWSkK+9DSF3eg"
ENTRIES = "one two three four five six seven eit nain ten ileven twelf threeten fourten fivten"
CHECKPOINTS = sorted(FOLDER.glob("checkpoint.*"), key=lambda path: int(path.suffix[1:]))


def roots_by_size() -> list[RootHash]:
    tree = MemoryTree()
    roots = [tree.root()]
    for entry in ENTRIES.split():
        roots.append(tree.append(hash_leaf(entry.encode())))
    return roots


ROOTS = roots_by_size()


def test_every_checkpoint_file_is_loaded():
    assert [int(path.suffix[1:]) for path in CHECKPOINTS] == list(range(16))


def test_keys_round_trip():
    signer, verifier = NoteSigner.parse(SKEY), NoteVerifier.parse(VKEY)
    assert signer.verifier == verifier
    assert (signer.skey(), verifier.vkey()) == (SKEY, VKEY)
    assert SKEY not in repr(signer)


@pytest.mark.parametrize("path", CHECKPOINTS, ids=[path.name for path in CHECKPOINTS])
def test_checkpoint_reproduced_and_verified(path):
    size = int(path.suffix[1:])
    checkpoint = Checkpoint(ORIGIN, size, ROOTS[size])
    assert sign_checkpoint(checkpoint, [NoteSigner.parse(SKEY)]) == path.read_bytes()
    opened = open_checkpoint(path.read_bytes(), NoteVerifier.parse(VKEY))
    assert opened.checkpoint == checkpoint
    assert opened.note.verified_by == (NoteVerifier.parse(VKEY),)


def test_checkpoint_with_another_origin_is_refused():
    with pytest.raises(LedgerError) as caught:
        open_checkpoint(
            CHECKPOINTS[3].read_bytes(), NoteVerifier.parse(VKEY), origin="other.example"
        )
    assert caught.value.reason is LedgerReason.ORIGIN
