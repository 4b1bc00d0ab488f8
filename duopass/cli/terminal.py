"""`duopass terminal ...`: enrol a till or gate, run it on a scanner's lines or image files,
show its state, upload its journal now."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from duopass.cli.code_argument import scanned_text
from duopass.cli.numbers import seconds, whole
from duopass.protocol.bundle import BundleError
from duopass.protocol.encoding import b64u_encode
from duopass.protocol.verify import Mode
from duopass.terminal import (
    AMOUNT_MAX,
    AgentSettings,
    Busy,
    EnrolError,
    NotEnrolled,
    Refused,
    Result,
    TerminalAgent,
    Unreachable,
    enrol,
    format_amount,
    parse_amount,
    read_lines,
)

app = typer.Typer(
    help="The terminal agent: a till or gate that scans online, or offline by itself.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DataDir = Annotated[
    Path, typer.Option("--data-dir", help="the terminal's key, trust store and journal")
]
_DEFAULT_DIR = Path("duopass-terminal")


def _fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    typer.echo(f"duopass terminal: {message}", err=True)
    return typer.Exit(code)


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="duopass terminal: %(message)s",
        stream=sys.stderr,
        force=True,
    )


def _open(
    data_dir: Path, settings: AgentSettings | None = None, *, exclusive: bool = True
) -> TerminalAgent:
    try:
        return TerminalAgent(data_dir, settings, exclusive=exclusive)
    except (NotEnrolled, Busy) as exc:
        raise _fail(str(exc)) from exc


@app.command("enrol")
def enrol_command(
    server: Annotated[str, typer.Option(help="the issuer server's URL")],
    terminal_id: Annotated[str, typer.Option("--id", help="the terminal id the card office made")],
    code: Annotated[str, typer.Option(help="the one-time enrolment code")],
    data_dir: DataDir = _DEFAULT_DIR,
    late_window_s: Annotated[
        int | None, typer.Option(hidden=True, help="deprecated: the trust bundle carries it")
    ] = None,
) -> None:
    """Enrol this terminal: a new key, the root key pinned, the first trust bundle."""
    _logging(False)
    if late_window_s is not None:  # before protocol revision 1.1 the bundle did not carry it
        typer.echo(
            "duopass terminal: --late-window-s is deprecated and ignored: the late window"
            " comes with the trust bundle (§5.4)",
            err=True,
        )
    try:
        config = enrol(data_dir, server=server, terminal_id=terminal_id, code=code)
    except (EnrolError, Refused, Unreachable) as exc:
        raise _fail(f"enrolment failed: {exc}", EXIT_FAILED) from exc
    with _open(data_dir) as terminal:
        try:
            trust = terminal.bundles.sync()
            bundle = f"trust bundle seq {trust.seq}"
        except (Unreachable, Refused, BundleError) as exc:
            bundle = f"no trust bundle yet ({exc}); `run` fetches one"
    where = f" at {config.venue}" if config.venue else ""
    typer.echo(f"enrolled {config.terminal_id}: {config.mode}{where} for {config.iss}; {bundle}")


@app.command()
def run(
    images: Annotated[
        list[Path] | None,
        typer.Argument(help="image files to scan, in order, instead of standard input"),
    ] = None,
    data_dir: DataDir = _DEFAULT_DIR,
    amount: Annotated[
        int | None, whole(1, AMOUNT_MAX, help="fixed price, minor units (till)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object a verdict")] = False,
    timeout_ms: Annotated[int, whole(10, 60_000, help="online timeout, ms")] = 300,
    probe_s: Annotated[float, seconds(0.05, 3600, help="offline: probe the server every")] = 1.0,
    upload_s: Annotated[float, seconds(0.05, 86_400, help="upload the journal every")] = 5.0,
    bundle_s: Annotated[float, seconds(1, 86_400, help="sync the trust bundle every")] = 300.0,
    server: Annotated[str | None, typer.Option(help="override the enrolled server URL")] = None,
    verbose: Annotated[bool, typer.Option(help="log sync and upload to stderr")] = False,
) -> None:
    """Scan codes one a line from standard input (or the given image files); one verdict a line.

    A till takes the amount from --amount, or from a line holding only an amount keyed in before
    the scan (`1250` minor units, or `12.50`), which applies to the next scan only.
    """
    _logging(verbose)
    settings = AgentSettings(
        timeout_s=timeout_ms / 1000,
        probe_s=probe_s,
        upload_s=upload_s,
        bundle_s=bundle_s,
        server=server,
    )
    with _open(data_dir, settings) as terminal:
        for seq in terminal.recover():
            typer.echo(
                f"duopass terminal: seq {seq} was cut short: journalled INTERRUPTED", err=True
            )
        terminal.start()
        till = terminal.scan_path.config.mode is Mode.PAY
        keyed: int | None = None
        texts = (
            (scanned_text(str(path)) for path in images) if images else read_lines(sys.stdin.buffer)
        )
        for text in texts:
            if text is None:
                typer.echo("duopass terminal: line too long, ignored", err=True)
                continue
            if not text:
                if images:  # a frame without a code: nothing was scanned
                    typer.echo("duopass terminal: no QR code in the image", err=True)
                continue
            if till and (keyed_now := parse_amount(text)) is not None:
                if not 1 <= keyed_now <= AMOUNT_MAX:
                    typer.echo("duopass terminal: amount out of range, ignored", err=True)
                else:
                    keyed = keyed_now
                continue
            price = keyed if keyed is not None else amount
            if till and price is None:
                typer.echo("duopass terminal: no amount: key it in before the scan", err=True)
                continue
            result = terminal.scan_path.scan(text, amount=price)
            keyed = None
            typer.echo(json.dumps(result_json(result)) if as_json else result_line(result))
        if terminal.link.online:
            terminal.try_upload()


def result_line(result: Result) -> str:
    """`OK online pay 12.50 CNY sub=h-7f3a ctr=3 seq=17`."""
    parts = [result.reason.value, "online" if result.online else "offline", result.mode.value]
    if result.amount is not None:
        parts += [format_amount(result.amount), result.currency or ""]
    if result.sub is not None:
        parts.append(f"sub={result.sub}")
    if result.ctr is not None:
        parts.append(f"ctr={result.ctr}")
    parts.append(f"seq={result.seq}")
    if result.note:
        parts.append(f"({result.note})")
    return " ".join(parts)


def result_json(result: Result) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "reason": result.reason.value,
        "mode": "online" if result.online else "offline",
        "tried": result.tried,
        "seq": result.seq,
        "scan": result.mode.value,
        "amount": result.amount,
        "currency": result.currency,
        "iss": result.iss,
        "sub": result.sub,
        "cti": b64u_encode(result.cti) if result.cti is not None else None,
        "ctr": result.ctr,
        "note": result.note,
    }


@app.command()
def status(
    data_dir: DataDir = _DEFAULT_DIR,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Seqs, acknowledgement, unsent entries, trust bundle, link state."""
    with _open(data_dir, exclusive=False) as terminal:
        store = terminal.store
        config = store.config()
        trust = store.trust()
        now = int(time.time())
        doc = {
            "terminal_id": config.terminal_id,
            "server": config.server,
            "mode": config.mode,
            "venue": config.venue,
            "last_seq": store.next_seq - 1,
            "acked_seq": store.acked_seq,
            "entries_held": store.entries(),
            "entries_unsent": store.unsent(),
            "batch_waiting": (batch := store.stored_batch()) is not None
            and [batch.first, batch.last],
            "bundle_seq": trust.seq if trust else None,
            "bundle_age_s": now + store.clock_offset - trust.issued_at if trust else None,
            "bundle_max_age_s": trust.max_age_s if trust else None,
            "late_window_s": trust.policy(config.iss).late_window_s if trust else None,
            "clock_offset_s": store.clock_offset,
            "link": store.get("link", "online"),
            "link_since": store.get("link_changed_at"),
        }
    if as_json:
        typer.echo(json.dumps(doc))
    else:
        for key, value in doc.items():
            typer.echo(f"{key:18} {value}")


