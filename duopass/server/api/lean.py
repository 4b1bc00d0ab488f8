"""Lean routes: the hot routes (online scans, check-ins) served without FastAPI's per-request
dependency resolution, with the same answers.

FastAPI works out again on every request what a route's dependency tree is made of (cache keys,
scopes, parameter kinds, the content type's parsing): some hundreds of microseconds a scan, more
than the scan's own parsing and signature check. A `LeanRoute` works its tree out once, when the
route is built, and serves the usual request (a JSON body, every header there) by calling the
same dependencies in the same order with the same values, the body and headers validated by the
same pydantic fields, the answer serialised by FastAPI's own `serialize_response`. Anything
unusual (a header missing or refused, another content type, a body that does not parse or
validate, overridden dependencies) goes to FastAPI's own handler, which answers as it always
did: nothing has been called by then, only validated (a body it read is given back to it).
The lean answer is served by the route's own ASGI app, inside the same exception handlers but
without `request_response`'s two exit stacks (for dependencies with `yield`: a planned route has
none). The route is FastAPI's in every other way: the OpenAPI document describes it as before.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, request_response, serialize_response
from starlette._exception_handler import wrap_app_handling_exceptions
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["LeanRoute"]

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
Lean = Callable[[Request], Coroutine[Any, Any, Response | None]]
"""A lean handler: None for a request it leaves to FastAPI's."""


@dataclass(frozen=True, slots=True)
class _Step:
    """A dependency: its own dependencies first, then its call with their values."""

    name: str | None
    call: Callable[..., Coroutine[Any, Any, Any]]
    subs: tuple[_Step, ...]
    headers: tuple[Any, ...]
    """Its header fields (`ModelField`), validated before anything of the tree is called."""
    connection: tuple[str, ...]
    """The names it takes the request under (`Request`, `HTTPConnection`)."""


@dataclass(frozen=True, slots=True)
class _Plan:
    root: _Step
    """The endpoint, the body aside."""
    body: Any
    """The body's field (`ModelField`): one JSON object, not embedded."""
    headers: tuple[tuple[Any, bytes], ...]
    """Each header field with the name it is read under, as the request carries it."""


