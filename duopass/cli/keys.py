"""`duopass keys`: the issuer root key rotated with an overlap, a compromised daily signing key
revoked, the ledger key rotated (`cli.keys_ledger`); on the server's data dir and database
directly, beside running servers (they read the root files at every bundle, the database at
every mint and scan, and the ledger key the database names at every checkpoint)."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from duopass.cli.keys_hsm import hsm_init
from duopass.cli.keys_ledger import rotate_ledger
from duopass.cli.server_store import DEFAULT_DIR, DataDir, DbUrl, fail, open_server
from duopass.protocol.encoding import b64u_decode

app = typer.Typer(
    help="The issuer's root key, daily signing keys and ledger key; keys in an HSM.",
    no_args_is_help=True,
)

OVERLAP_DAYS_MAX = 366
_KID = re.compile(r"[A-Za-z0-9_-]{11}")

By = Annotated[str, typer.Option(help="the login of the admin who answers for it (ledger)")]


@app.command("rotate-root")
def rotate_root(
    by: By,
    overlap_days: Annotated[
        int,
        typer.Option(
            min=0,
            max=OVERLAP_DAYS_MAX,
            help="days terminals pinning the current root may still follow it to the new one",
        ),
    ] = 7,
    data_dir: DataDir = DEFAULT_DIR,
    db: DbUrl = None,
) -> None:
    """Rotate the issuer root key: a new root, signed over by the current one, signs every
    bundle from now on; terminals that pin the old root follow during the overlap, and must be
    enrolled again after it. A root in an HSM rotates inside its token (the same DUOPASS_HSM_*
    settings as the server): docs/deploy.md, "Keys in an HSM"."""
    from duopass.server.problems import Problem
    from duopass.server.roots import RootError
    from duopass.server.services.root_keys import rotate_root as rotate

    ctx = open_server(data_dir, db)
    try:
        rotation = rotate(ctx, data_dir, by=by, overlap_s=overlap_days * 86_400)
    except Problem as exc:
        raise fail(exc.detail) from exc
    except (RootError, OSError) as exc:
        raise fail(str(exc)) from exc
    finally:
        ctx.db.dispose()
    link = rotation.link
    typer.echo(
        f"root key rotated: link {link.seq}, {rotation.previous.hex()} -> {link.kid.hex()}; "
        f"terminals pinning {rotation.previous.hex()} follow until {link.exp} (unix time)"
    )


@app.command("revoke-signing")
def revoke_signing(
    kid: Annotated[str, typer.Argument(help="the key's kid: 16 hex digits or base64url")],
    by: By,
    data_dir: DataDir = DEFAULT_DIR,
    db: DbUrl = None,
) -> None:
    """Revoke a compromised daily signing key: never minted with again, refused online at
    once, left out of the next trust bundle (terminals refuse its codes once they take it)."""
    from duopass.server.problems import Problem
    from duopass.server.services import signing_keys
    from duopass.server.services.root_keys import admin_id
    from duopass.server.unit_of_work import Unit

    raw = parse_kid(kid)
    if raw is None:
        raise fail("a kid is 16 hex digits or 11 base64url characters")

    def revoked(unit: Unit) -> bool:
        return signing_keys.revoke(unit, raw, by=admin_id(unit, by))

    ctx = open_server(data_dir, db)
    try:
        done = ctx.run(revoked)
    except Problem as exc:
        raise fail(exc.detail) from exc
    finally:
        ctx.db.dispose()
    typer.echo(f"signing key {raw.hex()} " + ("revoked" if done else "was revoked already"))


def parse_kid(text: str) -> bytes | None:
    """A kid as 16 hex digits or unpadded base64url (as bundles' JSON writes it)."""
    if re.fullmatch(r"[0-9a-fA-F]{16}", text):
        return bytes.fromhex(text)
    if _KID.fullmatch(text):
        return b64u_decode(text)
    return None


app.command("hsm-init")(hsm_init)
app.command("rotate-ledger")(rotate_ledger)
