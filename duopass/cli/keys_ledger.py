"""`duopass keys rotate-ledger`: the ledger key rotates (docs/server.md, "The ledger key rotates"),
beside a running server or without one.

The new key is written to `ledger.key.next` (mode 0600, synced) before the rotation commits, and
renamed over `ledger.key` after: the retired key leaves the data dir. A server process that finds
the database naming the new key while the rename has not happened finishes it itself. One
rotation at a time: a lock file in the data dir. A ledger key held in an HSM rotates inside its
token (`server.ledger_token`): the new key is made there, `ledger-next-label` names it before the
commit and is renamed over `ledger-label` after; no key file is written.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from duopass.cli.server_store import DEFAULT_DIR, DataDir, DbUrl, fail, open_server
from duopass.server import hsm

if TYPE_CHECKING:
    from duopass.ledger import NoteSigner
    from duopass.server.context import AppContext
    from duopass.server.services.ledger_rotation import Rotated
    from duopass.server.unit_of_work import Unit

__all__ = ["rotate_ledger"]

_LOCK = ".ledger-key.lock"


@contextlib.contextmanager
def _one_rotation(data_dir: Path) -> Iterator[None]:
    fd = os.open(data_dir / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise fail("another ledger key rotation is under way in this data dir") from exc
        yield
    finally:
        os.close(fd)


def rotate_ledger(data_dir: DataDir = DEFAULT_DIR, db: DbUrl = None) -> None:
    """Rotate the ledger key: a key_rotation leaf names the new key, the checkpoint ending with
    it is signed by the old and the new key, every later one by the new key alone. Auditors
    and witnesses that trust the old key follow the chain; the old key never signs again. A
    ledger key in an HSM rotates inside its token (docs/deploy.md, "Keys in an HSM")."""
    from duopass.server.problems import Problem
    from duopass.server.services import ledger_key

    ctx = open_server(data_dir, db)
    try:
        with _one_rotation(data_dir):
            try:
                held = ctx.run(ledger_key.signer)  # finishes a rename left half done
            except Problem as exc:
                raise fail(exc.detail) from exc
            if held.in_memory:
                done = _rotate_file(ctx, data_dir, held.name)
            else:
                done = _rotate_in_token(ctx, data_dir, held)
    finally:
        ctx.db.dispose()
    typer.echo(f"retired      {done.previous.vkey()}")
    typer.echo(f"ledger key   {done.new.vkey()}")
    typer.echo(
        f"rotation     leaf {done.leaf}; the checkpoint of {done.leaf + 1} entries is signed"
        " by both keys, every later one by the new key alone"
    )


def _rotate_file(ctx: AppContext, data_dir: Path, name: str) -> Rotated:
    """The new key in `ledger.key.next` before the commit, renamed over `ledger.key` after."""
    from duopass.ledger import NoteSigner
    from duopass.server.keyring import write_ledger_key
    from duopass.server.services import ledger_key

    new = NoteSigner.generate(name)
    write_ledger_key(data_dir / ledger_key.NEXT, new)
    return _commit(ctx, data_dir / ledger_key.NEXT, data_dir / "ledger.key", new)


def _rotate_in_token(ctx: AppContext, data_dir: Path, held: NoteSigner) -> Rotated:
    """The new key made in the old one's token, `<configured label>.<n>`, named in
    ledger-next-label before the commit, which is renamed over ledger-label after."""
    from duopass.server import ledger_token
    from duopass.server.services import ledger_key

    token = ledger_token.token_key(held)
    assert token is not None
    number = ctx.run(lambda unit: len(ledger_key.chain(unit.session))) + 1
    try:
        new = ledger_token.new_key(token, held.name, number)
    except ledger_token.LedgerTokenError as exc:
        raise fail(str(exc)) from exc
    ledger_token.propose(data_dir, new)  # not taken, the new key stays in the token: the next
    pending = data_dir / ledger_token.NEXT_LABEL_FILE  # rotation takes it
    return _commit(ctx, pending, data_dir / ledger_token.LABEL_FILE, new)


def _commit(ctx: AppContext, pending: Path, final: Path, new: NoteSigner) -> Rotated:
    """Commit the rotation to `new` (named in `pending`), then rename `pending` over `final`.
    Should the unit fail, the database read again decides: naming `new`, the rotation committed
    (the answer to COMMIT was lost) and is completed; not naming it, `pending` is removed; not
    answering, `pending` is kept (a server finishes the rename once the database names `new`)
    and the command exits 2 saying the outcome is unknown."""
    from duopass.server.problems import Problem
    from duopass.server.services import ledger_rotation

    try:
        done = ctx.run(lambda unit: ledger_rotation.rotate(unit, new))
    except Exception as exc:
        try:
            found = ctx.run(lambda unit: _named(unit, new))
        except Exception as lost:
            raise fail(
                f"the rotation's outcome is unknown: {_reason(exc)}, then {_reason(lost)}."
                f" {pending.name} is kept: once the database answers, GET /v1/ledger/keys"
                f" lists {new.verifier.vkey()} if the rotation committed (a server then"
                " finishes it); if it does not, run `duopass keys rotate-ledger` again"
            ) from exc
        if found is None:
            pending.unlink(missing_ok=True)
            if isinstance(exc, Problem | hsm.HsmError):
                raise fail(_reason(exc)) from exc
            raise
        done = found
    with contextlib.suppress(FileNotFoundError):  # a server may have renamed it first
        os.replace(pending, final)
    return done


def _named(unit: Unit, new: NoteSigner) -> Rotated | None:
    """The rotation to `new` the database records, None when it names no such key."""
    from sqlalchemy import select

    from duopass.ledger import NoteVerifier
    from duopass.server.services import tlog
    from duopass.server.services.ledger_rotation import Rotated
    from duopass.server.store.ledger_keys import LedgerKey

    vkey = new.verifier.vkey()
    row = unit.session.scalars(select(LedgerKey).where(LedgerKey.vkey == vkey)).first()
    if row is None:
        return None
    note = tlog.note_at(unit.session, row.leaf + 1)
    return Rotated(row.leaf, NoteVerifier.parse(row.previous), new.verifier, note or b"")


def _reason(exc: Exception) -> str:
    from duopass.server.problems import Problem

    if isinstance(exc, hsm.HsmError):
        return str(exc)  # a stable reason, never the PIN (server.hsm)
    return exc.detail if isinstance(exc, Problem) else type(exc).__name__
