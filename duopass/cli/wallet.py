"""`duopass wallet ...`: the holder's wallet on the command line (docs/wallet.md).

`code` prints exactly the DP1 text on standard output, one line a signature; the QR code for
people goes to standard error (a terminal) or to a PNG file. Every refusal is one line on
standard error and its own exit status (`duopass.wallet.EXIT_STATUS`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Annotated, Any

import typer

from duopass.cli.numbers import seconds, whole
from duopass.cli.people import count, local_time
from duopass.cli.wallet_status import status_lines
from duopass.cli.wallet_tickets import event_lines, order_lines, sync_line, ticket_lines
from duopass.qr import render_png, render_terminal
from duopass.wallet import Display, Failure, Wallet, WalletError
from duopass.wallet.installation import installation_file, installation_id
from duopass.wallet.limits import (
    HTTP_TIMEOUT_DEFAULT_S,
    TICKETS_PER_ORDER_MAX,
    WATCH_INTERVAL_DEFAULT_S,
)
from duopass.wallet.tickets import ticket_status

wallet_app = typer.Typer(
    help="The holder's wallet: enrol a device, sync a credential, show codes offline.",
    no_args_is_help=True,
)

_FRAMES_MAX = 10_000
_STOPS_TICKETS = frozenset(
    {Failure.NOT_ENROLLED, Failure.OFFLINE, Failure.SIGNED_OUT, Failure.STATE}
)
"""Purse sync failures the ticket sync would meet too; after any other, tickets still sync."""
_CLEAR_SCREEN = "\x1b[H\x1b[2J"

DataDir = Annotated[
    Path,
    typer.Option(
        envvar="DUOPASS_WALLET_DIR",
        help="the wallet's folder (device key, state)",
        show_default=True,
    ),
]
Timeout = Annotated[float, seconds(0.1, 600, help="seconds to wait for the server")]
Password = Annotated[
    str,
    typer.Option(
        prompt=True,
        hide_input=True,
        envvar="DUOPASS_WALLET_PASSWORD",
        help="the holder's password (asked for when not given)",
    ),
]
Otp = Annotated[str | None, typer.Option(help="a one-time code, where one is enrolled (6 digits)")]
DEFAULT_DIR = Path("~/.duopass-wallet")


@contextmanager
def _wallet(
    data_dir: Path, timeout: float = HTTP_TIMEOUT_DEFAULT_S, *, create: bool = False
) -> Iterator[Wallet]:
    """The wallet in `data_dir` (made only when `create`: enrolment); a refusal becomes a
    message and its exit status, and a missing folder stays missing."""
    try:
        where = installation_file()
        installation = None if where is None else installation_id(where)
        with Wallet(
            data_dir.expanduser(), timeout=timeout, create=create, installation=installation
        ) as wallet:
            yield wallet
    except WalletError as exc:
        typer.echo(f"duopass wallet: {exc.message}", err=True)
        raise typer.Exit(exc.exit_status) from exc


@wallet_app.command()
def enrol(
    server: Annotated[str, typer.Option(help="the issuer server, e.g. http://127.0.0.1:8000")],
    login: Annotated[str, typer.Option(help="the holder's login")],
    password: Password,
    otp: Otp = None,
    data_dir: DataDir = DEFAULT_DIR,
    timeout: Timeout = HTTP_TIMEOUT_DEFAULT_S,
) -> None:
    """Sign in, create the device key and register it with the server."""
    with _wallet(data_dir, timeout, create=True) as wallet:
        device_id = wallet.enrol(server=server, login=login, password=password, otp=otp)
    typer.echo(f"enrolled as device {device_id}; next: duopass wallet sync", err=True)


@wallet_app.command()
def login(
    password: Password,
    otp: Otp = None,
    data_dir: DataDir = DEFAULT_DIR,
    timeout: Timeout = HTTP_TIMEOUT_DEFAULT_S,
) -> None:
    """Sign in again when the session has expired (the device stays enrolled)."""
    with _wallet(data_dir, timeout) as wallet:
        wallet.login(password=password, otp=otp)
    typer.echo("signed in", err=True)


@wallet_app.command()
def sync(data_dir: DataDir = DEFAULT_DIR, timeout: Timeout = HTTP_TIMEOUT_DEFAULT_S) -> None:
    """Fetch a fresh credential and the server's time (a refresh when one is held), then the
    tickets: new ones, and a new credential for those whose codes are used up."""
    with _wallet(data_dir, timeout) as wallet:
        purse: WalletError | None = None
        try:
            held = wallet.sync()
            until = local_time(held.credential.claims.exp)
            mode = "offline and online" if held.offline else "online only: no funds to hold"
            left = count(held.left, "code")
            typer.echo(f"credential valid until {until}, {left}, {mode}", err=True)
        except WalletError as exc:
            if exc.failure in _STOPS_TICKETS:
                raise
            typer.echo(f"duopass wallet: purse: {exc.message}", err=True)
            purse = exc
        try:
            wallet.sync_tickets()
        except WalletError as exc:
            typer.echo(f"duopass wallet: tickets: {exc.message}", err=True)
            raise typer.Exit((purse or exc).exit_status) from exc
        typer.echo(f"tickets: {sync_line(_ticket_statuses(wallet))}", err=True)
        if purse is not None:
            raise typer.Exit(purse.exit_status)


def _ticket_statuses(wallet: Wallet) -> list[dict[str, Any]]:
    now, policy = wallet.now(), wallet.state.read().policy
    return [ticket_status(ticket, now, policy) for ticket in wallet.tickets.all()]


@wallet_app.command()
def tickets(
    as_json: Annotated[bool, typer.Option("--json", help="one JSON array")] = False,
    data_dir: DataDir = DEFAULT_DIR,
) -> None:
    """The tickets this wallet holds (as of its last sync; no network): event, doors and end
    in local time, entries used, codes left, and ready or why not."""
    with _wallet(data_dir) as wallet:
        statuses = _ticket_statuses(wallet)
    if as_json:
        typer.echo(json.dumps(statuses))
        return
    for line in ticket_lines(statuses):
        typer.echo(line)


@wallet_app.command()
def events(
    as_json: Annotated[bool, typer.Option("--json", help="one JSON array")] = False,
    data_dir: DataDir = DEFAULT_DIR,
    timeout: Timeout = HTTP_TIMEOUT_DEFAULT_S,
) -> None:
    """What is on sale: events not yet ended and their ticket types (the id `buy --type` takes)."""
    with _wallet(data_dir, timeout) as wallet:
        listed = wallet.events()
    if as_json:
        typer.echo(json.dumps(listed))
        return
    for line in event_lines(listed):
        typer.echo(line)


@wallet_app.command()
def buy(
    type_id: Annotated[
        int, whole(1, 2**31 - 1, help="the ticket type (`duopass wallet events`)", name="--type")
    ],
    quantity: Annotated[int, whole(1, TICKETS_PER_ORDER_MAX, help="how many tickets")] = 1,
    data_dir: DataDir = DEFAULT_DIR,
    timeout: Timeout = HTTP_TIMEOUT_DEFAULT_S,
) -> None:
    """Buy tickets, paid from the account; the subs go to standard output. A retry of a
    purchase whose answer was lost (same type and quantity) returns that order, charged once."""
    with _wallet(data_dir, timeout) as wallet:
        order = wallet.buy(type_id, quantity)
    for line in order_lines(order):
        typer.echo(line, err=True)
    for sub in order["tickets"]:
        typer.echo(sub)


@wallet_app.command()
def code(
    qr: Annotated[
        bool | None,
        typer.Option(help="draw the QR code on standard error [default: if it is a terminal]"),
    ] = None,
    png: Annotated[Path | None, typer.Option(help="also write the QR code to this PNG")] = None,
    watch: Annotated[
        bool, typer.Option(help="keep the code shown, re-signed with the time, until hidden")
    ] = False,
    interval: Annotated[
        int, whole(1, 60, help="seconds between re-signatures (--watch)")
    ] = WATCH_INTERVAL_DEFAULT_S,
    count: Annotated[int | None, whole(1, _FRAMES_MAX, help="at most this many signatures")] = None,
    ticket: Annotated[
        str | None, typer.Option(help="a ticket's code instead of the purse's (its sub or prefix)")
    ] = None,
    data_dir: DataDir = DEFAULT_DIR,
) -> None:
    """Show a code: a new counter for this display, no network needed.

    --watch re-signs the same counter with the time every --interval seconds while shown and
    hides the code after the freshness window (PROTOCOL.md §2). Another code, another call.
    --ticket SUB shows that ticket's code the same way (`duopass wallet tickets` lists them).
    """
    draw = sys.stderr.isatty() if qr is None else qr
    frames = (count or _FRAMES_MAX) if watch else 1
    if png is not None and not png.parent.is_dir():  # before a counter is used
        typer.echo(f"duopass wallet: {png.parent}: no such folder", err=True)
        raise typer.Exit(2)
    with _wallet(data_dir) as wallet:
        display = wallet.show() if ticket is None else wallet.show_ticket(ticket)
        with suppress(KeyboardInterrupt):
            _show(wallet, display, frames=frames, interval=interval, draw=draw, png=png)
        if watch:
            again = "duopass wallet code" + ("" if ticket is None else f" --ticket {ticket}")
            typer.echo(f"code hidden; `{again}` shows a new one", err=True)


def _show(
    wallet: Wallet, display: Display, *, frames: int, interval: int, draw: bool, png: Path | None
) -> None:
    for frame in range(frames):
        now = wallet.now()
        if frame and now >= display.hide_at:
            return
        text = display.text(now)
        if png is not None:
            _write_png(png, text)
        if draw:
            clear = _CLEAR_SCREEN if frames > 1 else ""
            sys.stderr.write(clear + render_terminal(text))
            sys.stderr.flush()
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        if frame + 1 < frames:
            time.sleep(max(0, min(interval, display.hide_at - now)))


def _write_png(path: Path, text: str) -> None:
    """Replace the image whole, so a viewer never reads half of one."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(render_png(text))
        os.replace(temporary, path)
    except OSError as exc:
        typer.echo(f"duopass wallet: {path}: {exc.strerror}", err=True)
        raise typer.Exit(2) from exc


@wallet_app.command()
def status(
    offline: Annotated[bool, typer.Option(help="do not ask the server for the funds")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
    data_dir: DataDir = DEFAULT_DIR,
    timeout: Timeout = HTTP_TIMEOUT_DEFAULT_S,
) -> None:
    """The credential, codes left, expiry, a refresh in flight, and the funds if online: money
    in yuan, times in local time; --json gives the raw fields (minor units, Unix times)."""
    with _wallet(data_dir, timeout) as wallet:
        doc = wallet.status(online=not offline)
    if as_json:
        typer.echo(json.dumps(doc))
        return
    for line in status_lines(doc):
        typer.echo(line)
