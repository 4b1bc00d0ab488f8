"""`duopass risk`: the risk engine measured. `simulate --seed N` makes the labelled stream of the
seed (`duopass.risk.simulate`), starts a server for tests in this process on 127.0.0.1 (the test
clock on; SQLite in a temporary folder, or `--postgres-url`, an empty database; the campus
network allowlisted, as a campus behind one NAT configures it, unless `--no-campus-allowlist`),
plays the stream against it over HTTP (`risk_driver`) and prints the figures per family
(docs/risk.md)."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from duopass.cli.risk_driver import ZONE, menu_ceilings, play
from duopass.cli.risk_parties import Net
from duopass.risk.simulate import CAMPUS_NETWORK, generate, table

app = typer.Typer(help="The risk engine, measured (docs/risk.md).", no_args_is_help=True)

ADMIN_LOGIN = "sim-admin"


@app.command()
def simulate(
    seed: Annotated[int, typer.Option(help="the stream's seed: the same seed, the same stream")],
    holders: Annotated[
        int | None, typer.Option(min=1, max=5000, help="honest holders (honest.toml's by default)")
    ] = None,
    incidents: Annotated[
        int | None,
        typer.Option(min=0, max=50, help="incidents per family (each file's by default)"),
    ] = None,
    postgres_url: Annotated[
        str | None, typer.Option(help="an empty PostgreSQL database instead of SQLite")
    ] = None,
    campus_allowlist: Annotated[
        bool,
        typer.Option(
            help="the campus network allowlisted (throttle_exempt_networks), as a campus behind "
            "one NAT sets it; --no-campus-allowlist shows what its holders meet without"
        ),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="the figures as JSON")] = False,
    trace: Annotated[
        bool, typer.Option(help="print each step that met friction, and why (standard error)")
    ] = False,
) -> None:
    """Play a seed's stream of honest and fraudulent behaviour through a real server; print
    incidents caught per family, precision, honest friction and reissues decided alone."""
    stream = generate(seed, holders=holders, incidents=incidents)
    began = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="duopass-risk-") as folder,
        _server(Path(folder), postgres_url, campus_allowlist=campus_allowlist) as (url, password),
    ):
        net = Net(url, ADMIN_LOGIN, password)
        try:
            figures: dict[str, Any] = play(net, stream, _err if trace else None).figures()
        finally:
            net.close()
    figures["run_s"] = round(time.monotonic() - began, 1)
    figures["campus_allowlist"] = campus_allowlist
    figures["ceilings"] = {"canteen": menu_ceilings()}
    if as_json:
        typer.echo(json.dumps(figures, indent=1))
    else:
        typer.echo(table(figures))
        allowlisted = "allowlisted" if campus_allowlist else "not allowlisted"
        typer.echo(f"campus network {CAMPUS_NETWORK} {allowlisted}")
        ceilings = ", ".join(f"{meal} {amount}" for meal, amount in menu_ceilings().items())
        typer.echo(f"canteen price ceilings (from its menu, minor units): {ceilings}")
        typer.echo(f"played in {figures['run_s']} s")


def _err(line: str) -> None:
    typer.echo(line, err=True)


@contextmanager
def _server(
    folder: Path, postgres_url: str | None, *, campus_allowlist: bool
) -> Iterator[tuple[str, str]]:
    """A server for tests on 127.0.0.1 (movable clock, cheap password hashing; the campus
    network exempt from the network throttles and guards, or not) and its admin's password."""
    import secrets  # noqa: PLC0415

    from duopass.demo.serving import serving  # noqa: PLC0415
    from duopass.server.app import create_app  # noqa: PLC0415
    from duopass.server.keyring import Keyring  # noqa: PLC0415
    from duopass.server.services.auth import hash_password  # noqa: PLC0415
    from duopass.server.settings import Settings  # noqa: PLC0415
    from duopass.server.store.access import Staff  # noqa: PLC0415

    db_url = postgres_url or f"sqlite:///{folder / 'risk.db'}"
    settings = Settings(
        db_url=db_url,
        data_dir=folder / "data",
        test_clock=True,
        test_cheap_password_hashing=True,
        timezone=ZONE,
        throttle_exempt_networks=(CAMPUS_NETWORK,) if campus_allowlist else (),
    )
    keyring = Keyring.create(settings.data_dir, origin="simulated-univ/ledger")
    app = create_app(settings, keyring=keyring, testing=True)
    password = secrets.token_urlsafe(16)

    def admin(unit: Any) -> None:
        hashed = hash_password(settings, password)
        unit.session.add(Staff(login=ADMIN_LOGIN, password_hash=hashed, role="admin"))

    app.state.context.run(admin)
    try:
        with serving(app) as url:
            yield url, password
    finally:
        app.state.context.db.dispose()
