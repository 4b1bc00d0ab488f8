"""`duopass verify`, the conformance command (PROTOCOL.md §3): codes verified as one fresh terminal.

It imports only the protocol core, so `duopass.cli.main` can start it without the other commands
(the server stack, HTTP clients, image readers: seconds of imports); per code it adds one `access`
(is the argument an image file?), one JSON line and a buffered write to the verification itself.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from duopass.cli.code_argument import scanned_text
from duopass.cli.numbers import whole
from duopass.cli.output import verdict_line
from duopass.protocol.limits import INT_ABS_LIMIT, TRUST_FILE_BYTES_MAX
from duopass.protocol.memory import MemoryStore
from duopass.protocol.trust import TrustStore, TrustStoreError, parse_trust_store
from duopass.protocol.verify import Mode, TerminalConfig, Verifier

__all__ = ["EXIT_ACCEPTED", "EXIT_REJECTED", "EXIT_USAGE", "usage_error", "verify", "verify_alone"]

EXIT_ACCEPTED, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2


def usage_error(message: str) -> typer.Exit:
    typer.echo(f"duopass: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


def _read_trust(path: Path) -> TrustStore:
    try:
        with path.open("rb") as handle:  # bounded read: a device or pipe has no honest size
            data = handle.read(TRUST_FILE_BYTES_MAX + 1)
        return parse_trust_store(data)
    except OSError as exc:
        raise usage_error(f"{path}: {exc.strerror}") from exc
    except TrustStoreError as exc:
        raise usage_error(f"{path}: trust store refused: {exc}") from exc


def verify(
    codes: Annotated[
        list[str], typer.Argument(metavar="CODE...", help="code texts or image files")
    ],
    trust: Annotated[Path, typer.Option(help="trust store file (PROTOCOL.md §3)")],
    now: Annotated[int, whole(0, INT_ABS_LIMIT - 1, help="the terminal's clock, Unix seconds")],
    mode: Annotated[Mode, typer.Option(help="what the terminal scans for")],
    amount: Annotated[
        int | None, whole(1, INT_ABS_LIMIT - 1, help="payment in minor units (pay)")
    ] = None,
    currency: Annotated[str | None, typer.Option(help="the till's currency (pay)")] = None,
    scope: Annotated[str | None, typer.Option(help="the terminal's venue id")] = None,
    event: Annotated[str | None, typer.Option(help="the event the gate admits (entry)")] = None,
) -> None:
    """Verify codes as one fresh terminal, in order; one JSON verdict a line.

    Exit status 0 when every code was accepted, 1 when any was rejected, 2 for a usage error.
    """
    if mode is Mode.PAY and amount is None:
        raise usage_error("--mode pay needs --amount of at least 1")
    if mode is Mode.PAY and not currency:
        raise usage_error("--mode pay needs --currency")
    if mode is Mode.ENTRY and not event:
        raise usage_error("--mode entry needs --event")
    store = _read_trust(trust)
    config = TerminalConfig(mode=mode, currency=currency, venue=scope, event=event)
    all_accepted = verify_all(codes, Verifier(store, config, MemoryStore()), now, amount)
    raise typer.Exit(EXIT_ACCEPTED if all_accepted else EXIT_REJECTED)


def verify_all(codes: list[str], verifier: Verifier, now: int, amount: int | None) -> bool:
    """Scan each code in order, writing its verdict line; True when all were accepted.

    The codes are scanned `_LINES_A_WRITE` at a time by `Verifier.scan_all` (their signatures
    verified one after another) and their lines written together: with PYTHONUNBUFFERED set
    (or `-u`) every `write` is a system call."""
    all_accepted = True
    for start in range(0, len(codes), _LINES_A_WRITE):
        texts = [scanned_text(argument) for argument in codes[start : start + _LINES_A_WRITE]]
        verdicts = verifier.scan_all(texts, now=now, amount=amount)
        all_accepted = all_accepted and all(verdict.ok for verdict in verdicts)
        sys.stdout.write("\n".join(map(verdict_line, verdicts)) + "\n")
    sys.stdout.flush()
    return all_accepted


_LINES_A_WRITE = 256


def verify_alone() -> None:
    """Run `duopass verify` as a command of its own (`sys.argv[1]` is "verify")."""
    command = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    command.command()(verify)
    command(args=sys.argv[2:], prog_name="duopass verify")
