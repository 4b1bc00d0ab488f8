"""`duopass verify`, the conformance command (PROTOCOL.md §3): codes verified as one fresh terminal.

It imports only the protocol core, so `duopass.cli.main` can start it without the other commands
(the server stack, HTTP clients, image readers: seconds of imports), and a plain command line
runs without Typer at all (`duopass.cli.verify_run`, where the work is); per code it adds one
`access` (is the argument an image file?), one JSON line and a buffered write to the
verification itself.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from duopass.cli.numbers import whole
from duopass.cli.verify_run import (
    EXIT_ACCEPTED,
    EXIT_REJECTED,
    EXIT_USAGE,
    WHOLE_MAX,
    Options,
    UsageError,
    prepare,
    verify_all,
)
from duopass.protocol.verify import Mode

__all__ = [
    "EXIT_ACCEPTED",
    "EXIT_REJECTED",
    "EXIT_USAGE",
    "usage_error",
    "verify",
    "verify_all",
    "verify_alone",
]


def usage_error(message: str) -> typer.Exit:
    typer.echo(f"duopass: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


def verify(
    codes: Annotated[
        list[str], typer.Argument(metavar="CODE...", help="code texts or image files")
    ],
    trust: Annotated[Path, typer.Option(help="trust store file (PROTOCOL.md §3)")],
    now: Annotated[int, whole(0, WHOLE_MAX, help="the terminal's clock, Unix seconds")],
    mode: Annotated[Mode, typer.Option(help="what the terminal scans for")],
    amount: Annotated[int | None, whole(1, WHOLE_MAX, help="payment in minor units (pay)")] = None,
    currency: Annotated[str | None, typer.Option(help="the till's currency (pay)")] = None,
    scope: Annotated[str | None, typer.Option(help="the terminal's venue id")] = None,
    event: Annotated[str | None, typer.Option(help="the event the gate admits (entry)")] = None,
) -> None:
    """Verify codes as one fresh terminal, in order; one JSON verdict a line.

    Exit status 0 when every code was accepted, 1 when any was rejected, 2 for a usage error.
    """
    options = Options(
        codes=codes,
        trust=trust,
        now=now,
        mode=mode,
        amount=amount,
        currency=currency,
        scope=scope,
        event=event,
    )
    try:
        verifier = prepare(options)
    except UsageError as exc:
        raise usage_error(str(exc)) from exc
    all_accepted = verify_all(codes, verifier, now, amount)
    raise typer.Exit(EXIT_ACCEPTED if all_accepted else EXIT_REJECTED)


def verify_alone() -> None:
    """Run `duopass verify` as a command of its own (`sys.argv[1]` is "verify") through Typer."""
    command = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    command.command()(verify)
    command(args=sys.argv[2:], prog_name="duopass verify")
