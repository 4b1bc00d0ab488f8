"""How verdicts and decoded codes are shown as JSON: one shape for every command."""

from __future__ import annotations

from json.encoder import encode_basestring_ascii as _json_text
from typing import Any

from duopass.protocol.claims import Claims, Kind
from duopass.protocol.code import Code
from duopass.protocol.encoding import b64u_encode
from duopass.protocol.reasons import Reason
from duopass.protocol.verify import Verdict

__all__ = ["claims_json", "code_json", "verdict_json", "verdict_line"]


def verdict_json(verdict: Verdict) -> dict[str, Any]:
    """`ok` and `reason`, then `iss`, `sub`, `cti` and `ctr` once the code has decoded (§3)."""
    doc: dict[str, Any] = {"ok": verdict.ok, "reason": verdict.reason.value}
    if verdict.claims is not None:
        doc.update(
            iss=verdict.claims.iss,
            sub=verdict.claims.sub,
            cti=b64u_encode(verdict.claims.cti),
            ctr=verdict.ctr,
            kind=verdict.claims.kind.policy_name,
            gen=verdict.claims.gen,
        )
    return doc


def verdict_line(verdict: Verdict) -> str:
    """`json.dumps(verdict_json(verdict))`, written out: the conformance command prints one a
    code, and the dict and the generic encoder were a twentieth of its time (a test compares).
    The enum members' texts are looked up, not read through their properties."""
    line = _VERDICT_HEADS[verdict.reason]
    claims = verdict.claims
    if claims is None:
        return line + "}"
    ctr = "null" if verdict.ctr is None else int(verdict.ctr)
    return (
        f'{line}, "iss": {_json_text(claims.iss)}, "sub": {_json_text(claims.sub)}, '
        f'"cti": "{b64u_encode(claims.cti)}", "ctr": {ctr}, '
        f'"kind": "{_KIND_NAMES[claims.kind]}", "gen": {int(claims.gen)}}}'
    )


_VERDICT_HEADS = {
    reason: f'{{"ok": {"true" if reason is Reason.OK else "false"}, "reason": "{reason.value}"'
    for reason in Reason
}
_KIND_NAMES = {kind: kind.policy_name for kind in Kind}


def claims_json(claims: Claims) -> dict[str, Any]:
    """Every claim, bytes as unpadded base64url, absent optional claims left out."""
    doc: dict[str, Any] = {
        "iss": claims.iss,
        "sub": claims.sub,
        "iat": claims.iat,
        "exp": claims.exp,
        "cti": b64u_encode(claims.cti),
        "kind": claims.kind.policy_name,
        "gen": claims.gen,
        "ent": claims.ent,
    }
    optional = {
        "nbf": claims.nbf,
        "cnf": b64u_encode(claims.device_key) if claims.device_key is not None else None,
        "uses": claims.uses,
        "txmax": claims.txmax,
        "cur": claims.cur,
        "scope": list(claims.scope) if claims.scope is not None else None,
        "ev": claims.ev,
        "crit": list(claims.crit) if claims.crit is not None else None,
    }
    doc.update((name, value) for name, value in optional.items() if value is not None)
    return doc


def code_json(code: Code) -> dict[str, Any]:
    """A decoded code for people debugging a terminal: signatures are not checked here."""
    credential, dynamic = code.credential, code.dynamic
    doc: dict[str, Any] = {
        "static": dynamic is None,
        "l1": {
            "kid": b64u_encode(credential.kid),
            "claims": claims_json(credential.claims),
            "signature": b64u_encode(credential.signature),
            "bytes": len(credential.encoded),
        },
    }
    if dynamic is not None:
        doc["l2"] = {
            "ctr": dynamic.ctr,
            "ts": dynamic.ts,
            "signature": b64u_encode(dynamic.signature),
        }
    return doc
