"""Schemathesis over the issuer's own OpenAPI description, against a real server on 127.0.0.1.

Every operation the server describes at /openapi.json gets generated requests, valid and
invalid: schemathesis' coverage cases (boundary values, wrong types, missing and extra
parameters, unexpected methods and media types: a fixed list) and then at most
`MAX_EXAMPLES` Hypothesis-generated cases (positive and negative), derandomized. Three passes,
each on a fresh server:

- `anonymous`: no credentials at all;
- `admin`: the admin's bearer token on every call (so the admin routes get past auth, and the
  holder routes refuse it);
- `owner`: the routes that take another credential, with it: a holder's bearer token on /v1/me
  and /v1/wallet, a terminal's signed headers (duopass.protocol.signed_requests) on the signed
  terminal routes (the body's `terminal_id` set to the signer); and the admin routes on a
  holder with the handle of one that exists. So their bodies reach the services.

The property: no request makes the server answer 5xx (schemathesis' `not_a_server_error`, and a
plain status check besides); a 2xx body matches its documented schema
(`response_schema_conformance`); every refusal is a problem document with a stable code
(duopass/server/problems.py). Every failing request is reported with the server's logged
traceback ('duopass.server').

The schemathesis pytest plugin (`schemathesis.pytest.from_fixture`) is not used: with
schemathesis 4.32.5 on pytest 9.2 it fails on `Function._nodeid`, so the operations are walked
here with the library's public generation API instead.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.errors import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance
from sqlalchemy.exc import NoResultFound

from duopass.protocol.signed_requests import sign_request
from duopass.server.problems import ProblemCode
from tests.server.harness import (
    Running,
    TerminalClient,
    Wallet,
    password_session,
    ready_wallet,
    running_server,
)
from tests.server.raw import Records

Operation = schemathesis.APIOperation[Any, Any, Any, Any]

MAX_EXAMPLES = 50
"""Hypothesis-generated cases per operation and pass (the coverage cases come on top)."""
SEED = 20_240_601
TERMINAL_ID = "fuzz-till"
FAILURES_PER_OPERATION = 3

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {"mode": "all", "deterministic": True, "database": "none"},
        "phases": {"stateful": {"enabled": False}},
    }
)
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    verbosity=Verbosity.quiet,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck),
)

_PROBLEM_CODES = {code.value for code in ProblemCode}
_CHECKS: list[schemathesis.CheckFunction] = [not_a_server_error]
_SUCCESS_CHECKS: list[schemathesis.CheckFunction] = [
    not_a_server_error,
    response_schema_conformance,
]


def _project_frames(error: traceback.TracebackException) -> traceback.TracebackException:
    """The traceback with only the project's frames, down the cause/context chain."""
    error.stack = traceback.StackSummary.from_list(
        [frame for frame in error.stack if "/duopass/" in frame.filename]
    )
    for chained in (error.__cause__, error.__context__):
        if chained is not None:
            _project_frames(chained)
    return error


class _Records(Records):
    """What the server logged (warnings and up) while serving the current request."""

    def text(self) -> str:
        lines = []
        for record in self.records:
            lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")
            if record.exc_info and record.exc_info[1] is not None:
                error = _project_frames(traceback.TracebackException(*record.exc_info))
                lines.append("".join(error.format()).rstrip())
        return "\n".join(lines)


@dataclass
class Api:
    """The server under test and how this pass authenticates."""

    mode: str
    server: Running
    log: _Records
    session: requests.Session
    admin_auth: dict[str, str]
    holder_auth: dict[str, str] = field(default_factory=dict)
    handle: str = ""
    till: TerminalClient | None = None
    sent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    erased: int = 0
    """Holders an operation erased (each replaced by a new one)."""


@contextmanager
def _server_log() -> Iterator[_Records]:
    records = _Records()
    logger = logging.getLogger("duopass.server")
    logger.addHandler(records)
    try:
        yield records
    finally:
        logger.removeHandler(records)


def _holder_route(path: str) -> bool:
    return path.startswith(("/v1/me", "/v1/wallet/"))


def _signed_terminal_route(path: str) -> bool:
    return path.startswith("/v1/terminal/") and path != "/v1/terminal/enrol"


def _on_a_holder(path: str) -> bool:
    return path.startswith("/v1/admin/holders/{handle}/")


def _in_pass(mode: str, path: str) -> bool:
    """The owner pass covers the routes whose credential neither other pass has, and the admin
    routes on a holder, with a holder that exists."""
    return (
        mode != "owner" or _holder_route(path) or _signed_terminal_route(path) or _on_a_holder(path)
    )


