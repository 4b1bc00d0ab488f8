"""The console as a browser without scripts sees it: cookies kept, forms posted with the token
the page holds."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from tests.server.harness import ADMIN_PASSWORD, Running
from tests.web.conftest import OPERATOR

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Browser:
    http: httpx.Client
    csrf: str = ""

    def get(self, path: str, **kwargs) -> httpx.Response:
        answer = self.http.get(path, **kwargs)
        found = _CSRF.search(answer.text)
        if found:
            self.csrf = found.group(1)
        return answer

    def post(self, path: str, data: Mapping[str, object], **kwargs) -> httpx.Response:
        return self.http.post(path, data={"csrf": self.csrf, **data}, **kwargs)

    def sign_in(self, login: str, password: str) -> httpx.Response:
        self.get("/console/login")
        return self.post("/console/login", {"login": login, "password": password})


OPEN: list[httpx.Client] = []
"""Clients to close when the test ends (conftest's `_close_browsers`)."""


def browser(site: Running, *, language: str = "zh-CN,zh;q=0.9") -> Browser:
    client = httpx.Client(base_url=site.url, headers={"Accept-Language": language})
    OPEN.append(client)
    return Browser(client)


def admin(site: Running, **kwargs) -> Browser:
    signed = browser(site, **kwargs)
    assert signed.sign_in("admin", ADMIN_PASSWORD).status_code == 303
    return signed


def operator(site: Running, **kwargs) -> Browser:
    signed = browser(site, **kwargs)
    assert signed.sign_in(OPERATOR["login"], OPERATOR["password"]).status_code == 303
    return signed
