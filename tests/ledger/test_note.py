"""C2SP signed notes: the spec's example, key strings, and strict opening."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from duopass.ledger import (
    LedgerError,
    LedgerReason,
    NoteSignature,
    NoteSigner,
    NoteVerifier,
    open_note,
    parse_note,
    sign_note,
)
from duopass.ledger.limits import NOTE_BYTES_MAX, NOTE_SIGNATURES_MAX

# The example of https://c2sp.org/signed-note ("Verifier keys", "Example").
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n"
    "— example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
).encode()

ALICE = NoteSigner.from_seed("alice.example/log", bytes(range(32)))
BOB = NoteSigner.from_seed("bob.example/witness", bytes(range(1, 33)))


def reason_of(call: Callable[..., object], *args: object) -> LedgerReason:
    with pytest.raises(LedgerError) as caught:
        call(*args)
    return caught.value.reason


def test_spec_example_verifies():
    verifier = NoteVerifier.parse(SPEC_VKEY)
    note = open_note(SPEC_NOTE, [verifier])
    assert note.text == "This is an example message.\n"
    assert note.verified_by == (verifier,)
    assert verifier.vkey() == SPEC_VKEY


def test_spec_example_altered_fails():
    verifier = NoteVerifier.parse(SPEC_VKEY)
    altered = SPEC_NOTE.replace(b"example message", b"example massage")
    assert reason_of(open_note, altered, [verifier]) is LedgerReason.BAD_SIGNATURE


@pytest.mark.parametrize(
    "vkey",
    [
        "",
        "example.com/foo",
        "example.com/foo+530d903a",
        "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # wrong hash
        "example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # upper hex
        "example.com/foo+0530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "example.com/foo+530d903a+AukyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # not Ed25519
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2",  # short
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k=",
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2l",  # stray bits
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k\n",
        "example com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "PRIVATE+KEY+example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
    ],
)
def test_malformed_verifier_keys_are_refused(vkey):
    assert reason_of(NoteVerifier.parse, vkey) is LedgerReason.BAD_KEY


def test_signer_keys_round_trip_and_refuse_a_wrong_hash():
    assert NoteSigner.parse(ALICE.skey()).verifier == ALICE.verifier
    assert NoteVerifier.parse(ALICE.verifier.vkey()) == ALICE.verifier
    name, hash_hex, seed = ALICE.skey().removeprefix("PRIVATE+KEY+").split("+", 2)
    wrong = f"PRIVATE+KEY+{name}+{int(hash_hex, 16) ^ 1:08x}+{seed}"
    assert reason_of(NoteSigner.parse, wrong) is LedgerReason.BAD_KEY
    assert reason_of(NoteSigner.parse, ALICE.verifier.vkey()) is LedgerReason.BAD_KEY
    assert "skey" not in repr(ALICE) and seed not in repr(ALICE)


def test_unknown_signatures_are_ignored_but_one_known_is_required():
    note = sign_note("hello\n", [BOB, ALICE])
    opened = open_note(note, [ALICE.verifier])
    assert opened.verified_by == (ALICE.verifier,)
    assert [s.name for s in opened.signatures] == [BOB.name, ALICE.name]
    assert open_note(note, [ALICE.verifier, BOB.verifier]).verified_by == (
        BOB.verifier,
        ALICE.verifier,
    )
    stranger = NoteSigner.from_seed(ALICE.name, bytes(32))  # same name, another key hash
    assert reason_of(open_note, note, [stranger.verifier]) is LedgerReason.UNVERIFIED
    assert reason_of(open_note, note, []) is LedgerReason.UNVERIFIED


def test_a_failing_known_signature_refuses_the_note():
    good = sign_note("hello\n", [ALICE]).decode()
    forged = NoteSignature(BOB.name, BOB.key_hash, bytes(64)).line()
    note = (good + forged).encode()
    assert reason_of(open_note, note, [ALICE.verifier, BOB.verifier]) is LedgerReason.BAD_SIGNATURE
    assert open_note(note, [ALICE.verifier]).verified_by == (ALICE.verifier,)


def test_a_known_key_signing_twice_is_refused():
    note = sign_note("hello\n", [ALICE, ALICE])
    assert reason_of(open_note, note, [ALICE.verifier]) is LedgerReason.MALFORMED


def test_text_may_hold_empty_lines_the_last_blank_line_separates():
    note = sign_note("a\n\nb\n\n", [ALICE])
    assert open_note(note, [ALICE.verifier]).text == "a\n\nb\n\n"


def sig_line(payload: bytes, name: str = "alice.example/log") -> str:
    return f"— {name} {base64.b64encode(payload).decode()}\n"


@pytest.mark.parametrize(
    ("note", "reason"),
    [
        (b"hello\n", LedgerReason.MALFORMED),  # no blank line
        (b"hello\n\n", LedgerReason.MALFORMED),  # no signature
        (b"hello\n\n\n", LedgerReason.MALFORMED),
        (b"hello\n\n" + sig_line(bytes(68)).encode()[:-1], LedgerReason.MALFORMED),  # no final \n
        (b"hel\tlo\n\n" + sig_line(bytes(68)).encode(), LedgerReason.MALFORMED),  # control byte
        (b"hello\r\n\n" + sig_line(bytes(68)).encode(), LedgerReason.MALFORMED),
        (b"hel\xfflo\n\n" + sig_line(bytes(68)).encode(), LedgerReason.MALFORMED),  # not UTF-8
        (b"hello\n\n- alice AAAAAAA=\n", LedgerReason.MALFORMED),  # hyphen, not em dash
        (b"hello\n\n" + sig_line(bytes(68), "a b").encode(), LedgerReason.MALFORMED),
        (b"hello\n\n" + sig_line(bytes(68), "a+b").encode(), LedgerReason.MALFORMED),
        (b"hello\n\n" + sig_line(bytes(68), "").encode(), LedgerReason.MALFORMED),
        (b"hello\n\n" + sig_line(bytes(4)).encode(), LedgerReason.MALFORMED),  # hash only
        (
            b"hello\n\n" + sig_line(bytes(68)).encode().replace(b"=\n", b"\n"),
            LedgerReason.MALFORMED,
        ),
        (b"hello\n\n" + sig_line(bytes(68)).encode() + b"\n", LedgerReason.MALFORMED),
        (
            b"hello\n\n" + sig_line(bytes(68)).encode() * (NOTE_SIGNATURES_MAX + 1),
            LedgerReason.TOO_LARGE,
        ),
        (b"x" * NOTE_BYTES_MAX + b"\n\n" + sig_line(bytes(68)).encode(), LedgerReason.TOO_LARGE),
    ],
)
def test_malformed_notes_are_refused(note, reason):
    assert reason_of(parse_note, note) is reason
    assert reason_of(open_note, note, [ALICE.verifier]) is reason


def test_note_text_must_end_in_a_newline_to_be_signed():
    assert reason_of(sign_note, "hello", [ALICE]) is LedgerReason.MALFORMED
    assert reason_of(sign_note, "a\x00b\n", [ALICE]) is LedgerReason.MALFORMED


note_texts = st.lists(
    st.text(st.characters(min_codepoint=0x20, exclude_categories=["Cs"]), max_size=40), min_size=1
).map(lambda lines: "\n".join(lines) + "\n")


@given(note_texts)
def test_any_text_signs_and_opens(text):
    note = sign_note(text, [ALICE, BOB])
    opened = open_note(note, [BOB.verifier])
    assert opened.text == text
    assert opened.verified_by == (BOB.verifier,)


@given(note_texts, st.data())
def test_any_changed_byte_of_a_signed_note_fails(text, data):
    note = bytearray(sign_note(text, [ALICE]))
    where = data.draw(st.integers(0, len(note) - 1))
    note[where] ^= data.draw(st.integers(1, 255))
    with pytest.raises(LedgerError):
        open_note(bytes(note), [ALICE.verifier])
