"""`duopass policy`: check a policy file before a server loads it, list the versions a
server has kept, and replay a recorded decision with the policy version it names.

`replay` exits 0 when the pinned policy gives the recorded outcome and rule again, 1 when it
gives another (or the record does not hold together), 2 when the ledger entry is no policy
decision, 3 when the decision's inputs were erased (its leaf stays, nothing is left to run).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from duopass.cli.numbers import whole
from duopass.cli.server_store import DEFAULT_DIR, DataDir, DbUrl, fail, open_server
from duopass.policy import Policy, PolicyError, load_bytes
from duopass.policy.load import POLICY_BYTES_MAX

if TYPE_CHECKING:
    from duopass.server.services.decisions import Replay

app = typer.Typer(help="The decision policy (docs/policy.md).", no_args_is_help=True)

EXIT_SAME, EXIT_DIFFERENT, EXIT_NOT_A_DECISION, EXIT_ERASED = 0, 1, 2, 3


@app.command()
def check(
    file: Annotated[Path, typer.Argument(help="a policy file (TOML)")],
) -> None:
    """Load a policy as the server would; print its version, SHA-256 and rules, or where it
    is wrong (FILE:LINE:COLUMN) and exit 1."""
    try:
        with file.open("rb") as handle:
            data = handle.read(POLICY_BYTES_MAX + 1)
    except OSError as exc:
        raise fail(f"{file}: {exc.strerror}") from exc
    try:
        policy = load_bytes(data)
    except PolicyError as exc:
        typer.echo(f"{file}:{exc.line}:{exc.column}: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    _print(policy)


def _print(policy: Policy) -> None:
    typer.echo(f"version {policy.version}\nsha256  {policy.sha256.hex()}")
    for n, rule in enumerate(policy.rules, 1):
        factors = f" [{', '.join(rule.factors)}]" if rule.factors else ""
        when = " ".join(rule.when.split())
        typer.echo(f"{n:>3}. {rule.name}: {rule.outcome}{factors} when {when}")


@app.command()
def versions(data_dir: DataDir = DEFAULT_DIR, db: DbUrl = None) -> None:
    """The policy versions the server has kept, the active one first."""
    from sqlalchemy import select

    from duopass.server.store.decisions import PolicyVersion
    from duopass.server.unit_of_work import Unit

    def kept(unit: Unit) -> list[tuple[str, bytes, int]]:
        order = PolicyVersion.activated_at.desc()
        rows = unit.session.execute(
            select(
                PolicyVersion.version, PolicyVersion.sha256, PolicyVersion.activated_at
            ).order_by(order)
        )
        return [(version, bytes(sha), at) for version, sha, at in rows]

    ctx = open_server(data_dir, db)
    try:
        rows = ctx.run(kept)
    finally:
        ctx.db.dispose()
    if not rows:
        typer.echo("no policy kept yet: a server keeps its policy when it starts")
    for n, (version, sha, at) in enumerate(rows):
        typer.echo(f"{sha.hex()}  {version}  activated {at}{'  (active)' if n == 0 else ''}")


@app.command()
def replay(
    ledger_entry: Annotated[int, whole(0, 2**62, help="the decision's ledger index")],
    data_dir: DataDir = DEFAULT_DIR,
    db: DbUrl = None,
) -> None:
    """Run a recorded decision again: its kept inputs (checked against the leaf's keyed
    digest) under the policy version it names (by hash); say whether the outcome and rule are
    the same as recorded."""
    from duopass.server.services import decisions

    ctx = open_server(data_dir, db)
    try:
        done = ctx.run(lambda unit: decisions.replay(unit, ledger_entry))
    except decisions.ReplayError as exc:
        typer.echo(f"duopass: {exc}", err=True)
        raise typer.Exit(EXIT_NOT_A_DECISION if exc.not_a_decision else EXIT_DIFFERENT) from exc
    finally:
        ctx.db.dispose()
    raise typer.Exit(_report(ledger_entry, done))


def _report(ledger_entry: int, done: Replay) -> int:
    typer.echo(
        f"ledger entry {ledger_entry}: {done.action} decided {done.outcome} by rule {done.rule}"
        + (
            f" under policy {done.policy.version} (sha256 {done.policy.sha256.hex()})"
            if done.policy
            else " by a person"
        )
    )
    if done.inputs_erased:
        typer.echo("the inputs were erased with the holder's personal data: nothing to run")
        return EXIT_ERASED
    if done.ruling is None:
        typer.echo("a person decided: no policy to run again")
        return EXIT_NOT_A_DECISION
    ruling = done.ruling
    verdict = "same as recorded" if done.same else "DIFFERENT"
    typer.echo(f"replayed: {ruling.outcome} by rule {ruling.rule}: {verdict}")
    return EXIT_SAME if done.same else EXIT_DIFFERENT
