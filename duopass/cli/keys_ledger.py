"""`duopass keys rotate-ledger`: the ledger key rotates (docs/server.md, "The ledger key rotates"),
beside a running server or without one.

The new key is written to `ledger.key.next` (mode 0600, synced) before the rotation commits, and
renamed over `ledger.key` after: the retired key leaves the data dir. A server process that finds
the database naming the new key while the rename has not happened finishes it itself. One
rotation at a time: a lock file in the data dir. A ledger key held in an HSM is not rotated
(rotating it inside the token is not built: docs/deploy.md, "Keys in an HSM").
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import typer

from duopass.cli.server_store import DEFAULT_DIR, DataDir, DbUrl, fail, open_server

__all__ = ["IN_HSM", "rotate_ledger"]

_LOCK = ".ledger-key.lock"
IN_HSM = "the ledger key is in an HSM: rotating it there is not built (docs/deploy.md)"


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
    and witnesses that trust the old key follow the chain; the old key never signs again."""
    from duopass.ledger import NoteSigner
    from duopass.server.keyring import write_ledger_key
    from duopass.server.problems import Problem
    from duopass.server.services import ledger_key, ledger_rotation

    ctx = open_server(data_dir, db)
    try:
        if not ctx.keyring.ledger.in_memory:
            raise fail(IN_HSM)
        with _one_rotation(data_dir):
            try:
                name = ctx.run(ledger_key.signer).name  # finishes a rename left half done
                new = NoteSigner.generate(name)
                write_ledger_key(data_dir / ledger_key.NEXT, new)
                done = ctx.run(lambda unit: ledger_rotation.rotate(unit, new))
            except Problem as exc:
                (data_dir / ledger_key.NEXT).unlink(missing_ok=True)
                raise fail(exc.detail) from exc
            with contextlib.suppress(FileNotFoundError):  # a server may have renamed it first
                os.replace(data_dir / ledger_key.NEXT, data_dir / "ledger.key")
    finally:
        ctx.db.dispose()
    typer.echo(f"retired      {done.previous.vkey()}")
    typer.echo(f"ledger key   {done.new.vkey()}")
    typer.echo(
        f"rotation     leaf {done.leaf}; the checkpoint of {done.leaf + 1} entries is signed"
        " by both keys, every later one by the new key alone"
    )