class LeanRoute(APIRoute):
    """An `APIRoute` whose usual request skips FastAPI's generic resolution (module docstring);
    a route with a dependency of a kind it does not plan for is served by FastAPI alone."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._lean: Lean | None = None
        super().__init__(*args, **kwargs)  # which calls get_route_handler
        if self._lean is not None:
            self.app = _asgi(self._lean, request_response(self._stock))

    def get_route_handler(self) -> Handler:
        stock = super().get_route_handler()
        lean = self._lean_handler()
        if lean is None:
            return stock
        self._lean, self._stock = lean, stock

        async def app(request: Request) -> Response:
            answer = await lean(request)
            return await stock(request) if answer is None else answer

        return app

    def _lean_handler(self) -> Lean | None:
        plan = _plan(self)
        if plan is None or self.response_field is None:
            return None
        if not isinstance(self.response_class, DefaultPlaceholder):
            return None  # a custom response class: only FastAPI's own path knows it
        overrides = self.dependency_overrides_provider
        status = self.status_code or 200  # as Response has it

        async def app(request: Request) -> Response | None:
            if getattr(overrides, "dependency_overrides", None):
                return None
            raw = dict(reversed(request.scope["headers"]))  # each name's first, as Headers reads
            body = await _json_body(request, raw, plan.body)
            headers = None if body is None else _headers(raw, plan.headers)
            if headers is None:
                return None
            answer = await _solve(plan.root, request, headers, {}, {plan.body.name: body})
            if isinstance(answer, Response):
                return answer
            content = await serialize_response(
                field=self.response_field,
                response_content=answer,
                include=self.response_model_include,
                exclude=self.response_model_exclude,
                by_alias=self.response_model_by_alias,
                exclude_unset=self.response_model_exclude_unset,
                exclude_defaults=self.response_model_exclude_defaults,
                exclude_none=self.response_model_exclude_none,
                dump_json=True,
            )
            return Response(content=content, media_type="application/json", status_code=status)

        return app


def _asgi(lean: Lean, stock: ASGIApp) -> ASGIApp:
    """The route's ASGI app: the lean handler's answer, or FastAPI's own app (`request_response`
    around the stock handler) for a request it leaves, with the body it read given back. The
    lean answer skips only `request_response`'s exit stacks, there for dependencies with
    `yield`, which a planned route has none of; its exceptions meet the same handlers."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)

        async def answer(scope: Scope, receive: Receive, send: Send) -> None:
            response = await lean(request)
            if response is None:
                again = _replay(request._body, receive) if hasattr(request, "_body") else receive
                await stock(scope, again, send)
            else:
                await response(scope, receive, send)

        await wrap_app_handling_exceptions(answer, request)(scope, receive, send)

    return app


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` giving the body already read first, whole."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _json_body(request: Request, raw: dict[bytes, bytes], field: Any) -> Any:
    """The body validated by the route's body field; None if it is not a JSON object that
    validates (FastAPI's handler then reads it as it does: the body is kept, read once)."""
    if raw.get(b"content-type") != b"application/json" or not await _body(request):
        return None
    try:
        parsed = request._json = json.loads(request._body)  # as `Request.json` keeps it
    except (ValueError, RecursionError):  # a body nested past the parser's depth: FastAPI's 422
        return None
    value, errors = field.validate(parsed, {}, loc=("body",))
    return None if errors else value


async def _body(request: Request) -> bytes:
    """`Request.body` without its stream's generator: kept on the request, read once."""
    if not hasattr(request, "_body"):
        chunks = []
        while not request._stream_consumed:
            message = await request.receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                request._stream_consumed = not message.get("more_body", False)
            elif message["type"] == "http.disconnect":
                request._is_disconnected = True
                raise ClientDisconnect()
        request._body = b"".join(chunks)
    return request._body


def _headers(
    raw: dict[bytes, bytes], fields: tuple[tuple[Any, bytes], ...]
) -> dict[int, Any] | None:
    """Each header field's value (by the field's id), or None if one is missing or refused."""
    values = {}
    for field, key in fields:
        value = raw.get(key)
        if value is None:
            return None
        value, errors = field.validate(value.decode("latin-1"), {}, loc=("header", key.decode()))
        if errors:
            return None
        values[id(field)] = value
    return values


async def _solve(
    step: _Step,
    request: Request,
    headers: dict[int, Any],
    cache: dict[Any, Any],
    values: dict[str, Any],
) -> Any:
    """As FastAPI resolves a dependency: its own first, each called once a request."""
    values.update(dict.fromkeys(step.connection, request))
    for sub in step.subs:
        if sub.call in cache:
            solved = cache[sub.call]
        else:
            solved = cache[sub.call] = await _solve(sub, request, headers, cache, {})
        if sub.name is not None:
            values[sub.name] = solved
    for field in step.headers:
        values[field.name] = headers[id(field)]
    return await step.call(**values)


def _plan(route: APIRoute) -> _Plan | None:
    """The route's tree worked out once, or None if it has what `_solve` does not do."""
    endpoint = route.dependant
    if len(endpoint.body_params) != 1 or route.body_field is not endpoint.body_params[0]:
        return None  # no body, or several (embedded in one object)
    headers: list[Any] = []
    root = _step(endpoint, headers)
    if root is None:
        return None
    named = tuple((field, _header_key(field).lower().encode("latin-1")) for field in headers)
    return _Plan(root=root, body=route.body_field, headers=named)


def _header_key(field: Any) -> str:
    """The name FastAPI looks a header field up under."""
    return str(field.field_info.validation_alias or field.alias)


def _step(dependant: Dependant, headers: list[Any]) -> _Step | None:
    call = dependant.call
    if call is None or not _is_coroutine(call) or not dependant.use_cache:
        return None
    if dependant.path_params or dependant.query_params or dependant.cookie_params:
        return None
    for field in dependant.header_params:
        if field.field_info.annotation is not str or not _one_name(field):
            return None  # a list of values, a conversion, names to choose from
    unplanned = (
        dependant.websocket_param_name,
        dependant.background_tasks_param_name,
        dependant.response_param_name,
        dependant.security_scopes_param_name,
        getattr(dependant, "concurrency", None),
    )
    if any(name is not None for name in unplanned) or _scoped(dependant):
        return None
    subs = []
    for sub in dependant.dependencies:
        if sub.body_params:
            return None
        step = _step(sub, headers)
        if step is None:
            return None
        subs.append(step)
    headers.extend(dependant.header_params)
    connection = (dependant.request_param_name, dependant.http_connection_param_name)
    return _Step(
        name=dependant.name,
        call=call,
        subs=tuple(subs),
        headers=tuple(dependant.header_params),
        connection=tuple(name for name in connection if name is not None),
    )


def _one_name(field: Any) -> bool:
    """A header named by its own alias alone (no underscores to convert, no choices)."""
    info = field.field_info
    named = info.alias is not None and info.alias != field.name
    return named and isinstance(info.validation_alias, str | None)


def _scoped(dependant: Dependant) -> bool:
    """OAuth scopes make FastAPI's cache key more than the call."""
    return bool(dependant.own_oauth_scopes or dependant.parent_oauth_scopes)


def _is_coroutine(call: Callable[..., Any]) -> bool:
    if inspect.isasyncgenfunction(call) or inspect.isgeneratorfunction(call):
        return False
    method = getattr(call, "__call__", None)  # noqa: B004 (a dependency may be an object)
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(method)
