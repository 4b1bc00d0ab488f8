"""`duopass wallet reissue` and `duopass wallet lost`: a ticket (or everything) moved to this
phone, in the three steps of issue 13 (docs/wallet.md "Reissue and a lost phone"). What the
policy decided goes to standard error; a request that waits exits PENDING (13), one refused
REFUSED (10)."""

from __future__ import annotations

import sys
from typing import Annotated, Any, Literal

import typer

from duopass.cli.people import count, local_time
from duopass.cli.wallet import DEFAULT_DIR, DataDir, Otp, Password, Timeout, _wallet
from duopass.wallet import EXIT_STATUS, Failure
from duopass.wallet.limits import HTTP_TIMEOUT_DEFAULT_S
from duopass.wallet.reissue import Conversation, LostReport, Moved, Reissuer
from duopass.wallet.reissue_client import Decision, LostTicket

__all__ = ["lost", "reissue"]


def _say(line: str) -> None:
    typer.echo(line, err=True)


def _decided(decision: Decision) -> None:
    version = decision.policy_version or decision.policy_sha256[:12]
    _say(
        f"request {decision.request_id}: the policy says {decision.outcome}"
        f" (rule {decision.rule}, policy version {version}); now {decision.state}"
    )


def _ask_code(factor: str, begun: dict[str, Any]) -> str | None:
    """The step-up's code, asked for at a terminal; None without one (a script gives
    `--code` on its next run)."""
    until = local_time(begun["expires_at"])
    where = f"mailed to {begun['sent_to']}" if "sent_to" in begun else "from your authenticator"
    _say(f"step-up by {factor}: give the code {where} (good until {until})")
    if not sys.stdin.isatty():
        return None
    return str(typer.prompt("code")).strip()


def reissue(
    ticket: Annotated[
        str | None,
        typer.Option(help="the ticket's sub (or a prefix of one held); with --request, optional"),
    ] = None,
    request: Annotated[
        str | None,
        typer.Option(
            help="go on with this request (rq-...: one of `wallet reissues`, a partner's too)"
            " instead of a new one"
        ),
    ] = None,
    factor: Annotated[
        Literal["totp", "email_otp"] | None,
        typer.Option(help="the step-up factor [default: the policy's first one]"),
    ] = None,
    code: Annotated[
        str | None,
        typer.Option(
            envvar="DUOPASS_WALLET_CODE",
            help="the step-up's code (asked for at a terminal when not given)",
        ),
    ] = None,
    data_dir: DataDir = DEFAULT_DIR,
    timeout: Timeout = HTTP_TIMEOUT_DEFAULT_S,
) -> None:
    """Move a ticket to this phone in three steps: ask (the policy decides: allowed, a
    step-up, a person at the card office, or refused), prove it when asked (a code by e-mail
    or from your authenticator), confirm and receive the new code; the old one is refused
    everywhere. A request a partner opened for you (`duopass wallet reissues`) is taken
    through the same way with --request RQ alone. Exit 13 while it waits (review, or a code
    still to give), 10 when refused."""
    if ticket is None and request is None:
        raise typer.BadParameter("give --ticket, or --request", param_hint="--ticket")
    talk = Conversation(decided=_decided, note=_say, code=_ask_code)
    with _wallet(data_dir, timeout) as wallet:
        reissuer = Reissuer(wallet)
        sub = ticket if ticket is not None else reissuer.sub_of(str(request))
        moved = reissuer.reissue(sub, talk, request_id=request, factor=factor, code=code)
    _say(_moved_line(moved))


def _moved_line(moved: Moved) -> str:
    line = f"ticket {moved.sub} moved here (generation {moved.gen})"
    if moved.ticket is None or moved.ticket.credential is None:
        return f"{line}; its code comes with a sync nearer the event ({moved.refusal})"
    return f"{line}; `duopass wallet code --ticket {moved.sub}` shows it"


def lost(
    password: Password,
    otp: Otp = None,
    data_dir: DataDir = DEFAULT_DIR,
    timeout: Timeout = HTTP_TIMEOUT_DEFAULT_S,
) -> None:
    """I lost my phone, from the new one (enrolled first with `duopass wallet enrol`): signs in
    with the password, revokes every other device of yours with its codes, and moves the purse
    and each ticket here, each as the policy decides. Exit 0 when everything moved, 13 when a
    ticket waits (a step-up or the card office), 10 when one was refused."""
    with _wallet(data_dir, timeout) as wallet:
        report = Reissuer(wallet).lost(password=password, otp=otp)
    for line in lost_lines(report):
        _say(line)
    status = _lost_status(report)
    if status:
        raise typer.Exit(status)


def lost_lines(report: LostReport) -> list[str]:
    """One line for the revocation, one a ticket, one for the purse."""
    lines = [f"reported lost: {count(report.revoked_credentials, 'credential')} revoked"]
    lines += [_lost_ticket_line(item) for item in report.tickets]
    if report.purse is not None:
        claims = report.purse.credential.claims
        lines.append(
            f"purse: moved here (generation {claims.gen}), valid until {local_time(claims.exp)}"
        )
    elif report.purse_error is not None:
        lines.append(f"purse: not moved yet ({report.purse_error.message}): run `wallet sync`")
    return lines


def _lost_ticket_line(item: LostTicket) -> str:
    again = f"`duopass wallet reissue --ticket {item.sub} --request {item.request_id}`"
    if item.state == "done":
        return f"ticket {item.sub}: moved here"
    if item.state == "on_this_device":
        return f"ticket {item.sub}: already on this phone"
    if item.state == "step_up":
        factors = ", ".join(item.factors)
        return f"ticket {item.sub}: needs a step-up ({factors}; rule {item.rule}): run {again}"
    if item.state == "review":
        return f"ticket {item.sub}: at review at the card office (rule {item.rule}); later {again}"
    return f"ticket {item.sub}: refused (rule {item.rule})"


def _lost_status(report: LostReport) -> int:
    """REFUSED when a ticket was refused, PENDING when one waits, else the purse's failure
    (if its sync failed), else 0."""
    states = {item.state for item in report.tickets}
    if "denied" in states:
        return EXIT_STATUS[Failure.REFUSED]
    if states & {"step_up", "review"}:
        return EXIT_STATUS[Failure.PENDING]
    return 0 if report.purse_error is None else report.purse_error.exit_status
