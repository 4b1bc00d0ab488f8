"""Helpers for partner tests: a client made by the admin, a token got as a partner gets it."""

from __future__ import annotations

import base64
import re
from typing import Any

import httpx

from tests.server.harness import ADMIN_PASSWORD, Admin

__all__ = ["basic", "console_page", "make_client", "token"]


def make_client(admin: Admin, scopes: list[str], **fields: Any) -> dict[str, Any]:
    made = admin.post("/v1/admin/partners", {"name": "City Tickets", "scopes": scopes, **fields})
    assert made.status_code == 201, made.text
    return dict(made.json())


def basic(client_id: str, secret: str) -> dict[str, str]:
    pair = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


def token(http: httpx.Client, client: dict[str, Any], **form: str) -> httpx.Response:
    """A token request with HTTP Basic (client_secret_basic)."""
    return http.post(
        "/v1/oauth/token",
        data={"grant_type": "client_credentials", **form},
        headers=basic(client["client_id"], client["client_secret"]),
    )


def console_page(http: httpx.Client, path: str) -> str:
    """A console page as the admin signed in through the console's own form sees it."""
    form = http.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None, form.text
    body = {"login": "admin", "password": ADMIN_PASSWORD, "csrf": csrf.group(1)}
    signed_in = http.post("/console/login", data=body)
    assert signed_in.status_code in (200, 303), signed_in.text
    page = http.get(path)
    assert page.status_code == 200, page.text
    return page.text
