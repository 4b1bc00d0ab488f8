"""Backups of the server's database: one file, a manifest line and the database's own copy.

    duopass-backup/1\\n
    {"format": ..., "kind": "sqlite", "schema_revision": "0022", "ledger_size": ...}\\n
    <payload: a SQLite database file, or a pg_dump archive in its custom format>

The manifest says what the backup is (database kind, schema revision, the ledger's size, its
latest signed checkpoint and bundle version at backup time, read from the copy itself) and the
payload's length and SHA-256, so that a damaged or cut-short file is refused before anything is
restored. It holds no URL, path, password or personal data. SQLite is copied through its online
backup API (one consistent read while the server writes); PostgreSQL by `backup_pg`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

from duopass import __version__
from duopass.ledger import LedgerError, parse_checkpoint
from duopass.ledger._text import b64encode

__all__ = [
    "MAGIC",
    "BackupError",
    "Facts",
    "Manifest",
    "backup_sqlite",
    "extract",
    "facts_of",
    "restore_sqlite",
    "write_backup",
]

MAGIC = b"duopass-backup/1\n"
FORMAT = "duopass-backup/1"
MANIFEST_BYTES_MAX = 16 * 1024
KINDS = ("sqlite", "postgresql")
_CHUNK = 1 << 20


class BackupError(Exception):
    """A backup or a restore refused; the message says why, in a stable wording."""


@dataclass(frozen=True)
class Facts:
    """What a database holds, read in one consistent view of it."""

    schema_revision: str
    ledger_size: int
    bundle_seq: int
    checkpoint_size: int | None
    checkpoint_root: str | None
    """The latest signed checkpoint's tree size and root hash (base64)."""


@dataclass(frozen=True)
class Manifest:
    kind: str
    created_at: int
    duopass_version: str
    facts: Facts
    payload_bytes: int
    payload_sha256: str

    def to_json(self) -> bytes:
        document = {"format": FORMAT, **asdict(self)}
        return json.dumps(document, sort_keys=True).encode() + b"\n"


Query = Callable[[str], Sequence[Sequence[Any]]]


def facts_of(query: Query) -> Facts:
    """The facts of a database through `query` (rows of one SQL statement, in one view)."""
    revision = query("SELECT version_num FROM alembic_version")
    rows = query("SELECT name, value FROM meta WHERE name IN ('ledger_size', 'bundle_seq')")
    meta: dict[str, int] = {str(name): int(value) for name, value in rows}
    notes = query("SELECT note FROM ledger_checkpoints ORDER BY size DESC LIMIT 1")
    size, root = None, None
    if notes:
        note = bytes(notes[0][0])
        try:
            checkpoint = parse_checkpoint(note[: note.index(b"\n\n") + 1].decode())
        except (ValueError, LedgerError) as exc:
            raise BackupError("the database's latest checkpoint is malformed") from exc
        size, root = checkpoint.size, b64encode(checkpoint.root)
    return Facts(
        schema_revision=str(revision[0][0]) if revision else "",
        ledger_size=int(meta.get("ledger_size", 0)),
        bundle_seq=int(meta.get("bundle_seq", 0)),
        checkpoint_size=size,
        checkpoint_root=root,
    )


def _sqlite_query(connection: sqlite3.Connection) -> Query:
    return lambda statement: connection.execute(statement).fetchall()


def backup_sqlite(database: Path, out: Path, now: int) -> Manifest:
    """Copy the SQLite database at `database` to the backup file `out` (never replaced)."""
    if not database.is_file():
        raise BackupError(f"no SQLite database at {database}")
    _refuse_existing(out)
    with scratch_folder(out.parent) as scratch:
        copy = scratch / "copy.db"
        source = sqlite3.connect(database, timeout=30)
        target = sqlite3.connect(copy)
        try:
            source.backup(target)  # every page in one step: one consistent read
            target.execute("PRAGMA journal_mode=DELETE")  # the copy: one file, no -wal
            facts = facts_of(_sqlite_query(target))
        except sqlite3.Error as exc:
            raise BackupError(f"cannot copy the SQLite database: {exc}") from exc
        finally:
            target.close()
            source.close()
        return write_backup(out, "sqlite", facts, copy, now)


def restore_sqlite(backup: Path, database: Path) -> Manifest:
    """Restore a SQLite backup to a new file `database`; nothing is written there unless the
    backup is whole and the copy matches its manifest."""
    for existing in (database, Path(f"{database}-wal")):
        if existing.exists():
            raise BackupError(
                f"{existing} exists: restore into a new database (move the old one aside and"
                " keep it until the restored one is checked)"
            )
    database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with scratch_folder(database.parent) as scratch:
        copy = scratch / "restored.db"
        manifest = extract(backup, copy, kind="sqlite")
        connection = sqlite3.connect(copy)
        try:
            checked = connection.execute("PRAGMA integrity_check").fetchall()
            if checked != [("ok",)]:
                raise BackupError(f"{backup}: the database in it fails SQLite's integrity check")
            check_restored(manifest, facts_of(_sqlite_query(connection)))
        except sqlite3.Error as exc:
            raise BackupError(f"{backup}: the database in it cannot be read: {exc}") from exc
        finally:
            connection.close()
        copy.chmod(0o600)  # personal data: its owner's only
        try:
            os.link(copy, database)  # never over a file made meanwhile
        except FileExistsError as exc:
            raise BackupError(f"{database} exists: restore into a new database") from exc
    return manifest


