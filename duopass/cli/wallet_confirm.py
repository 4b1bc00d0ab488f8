"""`duopass wallet confirm`: the payments above your PIN amount that a till sent without the PIN
and that wait for you to confirm them here (docs/wallet.md, "Confirming a payment"): listed,
approved with the PIN, or declined."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer

from duopass.cli.people import local_time, money
from duopass.cli.wallet import DEFAULT_DIR, DataDir, Timeout, _wallet
from duopass.wallet.confirmations import Confirmation, approve, decline, waiting
from duopass.wallet.limits import HTTP_TIMEOUT_DEFAULT_S

__all__ = ["confirm_command", "confirmation_line"]


def confirmation_line(found: Confirmation) -> str:
    """`Zq3…  15.00 CNY at canteen (till-1, seq 17), until 2026-12-05 12:02 CST`."""
    where = f" at {found.venue}" if found.venue else ""
    return (
        f"{found.id}  {money(found.amount, found.currency)}{where} "
        f"({found.terminal}, seq {found.seq}), until {local_time(found.expires_at)}"
    )


def confirm_command(
    approve_id: Annotated[
        str | None,
        typer.Option("--approve", metavar="ID", help="approve this payment (asks for the PIN)"),
    ] = None,
    decline_id: Annotated[
        str | None, typer.Option("--decline", metavar="ID", help="decline this payment")
    ] = None,
    pin: Annotated[
        str | None,
        typer.Option(envvar="DUOPASS_WALLET_PIN", help="the payment PIN (asked for if not given)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the list as one JSON array")] = False,
    data_dir: DataDir = DEFAULT_DIR,
    timeout: Timeout = HTTP_TIMEOUT_DEFAULT_S,
) -> None:
    """List the payments waiting for you to confirm them (a till asked above your PIN amount),
    or approve one with your PIN (--approve ID) or decline it (--decline ID)."""
    if approve_id is not None and decline_id is not None:
        raise typer.BadParameter("either --approve or --decline", param_hint="--decline")
    if approve_id is not None and pin is None:
        pin = str(typer.prompt("PIN", hide_input=True))
    with _wallet(data_dir, timeout) as wallet:
        if approve_id is not None:
            assert pin is not None
            done = approve(wallet, approve_id, pin.strip())
        elif decline_id is not None:
            done = decline(wallet, decline_id)
        else:
            listed = waiting(wallet)
            if as_json:
                typer.echo(json.dumps([asdict(found) for found in listed]))
                return
            for line in [confirmation_line(found) for found in listed] or ["nothing to confirm"]:
                typer.echo(line)
            return
    verb = "approved" if done.state == "approved" else "declined"
    typer.echo(f"payment {verb}: {confirmation_line(done)}", err=True)
