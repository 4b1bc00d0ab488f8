"""The ledger: every lifecycle event a leaf of an RFC 9162 tree, in the event's own transaction.

A leaf is the deterministic CBOR map `{1: type, 2: time, 3: iss, 4: body}` (§7). Appending locks
the `ledger_size` row, so leaves follow commit order across processes; the perfect-subtree hashes
it writes make every proof O(log n) reads. The first append of a transaction reads the tree's
right border; later ones in the same transaction (a batch of scans) keep it in the session.
Checkpoints are signed only if consistent with the last one signed, and every one is kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from duopass.ledger import (
    Checkpoint,
    CompactRange,
    LedgerError,
    NodeHash,
    NoteSigner,
    NoteVerifier,
    RootHash,
    hash_leaf,
    make_receipt,
    open_checkpoint,
    sign_checkpoint,
    verify_consistency,
)
from duopass.ledger.events import EventType, event
from duopass.ledger.leaf import parse_leaf
from duopass.ledger.rotation import announced_key
from duopass.ledger.tree import NodeId, consistency_proof, inclusion_proof, root_at
from duopass.server import outside
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import ledger_key, trust_changes
from duopass.server.store import sql
from duopass.server.store.db import after_commit
from duopass.server.store.tables import LedgerCheckpoint, LedgerLeaf, Meta, Terminal
from duopass.server.unit_of_work import Unit

SIZE = "ledger_size"


_TAIL = "ledger_tail"
"""`session.info` key: the border after this transaction's last append (its lock is held)."""


class _Nodes:
    """A `NodeReader` over the `ledger_nodes` table (one query a batch)."""

    def __init__(self, session: Session) -> None:
        self.db = sql.raw(session)

    def read_nodes(self, ids: Sequence[NodeId], /) -> Sequence[bytes]:
        if not ids:
            return []
        params: dict[str, int] = {}
        for n, node in enumerate(ids):
            params[f"l{n}"], params[f"i{n}"] = node.level, node.index
        rows = self.db.all(sql.nodes_query(len(ids)), params)
        found = {(level, index): bytes(digest) for level, index, digest in rows}
        return [found[node.level, node.index] for node in ids]


def lock_now(session: Session) -> None:
    """Take the append lock at once or fail with OperationalError (PostgreSQL; on SQLite the
    write transaction holds it already): for a unit that must never wait holding other locks."""
    if session.get_bind().dialect.name != "sqlite":
        session.execute(
            select(Meta.value).where(Meta.name == SIZE).with_for_update(nowait=True)
        ).all()


def size(session: Session, *, lock: bool = False) -> int:
    """Leaves in the log; `lock` holds the append lock (the size row) until the transaction ends."""
    db = sql.raw(session)
    row = db.one(sql.LEDGER_SIZE if lock else sql.LEDGER_SIZE.plain)
    if row is None:
        db.run(sql.INSERT_LEDGER_SIZE)
        return 0
    return int(row[0])


def append(unit: Unit, event_type: EventType, body: Mapping[str, Any]) -> int:
    """Append one event (its body checked against `ledger.events`) in the unit's transaction, at
    the unit's time; returns its index (prepared SQL: this runs in every lifecycle event's
    transaction)."""
    leaf = event(event_type, unit.now, unit.settings.issuer, body)
    return append_many(unit.session, [leaf])


def append_hashed(unit: Unit, event_type: EventType, body: Mapping[str, Any]) -> tuple[int, bytes]:
    """`append`, with the leaf's RFC 9162 hash (a purchase proof names its payment by it)."""
    leaf = event(event_type, unit.now, unit.settings.issuer, body)
    return append_many(unit.session, [leaf]), bytes(hash_leaf(leaf))


