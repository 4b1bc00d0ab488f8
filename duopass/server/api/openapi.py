"""The OpenAPI document's error answers: every route's problem statuses, one schema for them all.

A route declares what its own work refuses with `responses=problems(404, 409)`; what its
dependencies and inputs can refuse is derived (`deps.PROBLEM_STATUSES`: 401 and 403 for bearer
callers, 401 and 413 for signed terminal requests, 503 for a unit of work; 413 for a body; 422
for any parameter or body), and every route has a `default` answer besides: whatever else
happens is a problem document too. FastAPI's own 422 schema (`HTTPValidationError`) describes a
body this server never sends, so it is replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_flat_params
from fastapi.routing import APIRoute

from duopass.server.api.deps import PROBLEM_STATUSES
from duopass.server.problems import STATUS, ProblemCode

__all__ = ["MEDIA_TYPE", "document", "install", "problems"]

MEDIA_TYPE = "application/problem+json"
_SCHEMA_NAME = "Problem"
_REF = {"$ref": f"#/components/schemas/{_SCHEMA_NAME}"}
_PROBLEM_SCHEMA: dict[str, Any] = {
    "title": _SCHEMA_NAME,
    "description": "An RFC 9457 problem document; `code` is stable (codes are never reused).",
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "format": "uri-reference"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string", "description": "for people: never parse it"},
        "code": {"type": "string", "enum": [code.value for code in ProblemCode]},
        "confirmation": {
            "type": "string",
            "description": "pin_required only: the payment's confirmation the holder may "
            "approve in their wallet (`POST /v1/wallet/confirmations/{id}`)",
        },
        "reason": {
            "type": "string",
            "description": "hsm_unavailable only: why the HSM cannot be used (hsm_module, "
            "hsm_token, hsm_pin, hsm_key, hsm_key_extractable, hsm_key_exists, hsm_failed)",
        },
    },
}
_HEADERS = {
    429: {
        "Retry-After": {
            "description": "seconds to wait before trying again, where the wait is known",
            "schema": {"type": "integer", "minimum": 0},
        }
    },
}
_FASTAPI_422_SCHEMAS = ("HTTPValidationError", "ValidationError")


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for the problem documents a route's own work answers with."""
    return {status: _answer(status) for status in statuses}


def document(router: APIRouter) -> None:
    """Give every route of `router` its problem answers, before an app includes it (FastAPI
    reads a route's `responses` when an app first resolves it). Doing it again changes nothing."""
    for route in router.routes:
        if isinstance(route, APIRoute):
            derived = problems(*sorted(_derived(route)))
            route.responses = {**derived, **route.responses, "default": _default()}


def install(app: FastAPI) -> None:
    """Put the problem document's schema in `app`'s OpenAPI document, in place of FastAPI's."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()  # FastAPI keeps it, and builds it again when routes change
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas[_SCHEMA_NAME] = _PROBLEM_SCHEMA
        for name in _FASTAPI_422_SCHEMAS:
            schemas.pop(name, None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _derived(route: APIRoute) -> set[int]:
    statuses: set[int] = set()
    for call in _calls(route.dependant):
        statuses |= PROBLEM_STATUSES.get(call, set())
    if route.body_field is not None:
        statuses |= {413, 422}
    if get_flat_params(route.dependant):  # path, query, header and cookie parameters
        statuses.add(422)
    return statuses


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _answer(status: int) -> dict[str, Any]:
    codes = ", ".join(f"`{code.value}`" for code, mapped in STATUS.items() if mapped == status)
    answer: dict[str, Any] = {
        "description": f"{HTTPStatus(status).phrase}: a problem document (codes of this status: "
        f"{codes})",
        "content": {MEDIA_TYPE: {"schema": _REF}},
    }
    if status in _HEADERS:
        answer["headers"] = _HEADERS[status]
    return answer


def _default() -> dict[str, Any]:
    return {
        "description": "Any other error (`internal`, or a refusal before routing): a problem "
        "document all the same",
        "content": {MEDIA_TYPE: {"schema": _REF}},
    }
