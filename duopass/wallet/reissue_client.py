"""The wallet's side of the reissue endpoints (issue 13, docs/server.md "Reissue"): ask for a
ticket on this device, prove it with a step-up, confirm, look a request up, and "I lost my
phone". Every answer is checked field by field, as `client.py` checks its own."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from duopass.protocol.encoding import b64u_encode
from duopass.wallet.client import Client, _b64u, _bad, _int, _text
from duopass.wallet.errors import Failure, WalletError
from duopass.wallet.limits import (
    FACTOR_CHARS_MAX,
    L1_BYTES_MAX,
    NAME_CHARS_MAX,
    PUBLIC_ID_CHARS_MAX,
    RULE_CHARS_MAX,
    TICKETS_MAX,
    TIME_MAX,
)

__all__ = ["Confirmed", "Decision", "LostAnswer", "LostTicket", "ReissueCalls", "Waiting"]

_REQUEST_ID = re.compile(r"rq-[0-9a-f]{1,29}")
_HEX_CTI = re.compile(r"[0-9a-f]{2,128}")
STATES = ("step_up", "review", "ready", "denied", "done", "expired")
OUTCOMES = ("allow", "step_up", "review", "deny")


@dataclass(frozen=True)
class Decision:
    """A reissue request as the server shows it: the policy's outcome and rule, and where the
    request stands (`state`: step_up, review, ready, denied, done or expired)."""

    request_id: str
    state: str
    outcome: str
    rule: str
    factors: tuple[str, ...]
    policy_version: str | None
    policy_sha256: str
    expires_at: int
    new_cti: str | None


@dataclass(frozen=True)
class Confirmed:
    """The confirmation: the ticket's new generation and its credential (None while the
    event is too far ahead: a sync mints it later, `refusal` says why)."""

    sub: str
    gen: int
    l1: bytes | None
    cti: str | None
    refusal: str | None


@dataclass(frozen=True)
class Waiting:
    """A request still waiting for the holder, as `GET /v1/me/reissues` lists it: which
    ticket and event, who asked (`partner`: its name; None: the holder), and when."""

    decision: Decision
    sub: str
    event: str | None
    partner: str | None
    created_at: int


WAITING_MAX = 50
"""The server lists at most this many waiting requests."""


@dataclass(frozen=True)
class LostTicket:
    """One ticket of a loss report: moved here (`done`, with its credential when the event is
    near enough), `on_this_device` already, or waiting (`step_up`, `review`) or `denied`."""

    sub: str
    state: str
    request_id: str | None
    rule: str | None
    factors: tuple[str, ...]
    l1: bytes | None


@dataclass(frozen=True)
class LostAnswer:
    revoked_credentials: int
    tickets: tuple[LostTicket, ...]


class ReissueCalls:
    """The reissue endpoints over one `Client` and session token."""

    def __init__(self, client: Client, token: str) -> None:
        self._client, self._token = client, token

    def ask(self, sub: str, device_key: bytes) -> Decision:
        """Step 1: this device asks for ticket `sub`; the policy decides."""
        body = {"device_key": b64u_encode(device_key)}
        return _decision(self._post(f"/v1/me/tickets/{_sub(sub)}/reissue", body))

    def show(self, request_id: str) -> Decision:
        return _decision(self._call("GET", f"/v1/me/reissues/{_rq(request_id)}", None))

    def sub_of(self, request_id: str) -> str:
        """The ticket sub a request of this holder's is about."""
        answer = self._call("GET", f"/v1/me/reissues/{_rq(request_id)}", None)
        return _sub(_text(answer, "sub", PUBLIC_ID_CHARS_MAX))

    def waiting(self) -> tuple[Waiting, ...]:
        """The holder's requests still waiting, newest first (one a partner opened, too)."""
        items = self._call("GET", "/v1/me/reissues", None).get("items")
        if not isinstance(items, list) or len(items) > WAITING_MAX:
            raise _bad("items")
        return tuple(_waiting(item) for item in items)

    def decline(self, request_id: str) -> Decision:
        """Say no to a waiting request: it ends denied, the ticket stays where it is."""
        return _decision(self._post(f"/v1/me/reissues/{_rq(request_id)}/decline", {}))

    def begin(self, request_id: str, factor: str) -> dict[str, Any]:
        """Begin a step-up: `{factor, expires_at, sent_to?}` (an e-mailed code is sent)."""
        answer = self._post(f"/v1/me/reissues/{_rq(request_id)}/step-up", {"factor": factor})
        begun: dict[str, Any] = {"expires_at": _int(answer, "expires_at", 0, TIME_MAX)}
        if answer.get("sent_to") is not None:
            begun["sent_to"] = _text(answer, "sent_to", 256)
        return begun

    def prove(self, request_id: str, factor: str, code: str) -> str:
        """Check the step-up's code; the request's state after it (`ready`)."""
        body = {"factor": factor, "code": code}
        answer = self._post(f"/v1/me/reissues/{_rq(request_id)}/step-up", body)
        return _choice(answer, "state", STATES)

    def confirm(self, request_id: str) -> Confirmed:
        """Steps 2 and 3: the ticket moves here; the old credential is revoked."""
        answer = self._post(f"/v1/me/reissues/{_rq(request_id)}/confirm", {})
        return Confirmed(
            sub=_text(answer, "sub", PUBLIC_ID_CHARS_MAX),
            gen=_int(answer, "gen", 0, TIME_MAX),
            l1=_l1(answer),
            cti=_cti(answer, "cti"),
            refusal=_optional_text(answer, "refusal"),
        )

    def lost(self, device_key: bytes) -> LostAnswer:
        """I lost my phone: every other device is revoked, the tickets move here."""
        answer = self._post("/v1/me/lost", {"device_key": b64u_encode(device_key)})
        items = answer.get("tickets")
        if not isinstance(items, list) or len(items) > TICKETS_MAX:
            raise _bad("tickets")
        return LostAnswer(
            revoked_credentials=_int(answer, "revoked_credentials", 0, TIME_MAX),
            tickets=tuple(_lost_ticket(item) for item in items),
        )

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", path, body)

    def _call(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        return self._client.call(method, path, body, token=self._token)


def _sub(sub: str) -> str:
    """A ticket sub fit for a path (the server's own limits refuse the rest)."""
    if re.fullmatch(r"[A-Za-z0-9_-]+", sub) is None or len(sub) > PUBLIC_ID_CHARS_MAX:
        raise WalletError(Failure.REFUSED, f"not a ticket sub: {sub[:PUBLIC_ID_CHARS_MAX]!r}")
    return sub


def _rq(request_id: str) -> str:
    if _REQUEST_ID.fullmatch(request_id) is None:
        raise WalletError(Failure.REFUSED, f"not a request id (rq-...): {request_id[:40]!r}")
    return request_id


def _decision(answer: dict[str, Any]) -> Decision:
    policy = answer.get("policy")
    if not isinstance(policy, dict):
        raise _bad("policy")
    sha256 = policy.get("sha256")
    if not isinstance(sha256, str) or re.fullmatch(r"[0-9a-f]{64}", sha256) is None:
        raise _bad("policy")
    version = policy.get("version")
    request_id = _text(answer, "request_id", 32)
    if _REQUEST_ID.fullmatch(request_id) is None:
        raise _bad("request_id")
    return Decision(
        request_id=request_id,
        state=_choice(answer, "state", STATES),
        outcome=_choice(answer, "outcome", OUTCOMES),
        rule=_text(answer, "rule", RULE_CHARS_MAX),
        factors=_factors(answer),
        policy_version=None if version is None else _text(policy, "version", 64),
        policy_sha256=sha256,
        expires_at=_int(answer, "expires_at", 0, TIME_MAX),
        new_cti=_cti(answer, "new_cti"),
    )


def _waiting(item: object) -> Waiting:
    if not isinstance(item, dict):
        raise _bad("items")
    event = item.get("event")
    if event is not None and not isinstance(event, dict):
        raise _bad("event")
    partner = item.get("partner")
    return Waiting(
        decision=_decision(item),
        sub=_text(item, "sub", PUBLIC_ID_CHARS_MAX),
        event=None if event is None else _text(event, "name", NAME_CHARS_MAX),
        partner=None if partner is None else _text(item, "partner", NAME_CHARS_MAX),
        created_at=_int(item, "created_at", 0, TIME_MAX),
    )


def _lost_ticket(item: object) -> LostTicket:
    if not isinstance(item, dict):
        raise _bad("tickets")
    state = _text(item, "state", PUBLIC_ID_CHARS_MAX)
    request_id = _optional_text(item, "request_id")
    if request_id is not None and _REQUEST_ID.fullmatch(request_id) is None:
        raise _bad("request_id")
    return LostTicket(
        sub=_text(item, "sub", PUBLIC_ID_CHARS_MAX),
        state=state,
        request_id=request_id,
        rule=_optional_text(item, "rule"),
        factors=_factors(item) if "factors" in item else (),
        l1=_l1(item),
    )


def _choice(document: dict[str, Any], name: str, allowed: tuple[str, ...]) -> str:
    value = document.get(name)
    if value not in allowed:
        raise _bad(name)
    return str(value)


def _factors(document: dict[str, Any]) -> tuple[str, ...]:
    factors = document.get("factors")
    if not isinstance(factors, list) or len(factors) > 8:
        raise _bad("factors")
    return tuple(_text({"factors": f}, "factors", FACTOR_CHARS_MAX) for f in factors)


def _optional_text(document: dict[str, Any], name: str) -> str | None:
    return None if document.get(name) is None else _text(document, name, RULE_CHARS_MAX)


def _l1(document: dict[str, Any]) -> bytes | None:
    if document.get("credential") is None:
        return None
    return _b64u(document, "credential", L1_BYTES_MAX)


def _cti(document: dict[str, Any], name: str) -> str | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or _HEX_CTI.fullmatch(value) is None:
        raise _bad(name)
    return value
