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
from duopass.cli.backup import backup, ledger_app, restore
from duopass.cli.code_argument import scanned_text
from duopass.cli.demo import demo
from duopass.cli.holder import app as holder_app
from duopass.cli.keys import app as keys_app
from duopass.cli.output import code_json
from duopass.cli.policy import app as policy_app
from duopass.cli.risk import app as risk_app
from duopass.cli.serve import serve
from duopass.cli.settlement import settlement
from duopass.cli.staff import app as staff_app
from duopass.cli.terminal import app as terminal_app
from duopass.cli.tour import tour
from duopass.cli.verify import EXIT_REJECTED, usage_error, verify
from duopass.cli.wallet import wallet_app
from duopass.cli.wallet_confirm import confirm_command
from duopass.cli.wallet_history import dispute_command, disputes_command, history_command
from duopass.cli.wallet_limits import limits_command, pin_command
from duopass.cli.wallet_reissue import lost, reissue
from duopass.cli.wallet_requests import reissues_command
from duopass.protocol.cbor import MalformedError
from duopass.protocol.code import FormatError, decode_code
from duopass.protocol.keys import SigningKey

app = typer.Typer(
    help="duopass: offline-capable QR credentials (PROTOCOL.md).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command()(verify)


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
        raise usage_error(f"{out}: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.to_jwk())
    sys.stdout.write(key.public_jwk().decode())


app.command()(demo)
app.command()(tour)
app.command()(serve)
app.command()(audit)
app.command()(settlement)
app.command()(backup)
app.command()(restore)
wallet_app.command()(reissue)
wallet_app.command()(lost)
wallet_app.command("reissues")(reissues_command)
wallet_app.command("limits")(limits_command)
wallet_app.command("pin")(pin_command)
wallet_app.command("confirm")(confirm_command)
wallet_app.command("history")(history_command)
wallet_app.command("dispute")(dispute_command)
wallet_app.command("disputes")(disputes_command)
app.add_typer(wallet_app, name="wallet")
app.add_typer(terminal_app, name="terminal")
app.add_typer(staff_app, name="staff")
app.add_typer(holder_app, name="holder")
app.add_typer(policy_app, name="policy")
app.add_typer(risk_app, name="risk")
app.add_typer(ledger_app, name="ledger")
app.add_typer(keys_app, name="keys")


def main() -> None:
    """Console entry point."""
    app()
