"""`duopass audit`: check the ledger from outside, over HTTP or from its database, read-only.

The checks themselves are `duopass.ledger.audit`; this module reads the key and the state file,
opens the source, prints the report and, when every check passed, replaces the state file
atomically so that the next audit starts from the checkpoint trusted now.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from duopass.cli.audit_anchors import check_anchors
from duopass.cli.audit_source import HttpSource, SourceError
from duopass.cli.numbers import whole
from duopass.ledger import Checkpoint, LedgerError, NoteVerifier
from duopass.ledger._text import b64encode
from duopass.ledger.audit import (
    PAGE_ENTRIES_MAX,
    STATE_BYTES_MAX,
    Consistency,
    Report,
    audit_log,
    format_state,
)
from duopass.ledger.audit_state import read_state
from duopass.ledger.cosignature import CosignerKey
from duopass.ledger.timestamp import TsaTrust
from duopass.server.files import replace_atomically

if TYPE_CHECKING:
    from duopass.cli.audit_db import LedgerDatabase

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
KEY_FILE_BYTES_MAX = 4096
TRUST_FILE_BYTES_MAX = 65_536


def _usage(message: str) -> typer.Exit:
    typer.echo(f"duopass audit: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


def _read_bounded(path: Path, limit: int, what: str) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise _usage(f"{what} {path}: {exc.strerror}") from exc
    if len(data) > limit:
        raise _usage(f"{what} {path} is larger than {limit} bytes")
    return data


def _verifier(key: str | None, key_file: Path | None) -> NoteVerifier:
    if (key is None) == (key_file is None):
        raise _usage("give the ledger's verifier key with exactly one of --key and --key-file")
    if key_file is not None:
        try:
            key = _read_bounded(key_file, KEY_FILE_BYTES_MAX, "key file").decode().strip()
        except UnicodeDecodeError as exc:
            raise _usage(f"key file {key_file} is not text") from exc
    assert key is not None
    try:
        return NoteVerifier.parse(key)
    except LedgerError as exc:
        raise _usage(f"not a verifier key (name+hash+base64): {exc}") from exc


def _render(report: Report, origin: str, where: str) -> list[str]:
    lines = [f"log          {origin} at {where}"]
    checkpoint = report.checkpoint
    if checkpoint is None:
        lines.append("checkpoint   refused")
    else:
        lines.append(
            f"checkpoint   size {checkpoint.size}, root {b64encode(checkpoint.root)}, signature OK"
        )
        root = (
            "not computed (entries missing)"
            if report.root is None
            else "matches the checkpoint"
            if report.root == checkpoint.root
            else f"{b64encode(report.root)}, NOT the checkpoint's"
        )
        lines.append(f"entries      {report.entries} of {checkpoint.size} checked; root {root}")
        lines.append(f"consistency  {_consistency(report)}")
        events = ", ".join(f"{name} {count}" for name, count in report.types) or "none"
        lines.append(f"events       {events}")
    for finding in report.findings:
        lines.append(f"FAILED       {finding.message}")
    if report.unlisted:
        lines.append(f"FAILED       ... and {report.unlisted} more findings")
    return lines


def _consistency(report: Report) -> str:
    trusted = report.trusted
    if report.consistency is Consistency.FIRST or trusted is None:
        return "first audit: nothing trusted before"
    if report.consistency is Consistency.SAME:
        return f"OK, the same tree as the trusted checkpoint {trusted.size}"
    if report.consistency is Consistency.EXTENDS:
        return f"OK, extends the trusted checkpoint {trusted.size}"
    return f"FAILED against the trusted checkpoint {trusted.size}"


def audit(
    url: Annotated[
        str | None, typer.Option(help="the issuer server, e.g. http://127.0.0.1:8000")
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(help="or its database, read-only: sqlite:///path.db or postgresql://..."),
    ] = None,
    key: Annotated[
        str | None, typer.Option(help="the ledger's verifier key (C2SP vkey string)")
    ] = None,
    key_file: Annotated[Path | None, typer.Option(help="a file holding that key")] = None,
    state: Annotated[
        Path, typer.Option(help="the checkpoint trusted by the last audit (JSON, kept updated)")
    ] = Path("duopass-audit-state.json"),
    page: Annotated[
        int, whole(1, PAGE_ENTRIES_MAX, help="entries read per request")
    ] = PAGE_ENTRIES_MAX,
    tsa_trust: Annotated[
        Path | None,
        typer.Option(help="PEM: the TSA's certificate, then its CA: check the timestamp anchor"),
    ] = None,
    witness: Annotated[
        list[str] | None,
        typer.Option(help="a witness's cosignature vkey (repeatable): it must have cosigned"),
    ] = None,
) -> None:
    """Audit the ledger from outside: checkpoint signature, every entry, root and consistency.

    With --tsa-trust and --witness it also checks the server's anchors (docs/anchors.md).
    Exit status 0 when every check passed (the state file then trusts the audited checkpoint),
    1 when one failed (each failure is named), 2 for a usage error or a source that cannot be
    reached or opened.
    """
    if (url is None) == (db is None):
        raise _usage("give exactly one of --url and --db")
    pinned = _verifier(key, key_file)
    trusted, verifier = _trusted(state, pinned)
    tsa, witnesses = _anchor_trust(tsa_trust, witness or [], over_http=url is not None)
    source = _open_source(url, db)
    anchors = None
    try:
        note = source.checkpoint()
        report = audit_log(note, source, verifier, trusted=trusted, page=page, keys=source)
        unsigned = None if isinstance(source, HttpSource) else source.log_size()
        if isinstance(source, HttpSource) and report.checkpoint is not None:
            key_at = _key_at(verifier, report)
            anchors = check_anchors(source, key_at, report.checkpoint, tsa, witnesses)
    except SourceError as exc:
        if exc.usage:
            raise _usage(str(exc)) from exc
        typer.echo(f"FAILED       {exc}")
        typer.echo("audit FAILED: the source failed before the audit could finish")
        raise typer.Exit(EXIT_FAILED) from exc
    finally:
        source.close()
    for line in [*_render(report, verifier.name, source.where), *_keys(pinned, verifier, report)]:
        typer.echo(line)
    signed = report.checkpoint.size if report.checkpoint is not None else None
    if signed is not None and unsigned is not None and unsigned > signed:
        typer.echo(f"note         {unsigned - signed} newer entries are not in a checkpoint yet")
    for line in anchors.lines if anchors is not None else []:
        typer.echo(line)
    failed = len(report.findings) + report.unlisted + (anchors.failed if anchors else 0)
    if failed:
        typer.echo(f"audit FAILED: {failed} finding(s)")
        raise typer.Exit(EXIT_FAILED)
    assert note is not None and report.checkpoint is not None and report.key is not None
    _keep(state, note, trusted, report.checkpoint, report.key)
    typer.echo("audit passed")


def _anchor_trust(
    tsa_trust: Path | None, witnesses: list[str], *, over_http: bool
) -> tuple[TsaTrust | None, list[CosignerKey]]:
    """The TSA trust bundle and witness keys the anchors are checked with."""
    if not over_http and (tsa_trust is not None or witnesses):
        raise _usage("anchors are read from the server: give --url with --tsa-trust/--witness")
    try:
        keys = [CosignerKey.parse(vkey) for vkey in witnesses]
    except LedgerError as exc:
        raise _usage(f"--witness: not a cosignature vkey: {exc}") from exc
    if tsa_trust is None:
        return None, keys
    try:
        pem = _read_bounded(tsa_trust, TRUST_FILE_BYTES_MAX, "TSA trust file")
        return TsaTrust.from_pem(pem), keys
    except LedgerError as exc:
        raise _usage(f"TSA trust file {tsa_trust}: {exc}") from exc


def _trusted(state: Path, pinned: NoteVerifier) -> tuple[Checkpoint | None, NoteVerifier]:
    """The checkpoint the last audit trusted, from the state file, if there is one, and the
    ledger key trusted now: the state's (where the last audits followed the key's rotations),
    else the one given."""
    if not state.exists():
        return None, pinned
    data = _read_bounded(state, STATE_BYTES_MAX, "state file")
    try:
        signed, key = read_state(data, pinned)
    except LedgerError as exc:
        raise _usage(f"state file {state}: {exc}") from exc
    if key.name != pinned.name:
        raise _usage(f"state file {state} trusts a key of another log than --key")
    return signed.checkpoint, key


def _key_at(start: NoteVerifier, report: Report) -> Callable[[int], NoteVerifier]:
    """The ledger key that signs a checkpoint of a given size, by the rotations followed."""

    def key_at(size: int) -> NoteVerifier:
        key = start
        for rotation in report.rotations:
            key = rotation.new if size >= rotation.handover_size else key
        return key

    return key_at


def _keys(pinned: NoteVerifier, start: NoteVerifier, report: Report) -> list[str]:
    """Lines on the ledger key: where the chain went, when it went anywhere."""
    lines = []
    if start != pinned:
        lines.append(f"key          {start.key_hash:08x}, where earlier audits followed the chain")
    for rotation in report.rotations:
        lines.append(
            f"key rotation entry {rotation.index}: {rotation.previous.key_hash:08x} ->"
            f" {rotation.new.key_hash:08x}, handover checkpoint {rotation.handover_size}"
            " signed by both, OK"
        )
    if report.rotations and report.key is not None:
        lines.append(f"key          now {report.key.vkey()}")
    return lines


def _open_source(url: str | None, db: str | None) -> HttpSource | LedgerDatabase:
    try:
        if url is not None:
            return HttpSource(url)
        from duopass.cli.audit_db import LedgerDatabase  # the database stack, only when used

        return LedgerDatabase(db or "")
    except SourceError as exc:
        raise _usage(str(exc)) from exc


def _keep(
    state: Path, note: bytes, trusted: Checkpoint | None, audited: Checkpoint, key: NoteVerifier
) -> None:
    """Trust the audited checkpoint, and the key it is signed by, from now on (the state file
    replaced atomically)."""
    if trusted == audited:
        typer.echo(f"state        {state} unchanged")
        return
    try:
        replace_atomically(state, format_state(note, key))
    except OSError as exc:
        raise _usage(f"audit passed, but the state file {state}: {exc.strerror}") from exc
    typer.echo(f"state        {state} now trusts checkpoint {audited.size}")
