"""`duopass terminal ...`: enrol a till or gate, run it on a scanner's lines or image files,
show its state, upload its journal now."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from duopass.cli.numbers import seconds, whole
from duopass.cli.people import count, local_time
from duopass.cli.terminal_state import status_doc
from duopass.protocol.bundle import BundleError
from duopass.protocol.encoding import b64u_encode
from duopass.protocol.purse import is_pin
from duopass.protocol.verify import Mode
from duopass.qr import QrError, read_image_file
from duopass.terminal import (
    AgentSettings,
    AmountError,
    Busy,
    EnrolError,
    NotEnrolled,
    Refused,
    Result,
    TerminalAgent,
    Unreachable,
    enrol,
    enrol_issuer,
    format_amount,
    is_keyed,
    read_amount,
    read_lines,
)
from duopass.terminal.scan import WAIT_FOR_WALLET

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
    for name in ("httpx", "httpcore"):  # a line a request: for --verbose only
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)


def _amount(value: str | int) -> int:
    """`--amount` as a keyed line reads it: `12.50`, or digits alone in minor units (`1250`)."""
    if isinstance(value, int):
        return value
    try:
        return read_amount(value)
    except AmountError as exc:
        raise typer.BadParameter(str(exc)) from None


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
    issuer: Annotated[
        str | None,
        typer.Option(help="add this issuer to the terminal enrolled in the data dir"),
    ] = None,
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
        if issuer is None:
            config = enrol(data_dir, server=server, terminal_id=terminal_id, code=code)
        else:
            config = enrol_issuer(
                data_dir, issuer=issuer, server=server, terminal_id=terminal_id, code=code
            )
    except (EnrolError, Refused, Unreachable) as exc:
        raise _fail(f"enrolment failed: {exc}", EXIT_FAILED) from exc
    with _open(data_dir) as first:
        terminal = first.by_issuer[config.iss]
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
        int | None,
        typer.Option(
            parser=_amount, metavar="AMOUNT", help="fixed price (till): 12.50, or 1250 minor units"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object a verdict")] = False,
    timeout_ms: Annotated[int, whole(10, 60_000, help="online timeout, ms")] = 300,
    probe_s: Annotated[float, seconds(0.05, 3600, help="offline: probe the server every")] = 1.0,
    upload_s: Annotated[float, seconds(0.05, 86_400, help="upload the journal every")] = 5.0,
    bundle_s: Annotated[float, seconds(1, 86_400, help="sync the trust bundle every")] = 300.0,
    heartbeat_s: Annotated[float, seconds(1, 86_400, help="send a heartbeat every")] = 300.0,
    server: Annotated[str | None, typer.Option(help="override the enrolled server URL")] = None,
    verbose: Annotated[bool, typer.Option(help="log sync and upload to stderr")] = False,
) -> None:
    """Scan codes one a line from standard input (or the given image files); one verdict a line.

    A till takes the amount from --amount, or from a line holding only an amount keyed in before
    the scan (`12.50`, or `1250` minor units), which applies to the next scan only. Exit status
    0 when every input got a verdict (accepted or refused), 1 when some could not be scanned
    (docs/terminal.md), 2 for usage.
    """
    _logging(verbose)
    settings = AgentSettings(
        timeout_s=timeout_ms / 1000,
        probe_s=probe_s,
        upload_s=upload_s,
        bundle_s=bundle_s,
        heartbeat_s=heartbeat_s,
        server=server,
    )
    with _open(data_dir, settings) as terminal:
        for seq in terminal.recover():
            typer.echo(
                f"duopass terminal: seq {seq} was cut short: journalled INTERRUPTED", err=True
            )
        terminal.start()
        typer.echo(_ready(terminal), err=True)
        lines = read_lines(sys.stdin.buffer)
        till = _Till(terminal, fixed=amount, as_json=as_json, lines=lines)
        if images:
            for path in images:
                till.image(path)
        else:
            for line in lines:
                till.line(line)
        for agent in terminal.agents:
            if agent.link.online:
                agent.try_upload()
    if till.errors:
        typer.echo(f"duopass terminal: {count(till.errors, 'input')} not scanned", err=True)
        raise typer.Exit(EXIT_FAILED)


def _ready(terminal: TerminalAgent) -> str:
    config = terminal.store.config()
    where = f" at {config.venue}" if config.venue else ""
    server = terminal.settings.server or config.server
    return f"duopass terminal: {config.terminal_id} ready: {config.mode}{where}, server {server}"


@dataclass
class _Till:
    """What `run` does with each input: a verdict a scan, or a message and one error more."""

    terminal: TerminalAgent
    fixed: int | None
    as_json: bool
    lines: Iterator[str | None] = field(default_factory=lambda: iter(()))
    """The keypad's and scanner's lines: a PIN the server asks for is the next one."""
    keyed: int | None = None
    errors: int = 0

    @property
    def pays(self) -> bool:
        return self.terminal.scan_path.config.mode is Mode.PAY

    def line(self, text: str | None) -> None:
        if text is None:
            self._error("line too long, not scanned")
        elif not text:
            return
        elif self.pays and is_keyed(text.strip()):
            try:
                self.keyed = read_amount(text.strip())  # ` 5.00 ` as a keypad may pad it
            except AmountError as exc:
                self.keyed = None  # never charge an amount the cashier did not mean
                self._error(f"{exc}; key it in again")
        else:
            self._scan(text)

    def image(self, path: Path) -> None:
        if path.is_dir():
            self._error(f"a folder, not an image: {path}")
            return
        if not path.is_file():
            self._error(f"no such file: {path}")
            return
        try:
            texts = read_image_file(path)
        except QrError as exc:
            self._error(f"not an image: {path} ({exc})")
            return
        if texts:
            self._scan(texts[0])
        else:  # a frame without a code: nothing was scanned
            self._error(f"no QR code in the image: {path}")

    def _scan(self, text: str) -> None:
        price = self.keyed if self.keyed is not None else self.fixed
        if self.pays and price is None:
            self._error("no amount: key it in before the scan")
            return
        result = self.terminal.scan(text, amount=price, pin_entry=self._pin)
        self.keyed = None
        typer.echo(json.dumps(result_json(result)) if self.as_json else result_line(result))

    def _pin(self, why: str, confirmation: str | None) -> str | None:
        """The holder types their PIN on the keypad (the next line), or, when the server offers
        it, an empty line to confirm the payment in their wallet instead; anything else gives
        up, and the payment is refused."""
        again = "wrong PIN, " if why == "pin_wrong" else ""
        wallet = " (or Enter: confirm it in your wallet)" if confirmation is not None else ""
        typer.echo(f"duopass terminal: {again}PIN for this payment?{wallet}", err=True)
        typed = next(self.lines, None)
        pin = None if typed is None else typed.strip()
        if pin == "" and confirmation is not None:
            wait = round(self.terminal.scan_path.wallet_wait_s)
            typer.echo(
                f"duopass terminal: confirm in your wallet: waiting up to {wait} s", err=True
            )
            return WAIT_FOR_WALLET
        if pin is None or not is_pin(pin):
            typer.echo("duopass terminal: no PIN: payment refused", err=True)
            return None
        return pin

    def _error(self, message: str) -> None:
        self.errors += 1
        typer.echo(f"duopass terminal: {message}", err=True)


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
        doc = status_doc(terminal, int(time.time()))
    if as_json:
        typer.echo(json.dumps(doc))
        return
    since = doc["link_since"]
    doc["link_since"] = local_time(since) if isinstance(since, int) else "never run"
    for key, value in doc.items():
        if key != "issuers":
            typer.echo(f"{key:18} {value}")
    for other in doc.get("issuers", ()):
        typer.echo(f"\nissuer {other['iss']}")
        since = other["link_since"]
        other["link_since"] = local_time(since) if isinstance(since, int) else "never run"
        for key, value in other.items():
            typer.echo(f"  {key:16} {value}")


@app.command()
def upload(
    data_dir: DataDir = _DEFAULT_DIR,
    server: Annotated[str | None, typer.Option(help="override the enrolled server URL")] = None,
    verbose: Annotated[bool, typer.Option(help="log each request to stderr")] = False,
) -> None:
    """Upload the journal now; exit 0 when the server acknowledged every entry."""
    _logging(verbose)
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
    done = True
    with terminal:
        for agent in terminal.agents:  # each enrolment's journal to its own issuer's server
            label = "" if agent is terminal else f"{agent.iss}: "
            try:
                done = agent.uploader.upload() and done
            except Unreachable as exc:
                if not terminal.others:
                    raise _fail(f"server unreachable: {exc}", EXIT_FAILED) from exc
                typer.echo(f"duopass terminal: {label}server unreachable: {exc}", err=True)
                done = False
                continue
            typer.echo(f"{label}acked_seq {agent.store.acked_seq}, unsent {agent.store.unsent()}")
    raise typer.Exit(EXIT_OK if done else EXIT_FAILED)


@app.command()
def sync(
    data_dir: DataDir = _DEFAULT_DIR,
    verbose: Annotated[bool, typer.Option(help="log each request to stderr")] = False,
) -> None:
    """Fetch and apply the trust bundle now."""
    _logging(verbose)
    failed = False
    with _open(data_dir, exclusive=False) as terminal:
        for agent in terminal.agents:  # each enrolment's bundle from its own issuer
            label = "" if agent is terminal else f"{agent.iss}: "
            try:
                trust = agent.bundles.sync()
            except (Unreachable, Refused, BundleError) as exc:
                if not terminal.others:
                    raise _fail(f"bundle sync failed: {exc}", EXIT_FAILED) from exc
                typer.echo(f"duopass terminal: {label}bundle sync failed: {exc}", err=True)
                failed = True
                continue
            issued = local_time(trust.issued_at)
            typer.echo(f"{label}trust bundle seq {trust.seq}, issued at {issued}")
    if failed:
        raise typer.Exit(EXIT_FAILED)
