"""C2SP checkpoints: exact formatting and a strict parser."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from duopass.ledger import (
    Checkpoint,
    LedgerError,
    LedgerReason,
    NoteSigner,
    RootHash,
    format_checkpoint,
    open_checkpoint,
    parse_checkpoint,
    sign_checkpoint,
)
from duopass.ledger.limits import CHECKPOINT_EXTENSIONS_MAX, TREE_SIZE_MAX

ROOT = RootHash(bytes(range(32)))
ROOT_B64 = base64.b64encode(ROOT).decode()
LOG = NoteSigner.from_seed("example.com/log", bytes(32))


def test_format_is_the_spec_layout():
    checkpoint = Checkpoint("example.com/log", 20852163, ROOT, ("ext one",))
    assert format_checkpoint(checkpoint) == f"example.com/log\n20852163\n{ROOT_B64}\next one\n"


@pytest.mark.parametrize(
    "text",
    [
        "",
        f"example.com/log\n5\n{ROOT_B64}",  # no final newline
        "example.com/log\n5\n",
        f"\n5\n{ROOT_B64}\n",  # empty origin
        f"example.com/log\n05\n{ROOT_B64}\n",
        f"example.com/log\n+5\n{ROOT_B64}\n",
        f"example.com/log\n-5\n{ROOT_B64}\n",
        f"example.com/log\n 5\n{ROOT_B64}\n",
        f"example.com/log\n5.0\n{ROOT_B64}\n",
        f"example.com/log\n٥\n{ROOT_B64}\n",  # a non-ASCII digit
        f"example.com/log\n{TREE_SIZE_MAX + 1}\n{ROOT_B64}\n",
        f"example.com/log\n{'9' * 5000}\n{ROOT_B64}\n",
        f"example.com/log\n5\n{ROOT_B64[:-1]}\n",
        f"example.com/log\n5\n{ROOT_B64[:-2]}B=\n",  # stray bits
        f"example.com/log\n5\n{base64.b64encode(bytes(31)).decode()}\n",
        f"example.com/log\n5\n{base64.urlsafe_b64encode(bytes([251] * 32)).decode()}\n",
        f"example.com/log\n5\n{ROOT_B64}\n\n",  # empty extension line
        f"example.com/log\r\n5\n{ROOT_B64}\n",
        f"example.com/log\n5\n{ROOT_B64}\n" + "ext\n" * (CHECKPOINT_EXTENSIONS_MAX + 1),
    ],
)
def test_malformed_checkpoints_are_refused(text):
    with pytest.raises(LedgerError) as caught:
        parse_checkpoint(text)
    assert caught.value.reason in {
        LedgerReason.MALFORMED,
        LedgerReason.HASH_LENGTH,
        LedgerReason.TOO_LARGE,
    }


def test_largest_size_parses():
    assert parse_checkpoint(f"o\n{TREE_SIZE_MAX}\n{ROOT_B64}\n").size == TREE_SIZE_MAX


lines = st.text(
    st.characters(min_codepoint=0x20, exclude_categories=["Cs"]), min_size=1, max_size=30
)


@given(
    lines,
    st.integers(0, TREE_SIZE_MAX),
    st.binary(min_size=32, max_size=32),
    st.lists(lines, max_size=CHECKPOINT_EXTENSIONS_MAX),
)
def test_checkpoints_round_trip(origin, size, root, extensions):
    checkpoint = Checkpoint(origin, size, RootHash(root), tuple(extensions))
    assert parse_checkpoint(format_checkpoint(checkpoint)) == checkpoint


def test_signed_checkpoint_opens_with_the_log_key_only():
    checkpoint = Checkpoint("example.com/log", 5, ROOT)
    witness = NoteSigner.from_seed("witness.example", bytes(range(32)))
    data = sign_checkpoint(checkpoint, [LOG, witness])
    assert open_checkpoint(data, LOG.verifier).checkpoint == checkpoint
    with pytest.raises(LedgerError) as caught:
        open_checkpoint(data, witness.verifier)
    assert caught.value.reason is LedgerReason.ORIGIN  # signed, but not this log's key name
    assert (
        open_checkpoint(data, witness.verifier, origin="example.com/log").checkpoint == checkpoint
    )
