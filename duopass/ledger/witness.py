"""The C2SP tlog-witness `add-checkpoint` exchange (https://c2sp.org/tlog-witness), pure: the
request a log sends, and the witness's decision given the checkpoint it holds.

The request body is `old <size>\\n`, one base64 consistency-proof hash a line (at most 63), a
blank line, then the signed checkpoint. The witness cosigns only a checkpoint signed by the
log's key that extends the one it holds, in the spec's order of checks: 404 (another origin than
its log's), 403 (no signature by the log's key verifies), 400 (`old` above the checkpoint's
size, a proof sent from size 0, or a malformed request), 409 (`old` is not the size held: the
body names the one held; or the same size with another root), 422 (the proof fails: a fork).
A handover checkpoint (`ledger.rotation`) signed by the log's key and by the next key it names
hands the witness over to that key: `Decision.log_key`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from duopass.ledger._text import b64decode, b64encode, parse_decimal
from duopass.ledger.checkpoint import Checkpoint, parse_checkpoint
from duopass.ledger.cosignature import Cosigner
from duopass.ledger.errors import LedgerError, LedgerReason
from duopass.ledger.limits import NOTE_BYTES_MAX, PROOF_HASHES_MAX, TREE_SIZE_MAX
from duopass.ledger.merkle import verify_consistency
from duopass.ledger.note import NoteVerifier, parse_note
from duopass.ledger.rotation import follow

__all__ = [
    "ADD_CHECKPOINT_BYTES_MAX",
    "AddCheckpoint",
    "Decision",
    "decide",
    "format_add_checkpoint",
    "parse_add_checkpoint",
]

ADD_CHECKPOINT_BYTES_MAX = NOTE_BYTES_MAX + PROOF_HASHES_MAX * 46 + 32
PROOF_LINES_MAX = 63
"""tlog-witness: a client MUST NOT send more consistency proof lines than this."""


@dataclass(frozen=True, slots=True)
class AddCheckpoint:
    old: int
    proof: tuple[bytes, ...]
    note: bytes


def format_add_checkpoint(old: int, proof: Sequence[bytes], note: bytes) -> bytes:
    lines = [f"old {old}", *(b64encode(h) for h in proof)]
    return ("".join(line + "\n" for line in lines) + "\n").encode() + note


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Split a request strictly (MALFORMED / TOO_LARGE), verifying nothing."""
    if len(body) > ADD_CHECKPOINT_BYTES_MAX:
        raise LedgerError(LedgerReason.TOO_LARGE, "an add-checkpoint request is too large")
    head, blank, note = body.partition(b"\n\n")
    if not blank or not head.startswith(b"old "):
        raise LedgerError(LedgerReason.MALFORMED, "a request is old, proof lines, blank, note")
    try:
        first, *hashes = head.decode("ascii").split("\n")
    except UnicodeDecodeError as exc:
        raise LedgerError(LedgerReason.MALFORMED, "the request head is ASCII") from exc
    if len(hashes) > PROOF_LINES_MAX:
        raise LedgerError(LedgerReason.TOO_LARGE, "too many proof hashes")
    old = parse_decimal(first.removeprefix("old "), "the old size", limit=TREE_SIZE_MAX)
    return AddCheckpoint(old, tuple(b64decode(h, "a proof hash") for h in hashes), note)


@dataclass(frozen=True, slots=True)
class Decision:
    """What the witness answers: `status` (200 and `cosigned` the note with its line appended
    and `checkpoint` to hold from now on, or a refusal and `detail`)."""

    status: int
    detail: str = ""
    held_size: int | None = None
    checkpoint: Checkpoint | None = None
    cosignature: bytes = b""
    log_key: NoteVerifier | None = None
    """The log's key to trust from now on (another after a handover)."""


def _origin(note: bytes) -> str | None:
    """The checkpoint's origin line, read before any signature is checked (None: malformed)."""
    try:
        return parse_checkpoint(parse_note(note).text).origin
    except LedgerError:
        return None


def decide(
    request: AddCheckpoint,
    held: Checkpoint | None,
    log_key: NoteVerifier,
    cosigner: Cosigner,
    now: int,
) -> Decision:
    """Cosign `request`'s checkpoint if it is the log's and consistent with `held` (the latest
    this witness cosigned, None at first); the caller keeps the new one before answering."""
    origin = _origin(request.note)
    if origin is None:
        return Decision(400, "not a checkpoint")
    if origin != log_key.name:
        return Decision(404, f"no log {origin!r} here")
    try:
        signed, next_key = follow(request.note, log_key)
    except LedgerError as exc:
        return Decision(403, f"not signed by this log's key: {exc}")
    new = signed.checkpoint
    held_size = 0 if held is None else held.size
    if request.old > new.size:
        return Decision(400, "the old size is above the checkpoint's")
    if request.old != held_size:
        return Decision(409, f"the witness holds size {held_size}", held_size=held_size)
    if held is not None and held.size == new.size and held.root != new.root:
        return Decision(409, "another root at the size held", held_size=held_size)
    if held_size == 0 and request.proof:
        return Decision(400, "no proof is sent from size 0")
    if held is not None and held.size > 0:
        try:
            verify_consistency(
                size1=held.size,
                size2=new.size,
                proof=list(request.proof),
                root1=held.root,
                root2=new.root,
            )
        except LedgerError as exc:
            return Decision(422, f"not consistent with the checkpoint held: {exc}")
    line = cosigner.sign(signed.note.text, now).line().encode()
    return Decision(200, checkpoint=new, cosignature=line, log_key=next_key)
