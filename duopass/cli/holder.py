"""`duopass holder erase`: a holder's personal data erased for good, on the server's data dir and
database directly, as the admin route `POST /v1/admin/holders/{handle}/erase` does it (both run
`people.erase`). It works with the server stopped too; `--by` names the admin who erases."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from duopass.cli.server_store import DEFAULT_DIR, DataDir, DbUrl, fail, open_server

app = typer.Typer(help="Card holders, on the server's data dir.", no_args_is_help=True)


@app.command()
def erase(
    handle: Annotated[str, typer.Argument(help="the holder's handle (h-...), as search shows")],
    by: Annotated[str, typer.Option(help="login of the admin who erases (recorded)")],
    keep_money: Annotated[
        bool,
        typer.Option(help="erase though the account holds money or debt (refund it first)"),
    ] = False,
    data_dir: DataDir = DEFAULT_DIR,
    db: DbUrl = None,
) -> None:
    """Erase a holder's name, number, e-mail, phone and login for good; their devices,
    credentials and sessions end. The books and the ledger stay and still verify; the erasure
    is recorded in the ledger (who, when, nothing of the person)."""
    from duopass.server.problems import Problem, ProblemCode
    from duopass.server.services import holders, people, staff
    from duopass.server.unit_of_work import Unit

    def erased(unit: Unit) -> dict[str, Any]:
        admin = staff.by_login(unit.session, by)
        if admin.role != "admin" or admin.disabled_at is not None:
            raise Problem(ProblemCode.FORBIDDEN, f"{by} is not an enabled admin")
        return people.erase(
            unit, holders.by_handle(unit.session, handle), by=admin.id, keep_money=keep_money
        )

    ctx = open_server(data_dir, db)
    try:
        done = ctx.run(erased)
        scrubbed = people.scrub(ctx.db)
    except Problem as exc:
        raise fail(exc.detail) from exc
    finally:
        ctx.db.dispose()
    typer.echo(
        f"personal data of {handle} erased (ledger entry {done['ledger_index']}); "
        f"{done['devices']} device(s), {done['credentials']} credential(s) and "
        f"{done['sessions']} session(s) ended"
    )
    if not scrubbed:
        typer.echo(
            "a reader still holds part of the database's write-ahead log: the erased bytes "
            "leave it at the next checkpoint (when the server is idle)"
        )
