"""The pages' static files, served from the package at `/static/web/`: our own styles and the
scripts vendored from npm (`static/vendor/`, manifest and hashes in `vendor/manifest.json`).
Every URL the pages use is versioned (a content hash, or the package version in the folder
name), so every answer may be cached for a year. axe-core, a test tool, is served only when the
tests ask for it (`settings.test_axe`)."""

from __future__ import annotations

from typing import Final

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from duopass.server.web.templating import STATIC_DIR, STATIC_PREFIX

__all__ = ["CACHE_CONTROL", "mount"]

CACHE_CONTROL: Final = "public, max-age=31536000, immutable"
_TEST_ONLY: Final = "vendor/axe-core-"


class _Static(StaticFiles):
    def __init__(self, *, axe: bool) -> None:
        super().__init__(directory=STATIC_DIR)
        self._axe = axe

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path.startswith(_TEST_ONLY) and not self._axe:
            raise HTTPException(status_code=404)
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = CACHE_CONTROL
            response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def mount(app: FastAPI, *, axe: bool) -> None:
    app.mount(STATIC_PREFIX, _Static(axe=axe), name="web-static")
