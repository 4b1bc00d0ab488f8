"""The challenges of passkey ceremonies (`passkeys`): 32 random bytes each, stored as their
SHA-256 with what they are for (the kind, the holder, a step-up's purpose, the relying party
id), good for `CHALLENGE_TTL_S`, and deleted by the first answer that names them, whatever its
verdict. And who the ceremonies are for (`Relying`): the wallet's host name, never an IP."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete

from duopass.protocol.encoding import EncodingError, b64u_decode
from duopass.server.limits import PASSKEY_CLIENT_DATA_BYTES_MAX
from duopass.server.problems import Problem, ProblemCode
from duopass.server.settings import Settings
from duopass.server.store.passkeys import PasskeyChallenge
from duopass.server.unit_of_work import Unit

__all__ = ["CHALLENGE_TTL_S", "Relying", "Taken", "issue", "relying", "take"]

CHALLENGE_TTL_S = 300
_CHALLENGE_BYTES = 32
_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


@dataclass(frozen=True)
class Relying:
    """Who the ceremonies are for: the relying party id and the origins an answer may name."""

    rp_id: str
    origins: tuple[str, ...]


def relying(settings: Settings, *, scheme: str, host: str | None, port: int | None) -> Relying:
    """The relying party for a request to `scheme://host:port`; refused for an IP address or
    a host name WebAuthn cannot use."""
    rp_id = settings.webauthn_rp_id or (host or "").lower().rstrip(".")
    if _is_ip(rp_id) or not (0 < len(rp_id) <= 253 and _HOST.match(rp_id)):
        raise Problem(
            ProblemCode.PASSKEY_HOST,
            "passkeys need the wallet opened by a host name (WebAuthn refuses an IP address): "
            "see docs/deploy.md",
        )
    if settings.webauthn_origins:
        return Relying(rp_id, settings.webauthn_origins)
    default = {"https": 443, "http": 80}.get(scheme)
    shown = "" if port is None or port == default else f":{port}"
    return Relying(rp_id, (f"{scheme}://{(host or '').lower()}{shown}",))


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def _digest(challenge: bytes) -> bytes:
    return hashlib.sha256(challenge).digest()


def issue(
    unit: Unit,
    kind: str,
    rp: Relying,
    *,
    holder_id: int | None = None,
    purpose: str | None = None,
    network: str | None = None,
) -> bytes:
    """A new challenge for one ceremony; a holder's earlier one of the same kind and purpose
    is retired (one live each)."""
    session = unit.session
    if holder_id is not None:
        session.execute(
            delete(PasskeyChallenge).where(
                PasskeyChallenge.holder_id == holder_id,
                PasskeyChallenge.kind == kind,
                PasskeyChallenge.purpose.is_(None)
                if purpose is None
                else PasskeyChallenge.purpose == purpose,
            )
        )
    challenge = secrets.token_bytes(_CHALLENGE_BYTES)
    session.add(
        PasskeyChallenge(
            digest=_digest(challenge),
            kind=kind,
            holder_id=holder_id,
            purpose=purpose,
            rp_id=rp.rp_id,
            expires_at=unit.now + CHALLENGE_TTL_S,
            network=network,
        )
    )
    return challenge


def take(
    unit: Unit, credential: dict[str, Any], kind: str, *, holder_id: int | None, purpose: str | None
) -> Taken | Problem:
    """The challenge the answer's client data names, if it is ours for this ceremony and live:
    deleted now (used once, whatever comes next). Returns it and its relying party id."""
    challenge = _client_challenge(credential)
    if challenge is None:
        return Problem(ProblemCode.PASSKEY_REFUSED, "the passkey's client data cannot be read")
    session = unit.session
    row = session.get(PasskeyChallenge, _digest(challenge))
    fits = row is not None and (row.kind, row.holder_id, row.purpose) == (kind, holder_id, purpose)
    if row is None or not fits or row.expires_at <= unit.now:
        return _no_challenge()
    gone = session.execute(delete(PasskeyChallenge).where(PasskeyChallenge.digest == row.digest))
    if getattr(gone, "rowcount", 0) != 1:  # another request answered it first
        return _no_challenge()
    return Taken(challenge, row.rp_id)


@dataclass(frozen=True)
class Taken:
    """A challenge answered (now used), and the relying party id its options named."""

    challenge: bytes
    rp_id: str


def _no_challenge() -> Problem:
    return Problem(
        ProblemCode.PASSKEY_CHALLENGE, "the challenge is unknown, used or expired: begin again"
    )


def _client_challenge(credential: dict[str, Any]) -> bytes | None:
    try:
        data = b64u_decode(credential["response"]["clientDataJSON"])
        if len(data) > PASSKEY_CLIENT_DATA_BYTES_MAX:
            return None
        challenge = b64u_decode(json.loads(data)["challenge"])
    except (EncodingError, KeyError, TypeError, ValueError):
        return None
    return challenge if len(challenge) == _CHALLENGE_BYTES else None
