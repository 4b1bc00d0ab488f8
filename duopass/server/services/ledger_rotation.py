"""The ledger key's rotation (docs/server.md, "The ledger key rotates"): in one transaction under
the ledger's append lock, a `key_rotation` leaf naming the new key and the one it retires, the
handover checkpoint (the tree ending with that leaf, naming the new key in an extension line)
signed by both, and the `ledger_keys` row from which every server process signs with the new
key alone (`services.ledger_key`). `duopass keys rotate-ledger` runs it, for a key file or a key
in an HSM token (the new key made in the same token: `server.ledger_token`)."""

from __future__ import annotations

from dataclasses import dataclass

from duopass.ledger import NoteSigner, NoteVerifier
from duopass.ledger.events import EventType
from duopass.ledger.rotation import handover_extension, rotation_body
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import ledger_key, tlog
from duopass.server.store.ledger_keys import LedgerKey
from duopass.server.unit_of_work import Unit

__all__ = ["Rotated", "rotate"]


@dataclass(frozen=True)
class Rotated:
    leaf: int
    """The `key_rotation` leaf's index; the handover checkpoint is of `leaf + 1` leaves."""
    previous: NoteVerifier
    new: NoteVerifier
    handover: bytes


def rotate(unit: Unit, new: NoteSigner) -> Rotated:
    """Hand the ledger from the key that signs now to `new` (of the same log name, kept where the
    old one is: a file, or the token; never a key the log has named before)."""
    session = unit.session
    tlog.size(session, lock=True)
    old = ledger_key.signer(unit)
    if new.name != old.name or new.verifier in ledger_key.keys(unit):
        raise Problem(ProblemCode.INVALID_REQUEST, "the new ledger key is a new key of this log")
    if new.in_memory != old.in_memory:
        where = "a key file" if old.in_memory else "the HSM"
        raise Problem(ProblemCode.CONFLICT, f"the ledger key is in {where}: so is the new one")
    if len(ledger_key.chain(session)) >= ledger_key.KEYS_MAX:
        raise Problem(ProblemCode.CONFLICT, f"the ledger key rotated {ledger_key.KEYS_MAX} times")
    body = rotation_body(old.verifier, new.verifier)
    leaf = tlog.append(unit, EventType.KEY_ROTATION, body)
    note = tlog.sign_now(unit, leaf + 1, [old, new], (handover_extension(new.verifier),))
    session.add(
        LedgerKey(
            leaf=leaf, vkey=new.verifier.vkey(), previous=old.verifier.vkey(), rotated_at=unit.now
        )
    )
    return Rotated(leaf, old.verifier, new.verifier, note)
