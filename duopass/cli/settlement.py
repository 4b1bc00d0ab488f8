"""`duopass settlement`: a booking day's takings per merchant and terminal, from the database,
as a table or CSV. Read-only; closing a day (a ledger entry) takes two admins: one prepares
(`POST /v1/admin/settlement/{day}/prepare` or the console), another approves (`…/approve`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def settlement(
    day: Annotated[str, typer.Argument(help="booking day, YYYY-MM-DD (issuer's time zone)")],
    db: Annotated[
        str | None, typer.Option(help="database URL (default: SQLite in the data dir)")
    ] = None,
    data_dir: Annotated[Path, typer.Option(help="the server's data dir")] = Path("duopass-data"),
    csv: Annotated[bool, typer.Option("--csv", help="CSV on standard output")] = False,
    timezone: Annotated[
        str | None,
        typer.Option(
            envvar="DUOPASS_TIMEZONE",
            help="the issuer's time zone, as `duopass serve` reads it [default: the server's]",
        ),
    ] = None,
) -> None:
    """Print a day's settlement per merchant and terminal; totals are the postings' own. The
    booking day is in the issuer's time zone (DUOPASS_TIMEZONE, as `duopass serve` reads it)."""
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.orm import Session

    from duopass.server.problems import Problem
    from duopass.server.services import settlement as service
    from duopass.server.settings import Settings
    from duopass.server.store.db import read_only_engine

    try:
        zone = Settings(timezone=timezone).timezone if timezone else Settings().timezone
    except ValueError as exc:  # pydantic's ValidationError: an unknown zone
        typer.echo(f"duopass: unknown time zone {timezone!r}", err=True)
        raise typer.Exit(2) from exc

    url = db or f"sqlite:///{data_dir / 'duopass.db'}"
    try:
        engine = read_only_engine(url)
    except ValueError as exc:
        typer.echo(f"duopass: no database to read: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        with Session(engine) as session:
            lines = service.report(session, day)
    except Problem as exc:
        typer.echo(f"duopass: {exc.detail}", err=True)
        raise typer.Exit(2) from exc
    except SQLAlchemyError as exc:
        typer.echo(f"duopass: cannot read the database: {type(exc).__name__}", err=True)
        raise typer.Exit(2) from exc
    if csv:
        typer.echo(service.to_csv(day, lines, zone=zone), nl=False)
        return
    typer.echo(f"settlement {day} (booking day in {zone})")
    typer.echo(f"{'merchant':<24} {'terminal':<16} {'payments':>12} {'count':>6} {'net':>12}")
    for line in lines:
        typer.echo(
            f"{line.merchant:<24} {line.terminal:<16} {_money(line.payments):>12} "
            f"{line.count:>6} {_money(line.net):>12} {line.currency}"
        )
    typer.echo(
        f"{'total':<24} {'':<16} {'':>12} {'':>6} {_money(sum(line.net for line in lines)):>12}"
    )


def _money(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100}.{abs(minor) % 100:02d}"
