"""Card-office endpoint for the daily signing keys: revoke one as compromised (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from duopass.protocol.encoding import EncodingError, b64u_decode
from duopass.server.api.deps import AdminCaller, Ctx
from duopass.server.api.openapi import problems
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import signing_keys

router = APIRouter(prefix="/v1/admin", tags=["card office"])

Kid = Annotated[
    str,
    Path(
        min_length=11,
        max_length=11,
        pattern=r"^[A-Za-z0-9_-]{11}$",
        description="the key's kid, unpadded base64url (as in the trust store's JSON)",
    ),
]


@router.post("/keys/{kid}/revoke", responses=problems(404))
def revoke_signing_key(kid: Kid, caller: AdminCaller, ctx: Ctx) -> dict[str, bool]:
    """Revoke a compromised daily signing key: no process mints with it from this answer on (a
    replacement for its day is made), online scans of its codes are refused (`UNKNOWN_KEY`),
    the next trust bundle leaves it out (a delta removes it), so terminals refuse its codes once
    they take it, and wallets get credentials under the replacement at their next refresh.
    `revoked` is false when it was revoked already."""
    try:
        raw = b64u_decode(kid)
    except EncodingError as exc:
        raise Problem(ProblemCode.INVALID_REQUEST, "kid is not unpadded base64url") from exc
    revoked = ctx.run(lambda unit: signing_keys.revoke(unit, raw, by=caller.id))
    return {"revoked": revoked}