def _send(case: schemathesis.Case[Any], api: Api) -> tuple[requests.Response, dict[str, Any]]:
    """Send the case as this pass authenticates; also the request as sent, for the checks."""
    path = case.operation.path
    headers: dict[str, str] = {}
    if api.mode == "admin" or (api.mode == "owner" and _on_a_holder(path)):
        headers = dict(api.admin_auth)
    elif api.mode == "owner" and _holder_route(path):
        headers = dict(api.holder_auth)
    if api.mode == "owner" and _on_a_holder(path):
        case.path_parameters = {**(case.path_parameters or {}), "handle": api.handle}
    kwargs = case.as_transport_kwargs(base_url=api.server.url, headers=headers)
    if api.mode == "owner" and _signed_terminal_route(path) and api.till is not None:
        body = kwargs.get("json")
        if isinstance(body, dict) and isinstance(body.get("terminal_id"), str):
            kwargs["json"] = {**body, "terminal_id": TERMINAL_ID}  # the terminal it signs as
        prepared = requests.Request(**kwargs).prepare()
        raw = prepared.body or b""
        prepared.headers.update(
            sign_request(
                api.till.key,
                TERMINAL_ID,
                method=str(prepared.method),
                target=str(prepared.path_url),
                time=int(time.time()),
                body=raw if isinstance(raw, bytes) else str(raw).encode(),
            )
        )
        response = api.session.send(prepared, timeout=30, allow_redirects=False)
    else:
        response = api.session.request(**kwargs, timeout=30, allow_redirects=False)
    if response.status_code >= 500:
        # Starlette re-raises after the 500 is sent, and uvicorn then drops the connection:
        # the next request must not find that connection in the pool.
        api.session.close()
    api.sent += 1
    api.statuses[response.status_code] = api.statuses.get(response.status_code, 0) + 1
    return response, kwargs


def _redeem_answer(response: requests.Response) -> bool:
    """The check-in redeem's refusals are pretix's answers (docs/checkin.md), documented as such:
    `status` error and a `reason`, with 400 or 404."""
    if not str(response.request.url).endswith("/v1/checkin/redeem"):
        return False
    if not response.headers.get("content-type", "").startswith("application/json"):
        return False
    body = response.json()
    return isinstance(body, dict) and body.get("status") == "error" and "reason" in body


_OAUTH_ERRORS = {"invalid_request", "invalid_client", "unsupported_grant_type", "invalid_scope"}


def _oauth_answer(response: requests.Response) -> bool:
    """The token endpoint's refusals are RFC 6749 §5.2's (docs/partners.md), documented as such:
    `{error, error_description}` with 400, or 401 `invalid_client`."""
    if not str(response.request.url).endswith("/v1/oauth/token"):
        return False
    if not response.headers.get("content-type", "").startswith("application/json"):
        return False
    body = response.json()
    if not isinstance(body, dict) or body.get("error") not in _OAUTH_ERRORS:
        return False
    return response.status_code == (401 if body["error"] == "invalid_client" else 400)


def _problem_document_error(response: requests.Response) -> str | None:
    if response.request.method == "HEAD":
        return None
    if _redeem_answer(response) or _oauth_answer(response):
        return None
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        return f"a refusal that is not a problem document ({response.headers.get('content-type')})"
    try:
        problem = response.json()
    except ValueError:
        return "a problem document that is not JSON"
    if not isinstance(problem, dict) or problem.get("status") != response.status_code:
        return "a problem document whose status is not the response's"
    if problem.get("code") not in _PROBLEM_CODES:
        return f"a problem document with an unknown code {problem.get('code')!r}"
    return None


def _describe(case: schemathesis.Case[Any], api: Api, response: requests.Response, why: str) -> str:
    request = response.request
    headers = {
        name: ("<redacted>" if name.lower() in ("authorization", "duopass-signature") else value)
        for name, value in request.headers.items()
        if name.lower() not in ("user-agent", "accept-encoding", "accept", "connection")
    }
    body = request.body
    shown = body.decode(errors="replace") if isinstance(body, bytes) else body
    phase = case.meta.phase.name.value if case.meta is not None else "?"
    return (
        f"[{api.mode}] {case.operation.label} ({phase}): {why}\n"
        f"  request: {request.method} {request.url}\n"
        f"  headers: {json.dumps(headers)}\n"
        f"  body: {shown if shown is not None else '(none)'}\n"
        f"  answer: {response.status_code} {response.text[:600]}\n"
        f"  server log:\n{api.log.text() or '    (nothing logged)'}"
    )


