"""`duopass wallet reissues`: the reissue requests waiting for you (docs/wallet.md, "Requests
a partner opened"): your own, and those a partner (a ticket platform) asked for on your
behalf, to move a ticket to your newest phone. Listed, or declined here; one is taken through
its step-up and confirmed with `duopass wallet reissue --request RQ`."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from duopass.cli.people import local_time
from duopass.cli.wallet import DEFAULT_DIR, DataDir, Timeout, _wallet
from duopass.wallet.limits import HTTP_TIMEOUT_DEFAULT_S
from duopass.wallet.reissue import Reissuer
from duopass.wallet.reissue_client import Waiting

__all__ = ["reissues_command", "waiting_line"]

_NEEDS = {
    "step_up": "a step-up ({factors}), then your confirmation",
    "ready": "your confirmation",
    "review": "the card office's review",
}


def waiting_line(item: Waiting) -> str:
    """`rq-…  ticket T1 (Spring Gig), asked by City Tickets at …; needs a step-up (totp)`."""
    decision = item.decision
    event = f" ({item.event})" if item.event else ""
    who = f"asked by {item.partner}" if item.partner else "asked by you"
    needs = _NEEDS.get(decision.state, decision.state)
    needs = needs.format(factors=", ".join(decision.factors) or "none")
    return (
        f"{decision.request_id}  ticket {item.sub}{event}, {who} at"
        f" {local_time(item.created_at)}; needs {needs}; until {local_time(decision.expires_at)}"
    )


def _document(item: Waiting) -> dict[str, Any]:
    decision = item.decision
    return {
        "request_id": decision.request_id,
        "sub": item.sub,
        "event": item.event,
        "partner": item.partner,
        "state": decision.state,
        "factors": list(decision.factors),
        "rule": decision.rule,
        "created_at": item.created_at,
        "expires_at": decision.expires_at,
    }


def reissues_command(
    decline_id: Annotated[
        str | None,
        typer.Option("--decline", metavar="RQ", help="say no to this request (rq-...)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the list as one JSON array")] = False,
    data_dir: DataDir = DEFAULT_DIR,
    timeout: Timeout = HTTP_TIMEOUT_DEFAULT_S,
) -> None:
    """List the reissue requests waiting for you, newest first: which ticket, who asked (a
    partner on your behalf, or you), when, and what each needs (a step-up, your confirmation,
    the card office). Take one through with `duopass wallet reissue --request RQ` (it asks
    for the step-up's code), or say no with --decline RQ (the ticket stays where it is)."""
    with _wallet(data_dir, timeout) as wallet:
        reissuer = Reissuer(wallet)
        if decline_id is not None:
            declined = reissuer.decline(decline_id)
            typer.echo(f"request {declined.request_id} declined: the ticket stays where it is")
            return
        listed = reissuer.waiting()
    if as_json:
        typer.echo(json.dumps([_document(item) for item in listed]))
        return
    if not listed:
        typer.echo("no reissue request is waiting for you", err=True)
    for item in listed:
        typer.echo(waiting_line(item))
