"""`duopass audit`: check the ledger from outside, over HTTP or from its database, read-only.

The checks themselves are `duopass.ledger.audit`; this module reads the key and the state file,
opens the source, prints the report and, when every check passed, replaces the state file
atomically so that the next audit starts from the checkpoint trusted now.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from duopass.cli.audit_anchors import AnchorCheck, AnchorPolicy, KeyAt, check_anchors
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
from duopass.ledger.audit_chain import follow_chain
from duopass.ledger.audit_state import read_state
from duopass.ledger.cosignature import CosignerKey
from duopass.ledger.limits import NOTE_SIGNATURES_MAX
from duopass.ledger.rotation import Rotation
from duopass.ledger.timestamp import TsaTrust
from duopass.server.files import replace_atomically

if TYPE_CHECKING:
    from duopass.cli.audit_db import LedgerDatabase

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
KEY_FILE_BYTES_MAX = 4096
TRUST_FILE_BYTES_MAX = 65_536
ANCHOR_LAG_MAX_S = 366 * 86_400


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


_TsaTrustFile = Annotated[
    Path | None,
    typer.Option(help="PEM: the TSA's certificate, then its CA: check the timestamp anchors"),
]
_Witness = Annotated[
    list[str] | None,
    typer.Option(help="a witness's cosignature vkey (repeatable): check its cosignatures"),
]
_Quorum = Annotated[
    int | None,
    whole(1, NOTE_SIGNATURES_MAX, help="how many --witness must have cosigned (default: all)"),
]
_MaxLag = Annotated[
    int | None,
    whole(1, ANCHOR_LAG_MAX_S, help="seconds the latest anchor may be old (docs/anchors.md)"),
]


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
    tsa_trust: _TsaTrustFile = None,
    witness: _Witness = None,
    witness_quorum: _Quorum = None,
    max_anchor_lag: _MaxLag = None,
) -> None:
    """Audit the ledger from outside: checkpoint signature, every entry, root and consistency.

    With --tsa-trust and --witness it also checks every anchor the server lists, a quorum of
    witnesses on the latest, and with --max-anchor-lag its age (docs/anchors.md).
    Exit status 0 when every check passed (the state file then trusts the audited checkpoint),
    1 when one failed (each failure is named), 2 for a usage error or a source that cannot be
    reached or opened.
    """
    if (url is None) == (db is None):
        raise _usage("give exactly one of --url and --db")
    pinned = _verifier(key, key_file)
    trusted, verifier = _trusted(state, pinned)
    policy = _anchor_policy(
        tsa_trust, witness or [], witness_quorum, max_anchor_lag, over_http=url is not None
    )
    source = _open_source(url, db)
    anchors = None
    try:
        note = source.checkpoint()
        report = audit_log(note, source, verifier, trusted=trusted, page=page, keys=source)
        unsigned = None if isinstance(source, HttpSource) else source.log_size()
        if isinstance(source, HttpSource) and report.checkpoint is not None:
            anchors = _check_anchors(source, pinned, verifier, trusted, report, policy)
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


def _anchor_policy(
    tsa_trust: Path | None,
    witnesses: list[str],
    quorum: int | None,
    max_lag: int | None,
    *,
    over_http: bool,
) -> AnchorPolicy:
    """The TSA trust bundle and witness keys the anchors are checked with, the quorum, the lag."""
    anchored = tsa_trust is not None or witnesses or quorum is not None or max_lag is not None
    if not over_http and anchored:
        raise _usage("anchors are read from the server: give --url with the anchor options")
    try:
        keys = list(dict.fromkeys(CosignerKey.parse(vkey) for vkey in witnesses))
    except LedgerError as exc:
        raise _usage(f"--witness: not a cosignature vkey: {exc}") from exc
    if quorum is not None and quorum > len(keys):
        raise _usage(f"--witness-quorum {quorum} is more than the {len(keys)} --witness given")
    if max_lag is not None and tsa_trust is None and not keys:
        raise _usage("--max-anchor-lag needs --tsa-trust or --witness to trust an anchor's time")
    tsa = None
    if tsa_trust is not None:
        try:
            tsa = TsaTrust.from_pem(
                _read_bounded(tsa_trust, TRUST_FILE_BYTES_MAX, "TSA trust file")
            )
        except LedgerError as exc:
            raise _usage(f"TSA trust file {tsa_trust}: {exc}") from exc
    given = len(keys) if quorum is None else quorum
    return AnchorPolicy(tsa, keys, given, max_lag, time.time())


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


def _check_anchors(
    source: HttpSource,
    pinned: NoteVerifier,
    start: NoteVerifier,
    trusted: Checkpoint | None,
    report: Report,
    policy: AnchorPolicy,
) -> AnchorCheck:
    """Every anchor, each checked with the ledger key of its checkpoint's size."""
    assert report.checkpoint is not None
    key_at, earlier = _key_at(pinned, start, trusted, report, source)
    anchors = check_anchors(source, key_at, report.checkpoint, policy)
    for problem in earlier:
        anchors.fail(f"anchors: {problem}")
    return anchors


def _key_at(
    pinned: NoteVerifier,
    start: NoteVerifier,
    trusted: Checkpoint | None,
    report: Report,
    source: HttpSource,
) -> tuple[KeyAt, list[str]]:
    """The ledger key that signs a checkpoint of a given size, by the rotations followed: this
    audit's, and those before the trusted checkpoint (followed again from the pinned key, for
    the anchors of older checkpoints, when the state file trusts a later key); and what stopped
    the earlier chain, if anything did."""
    earlier: Sequence[Rotation] = ()
    problems: list[str] = []
    if start != pinned and trusted is not None:
        chain = follow_chain(pinned, 0, trusted.size, source, source)
        earlier = chain.rotations
        problems = [
            f"the key's rotations before the trusted checkpoint: {p}" for p, _ in chain.problems
        ]
        if not problems and chain.key != start:
            problems.append("the key's rotations before the trusted checkpoint lead to another key")
    rotations = [*earlier, *report.rotations]

    def key_at(size: int) -> NoteVerifier:
        key = pinned
        for rotation in rotations:
            key = rotation.new if size >= rotation.handover_size else key
        return key

    return key_at, problems


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