def append_many(session: Session, leaves: Sequence[bytes]) -> int:
    """Append leaves (from `ledger.events.event`) in order in the caller's transaction, hashed
    together and one write of each kind (a journal batch's leaves in one call); returns the
    first one's index. The tree's border is read (under the
    append lock) once a transaction and kept in it for the next append."""
    tail: CompactRange | None = session.info.get(_TAIL)
    if tail is None:  # the transaction's first append: take the lock, then read the border
        tail = CompactRange.read(_Nodes(session), size(session, lock=True))
    first = tail.size
    tail, stored = tail.grow([hash_leaf(data) for data in leaves])
    assert tail.size == first + len(leaves), "the tree grows by one leaf each"
    db = sql.raw(session)
    session.info[_TAIL] = tail
    if len(leaves) == 1 and not db.is_sqlite:  # one statement (an online scan's event)
        params: dict[str, Any] = {"index": first, "data": leaves[0], "value": tail.size}
        for n, node in enumerate(stored):
            params.update({f"l{n}": node.node.level, f"i{n}": node.node.index, f"h{n}": node.hash})
        db.later(sql.ledger_writes(len(stored)), params)
        return first
    leaf_rows = [{"index": first + n, "data": data} for n, data in enumerate(leaves)]
    node_rows = [{"level": n.node.level, "index": n.node.index, "hash": n.hash} for n in stored]
    db.later(sql.INSERT_LEAF, leaf_rows, many=True)
    db.later(sql.INSERT_NODE, node_rows, many=True)
    db.later(sql.SET_LEDGER_SIZE, {"value": tail.size})
    return first


def root(session: Session, tree_size: int) -> RootHash:
    return root_at(_Nodes(session), tree_size)


def inclusion(session: Session, index: int, tree_size: int) -> list[NodeHash]:
    return list(inclusion_proof(_Nodes(session), index, tree_size))


def consistency(session: Session, old: int, new: int) -> list[bytes]:
    return list(consistency_proof(_Nodes(session), old, new))


def checkpoint(unit: Unit) -> bytes:
    """The latest signed checkpoint, signing a new one first if the tree has grown.

    Never signs a tree inconsistent with the last checkpoint: the consistency proof between them
    is verified before the new one is signed (a corrupted node table stops here, loudly). Nor one
    behind the checkpoint kept outside the database (`server.outside`): 503 `store_rolled_back`.
    It is signed by the key the database names now (`services.ledger_key`). The new one is
    written there once this unit has committed."""
    session = unit.session
    tree_size = size(session, lock=True)
    last = _last(session)
    if last is not None and last.size == tree_size:
        return last.note
    return sign_now(unit, tree_size, [ledger_key.signer(unit)])


def _last(session: Session) -> LedgerCheckpoint | None:
    return session.scalars(
        select(LedgerCheckpoint).order_by(LedgerCheckpoint.size.desc()).limit(1)
    ).first()


def sign_now(
    unit: Unit, tree_size: int, signers: Sequence[NoteSigner], extensions: tuple[str, ...] = ()
) -> bytes:
    """Sign the tree of `tree_size` leaves (the whole log: the caller holds the append lock)
    with `signers`, the first of which signed the last checkpoint, checked as `checkpoint`
    says; keep it in the database and, once committed, outside it."""
    session, first = unit.session, signers[0]
    last = _last(session)
    lagging = outside_lag(unit)
    if lagging is not None:
        raise Problem(
            ProblemCode.STORE_ROLLED_BACK,
            f"{lagging}: nothing is signed until an operator acts (duopass ledger accept-rollback)",
        )
    new_root = root(session, tree_size)
    if last is not None and last.size > 0:
        signed = _signed_last(last, first.verifier)
        verify_consistency(
            size1=last.size,
            size2=tree_size,
            proof=consistency(session, last.size, tree_size),
            root1=signed.root,
            root2=new_root,
        )
    note = sign_checkpoint(Checkpoint(first.name, tree_size, new_root, extensions), signers)
    session.add(LedgerCheckpoint(size=tree_size, signed_at=unit.now, note=note))
    _keep_outside(unit, note, tree_size, signers[-1].verifier)
    return note


def _signed_last(last: LedgerCheckpoint, key: NoteVerifier) -> Checkpoint:
    """The last checkpoint, which `key` must have signed and not handed over to another key
    (`ledger.rotation`): a retired key never signs again, whatever the database says now."""
    why = f"the last checkpoint ({last.size}) is not signed by the ledger key {key.key_hash:08x}"
    try:
        signed = open_checkpoint(last.note, key).checkpoint
        handed = announced_key(signed)
    except LedgerError as exc:  # a store from before a rotation, or a retired key
        raise Problem(ProblemCode.LEDGER_KEY_MISSING, why) from exc
    if handed is not None and handed != key:
        why = f"the last checkpoint ({last.size}) hands the ledger to key {handed.key_hash:08x}"
        raise Problem(ProblemCode.LEDGER_KEY_MISSING, why)
    return signed


