"""Errors as RFC 9457 problem documents, from one table of stable codes to HTTP statuses.

Services raise `Problem(code, detail)`; one handler turns it, request validation failures and
anything unexpected into `application/problem+json` with a stable `code`. No route builds its own
error response, and no input makes the server answer with a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import StrEnum

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from duopass.server.hsm import HsmError
from duopass.server.roots import RootError
from duopass.server.store.reach import is_unavailable

log = logging.getLogger("duopass.server")

STORE_UNAVAILABLE_DETAIL = "the database cannot be reached now (a failover?): send it again"
"""503 `store_unavailable`'s detail: the unit did not commit, or its outcome is unknown; the
same request sent again (same terminal seq, same request id) finds what it did."""


class ProblemCode(StrEnum):
    """Stable problem codes; added, never renamed or reused."""

    INVALID_REQUEST = "invalid_request"
    BODY_TOO_LARGE = "body_too_large"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    ALREADY_ENROLLED = "already_enrolled"
    BAD_ENROLMENT_CODE = "bad_enrolment_code"
    BAD_DEVICE_KEY = "bad_device_key"
    BAD_PROOF = "bad_proof"
    STEP_UP_REQUIRED = "step_up_required"
    REFRESH_LIMIT = "refresh_limit"
    NO_FUNDS = "no_funds"
    FROZEN = "frozen"
    OUT_OF_RANGE = "out_of_range"
    INTERNAL = "internal"
    BAD_BATCH = "bad_batch"
    BUSY = "busy"
    THROTTLED = "throttled"
    IDEMPOTENCY_MISMATCH = "idempotency_mismatch"
    BAD_CURSOR = "bad_cursor"
    ACCOUNT_NOT_EMPTY = "account_not_empty"
    SOLD_OUT = "sold_out"
    FACTOR_UNAVAILABLE = "factor_unavailable"
    NO_EMAIL = "no_email"
    MAIL_UNAVAILABLE = "mail_unavailable"
    STEP_UP_FAILED = "step_up_failed"
    STEP_UP_EXPIRED = "step_up_expired"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    POLICY_CHANGED = "policy_changed"
    BAD_POLICY = "bad_policy"
    RISK_DENIED = "risk_denied"
    RISK_REVIEW = "risk_review"
    RISK_RATE_LIMITED = "risk_rate_limited"
    LIMIT_DAILY_TOTAL = "limit_daily_total"
    LIMIT_MEAL_COUNT = "limit_meal_count"
    PIN_REQUIRED = "pin_required"
    PIN_WRONG = "pin_wrong"
    PIN_NOT_SET = "pin_not_set"
    LIMIT_ABOVE_BOUND = "limit_above_bound"
    PIN_DECLINED = "pin_declined"
    CONFIRMATION_EXPIRED = "confirmation_expired"
    CSRF_REFUSED = "csrf_refused"
    DISPUTE_TOO_LATE = "dispute_too_late"
    ALREADY_DISPUTED = "already_disputed"
    NOT_DISPUTABLE = "not_disputable"
    SAME_PERSON = "same_person"
    NOT_PREPARED = "not_prepared"
    NOT_CLOSED = "not_closed"
    REPORT_CHANGED = "report_changed"
    PREPARE_AND_APPROVE = "prepare_and_approve"
    URL_NOT_HTTP = "url_not_http"
    URL_TOO_LONG = "url_too_long"
    URL_MALFORMED = "url_malformed"
    URL_NOT_PUBLIC = "url_not_public"
    TOO_MANY_WEBHOOKS = "too_many_webhooks"
    PARTNER_RATE_LIMITED = "partner_rate_limited"
    INSUFFICIENT_SCOPE = "insufficient_scope"
    PASSKEY_HOST = "passkey_host"
    PASSKEY_CHALLENGE = "passkey_challenge"
    PASSKEY_REFUSED = "passkey_refused"
    PASSKEY_UNKNOWN = "passkey_unknown"
    PASSKEY_CLONED = "passkey_cloned"
    PASSKEY_EXISTS = "passkey_exists"
    PASSKEY_LIMIT = "passkey_limit"
    STORE_ROLLED_BACK = "store_rolled_back"
    STORE_UNAVAILABLE = "store_unavailable"
    OIDC_OFF = "oidc_off"
    OIDC_STATE = "oidc_state"
    OIDC_REFUSED = "oidc_refused"
    OIDC_UNAVAILABLE = "oidc_unavailable"
    OIDC_NO_ACCOUNT = "oidc_no_account"
    LEDGER_KEY_MISSING = "ledger_key_missing"
    OIDC_BOUND_ELSEWHERE = "oidc_bound_elsewhere"
    HOLDER_NOT_FOUND = "holder_not_found"
    ORDER_NOT_CANCELLABLE = "order_not_cancellable"
    HSM_UNAVAILABLE = "hsm_unavailable"
    ROOT_KEYS_BROKEN = "root_keys_broken"


STATUS = {
    ProblemCode.INVALID_REQUEST: 422,
    ProblemCode.BODY_TOO_LARGE: 413,
    ProblemCode.UNAUTHENTICATED: 401,
    ProblemCode.FORBIDDEN: 403,
    ProblemCode.NOT_FOUND: 404,
    ProblemCode.METHOD_NOT_ALLOWED: 405,
    ProblemCode.CONFLICT: 409,
    ProblemCode.ALREADY_ENROLLED: 409,
    ProblemCode.BAD_ENROLMENT_CODE: 403,
    ProblemCode.BAD_DEVICE_KEY: 422,
    ProblemCode.BAD_PROOF: 403,
    ProblemCode.STEP_UP_REQUIRED: 401,
    ProblemCode.REFRESH_LIMIT: 429,
    ProblemCode.NO_FUNDS: 409,
    ProblemCode.FROZEN: 403,
    ProblemCode.OUT_OF_RANGE: 422,
    ProblemCode.INTERNAL: 500,
    ProblemCode.BAD_BATCH: 422,
    ProblemCode.BUSY: 503,
    ProblemCode.THROTTLED: 429,
    ProblemCode.IDEMPOTENCY_MISMATCH: 409,
    ProblemCode.BAD_CURSOR: 422,
    ProblemCode.ACCOUNT_NOT_EMPTY: 409,
    ProblemCode.SOLD_OUT: 409,
    ProblemCode.FACTOR_UNAVAILABLE: 409,
    ProblemCode.NO_EMAIL: 409,
    ProblemCode.MAIL_UNAVAILABLE: 503,
    ProblemCode.STEP_UP_FAILED: 403,
    ProblemCode.STEP_UP_EXPIRED: 409,
    ProblemCode.TOO_MANY_ATTEMPTS: 429,
    ProblemCode.POLICY_CHANGED: 503,
    ProblemCode.BAD_POLICY: 422,
    ProblemCode.RISK_DENIED: 403,
    ProblemCode.RISK_REVIEW: 403,
    ProblemCode.RISK_RATE_LIMITED: 429,
    ProblemCode.LIMIT_DAILY_TOTAL: 403,
    ProblemCode.LIMIT_MEAL_COUNT: 403,
    ProblemCode.PIN_REQUIRED: 403,
    ProblemCode.PIN_WRONG: 403,
    ProblemCode.PIN_NOT_SET: 403,
    ProblemCode.LIMIT_ABOVE_BOUND: 422,
    ProblemCode.PIN_DECLINED: 403,
    ProblemCode.CONFIRMATION_EXPIRED: 403,
    ProblemCode.CSRF_REFUSED: 403,
    ProblemCode.DISPUTE_TOO_LATE: 409,
    ProblemCode.ALREADY_DISPUTED: 409,
    ProblemCode.NOT_DISPUTABLE: 409,
    ProblemCode.SAME_PERSON: 403,
    ProblemCode.NOT_PREPARED: 409,
    ProblemCode.NOT_CLOSED: 409,
    ProblemCode.REPORT_CHANGED: 409,
    ProblemCode.PREPARE_AND_APPROVE: 409,
    ProblemCode.URL_NOT_HTTP: 422,
    ProblemCode.URL_TOO_LONG: 422,
    ProblemCode.URL_MALFORMED: 422,
    ProblemCode.URL_NOT_PUBLIC: 422,
    ProblemCode.TOO_MANY_WEBHOOKS: 409,
    ProblemCode.PARTNER_RATE_LIMITED: 429,
    ProblemCode.INSUFFICIENT_SCOPE: 403,
    ProblemCode.PASSKEY_HOST: 409,
    ProblemCode.PASSKEY_CHALLENGE: 409,
    ProblemCode.PASSKEY_REFUSED: 403,
    ProblemCode.PASSKEY_UNKNOWN: 401,
    ProblemCode.PASSKEY_CLONED: 403,
    ProblemCode.PASSKEY_EXISTS: 409,
    ProblemCode.PASSKEY_LIMIT: 409,
    ProblemCode.STORE_ROLLED_BACK: 503,
    ProblemCode.STORE_UNAVAILABLE: 503,
    ProblemCode.OIDC_OFF: 404,
    ProblemCode.OIDC_STATE: 400,
    ProblemCode.OIDC_REFUSED: 401,
    ProblemCode.OIDC_UNAVAILABLE: 503,
    ProblemCode.OIDC_NO_ACCOUNT: 403,
    ProblemCode.LEDGER_KEY_MISSING: 503,
    ProblemCode.OIDC_BOUND_ELSEWHERE: 403,
    ProblemCode.HOLDER_NOT_FOUND: 404,
    ProblemCode.ORDER_NOT_CANCELLABLE: 409,
    ProblemCode.HSM_UNAVAILABLE: 503,
    ProblemCode.ROOT_KEYS_BROKEN: 503,
}
_FROM_STATUS = {
    401: ProblemCode.UNAUTHENTICATED,
    403: ProblemCode.FORBIDDEN,
    404: ProblemCode.NOT_FOUND,
    405: ProblemCode.METHOD_NOT_ALLOWED,
    413: ProblemCode.BODY_TOO_LARGE,
}


class Problem(Exception):
    """An expected refusal with a stable code; the message is for people."""

    def __init__(
        self,
        code: ProblemCode,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra or {}
        """Members the document carries beyond the standard ones (RFC 9457 §3.2): a
        `pin_required`'s `confirmation`."""


