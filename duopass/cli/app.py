"""The `duopass` command line: the conformance command, a decoder for people, keys, the demo,
the server and the wallet."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from duopass.cli.audit import audit
from duopass.cli.code_argument import scanned_text
from duopass.cli.demo import demo
from duopass.cli.holder import app as holder_app
from duopass.cli.numbers import whole
from duopass.cli.output import code_json, verdict_json
from duopass.cli.policy import app as policy_app
from duopass.cli.serve import serve
from duopass.cli.settlement import settlement
from duopass.cli.staff import app as staff_app
from duopass.cli.terminal import app as terminal_app
from duopass.cli.tour import tour
from duopass.cli.wallet import wallet_app
from duopass.cli.wallet_reissue import lost, reissue
from duopass.protocol.cbor import MalformedError
from duopass.protocol.code import FormatError, decode_code
from duopass.protocol.keys import SigningKey
from duopass.protocol.limits import INT_ABS_LIMIT, TRUST_FILE_BYTES_MAX
from duopass.protocol.memory import MemoryStore
from duopass.protocol.trust import TrustStore, TrustStoreError, parse_trust_store
from duopass.protocol.verify import Mode, TerminalConfig, Verifier

app = typer.Typer(
    help="duopass: offline-capable QR credentials (PROTOCOL.md).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_ACCEPTED, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2


def _usage_error(message: str) -> typer.Exit:
    typer.echo(f"duopass: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


def _read_trust(path: Path) -> TrustStore:
    try:
        with path.open("rb") as handle:  # bounded read: a device or pipe has no honest size
            data = handle.read(TRUST_FILE_BYTES_MAX + 1)
        return parse_trust_store(data)
    except OSError as exc:
        raise _usage_error(f"{path}: {exc.strerror}") from exc
    except TrustStoreError as exc:
        raise _usage_error(f"{path}: trust store refused: {exc}") from exc


@app.command()
def verify(
    codes: Annotated[
        list[str], typer.Argument(metavar="CODE...", help="code texts or image files")
    ],
    trust: Annotated[Path, typer.Option(help="trust store file (PROTOCOL.md §3)")],
    now: Annotated[int, whole(0, INT_ABS_LIMIT - 1, help="the terminal's clock, Unix seconds")],
    mode: Annotated[Mode, typer.Option(help="what the terminal scans for")],
    amount: Annotated[
        int | None, whole(1, INT_ABS_LIMIT - 1, help="payment in minor units (pay)")
    ] = None,
    currency: Annotated[str | None, typer.Option(help="the till's currency (pay)")] = None,
    scope: Annotated[str | None, typer.Option(help="the terminal's venue id")] = None,
    event: Annotated[str | None, typer.Option(help="the event the gate admits (entry)")] = None,
) -> None:
    """Verify codes as one fresh terminal, in order; one JSON verdict a line.

    Exit status 0 when every code was accepted, 1 when any was rejected, 2 for a usage error.
    """
    if mode is Mode.PAY and amount is None:
        raise _usage_error("--mode pay needs --amount of at least 1")
    if mode is Mode.PAY and not currency:
        raise _usage_error("--mode pay needs --currency")
    if mode is Mode.ENTRY and not event:
        raise _usage_error("--mode entry needs --event")
    store = _read_trust(trust)
    config = TerminalConfig(mode=mode, currency=currency, venue=scope, event=event)
    verifier = Verifier(store, config, MemoryStore())
    all_accepted = True
    for argument in codes:
        verdict = verifier.scan(scanned_text(argument), now=now, amount=amount)
        all_accepted &= verdict.ok
        typer.echo(json.dumps(verdict_json(verdict)))
    raise typer.Exit(EXIT_ACCEPTED if all_accepted else EXIT_REJECTED)


@app.command()
def decode(
    code: Annotated[str, typer.Argument(help="a code's text or an image file")],
) -> None:
    """Print a code's contents as JSON, without checking signatures (for debugging terminals)."""
    try:
        decoded = decode_code(scanned_text(code))
    except (FormatError, MalformedError) as exc:
        reason = "FORMAT" if isinstance(exc, FormatError) else "MALFORMED"
        typer.echo(json.dumps({"ok": False, "reason": reason, "error": str(exc)}))
        raise typer.Exit(EXIT_REJECTED) from exc
    typer.echo(json.dumps(code_json(decoded), indent=1))


@app.command()
def keygen(
    out: Annotated[Path, typer.Argument(help="private key file to create (JWK, mode 0600)")],
) -> None:
    """Create an Ed25519 key file; prints the public key file's contents."""
    key = SigningKey.generate()
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise _usage_error(f"{out}: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.to_jwk())
    sys.stdout.write(key.public_jwk().decode())


app.command()(demo)
app.command()(tour)
app.command()(serve)
app.command()(audit)
app.command()(settlement)
wallet_app.command()(reissue)
wallet_app.command()(lost)
app.add_typer(wallet_app, name="wallet")
app.add_typer(terminal_app, name="terminal")
app.add_typer(staff_app, name="staff")
app.add_typer(holder_app, name="holder")
app.add_typer(policy_app, name="policy")


def main() -> None:
    """Console entry point."""
    app()