def lag(session: Session, signed: Checkpoint) -> str | None:
    """Why this database's ledger does not hold the tree of `signed` (a checkpoint signed before,
    kept outside the database), or None when it holds it (whatever it has added since)."""
    tree_size = size(session)
    if tree_size < signed.size:
        return (
            f"the store's ledger has {tree_size} entries, fewer than the {signed.size} of the"
            " last checkpoint signed"
        )
    try:
        same = signed.size == 0 or root(session, signed.size) == signed.root
    except KeyError:
        same = False
    if not same:
        return f"the store's ledger is another tree than the last checkpoint signed ({signed.size})"
    return None


def outside_lag(unit: Unit) -> str | None:
    """`lag` against the checkpoint kept outside the database, or why that one cannot be read;
    None when there is none (a new server) or the database holds its tree."""
    try:
        record = outside.read(unit.settings.data_dir)
    except outside.OutsideError as exc:
        return str(exc)
    if record is None:
        return None
    try:
        signed = ledger_key.open_ours(unit, record.note)
    except LedgerError as exc:
        return f"{outside.FILE_NAME} does not verify with the ledger key: {exc}"
    return lag(unit.session, signed)


def positions(session: Session) -> dict[str, tuple[int, int | None]]:
    """Each terminal's acknowledged journal seq and the bundle version last sent to it."""
    rows = session.execute(select(Terminal.id, Terminal.acked_seq, Terminal.bundle_seq)).all()
    return {name: (int(acked), bundle) for name, acked, bundle in rows}


def keep_outside(unit: Unit) -> bytes:
    """`checkpoint`, and the latest checkpoint written outside the database even when it was
    signed before (a rollback accepted: the store's own replaces the one given up)."""
    note = checkpoint(unit)
    key = ledger_key.verifier(unit)
    _keep_outside(unit, note, open_checkpoint(note, key).checkpoint.size, key)
    return note


def _keep_outside(unit: Unit, note: bytes, tree_size: int, verifier: NoteVerifier) -> None:
    """Write the new checkpoint (and the terminals' positions) outside the database once this
    unit has committed; a server without a data dir of its own (some tests) keeps none."""
    data_dir = unit.settings.data_dir
    if not data_dir.is_dir():
        return
    session = unit.session
    record = outside.OutsideRecord(note, trust_changes.current_seq(session), positions(session))

    def write() -> None:
        outside.write(data_dir, record, tree_size, verifier)

    after_commit(session, write)


def read_entries(session: Session, start: int, count: int) -> list[bytes]:
    """Up to `count` leaves from index `start`, the exact bytes hashed; they stop before the
    first index missing (a gap: the caller, or the audit, names it)."""
    rows = session.execute(
        select(LedgerLeaf.index, LedgerLeaf.data)
        .where(LedgerLeaf.index >= start, LedgerLeaf.index < start + count)
        .order_by(LedgerLeaf.index)
    ).all()
    found = []
    for expected, (index, data) in enumerate(rows, start):
        if index != expected:
            break
        found.append(data)
    return found


def issuer(session: Session) -> str | None:
    """The `iss` of the ledger's first leaf: the issuer this database belongs to (None while the
    ledger is empty), for commands that append beside the server (`duopass holder erase`)."""
    first = session.scalars(select(LedgerLeaf.data).where(LedgerLeaf.index == 0)).first()
    return None if first is None else parse_leaf(bytes(first)).iss


def latest_note(session: Session) -> bytes | None:
    """The latest checkpoint signed (it is signed when asked for, so it may lag the log)."""
    return session.scalars(
        select(LedgerCheckpoint.note).order_by(LedgerCheckpoint.size.desc()).limit(1)
    ).first()


def note_at(session: Session, tree_size: int) -> bytes | None:
    """The checkpoint signed of exactly `tree_size` leaves, if one was."""
    found = session.get(LedgerCheckpoint, tree_size)
    return None if found is None else bytes(found.note)


def receipt(unit: Unit, index: int) -> tuple[bytes, bytes] | None:
    """A leaf's exact bytes and its `c2sp.org/tlog-proof@v1` receipt against the latest
    checkpoint (signed now if the log has grown); None for an index past the log. Raises
    LedgerError if the stored tree disagrees with itself: never papered over."""
    leaf = unit.session.get(LedgerLeaf, index)
    if leaf is None:
        return None
    note = checkpoint(unit)
    tree_size = open_checkpoint(note, ledger_key.verifier(unit)).checkpoint.size
    proof = inclusion(unit.session, index, tree_size)
    made = make_receipt(
        index=index, leaf_hash=hash_leaf(leaf.data), proof=proof, signed_checkpoint=note
    )
    return leaf.data, made
