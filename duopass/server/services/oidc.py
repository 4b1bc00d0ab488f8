"""The client of the university's OpenID Connect provider (`settings.oidc_*`): its discovery
document and keys, the authorization URL (code flow, PKCE S256, state and nonce), the code
exchanged for an ID token at the token endpoint (the client secret by HTTP Basic), and that ID
token verified: its signature under a key of the provider's JWKS (asymmetric algorithms only),
`iss`, `aud` (and `azp` when several), `exp`, `iat` and the `nonce` we sent.

Authlib builds the requests (`authlib.oauth2.rfc6749.parameters`, `rfc7636`); the JOSE work is
joserfc's, which Authlib 1.9 depends on and names as the successor of its deprecated
`authlib.jose` (and its httpx integration warns that it is deprecated too, so plain httpx
carries the requests). Every answer from the provider is read to a size limit; a provider
that cannot be reached, or answers nonsense, is 503 `oidc_unavailable`; a refused code or an
ID token that fails a check is 401 `oidc_refused`. Nothing here logs, and no message repeats
the secret, the code, the verifier or the token."""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from duopass.server.problems import Problem, ProblemCode
from duopass.server.settings import Settings

__all__ = ["ANSWER_BYTES_MAX", "Provider", "authorization_url", "exchange", "provider", "verify"]

ANSWER_BYTES_MAX = 64 * 1024
"""The largest discovery document, key set or token answer read from the provider."""
ID_TOKEN_CHARS_MAX = 16 * 1024
DISCOVERY_TTL_S = 3600
"""How long a provider's discovery document and keys are kept before they are read again."""
KEYS_REFETCH_S = 60
"""An ID token naming a key we lack reads the key set again, at most this often (rotation)."""
LEEWAY_S = 60
"""Clock difference allowed between the provider and us, for `exp` and `iat`."""
ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"})
"""The signatures an ID token may carry: asymmetric only (never `none`, never HMAC)."""


@dataclass(frozen=True)
class Provider:
    """What discovery told us, and the provider's keys."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    algorithms: tuple[str, ...]
    keys: KeySet
    read_at: float
    keys_at: float


_CACHE: dict[str, Provider] = {}
_LOCK = threading.Lock()


def _unavailable(why: str) -> Problem:
    return Problem(ProblemCode.OIDC_UNAVAILABLE, f"the university's sign-in cannot be used: {why}")


def refused(why: str) -> Problem:
    return Problem(ProblemCode.OIDC_REFUSED, f"the university's sign-in was refused: {why}")


def _get_json(settings: Settings, url: str) -> dict[str, Any]:
    """A JSON object from the provider, at most `ANSWER_BYTES_MAX`; else 503."""
    try:
        with (
            httpx.Client(timeout=settings.oidc_timeout_s) as http,
            http.stream("GET", url, headers={"Accept": "application/json"}) as answer,
        ):
            if answer.status_code != 200:
                raise _unavailable(f"the provider answered {answer.status_code}")
            return _object(_read(answer), _unavailable)
    except httpx.HTTPError as exc:
        raise _unavailable("the provider cannot be reached") from exc


def _read(answer: httpx.Response) -> bytes:
    data = b""
    for chunk in answer.iter_bytes():
        data += chunk
        if len(data) > ANSWER_BYTES_MAX:
            raise _unavailable("the provider's answer is too large")
    return data


def _object(data: bytes, problem: Any) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise problem("the provider's answer is not JSON") from exc
    if not isinstance(value, dict):
        raise problem("the provider's answer is not a JSON object")
    return value


def _endpoint(document: dict[str, Any], name: str, issuer: str) -> str:
    value = document.get(name)
    url = urlsplit(value) if isinstance(value, str) and len(value) <= 2048 else None
    secure = url is not None and (url.scheme == "https" or issuer.startswith("http://"))
    if url is None or not secure or not url.hostname:
        raise _unavailable(f"the discovery document's {name} is not a usable URL")
    assert isinstance(value, str)
    return value


def _keys(settings: Settings, jwks_uri: str) -> KeySet:
    document = _get_json(settings, jwks_uri)
    try:
        return KeySet.import_key_set(document)  # type: ignore[arg-type]
    except (JoseError, KeyError, TypeError, ValueError) as exc:
        raise _unavailable("the provider's key set cannot be read") from exc


def _discover(settings: Settings) -> Provider:
    issuer = settings.oidc_issuer
    assert issuer is not None
    document = _get_json(settings, f"{issuer}/.well-known/openid-configuration")
    if document.get("issuer") != issuer:  # OpenID Connect Discovery 1.0 §4.3
        raise _unavailable("the discovery document names another issuer")
    offered = document.get("id_token_signing_alg_values_supported", ["RS256"])
    algorithms = tuple(a for a in offered if isinstance(a, str) and a in ALGORITHMS)
    if not algorithms:
        raise _unavailable("the provider signs ID tokens with no algorithm we accept")
    jwks_uri = _endpoint(document, "jwks_uri", issuer)
    now = time.monotonic()
    return Provider(
        issuer=issuer,
        authorization_endpoint=_endpoint(document, "authorization_endpoint", issuer),
        token_endpoint=_endpoint(document, "token_endpoint", issuer),
        jwks_uri=jwks_uri,
        algorithms=algorithms,
        keys=_keys(settings, jwks_uri),
        read_at=now,
        keys_at=now,
    )


def provider(settings: Settings) -> Provider:
    """The configured provider, discovered (and its keys read) at most once an hour."""
    issuer = settings.oidc_issuer
    if issuer is None:
        raise Problem(ProblemCode.OIDC_OFF, "sign-in through the university is not set up")
    with _LOCK:
        known = _CACHE.get(issuer)
    if known is not None and time.monotonic() - known.read_at < DISCOVERY_TTL_S:
        return known
    found = _discover(settings)
    with _LOCK:
        _CACHE[issuer] = found
    return found


def authorization_url(
    settings: Settings, found: Provider, *, redirect_uri: str, state: str, nonce: str, verifier: str
) -> str:
    """Where the browser goes to sign in: the code flow with PKCE (S256), state and nonce."""
    url: str = prepare_grant_uri(
        found.authorization_endpoint,
        client_id=settings.oidc_client_id,
        response_type="code",
        redirect_uri=redirect_uri,
        scope=" ".join(settings.oidc_scopes),
        state=state,
        nonce=nonce,
        code_challenge=create_s256_code_challenge(verifier),
        code_challenge_method="S256",
    )
    return url


def exchange(
    settings: Settings, found: Provider, *, code: str, verifier: str, redirect: str
) -> str:
    """The ID token the token endpoint gives for `code` and our PKCE verifier."""
    client_id = settings.oidc_client_id
    assert client_id is not None
    secret = settings.oidc_secret
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    extra: dict[str, str] = {}
    if secret is None:  # a public client names itself in the body (RFC 6749 §4.1.3)
        extra["client_id"] = client_id
    else:  # client_secret_basic: each part form-encoded first (RFC 6749 §2.3.1)
        pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    body = prepare_token_request(
        "authorization_code", code=code, redirect_uri=redirect, code_verifier=verifier, **extra
    )
    try:
        with (
            httpx.Client(timeout=settings.oidc_timeout_s) as http,
            http.stream("POST", found.token_endpoint, content=body, headers=headers) as got,
        ):
            data, status = _read(got), got.status_code
    except httpx.HTTPError as exc:
        raise _unavailable("the provider's token endpoint cannot be reached") from exc
    if status in {400, 401}:
        error = _error(data)
        if error == "invalid_client":  # our settings, not the person: every sign-in fails
            raise _unavailable("the provider does not accept our client id and secret")
        raise refused("the provider did not accept the code")  # invalid_grant and its kin
    if status != 200:
        raise _unavailable(f"the provider's token endpoint answered {status}")
    token = _object(data, _unavailable).get("id_token")
    if not isinstance(token, str) or not 0 < len(token) <= ID_TOKEN_CHARS_MAX:
        raise refused("the provider's answer has no ID token")
    return token


def _error(data: bytes) -> str | None:
    """The OAuth error code of a token endpoint's refusal (RFC 6749 §5.2), if it has one."""
    try:
        error = json.loads(data).get("error")
    except (ValueError, AttributeError):
        return None
    return error if isinstance(error, str) else None


