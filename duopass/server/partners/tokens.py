"""Partners' access tokens: JWTs per RFC 9068 (`typ` `at+jwt`), signed ES256 by the server's
`oauth.pem` (`Keyring.oauth`), published as a JWK Set (RFC 7517) at `/v1/oauth/jwks`, so a
partner's gateway can verify them with any JOSE library, and read back here with `joserfc`.

Claims: `iss` (the issuer URL), `sub` and `client_id` (the client's public id), `aud` (the
API, `<issuer>/v1`), `iat`, `exp` (`PARTNER_TOKEN_LIFETIME_S` later), `jti` (random), `scope`
(space-separated). The lifetime is short; revocation does not wait for it (`partners.guard`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from duopass.server.limits import PARTNER_TOKEN_LIFETIME_S

__all__ = [
    "ALGORITHM",
    "TOKEN_TYPE",
    "Claims",
    "audience",
    "jwks",
    "metadata",
    "mint",
    "read",
]

ALGORITHM = "ES256"
TOKEN_TYPE = "at+jwt"  # noqa: S105 (RFC 9068's media type, not a secret)
TOKEN_CHARS_MAX = 2048
"""Longest bearer token read: ours are about 600 characters."""


def audience(issuer: str) -> str:
    return issuer.rstrip("/") + "/v1"


def _kid(key: ECKey) -> str:
    """The key's RFC 7638 thumbprint: the `kid` of its JWK and of every token it signs."""
    return key.thumbprint()


def mint(key: ECKey, *, issuer: str, client_id: str, scopes: Iterable[str], now: int) -> str:
    """A signed access token for `client_id`, valid `PARTNER_TOKEN_LIFETIME_S` from `now`."""
    header = {"alg": ALGORITHM, "typ": TOKEN_TYPE, "kid": _kid(key)}
    claims = {
        "iss": issuer,
        "sub": client_id,
        "aud": audience(issuer),
        "iat": now,
        "exp": now + PARTNER_TOKEN_LIFETIME_S,
        "jti": secrets.token_urlsafe(16),
        "client_id": client_id,
        "scope": " ".join(sorted(scopes)),
    }
    return jwt.encode(header, claims, key, algorithms=[ALGORITHM])


@dataclass(frozen=True)
class Claims:
    client_id: str
    scopes: frozenset[str]
    expires_at: int


def read(key: ECKey, token: str, *, issuer: str, now: Callable[[], int]) -> Claims | None:
    """The token's claims if our key signed it, as an access token, for this issuer and
    audience, and it has not expired at `now()`; None otherwise (the caller answers 401)."""
    if len(token) > TOKEN_CHARS_MAX or token.count(".") != 2:
        return None
    try:
        decoded = jwt.decode(token, key, algorithms=[ALGORITHM])
        if decoded.header.get("typ") != TOKEN_TYPE or decoded.header.get("kid") != _kid(key):
            return None
        jwt.JWTClaimsRegistry(
            now=now,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience(issuer)},
            exp={"essential": True},
            sub={"essential": True},
            client_id={"essential": True},
            scope={"essential": True},
        ).validate(decoded.claims)
    except (JoseError, ValueError):
        return None
    claims = decoded.claims
    client_id, scope, exp = claims["client_id"], claims["scope"], claims["exp"]
    if not (isinstance(client_id, str) and isinstance(scope, str) and isinstance(exp, int)):
        return None
    if claims["sub"] != client_id:
        return None
    return Claims(client_id, frozenset(scope.split()), exp)


def jwks(key: ECKey) -> dict[str, Any]:
    """The JWK Set partners verify tokens with: the public half only."""
    public = key.as_dict(private=False) | {"kid": _kid(key), "use": "sig", "alg": ALGORITHM}
    return dict(KeySet.import_key_set({"keys": [public]}).as_dict(private=False))


def metadata(issuer: str, scopes: Iterable[str]) -> dict[str, Any]:
    """RFC 8414's authorization server metadata."""
    base = issuer.rstrip("/")
    return {
        "issuer": issuer,
        "token_endpoint": f"{base}/v1/oauth/token",
        "jwks_uri": f"{base}/v1/oauth/jwks",
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": sorted(scopes),
        "response_types_supported": [],
    }