def store_unavailable() -> Problem:
    """503 `store_unavailable` (`store.reach.is_unavailable`)."""
    return Problem(ProblemCode.STORE_UNAVAILABLE, STORE_UNAVAILABLE_DETAIL)


def key_failure(request: Request, exc: HsmError | RootError) -> Problem:
    """503 for a key the server cannot use while it serves, logged here once with what is
    wrong (never the PIN: `HsmError` holds none): `hsm_unavailable` for an HSM that fails
    (its `reason`, an `HsmReason`, in the document), `root_keys_broken` for root files that are
    missing, broken or disagree (`roots.RootError`). The document names no path or label."""
    where = f"{request.method} {request.url.path}"
    if isinstance(exc, HsmError):
        log.error("the HSM failed on %s: %s", where, exc)
        detail = f"the HSM cannot be used now ({exc.reason.value}); it has been logged"
        return Problem(ProblemCode.HSM_UNAVAILABLE, detail, extra={"reason": exc.reason.value})
    log.error("the root key files are unusable on %s: %s", where, exc)
    detail = "the issuer's root key files are missing or broken; it has been logged"
    return Problem(ProblemCode.ROOT_KEYS_BROKEN, detail)


def problem_response(
    code: ProblemCode,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
) -> JSONResponse:
    status = STATUS[code]
    body = {
        **(extra or {}),
        "type": f"https://duopass.dev/problems/{code.value}",
        "title": code.value.replace("_", " "),
        "status": status,
        "detail": detail,
        "code": code.value,
    }
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem document."""

    @app.exception_handler(Problem)
    async def _problem(_request: Request, exc: Problem) -> JSONResponse:
        headers = dict(exc.headers)
        if exc.code is ProblemCode.STEP_UP_REQUIRED:  # RFC 9470
            headers.setdefault(
                "WWW-Authenticate", 'Bearer error="insufficient_user_authentication"'
            )
        return problem_response(exc.code, exc.detail, headers=headers, extra=exc.extra)

    @app.exception_handler(HsmError)
    @app.exception_handler(RootError)
    async def _key_failure(request: Request, exc: HsmError | RootError) -> JSONResponse:
        failed = key_failure(request, exc)
        return problem_response(failed.code, failed.detail, extra=failed.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        return problem_response(
            ProblemCode.INVALID_REQUEST, f"{where}: {first.get('msg', 'invalid')}"
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _FROM_STATUS.get(exc.status_code, ProblemCode.INVALID_REQUEST)
        return problem_response(code, str(exc.detail), headers=exc.headers)  # 405's Allow

    @app.exception_handler(ClientDisconnect)
    async def _gone(_request: Request, _exc: ClientDisconnect) -> JSONResponse:
        # The client left (or its body stalled and the server closed the connection) while its
        # body was read: nobody will read this answer, and nothing went wrong here.
        return problem_response(ProblemCode.INVALID_REQUEST, "the client went away")

    @app.exception_handler(DataError)
    async def _unstorable(request: Request, _exc: DataError) -> JSONResponse:
        # A value every check let through that the database cannot hold: PostgreSQL text
        # with a NUL character, a number past its column. The unit rolled back; the request
        # is at fault, not the server (SQLite stores both, so only PostgreSQL gets here).
        log.warning("unstorable value on %s %s", request.method, request.url.path)
        return problem_response(
            ProblemCode.INVALID_REQUEST, "a value the store cannot hold (a NUL character?)"
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if is_unavailable(exc):  # a failover under way: expected, and said once per request
            log.warning("database unavailable on %s %s", request.method, request.url.path)
            return problem_response(ProblemCode.STORE_UNAVAILABLE, STORE_UNAVAILABLE_DETAIL)
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem_response(ProblemCode.INTERNAL, "internal error; it has been logged")
