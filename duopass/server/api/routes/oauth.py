"""OAuth 2.0 for partners: the token endpoint (client credentials), the JWK Set its tokens
verify with, and the authorization server's metadata (RFC 8414). docs/partners.md."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from duopass.server.api.deps import Ctx
from duopass.server.api.openapi import MEDIA_TYPE, problems
from duopass.server.partners import guard, tokens
from duopass.server.partners.clients import Scope
from duopass.server.partners.token_endpoint import OAuthError, grant, parse
from duopass.server.problems import Problem
from duopass.server.unit_of_work import Unit

router = APIRouter(tags=["oauth"])

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
FORM_FIELDS_MAX = 10
_TOKEN_EXAMPLE = {
    "access_token": "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6Ii4uLiJ9.eyJ...",
    "token_type": "Bearer",
    "expires_in": 300,
    "scope": "checkin:redeem tickets:read",
}
OAUTH_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "example": {"error": "invalid_client", "error_description": "unknown client or wrong secret"},
    "properties": {
        "error": {
            "type": "string",
            "enum": [
                "invalid_request",
                "invalid_client",
                "unsupported_grant_type",
                "invalid_scope",
            ],
        },
        "error_description": {"type": "string"},
    },
}


def _oauth_error(description: str) -> dict[str, Any]:
    """An RFC 6749 error as JSON; or, for what fails before its rules run (a body too large,
    503 busy), a problem document."""
    return {
        "description": description,
        "content": {
            "application/json": {"schema": OAUTH_ERROR_SCHEMA},
            MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}},
        },
    }


def _error(refusal: OAuthError) -> JSONResponse:
    headers = dict(NO_STORE)
    if refusal.status == 401:  # RFC 6749 §5.2: the scheme the client may authenticate with
        headers["WWW-Authenticate"] = 'Basic realm="duopass"'
    return JSONResponse(refusal.body(), status_code=refusal.status, headers=headers)


@router.post(
    "/v1/oauth/token",
    responses={
        **problems(413, 429),
        200: {"content": {"application/json": {"example": _TOKEN_EXAMPLE}}},
        400: _oauth_error("RFC 6749 §5.2: invalid_request, unsupported_grant_type, invalid_scope"),
        401: _oauth_error("RFC 6749 §5.2: invalid_client (with `WWW-Authenticate: Basic`)"),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": ["grant_type"],
                        "properties": {
                            "grant_type": {"type": "string", "enum": ["client_credentials"]},
                            "scope": {"type": "string", "maxLength": 200},
                            "client_id": {"type": "string", "maxLength": 200},
                            "client_secret": {"type": "string", "maxLength": 200},
                        },
                    }
                }
            },
        }
    },
)
async def token(request: Request, ctx: Ctx) -> JSONResponse:
    """An access token for a partner client (RFC 6749 §4.4): `grant_type=client_credentials`,
    the client authenticated by HTTP Basic or by `client_id` and `client_secret` in the form,
    `scope` optional (a subset of the client's). Errors are RFC 6749 §5.2's JSON."""
    authorization = request.headers.get("authorization")
    try:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            raise OAuthError("invalid_request", "send application/x-www-form-urlencoded")
        try:
            body = (await request.body()).decode()
            form = parse_qsl(body, keep_blank_values=True, max_num_fields=FORM_FIELDS_MAX)
        except (UnicodeDecodeError, ValueError) as exc:
            raise OAuthError("invalid_request", "a form that does not parse") from exc
        asked = parse(form, authorization)
        issuer = guard.issuer_of(ctx, str(request.base_url))

        def work(unit: Unit) -> dict[str, Any] | Problem:
            return grant(unit, asked, issuer=issuer)

        answer = ctx.run_refusable(work)
    except OAuthError as refusal:
        return _error(refusal)
    return JSONResponse(answer, headers=NO_STORE)


@router.get("/v1/oauth/jwks")
def jwks(ctx: Ctx) -> dict[str, Any]:
    """The JWK Set (RFC 7517) that partners' access tokens verify with (ES256)."""
    return tokens.jwks(ctx.keyring.oauth)


@router.get("/.well-known/oauth-authorization-server")
def metadata(request: Request, ctx: Ctx) -> dict[str, Any]:
    """The authorization server's metadata (RFC 8414)."""
    issuer = guard.issuer_of(ctx, str(request.base_url))
    return tokens.metadata(issuer, [scope.value for scope in Scope])