def verify(
    settings: Settings, found: Provider, id_token: str, *, nonce: str, now: int
) -> dict[str, Any]:
    """The ID token's claims, once its signature, issuer, audience, times and nonce check out."""
    claims = _signed_claims(settings, found, id_token)
    client_id = settings.oidc_client_id
    assert client_id is not None
    registry = jwt.JWTClaimsRegistry(
        now=now,
        leeway=LEEWAY_S,
        iss={"essential": True, "value": found.issuer},
        aud={"essential": True, "value": client_id},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise refused(f"the ID token's {_claim_name(exc)} is not right") from exc
    audience = claims.get("aud")
    several = isinstance(audience, list) and len(audience) > 1
    if several and claims.get("azp") != settings.oidc_client_id:
        raise refused("the ID token is for several parties and not authorised for us")
    return claims


def _claim_name(exc: JoseError) -> str:
    name = getattr(exc, "claim", None)
    return name if isinstance(name, str) and name.isidentifier() else "claims"


def _signed_claims(settings: Settings, found: Provider, id_token: str) -> dict[str, Any]:
    try:
        token = jwt.decode(id_token, found.keys, algorithms=list(found.algorithms))
    except JoseError as exc:
        fresher = _fresher_keys(settings, found)
        if fresher is None:
            raise refused("the ID token's signature does not verify") from exc
        try:
            token = jwt.decode(id_token, fresher.keys, algorithms=list(found.algorithms))
        except JoseError as again:
            raise refused("the ID token's signature does not verify") from again
    except ValueError as exc:
        raise refused("the ID token cannot be read") from exc
    return dict(token.claims)


def _fresher_keys(settings: Settings, found: Provider) -> Provider | None:
    """The provider with its key set read again (a key rotated in), unless read lately."""
    now = time.monotonic()
    if now - found.keys_at < KEYS_REFETCH_S:
        return None
    fresher = Provider(
        **{**found.__dict__, "keys": _keys(settings, found.jwks_uri), "keys_at": now}
    )
    with _LOCK:
        _CACHE[found.issuer] = fresher
    return fresher


def forget() -> None:
    """Forget every provider read (tests that stand up a provider of their own)."""
    with _LOCK:
        _CACHE.clear()
