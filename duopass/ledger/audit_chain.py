"""An auditor follows the ledger key's rotations (`ledger.rotation`) from the key it trusts.

The source names where the rotations are (`KeySource.rotations`: a hint, trusted for nothing);
for each, from the trusted checkpoint on, the auditor reads the `key_rotation` leaf, which must
hand over from the key the chain has reached, and the handover checkpoint, which must be signed
by both keys, be of the size that ends with that leaf and name the new key. The entry pass then
proves each handover's tree is the prefix of the entries (its root, recomputed: the rotation
leaf is included) and finds any ledger rotation leaf the hint left out. The latest checkpoint
must be signed by the key the chain leads to; a key the chain does not lead to is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from duopass.ledger.checkpoint import Checkpoint
from duopass.ledger.errors import LedgerError
from duopass.ledger.leaf import parse_leaf
from duopass.ledger.merkle import RootHash
from duopass.ledger.note import NoteVerifier
from duopass.ledger.rotation import Rotation, open_handover, rotation_of

__all__ = ["ROTATIONS_MAX", "Chain", "KeySource", "follow_chain"]

ROTATIONS_MAX: Final = 1000
"""Rotations an auditor follows in one audit."""


class KeySource(Protocol):
    """Where an auditor finds the ledger key's rotations (the server's `/v1/ledger/keys` and
    `/v1/ledger/checkpoints/{size}`, or its database)."""

    def rotations(self) -> Sequence[int]:
        """The indices of the `key_rotation` leaves of the ledger key, ascending: a hint."""
        ...

    def checkpoint_at(self, size: int, /) -> bytes | None:
        """The checkpoint signed of exactly `size` entries, None if there is none."""
        ...


@dataclass
class Chain:
    """The keys followed: `key` is where the chain leads; `problems` what stopped it."""

    key: NoteVerifier
    start: int
    rotations: list[Rotation] = field(default_factory=list)
    followed: set[int] = field(default_factory=set)
    """The indices of the rotation leaves followed."""
    handovers: dict[int, Checkpoint] = field(default_factory=dict)
    """Each handover checkpoint by its size, for the entry pass to match with the entries."""
    problems: list[tuple[str, int | None]] = field(default_factory=list)
    """(What is wrong, the entry it is about), each a KEY_ROTATION finding."""

    def key_at(self, first: NoteVerifier, size: int) -> NoteVerifier:
        """The key that signs a checkpoint of `size` entries (`first` before any rotation)."""
        key = first
        for rotation in self.rotations:
            if size >= rotation.handover_size:
                key = rotation.new
        return key

    def check_entry(self, index: int, data: bytes) -> None:
        """Call for each entry from `start` on: a ledger rotation there must be one followed."""
        if index < self.start or index in self.followed:
            return
        try:
            found = rotation_of(index, parse_leaf(data))
        except LedgerError:
            return  # a malformed leaf is the entry pass's own finding
        if found is not None:
            self.problems.append(
                (f"entry {index}: a ledger key rotation the chain was not shown", index)
            )

    def check_prefix(self, size: int, root: RootHash) -> None:
        """Call with the root of the first `size` entries at each size in `handovers`."""
        if self.handovers[size].root != root:
            message = (
                f"the handover checkpoint {size} is not the tree of the first {size} entries:"
                " its rotation leaf is not proved included"
            )
            self.problems.append((message, size - 1))


def follow_chain(
    key: NoteVerifier, start: int, end: int, entries: _Entries, keys: KeySource | None
) -> Chain:
    """Follow the rotations with leaves in [start, end) from `key`, trusted at `start`."""
    chain = Chain(key, start)
    hinted = [] if keys is None else list(keys.rotations())[: ROTATIONS_MAX + 1]
    if len(hinted) > ROTATIONS_MAX:
        chain.problems.append((f"more than {ROTATIONS_MAX} ledger key rotations", None))
        return chain
    for index in sorted({i for i in hinted if start <= i < end}):
        assert keys is not None
        problem = _step(chain, index, entries, keys)
        if problem is not None:
            chain.problems.append((f"entry {index}: {problem}", index))
            return chain
    return chain


class _Entries(Protocol):
    def entries(self, start: int, count: int, /) -> Sequence[bytes]: ...


def _step(chain: Chain, index: int, source: _Entries, keys: KeySource) -> str | None:
    """Follow the rotation at `index`; what is wrong with it, None when it holds."""
    got = source.entries(index, 1)[:1]
    if not got:
        return "the ledger key rotation named there is missing"
    try:
        rotation = rotation_of(index, parse_leaf(got[0]))
    except LedgerError as exc:
        return f"not a well-formed ledger key rotation: {exc}"
    if rotation is None:
        return "named as a ledger key rotation, it is another event"
    if chain.key not in (rotation.previous, rotation.new):
        return (
            f"a rotation from key {rotation.previous.key_hash:08x}, which the chain does not"
            f" lead to (it is at {chain.key.key_hash:08x})"
        )
    note = keys.checkpoint_at(rotation.handover_size)
    if note is None:
        return f"no handover checkpoint of {rotation.handover_size} entries"
    try:
        handover = open_handover(note, rotation).checkpoint
    except LedgerError as exc:
        return f"the handover checkpoint {rotation.handover_size} is refused: {exc}"
    chain.key = rotation.new
    chain.rotations.append(rotation)
    chain.followed.add(index)
    chain.handovers[rotation.handover_size] = handover
    return None
