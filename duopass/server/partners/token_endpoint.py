"""The OAuth 2.0 token endpoint's rules (RFC 6749 §4.4, client credentials): the client
authenticated by HTTP Basic (`client_secret_basic`, §2.3.1: id and secret form-urlencoded,
then base64) or by the form (`client_secret_post`), never both; `grant_type`
`client_credentials`; `scope` optional, a subset of the client's scopes (all of them when
absent). Errors are RFC 6749 §5.2's: `invalid_request` (a parameter missing, repeated or too
long, two authentication methods), `invalid_client` (unknown client, wrong secret, revoked:
one answer for all, 401 with `WWW-Authenticate`), `unsupported_grant_type`, `invalid_scope`.
A token granted counts as a call against the client's rate limit (`guard.count_call`, the risk
engine's): past it, 429 `partner_rate_limited` (a problem document: RFC 6749 has no error for
it), returned rather than raised so that its decision record commits.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from duopass.server.limits import OAUTH_FIELD_CHARS_MAX, PARTNER_TOKEN_LIFETIME_S
from duopass.server.partners import clients, guard, tokens
from duopass.server.problems import Problem
from duopass.server.unit_of_work import Unit

__all__ = ["OAuthError", "TokenRequest", "grant", "parse"]

FIELDS = ("grant_type", "scope", "client_id", "client_secret")


class OAuthError(Exception):
    """An RFC 6749 §5.2 error: its `error` code and a description for people."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description

    @property
    def status(self) -> int:
        return 401 if self.error == "invalid_client" else 400

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@dataclass(frozen=True)
class TokenRequest:
    grant_type: str
    scope: str | None
    client_id: str
    client_secret: str = ""


def _basic(authorization: str) -> tuple[str, str]:
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        raise OAuthError("invalid_client", "client authentication: HTTP Basic or the form")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise OAuthError("invalid_client", "malformed HTTP Basic credentials") from exc
    user, colon, password = decoded.partition(":")
    if not colon:
        raise OAuthError("invalid_client", "malformed HTTP Basic credentials")
    return unquote_plus(user), unquote_plus(password)


def parse(form: Sequence[tuple[str, str]], authorization: str | None) -> TokenRequest:
    """The request's parameters (each at most once, none too long) and the client's
    credentials, from one method only."""
    found: dict[str, str] = {}
    for name, value in form:
        if name not in FIELDS:
            continue  # RFC 6749 §3.2: unknown parameters are ignored
        if name in found:
            raise OAuthError("invalid_request", f"{name} given more than once")
        if len(value) > OAUTH_FIELD_CHARS_MAX:
            raise OAuthError("invalid_request", f"{name}: at most {OAUTH_FIELD_CHARS_MAX} chars")
        found[name] = value
    if authorization is not None:
        if "client_secret" in found:
            raise OAuthError("invalid_request", "two client authentication methods")
        client_id, secret = _basic(authorization)
        if len(client_id) > OAUTH_FIELD_CHARS_MAX or len(secret) > OAUTH_FIELD_CHARS_MAX:
            raise OAuthError("invalid_client", "unknown client or wrong secret")
        if found.get("client_id", client_id) != client_id:
            raise OAuthError("invalid_request", "client_id differs from the Basic user")
    else:
        client_id, secret = found.get("client_id", ""), found.get("client_secret", "")
        if not client_id or not secret:
            raise OAuthError("invalid_client", "no client authentication")
    grant_type = found.get("grant_type")
    if not grant_type:
        raise OAuthError("invalid_request", "grant_type is required")
    return TokenRequest(grant_type, found.get("scope"), client_id, secret)


def _scopes(asked: str | None, granted: frozenset[str]) -> frozenset[str]:
    if asked is None:
        return granted
    wanted = frozenset(asked.split(" "))
    if not asked or "" in wanted or not wanted <= granted:
        raise OAuthError("invalid_scope", "scope: a space-separated subset of the client's")
    return wanted


def grant(unit: Unit, request: TokenRequest, *, issuer: str) -> dict[str, Any] | Problem:
    """RFC 6749 §5.1's answer: a signed access token for the authenticated client; or the
    refusal of a client past its rate limit, for `AppContext.run_refusable`."""
    client = clients.authenticate(unit, request.client_id, request.client_secret)
    if client is None:
        raise OAuthError("invalid_client", "unknown client or wrong secret")
    if request.grant_type != "client_credentials":
        raise OAuthError("unsupported_grant_type", "only client_credentials")
    scopes = _scopes(request.scope, client.scopes)
    refused = guard.count_call(unit, client.id, client.calls_per_minute)
    if refused is not None:
        return refused
    token = tokens.mint(
        unit.keyring.oauth,
        issuer=issuer,
        client_id=client.client_id,
        scopes=scopes,
        now=unit.now,
    )
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": PARTNER_TOKEN_LIFETIME_S,
        "scope": " ".join(sorted(scopes)),
    }
