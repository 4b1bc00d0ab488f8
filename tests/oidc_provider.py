"""A small OpenID Connect provider of our own on 127.0.0.1, for the tests of signing in through
the university's: discovery, an authorize endpoint that sends the browser straight back with a
code for the person the test names, a token endpoint that checks the client secret, the
redirect URI and the PKCE verifier (S256), and a JWKS; ID tokens signed RS256 with a key made
here. A test can make it misbehave: claims overridden, a token signed by a key it does not
publish, or the whole provider down."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

CLIENT_ID = "duopass-card-office"
CLIENT_SECRET = "oidc-client-secret-for-tests-7f3a9c"
KEY = RSAKey.generate_key(2048, parameters={"kid": "campus-1"})
STRANGER = RSAKey.generate_key(2048, parameters={"kid": "campus-1"})
"""A key with the published key's id that the provider does not publish: a forged token."""


@dataclass
class Provider:
    url: str = ""
    person: dict[str, Any] = field(default_factory=dict)
    """The claims of whoever signs in next (`sub`, `preferred_username`, ...)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Claims to put in the ID token instead of the right ones (a wrong nonce, audience...)."""
    forged: bool = False
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    refusals: list[str] = field(default_factory=list)
    """Why the token endpoint refused what it refused."""
    token_requests: list[str] = field(default_factory=list)

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "jwks_uri": f"{self.url}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
        }

    def authorize(self, query: dict[str, str]) -> str:
        """Where the browser goes next: back to the client with a code (or an error)."""
        code = secrets.token_urlsafe(24)
        self.codes[code] = {**query, "person": dict(self.person)}
        back = {"code": code, "state": query.get("state", "")}
        if not self.person:
            back = {"error": "access_denied", "state": query.get("state", "")}
        return f"{query['redirect_uri']}?{urlencode(back)}"

    def token(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        self.token_requests.append(json.dumps(form))
        why = self._refusal(form, authorization)
        if why is not None:
            self.refusals.append(why)
            if why == "client":
                return 401, {"error": "invalid_client"}
            return 400, {"error": "invalid_grant"}
        asked = self.codes.pop(form["code"])
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": asked.get("nonce"),
            **asked["person"],
            **self.overrides,
        }
        key = STRANGER if self.forged else KEY
        id_token = jwt.encode({"alg": "RS256", "kid": "campus-1"}, claims, key)
        return 200, {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                     "id_token": id_token}  # fmt: skip

    def _refusal(self, form: dict[str, str], authorization: str) -> str | None:
        scheme, _, value = authorization.partition(" ")
        pair = base64.b64decode(value).decode() if scheme == "Basic" else ":"
        client, _, secret = (unquote(part) for part in pair.partition(":"))
        if (client, secret) != (CLIENT_ID, CLIENT_SECRET):
            return "client"
        asked = self.codes.get(form.get("code", ""))
        if asked is None or form.get("grant_type") != "authorization_code":
            return "code"
        if form.get("redirect_uri") != asked["redirect_uri"]:
            return "redirect_uri"
        verifier = form.get("code_verifier", "").encode()
        made = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
        if asked.get("code_challenge_method") != "S256" or made != asked.get("code_challenge"):
            return "pkce"
        return None


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/.well-known/openid-configuration":
                self._json(200, provider.discovery())
            elif url.path == "/jwks":
                self._json(200, dict(KeySet([KEY]).as_dict(private=False)))
            elif url.path == "/authorize":
                self.send_response(302)
                self.send_header("Location", provider.authorize(query))
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self._json(404, {})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            if urlsplit(self.path).path != "/token":
                self._json(404, {})
                return
            self._json(*provider.token(form, self.headers.get("Authorization", "")))

    return Handler


@contextmanager
def running_provider(name: str = "127.0.0.1") -> Iterator[Provider]:
    """The provider on 127.0.0.1, its URL naming the host `name` (`localhost`: another site
    than the server at 127.0.0.1, as the university's is)."""
    provider = Provider()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(provider))
    provider.url = f"http://{name}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