@app.command()
def upload(
    data_dir: DataDir = _DEFAULT_DIR,
    server: Annotated[str | None, typer.Option(help="override the enrolled server URL")] = None,
) -> None:
    """Upload the journal now; exit 0 when the server acknowledged every entry."""
    _logging(True)
    settings = AgentSettings(server=server)
    try:
        terminal = TerminalAgent(data_dir, settings)
        for seq in terminal.recover():  # no agent runs: interrupted scans are journalled
            typer.echo(
                f"duopass terminal: seq {seq} was cut short: journalled INTERRUPTED", err=True
            )
    except Busy:
        terminal = _open(data_dir, settings, exclusive=False)
    except NotEnrolled as exc:
        raise _fail(str(exc)) from exc
    with terminal:
        try:
            done = terminal.uploader.upload()
        except Unreachable as exc:
            raise _fail(f"server unreachable: {exc}", EXIT_FAILED) from exc
        typer.echo(f"acked_seq {terminal.store.acked_seq}, unsent {terminal.store.unsent()}")
    raise typer.Exit(EXIT_OK if done else EXIT_FAILED)


@app.command()
def sync(data_dir: DataDir = _DEFAULT_DIR) -> None:
    """Fetch and apply the trust bundle now."""
    _logging(True)
    with _open(data_dir, exclusive=False) as terminal:
        try:
            trust = terminal.bundles.sync()
        except (Unreachable, Refused, BundleError) as exc:
            raise _fail(f"bundle sync failed: {exc}", EXIT_FAILED) from exc
    typer.echo(f"trust bundle seq {trust.seq}, issued at {trust.issued_at}")
