"""`duopass keys hsm-init`: the issuer root key and the ledger key generated in an HSM's token
(server.hsm), their public halves printed. The PIN comes from `DUOPASS_HSM_PIN` or a file,
never from a flag (a command line is seen by every user of the machine)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated

import typer

from duopass.cli.verify import usage_error
from duopass.ledger import NoteSigner
from duopass.protocol.encoding import b64u_encode
from duopass.server import hsm

PIN_ENV = "DUOPASS_HSM_PIN"
ISSUER = re.compile(r"[!-*,-~]{1,64}")
"""An issuer id (`Settings.issuer`) that makes a signed-note key name: no `+`."""


def hsm_init(
    module: Annotated[Path, typer.Option(help="the PKCS#11 module (a .so file)")],
    token: Annotated[str, typer.Option(help="the token's label")],
    issuer: Annotated[str, typer.Option(help="issuer id: keys `<issuer>/root`, `/ledger`")],
    pin_file: Annotated[
        Path | None, typer.Option(help=f"a file holding the user PIN (default: ${PIN_ENV})")
    ] = None,
) -> None:
    """Generate the root and ledger keys in the token (sensitive, never extractable); print
    their public halves and the settings that have `duopass serve` use them, as JSON."""
    if not ISSUER.fullmatch(issuer):
        raise usage_error("--issuer: 1 to 64 printable ASCII characters, no space or '+'")
    root_label, ledger_label = f"{issuer}/root", f"{issuer}/ledger"
    try:
        config = hsm.HsmConfig(module, token, _pin(pin_file), root_label, ledger_label)
        root = hsm.generate_key(config, root_label)
        ledger = NoteSigner.from_signer(ledger_label, hsm.generate_key(config, ledger_label))
    except hsm.HsmError as exc:
        raise usage_error(str(exc)) from exc
    public_jwk = {"kty": "OKP", "crv": "Ed25519", "kid": b64u_encode(root.kid)}
    public_jwk["x"] = b64u_encode(root.public)
    settings = {
        "DUOPASS_HSM_MODULE": str(module),
        "DUOPASS_HSM_TOKEN": token,
        "DUOPASS_HSM_ROOT_KEY": root_label,
        "DUOPASS_HSM_LEDGER_KEY": ledger_label,
    }
    typer.echo(
        json.dumps(
            {"root_key": public_jwk, "ledger_key": ledger.verifier.vkey(), "settings": settings},
            indent=1,
        )
    )


def _pin(pin_file: Path | None) -> str:
    if pin_file is not None:
        return hsm.read_pin(pin_file)
    pin = os.environ.get(PIN_ENV, "")
    if not pin:
        raise hsm.HsmError(hsm.HsmReason.PIN, f"no PIN: set {PIN_ENV} or give --pin-file")
    if len(pin.encode()) > hsm.PIN_BYTES_MAX:
        raise hsm.HsmError(hsm.HsmReason.PIN, f"{PIN_ENV} is longer than a PIN can be")
    return pin
