"""`duopass staff`: card-office accounts, on the server's data dir and database directly (the
first admin of a new server included): add, list, set a password, disable, enable. Passwords
are read from a prompt (twice) or a file, hashed with Argon2 as the server does, and never
printed."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from duopass.cli.server_store import DEFAULT_DIR, DataDir, DbUrl, fail, run_on_server

app = typer.Typer(
    help="Card-office staff accounts, on the server's data dir.", no_args_is_help=True
)

PASSWORD_FILE_BYTES_MAX = 4096


class Role(StrEnum):
    admin = "admin"
    operator = "operator"


Login = Annotated[str, typer.Argument(help="the staff member's login")]
PasswordFile = Annotated[
    Path | None,
    typer.Option(help="read the password from this file's first line instead of a prompt"),
]


def _password(password_file: Path | None) -> str:
    if password_file is None:
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    try:
        with password_file.open("rb") as handle:
            data = handle.read(PASSWORD_FILE_BYTES_MAX + 1)
    except OSError as exc:
        raise fail(f"{password_file}: {exc.strerror}") from exc
    if len(data) > PASSWORD_FILE_BYTES_MAX:
        raise fail(f"{password_file}: a password file holds one short line")
    try:
        lines = data.decode().splitlines()
    except UnicodeDecodeError as exc:
        raise fail(f"{password_file}: not UTF-8 text") from exc
    return lines[0] if lines else ""


@app.command()
def add(
    login: Login,
    role: Annotated[Role, typer.Option(help="admin (everything) or operator")],
    password_file: PasswordFile = None,
    data_dir: DataDir = DEFAULT_DIR,
    db: DbUrl = None,
) -> None:
    """Add a staff member (the first admin of a new server too)."""
    from duopass.server.services import staff

    password = _password(password_file)
    run_on_server(
        data_dir, db, lambda unit: staff.add(unit, login=login, role=role.value, password=password)
    )
    typer.echo(f"staff member {login} added as {role.value}")


@app.command()
def passwd(
    login: Login,
    password_file: PasswordFile = None,
    data_dir: DataDir = DEFAULT_DIR,
    db: DbUrl = None,
) -> None:
    """Set a staff member's password; their sessions end."""
    from duopass.server.services import staff

    password = _password(password_file)
    ended = run_on_server(
        data_dir, db, lambda unit: staff.set_password(unit, login=login, password=password)
    )
    typer.echo(f"password of {login} set; {ended} session(s) ended")
    if any(name == login and disabled for name, _role, disabled in _listing(data_dir, db)):
        typer.echo(f"{login} is disabled: `duopass staff enable {login}` lets them sign in")


@app.command()
def disable(login: Login, data_dir: DataDir = DEFAULT_DIR, db: DbUrl = None) -> None:
    """Disable a staff member: no more sign-ins, and their sessions end now."""
    from duopass.server.services import staff

    ended = run_on_server(data_dir, db, lambda unit: staff.disable(unit, login=login))
    typer.echo(f"{login} disabled; {ended} session(s) ended")


@app.command()
def enable(login: Login, data_dir: DataDir = DEFAULT_DIR, db: DbUrl = None) -> None:
    """Let a disabled staff member sign in again."""
    from duopass.server.services import staff

    was = run_on_server(data_dir, db, lambda unit: staff.enable(unit, login=login))
    typer.echo(f"{login} enabled" if was else f"{login} was not disabled")


@app.command("list")
def list_(data_dir: DataDir = DEFAULT_DIR, db: DbUrl = None) -> None:
    """Every staff member: login, role, active or disabled."""
    for login, role, disabled in _listing(data_dir, db):
        typer.echo(f"{login:<32} {role:<9} {'disabled' if disabled else 'active'}")


def _listing(data_dir: Path, db: str | None) -> list[tuple[str, str, int | None]]:
    from duopass.server.services import staff

    return run_on_server(data_dir, db, lambda unit: staff.listing(unit.session))