def check_restored(manifest: Manifest, found: Facts) -> None:
    if found != manifest.facts:
        raise BackupError(
            "the restored database does not match its manifest (ledger size"
            f" {found.ledger_size}, manifest {manifest.facts.ledger_size})"
        )


@contextmanager
def scratch_folder(near: Path) -> Iterator[Path]:
    """A private folder beside `near` (the same file system: a rename or link away)."""
    with tempfile.TemporaryDirectory(dir=near, prefix=".duopass-backup-") as folder:
        yield Path(folder)


def _refuse_existing(out: Path) -> None:
    if out.exists():
        raise BackupError(f"{out} exists: a backup never replaces a file")
    if not out.parent.is_dir():
        raise BackupError(f"{out.parent} is not a folder")


def write_backup(out: Path, kind: str, facts: Facts, payload: Path, now: int) -> Manifest:
    """The backup file `out`: magic, manifest, payload; written beside it, fsynced, then linked
    into place (an existing file is never replaced); owner-only (it holds personal data)."""
    _refuse_existing(out)
    digest, length = hashlib.sha256(), 0
    with payload.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            length += len(chunk)
    manifest = Manifest(kind, now, __version__, facts, length, digest.hexdigest())
    with scratch_folder(out.parent) as scratch:
        made = scratch / "backup"
        fd = os.open(made, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle, payload.open("rb") as source:
            handle.write(MAGIC + manifest.to_json())
            while chunk := source.read(_CHUNK):
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(made, out)
        except FileExistsError as exc:
            raise BackupError(f"{out} exists: a backup never replaces a file") from exc
    return manifest


def extract(backup: Path, out: Path, *, kind: str) -> Manifest:
    """The manifest of `backup`, its payload copied to `out`; refused unless the backup is a
    whole duopass backup of `kind` (its payload's length and SHA-256 as the manifest says)."""
    try:
        with backup.open("rb") as handle:
            manifest = _read_manifest(handle, backup)
            if manifest.kind != kind:
                raise BackupError(
                    f"{backup} is a {manifest.kind} backup: it restores into a {manifest.kind}"
                    f" database, not {kind}"
                )
            digest, length = hashlib.sha256(), 0
            with out.open("wb") as copy:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
                    length += len(chunk)
                    if length > manifest.payload_bytes:
                        break
                    copy.write(chunk)
    except OSError as exc:
        raise BackupError(f"cannot read {backup}: {exc.strerror}") from exc
    if length != manifest.payload_bytes:
        how = "longer" if length > manifest.payload_bytes else "shorter"
        raise BackupError(
            f"{backup} is damaged: its payload is {how} than the {manifest.payload_bytes} bytes"
            " its manifest says (cut short or appended to)"
        )
    if digest.hexdigest() != manifest.payload_sha256:
        raise BackupError(f"{backup} is damaged: its payload's SHA-256 is not its manifest's")
    return manifest


def read_manifest(backup: Path) -> Manifest:
    """The manifest alone (the payload unchecked)."""
    try:
        with backup.open("rb") as handle:
            return _read_manifest(handle, backup)
    except OSError as exc:
        raise BackupError(f"cannot read {backup}: {exc.strerror}") from exc


def _read_manifest(handle: BinaryIO, backup: Path) -> Manifest:
    if handle.read(len(MAGIC)) != MAGIC:
        raise BackupError(f"{backup} is not a duopass backup (it does not start {FORMAT})")
    line = handle.readline(MANIFEST_BYTES_MAX + 1)
    if not line.endswith(b"\n"):
        raise BackupError(f"{backup} is damaged: its manifest is cut short or too long")
    try:
        document = json.loads(line)
        facts = Facts(**document.pop("facts"))
        if document.pop("format") != FORMAT:
            raise ValueError("format")
        manifest = Manifest(facts=facts, **document)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise BackupError(f"{backup} is damaged: its manifest is malformed") from exc
    if manifest.kind not in KINDS or not _counts(manifest):
        raise BackupError(f"{backup} is damaged: its manifest is malformed")
    return manifest


def _counts(manifest: Manifest) -> bool:
    numbers = (manifest.payload_bytes, manifest.facts.ledger_size, manifest.facts.bundle_seq)
    return (
        all(isinstance(n, int) and n >= 0 for n in numbers)
        and isinstance(manifest.payload_sha256, str)
        and len(manifest.payload_sha256) == 64
        and isinstance(manifest.facts.schema_revision, str)
    )