def _failure(case: schemathesis.Case[Any], api: Api) -> str | None:
    """Send one case; what is wrong with the answer, or None."""
    api.log.records.clear()
    response, sent = _send(case, api)
    status = response.status_code
    try:
        case.validate_response(
            response,
            checks=_SUCCESS_CHECKS if 200 <= status < 300 else _CHECKS,
            headers=sent.get("headers"),
            transport_kwargs=sent,
        )
    except FailureGroup as group:
        why = "; ".join(failure.title for failure in group.exceptions)
        return _describe(case, api, response, why)
    if status >= 500:  # a check may excuse a 5xx it blames on something else; we do not
        return _describe(case, api, response, f"server error {status}")
    if status >= 400:
        error = _problem_document_error(response)
        if error is not None:
            return _describe(case, api, response, error)
    return None


def _coverage_failures(
    schema: schemathesis.BaseSchema, operation: Operation, api: Api
) -> list[str]:
    generation = schema.config.generation_for(operation=operation, phase="coverage")
    found: list[str] = []
    for case in schema.iter_coverage_cases(
        operation, generation_modes=list(GenerationMode), generation_config=generation
    ):
        failure = _failure(case, api)
        if failure is not None:
            found.append(failure)
            if len(found) >= FAILURES_PER_OPERATION:
                break
    return found


def _fuzz_failures(operation: Operation, api: Api) -> list[str]:
    # An operation with nothing to negate has an empty negative strategy: `one_of` skips it.
    strategies = [operation.as_strategy(generation_mode=mode) for mode in GenerationMode]

    @FUZZ_SETTINGS
    @given(case=st.one_of(strategies))
    def fuzz(case: schemathesis.Case[Any]) -> None:
        failure = _failure(case, api)
        if failure is not None:
            raise AssertionError(failure)

    try:
        fuzz()
    except ExceptionGroup as group:  # Hypothesis found several distinct failures
        return [str(exc) for exc in group.exceptions]
    except AssertionError as exc:
        return [str(exc)]
    return []


def _sign_in_again(api: Api, server: Running, wallet: Wallet | None) -> Wallet | None:
    """Fresh sessions for each operation: one before may have signed out, ended the other
    sessions or reported the loss. A holder an operation erased (its login is gone) is
    replaced by a new one, so that the holder routes after it still land on a holder."""
    if api.mode != "anonymous":
        api.admin_auth = server.admin().auth
    if wallet is None:
        return None
    try:  # opened in process: the fuzzed password changes throttle its login
        api.holder_auth = password_session(server, wallet.login)
    except NoResultFound:
        api.erased += 1
        wallet = ready_wallet(
            server.http, server.admin(), f"fuzz-holder-{api.erased}", balance=10_000
        )
        api.holder_auth, api.handle = password_session(server, wallet.login), wallet.handle
    return wallet


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["anonymous", "admin", "owner"])
def test_no_input_makes_the_server_fail(mode: str, tmp_path: Path) -> None:
    with (
        _server_log() as log,
        # loopback is exempt from the per-network sign-in limit: the fuzzer's hundreds of failed
        # sign-ins would otherwise keep the passes' own sign-ins out (tests/server/test_throttle)
        running_server(
            f"sqlite:///{tmp_path / 'd.db'}",
            tmp_path / "data",
            throttle_exempt_networks=("127.0.0.0/8",),
        ) as srv,
        requests.Session() as session,
    ):
        admin = srv.admin()
        api = Api(mode, srv, log, session, admin_auth=admin.auth)
        wallet = None
        if mode == "owner":
            # Rows for the generated requests to land on: a holder with a device and a
            # credential, and an enrolled terminal selling for a merchant.
            wallet = ready_wallet(srv.http, admin, "fuzz-holder", balance=10_000)
            api.holder_auth, api.handle = wallet.auth, wallet.handle
            merchant = admin.merchant("fuzz-canteen")
            code = admin.terminal(
                TERMINAL_ID,
                mode="pay",
                venue="canteen",
                merchant_account_id=merchant,
                currency="CNY",
            )
            api.till = TerminalClient(srv.http, TERMINAL_ID)
            assert api.till.enrol(code).status_code == 200
        schema = schemathesis.openapi.from_url(f"{srv.url}/openapi.json", config=CONFIG)
        failures: list[str] = []
        operations = 0
        for result in schema.get_all_operations():
            if not isinstance(result, Ok):
                failures.append(f"[{mode}] the description does not load: {result.err()}")
                continue
            operation = result.ok()
            if not _in_pass(mode, operation.path):
                continue
            operations += 1
            wallet = _sign_in_again(api, srv, wallet if mode == "owner" else None)
            failures.extend(_coverage_failures(schema, operation, api))
            failures.extend(_fuzz_failures(operation, api))
        print(f"[{mode}] {operations} operations, {api.sent} requests, statuses {api.statuses}")
    assert operations > 0
    if failures:
        pytest.fail(f"{len(failures)} failing requests:\n\n" + "\n\n".join(failures))
