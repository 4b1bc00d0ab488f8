"""`duopass wallet history`, `duopass wallet dispute` and `duopass wallet disputes`: the holder's
movements dated in this device's time zone when they happened (a payment made offline on the
2nd and uploaded on the 3rd shows on the 2nd, with its booking time beside it), the codes shown
that the server has not seen yet, and disputes (docs/wallet.md, "History and disputes")."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer

from duopass.cli.people import local_time, money
from duopass.cli.wallet import DEFAULT_DIR, DataDir, Timeout, _wallet
from duopass.wallet.history import (
    REASON_CHARS_MAX,
    Dispute,
    Row,
    dispute,
    disputes,
    history,
    unseen_codes,
)
from duopass.wallet.limits import HTTP_TIMEOUT_DEFAULT_S

__all__ = ["dispute_command", "disputes_command", "history_command", "row_line"]

Json = Annotated[bool, typer.Option("--json", help="the raw fields, one JSON document")]


def row_line(row: Row, currency: str) -> str:
    """`2026-12-02 12:30 CST  payment   -12.00 CNY  canteen at canteen (till-1), offline;
    booked 2026-12-03 09:00 CST  entry 17, dispute until 2027-01-02 09:00 CST`."""
    line = f"{local_time(row.occurred_at)}  {row.kind:10} {money(row.amount, currency):>12}"
    if row.merchant or row.terminal:
        where = f" at {row.venue}" if row.venue else ""
        line += f"  {row.merchant or '?'}{where} ({row.terminal or '-'})"
    if row.online is not None:
        line += ", online" if row.online else ", offline"
    if local_time(row.booked_at) != local_time(row.occurred_at):
        line += f"; booked {local_time(row.booked_at)}"
    line += f"  entry {row.id}"
    if row.dispute is not None:
        line += f", disputed ({row.dispute})"
    elif row.disputable and row.dispute_until is not None:
        line += f", dispute until {local_time(row.dispute_until)}"
    return line


def history_command(
    limit: Annotated[int, typer.Option(min=1, max=200, help="how many movements")] = 50,
    as_json: Json = False,
    data_dir: DataDir = DEFAULT_DIR,
    timeout: Timeout = HTTP_TIMEOUT_DEFAULT_S,
) -> None:
    """Your payments, top-ups, refunds and chargebacks, newest first, dated when they happened
    in this device's time zone; then the codes you showed that the server has not seen yet."""
    with _wallet(data_dir, timeout) as wallet:
        currency, rows = history(wallet, limit)
        unseen = unseen_codes(wallet)
    if as_json:
        doc = {"currency": currency, "items": [asdict(r) for r in rows], "unseen_codes": unseen}
        typer.echo(json.dumps(doc, indent=2))
        return
    for row in rows:
        typer.echo(row_line(row, currency))
    if not rows:
        typer.echo("no movements yet")
    if unseen:
        counters = ", ".join(str(ctr) for ctr in unseen)
        typer.echo(
            f"pending: codes shown, not yet seen by the server (counters {counters}): a till "
            "may have accepted them offline and not uploaded its journal yet"
        )


def dispute_line(found: Dispute) -> str:
    """`dispute 3: entry 17, 12.00 CNY at canteen, paid 2026-12-02 12:30 CST: open`."""
    line = (
        f"dispute {found.id}: entry {found.entry}, {money(found.amount, found.currency)}"
        f" at {found.merchant or '?'}, paid {local_time(found.paid_at)}: {found.state}"
    )
    return line + (f" ({found.note})" if found.note else "")


def dispute_command(
    entry: Annotated[int, typer.Argument(min=1, max=2**31 - 1, help="the payment's entry id")],
    reason: Annotated[
        str, typer.Option(help=f"why (at most {REASON_CHARS_MAX} characters)", show_default=False)
    ],
    data_dir: DataDir = DEFAULT_DIR,
    timeout: Timeout = HTTP_TIMEOUT_DEFAULT_S,
) -> None:
    """Dispute a payment within 30 days of its booking (`duopass wallet history` shows its
    entry id); the card office decides, and an upheld one is paid back to you."""
    with _wallet(data_dir, timeout) as wallet:
        found = dispute(wallet, entry, reason)
    typer.echo(dispute_line(found))


def disputes_command(
    as_json: Json = False,
    data_dir: DataDir = DEFAULT_DIR,
    timeout: Timeout = HTTP_TIMEOUT_DEFAULT_S,
) -> None:
    """Your disputes, newest first, and what the card office decided."""
    with _wallet(data_dir, timeout) as wallet:
        found = disputes(wallet)
    if as_json:
        typer.echo(json.dumps([asdict(d) for d in found], indent=2))
        return
    for item in found:
        typer.echo(dispute_line(item))
    if not found:
        typer.echo("no disputes")
