"""The wallet's side of the holder endpoints (docs/server.md), over HTTP only.

Every answer is read up to `RESPONSE_BYTES_MAX` and checked field by field before anything of
it is believed; a problem document (RFC 9457) becomes a `WalletError` carrying its `detail`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from duopass.protocol.encoding import EncodingError, b64u_decode, b64u_encode
from duopass.protocol.limits import INSTALLATION_HEADER, USES_MAX
from duopass.protocol.trust import Policy, TrustStoreError, parse_policy
from duopass.wallet.errors import Failure, WalletError
from duopass.wallet.limits import (
    CHALLENGE_BYTES_MAX,
    ENTRIES_MAX,
    EVENTS_MAX,
    L1_BYTES_MAX,
    LOGIN_CHARS_MAX,
    MOVEMENT_KIND_CHARS_MAX,
    NAME_CHARS_MAX,
    PASSWORD_CHARS_MAX,
    PUBLIC_ID_CHARS_MAX,
    RECENT_LINES_MAX,
    RESPONSE_BYTES_MAX,
    ROW_ID_MAX,
    SERVER_URL_CHARS_MAX,
    TICKET_TYPES_MAX,
    TICKETS_MAX,
    TICKETS_PER_ORDER_MAX,
    TIME_MAX,
    TOKEN_CHARS_MAX,
)
from duopass.wallet.tickets import TicketInfo, TicketItem, TicketsAnswer

__all__ = ["Client", "SyncAnswer", "check_server_url"]

_TOKEN_TEXT = re.compile(r"[!-~]+")
_KIND_TEXT = re.compile(rf"[a-z_]{{1,{MOVEMENT_KIND_CHARS_MAX}}}")
_AMOUNT_MAX = 2**53
_DETAIL_CHARS_MAX = 300


def check_server_url(url: str) -> str:
    """The server's base URL without a trailing slash; http or https, nothing else."""
    if len(url) > SERVER_URL_CHARS_MAX:
        raise WalletError(Failure.REFUSED, "the server URL is too long")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise WalletError(Failure.REFUSED, f"not a server URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WalletError(Failure.REFUSED, "the server URL must be http(s)://host[:port]")
    if parts.query or parts.fragment:
        raise WalletError(Failure.REFUSED, "the server URL takes no query or fragment")
    return url.rstrip("/")


@dataclass(frozen=True)
class SyncAnswer:
    """POST /v1/wallet/sync's answer, checked: the L1's bytes and what the server says of it."""

    l1: bytes
    cti: bytes
    uses: int
    exp: int
    offline: bool
    server_time: int
    policy: Policy | None
    """The issuer's policy (§6); None from a server that does not send it: §3's defaults."""


class Client:
    """One server, over httpx (a transport may be given, as tests do to lose answers)."""

    def __init__(
        self,
        server: str,
        *,
        timeout: float,
        transport: httpx.BaseTransport | None = None,
        installation: str | None = None,
    ) -> None:
        """`installation`: the id sent with every request (`wallet.installation`), if any."""
        headers = {} if installation is None else {INSTALLATION_HEADER: installation}
        self._http = httpx.Client(
            base_url=check_server_url(server), timeout=timeout, transport=transport, headers=headers
        )

    def close(self) -> None:
        self._http.close()

    def sign_in(self, login: str, password: str, otp: str | None) -> tuple[str, int]:
        """A session token and its expiry."""
        if not 1 <= len(login) <= LOGIN_CHARS_MAX or not 1 <= len(password) <= PASSWORD_CHARS_MAX:
            raise WalletError(Failure.REFUSED, "login or password empty or too long")
        if otp is not None and re.fullmatch(r"[0-9]{6}", otp) is None:
            raise WalletError(Failure.REFUSED, "a one-time code is 6 digits")
        body: dict[str, Any] = {"login": login, "password": password}
        if otp is not None:
            body["otp"] = otp
        return self._token(self._call("POST", "/v1/session", body, token=None))

    def _token(self, answer: dict[str, Any]) -> tuple[str, int]:
        token = answer.get("token")
        if not isinstance(token, str) or not 1 <= len(token) <= TOKEN_CHARS_MAX:
            raise _bad("token")
        if _TOKEN_TEXT.fullmatch(token) is None:
            raise _bad("token")
        return token, _int(answer, "expires_at", 0, TIME_MAX)

    def challenge(self) -> bytes:
        """A one-time challenge for the device key to sign (device sign-in)."""
        answer = self._call("POST", "/v1/session/challenge", {}, token=None)
        return _b64u(answer, "challenge", CHALLENGE_BYTES_MAX)

    def device_sign_in(
        self, login: str, public_key: bytes, challenge: bytes, signature: bytes
    ) -> tuple[str, int]:
        """A session token for the enrolled device, without the password."""
        body = {
            "login": login,
            "public_key": b64u_encode(public_key),
            "challenge": b64u_encode(challenge),
            "signature": b64u_encode(signature),
        }
        return self._token(self._call("POST", "/v1/session/device", body, token=None))

    def enrol_device(self, token: str, public_key: bytes, proof: bytes) -> int:
        body = {"public_key": b64u_encode(public_key), "proof": b64u_encode(proof)}
        answer = self._call("POST", "/v1/me/devices", body, token=token)
        return _int(answer, "device_id", 1, ROW_ID_MAX)

    def sync(self, token: str, device_id: int, request_id: str, mark: int | None) -> SyncAnswer:
        body = {"device_id": device_id, "request_id": request_id, "mark": mark}
        answer = self._call("POST", "/v1/wallet/sync", body, token=token)
        return SyncAnswer(
            l1=_b64u(answer, "credential", L1_BYTES_MAX),
            cti=_b64u(answer, "cti", 64),
            uses=_int(answer, "uses", 1, USES_MAX),
            exp=_int(answer, "exp", 0, TIME_MAX),
            offline=_bool(answer, "offline"),
            server_time=_int(answer, "server_time", 0, TIME_MAX),
            policy=_policy(answer),
        )

    def account(self, token: str) -> dict[str, Any]:
        """The holder's balance, holds, free funds and latest movements (`recent`: kind,
        `occurred_at` in Unix seconds, signed amount in minor units), newest first."""
        answer = self._call("GET", "/v1/me/account", None, token=token)
        currency = answer.get("currency")
        if not isinstance(currency, str) or re.fullmatch(r"[A-Z]{3}", currency) is None:
            raise _bad("currency")
        amounts: dict[str, Any] = {"currency": currency}
        for name in ("balance", "overdraft", "held", "free_funds"):
            amounts[name] = _int(answer, name, -_AMOUNT_MAX, _AMOUNT_MAX)
        amounts["recent"] = _recent(answer)
        return amounts

    def sync_tickets(self, token: str, device_id: int, exhausted: list[str]) -> TicketsAnswer:
        """The holder's tickets for this device, with credentials (`exhausted`: replace)."""
        body = {"device_id": device_id, "exhausted": exhausted[:TICKETS_MAX]}
        answer = self._call("POST", "/v1/wallet/tickets", body, token=token)
        items = answer.get("tickets")
        if not isinstance(items, list) or len(items) > TICKETS_MAX:
            raise _bad("tickets")
        return TicketsAnswer(
            tickets=tuple(_ticket_item(item) for item in items),
            server_time=_int(answer, "server_time", 0, TIME_MAX),
            policy=_policy(answer),
        )

    def events(self, token: str) -> list[dict[str, Any]]:
        """What is on sale: events not yet ended, with their ticket types."""
        answer = self._call("GET", "/v1/events", None, token=token)
        items = answer.get("items")
        if not isinstance(items, list) or len(items) > EVENTS_MAX:
            raise _bad("items")
        return [_event(item) for item in items]

    def buy(self, token: str, type_id: int, quantity: int, request_id: str) -> dict[str, Any]:
        """An order paid from the account; the same request id again returns the first one."""
        body = {"ticket_type": type_id, "quantity": quantity, "request_id": request_id}
        answer = self._call("POST", "/v1/me/orders", body, token=token)
        subs = answer.get("tickets")
        if not isinstance(subs, list) or len(subs) > TICKETS_PER_ORDER_MAX:
            raise _bad("tickets")
        return {
            "code": _text(answer, "code", PUBLIC_ID_CHARS_MAX),
            "quantity": _int(answer, "quantity", 1, TICKETS_PER_ORDER_MAX),
            "amount": _int(answer, "amount", 0, _AMOUNT_MAX),
            "currency": _text(answer, "currency", 3),
            "state": _text(answer, "state", PUBLIC_ID_CHARS_MAX),
            "tickets": [_text({"tickets": sub}, "tickets", PUBLIC_ID_CHARS_MAX) for sub in subs],
        }

    def call(
        self, method: str, path: str, body: dict[str, Any] | None, *, token: str | None
    ) -> dict[str, Any]:
        """Any holder endpoint: its JSON object, unchecked (the caller checks each field, as
        `reissue_client.py` does), or a problem as a `WalletError`."""
        return self._call(method, path, body, token=token)

    def _call(
        self, method: str, path: str, body: dict[str, Any] | None, *, token: str | None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        try:
            with self._http.stream(method, path, json=body, headers=headers) as response:
                data = bytearray()
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) > RESPONSE_BYTES_MAX:
                        raise WalletError(Failure.BAD_ANSWER, "the server's answer is too large")
                status = response.status_code
        except httpx.HTTPError as exc:
            raise WalletError(
                Failure.OFFLINE, f"cannot reach the server ({type(exc).__name__}): {exc}"
            ) from exc
        try:
            document = json.loads(data)
        except (ValueError, RecursionError):  # also 4,300+ digit numbers and deep nesting
            document = None
        if not isinstance(document, dict):
            raise WalletError(Failure.BAD_ANSWER, f"the server answered {status} without JSON")
        if status not in (httpx.codes.OK, httpx.codes.CREATED):
            raise _problem(status, document, with_token=token is not None)
        return document


def _problem(status: int, document: dict[str, Any], *, with_token: bool) -> WalletError:
    code, detail = document.get("code"), document.get("detail")
    code = code if isinstance(code, str) else str(status)
    detail = detail if isinstance(detail, str) else "no detail"
    text = f"the server refused ({code[:40]}): {detail[:_DETAIL_CHARS_MAX]}"
    if code == "unauthenticated" and with_token:  # the session ended or expired
        return WalletError(
            Failure.SIGNED_OUT, f"{text}; sign in again with `duopass wallet login`", code=code
        )
    return WalletError(Failure.REFUSED, text, code=code[:40])


def _bad(name: str) -> WalletError:
    return WalletError(Failure.BAD_ANSWER, f"the server's answer has no valid {name!r}")


def _int(document: dict[str, Any], name: str, low: int, high: int) -> int:
    value = document.get(name)
    if type(value) is not int or not low <= value <= high:
        raise _bad(name)
    return value


def _recent(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The latest movements, checked row by row (absent from an older server: none)."""
    rows = answer.get("recent", [])
    if not isinstance(rows, list) or len(rows) > RECENT_LINES_MAX:
        raise _bad("recent")
    recent = []
    for row in rows:
        if not isinstance(row, dict):
            raise _bad("recent")
        kind = row.get("kind")
        if not isinstance(kind, str) or _KIND_TEXT.fullmatch(kind) is None:
            raise _bad("recent")
        recent.append(
            {
                "kind": kind,
                "occurred_at": _int(row, "occurred_at", 0, TIME_MAX),
                "amount": _int(row, "amount", -_AMOUNT_MAX, _AMOUNT_MAX),
            }
        )
    return recent


def _text(document: dict[str, Any], name: str, high: int) -> str:
    """A text field of printable characters (it may be shown on a terminal)."""
    value = document.get(name)
    if not isinstance(value, str) or not 1 <= len(value) <= high or not value.isprintable():
        raise _bad(name)
    return value


def _object(document: dict[str, Any], name: str) -> dict[str, Any]:
    value = document.get(name)
    if not isinstance(value, dict):
        raise _bad(name)
    return value


def _ticket_item(item: object) -> TicketItem:
    if not isinstance(item, dict):
        raise _bad("tickets")
    event, kind = _object(item, "event"), _object(item, "ticket_type")
    device_id = item.get("device_id")
    info = TicketInfo(
        sub=_text(item, "sub", PUBLIC_ID_CHARS_MAX),
        event_id=_text(event, "id", PUBLIC_ID_CHARS_MAX),
        event_name=_text(event, "name", NAME_CHARS_MAX),
        doors=_int(event, "doors", 0, TIME_MAX),
        ends=_int(event, "ends", 0, TIME_MAX),
        type_id=_int(kind, "id", 1, ROW_ID_MAX),
        type_name=_text(kind, "name", NAME_CHARS_MAX),
        entries=_int(kind, "entries", 1, ENTRIES_MAX),
        order=_text(item, "order", PUBLIC_ID_CHARS_MAX),
        state=_text(item, "state", PUBLIC_ID_CHARS_MAX),
        gen=_int(item, "gen", 0, TIME_MAX),
        entries_used=_int(item, "entries_used", 0, TIME_MAX),
        device_id=None if device_id is None else _int(item, "device_id", 1, ROW_ID_MAX),
        purchase_proof=_text(item, "purchase_proof", 128),
    )
    refusal = item.get("refusal")
    if refusal is not None:
        refusal = _text(item, "refusal", PUBLIC_ID_CHARS_MAX)
    l1 = None if item.get("credential") is None else _b64u(item, "credential", L1_BYTES_MAX)
    if (l1 is None) == (refusal is None):
        raise _bad("credential")  # one or the other, never both or neither
    return TicketItem(info, l1, refusal)


def _event(item: object) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise _bad("items")
    kinds, venues = item.get("ticket_types"), item.get("venues")
    if not isinstance(kinds, list) or len(kinds) > TICKET_TYPES_MAX:
        raise _bad("ticket_types")
    if not isinstance(venues, list) or len(venues) > TICKET_TYPES_MAX:
        raise _bad("venues")
    return {
        "id": _text(item, "id", PUBLIC_ID_CHARS_MAX),
        "name": _text(item, "name", NAME_CHARS_MAX),
        "doors": _int(item, "doors", 0, TIME_MAX),
        "ends": _int(item, "ends", 0, TIME_MAX),
        "venues": [_text(_object({"venues": v}, "venues"), "name", NAME_CHARS_MAX) for v in venues],
        "ticket_types": [_ticket_type(kind) for kind in kinds],
    }


def _ticket_type(kind: object) -> dict[str, Any]:
    if not isinstance(kind, dict):
        raise _bad("ticket_types")
    return {
        "id": _int(kind, "id", 1, ROW_ID_MAX),
        "name": _text(kind, "name", NAME_CHARS_MAX),
        "price": _int(kind, "price", 0, _AMOUNT_MAX),
        "currency": _text(kind, "currency", 3),
        "entries": _int(kind, "entries", 1, ENTRIES_MAX),
        "available": _int(kind, "available", -_AMOUNT_MAX, _AMOUNT_MAX),
    }


def _bool(document: dict[str, Any], name: str) -> bool:
    value = document.get(name)
    if type(value) is not bool:
        raise _bad(name)
    return value


def _b64u(document: dict[str, Any], name: str, max_bytes: int) -> bytes:
    value = document.get(name)
    if not isinstance(value, str) or len(value) > (max_bytes * 4 + 2) // 3:
        raise _bad(name)
    try:
        return b64u_decode(value)
    except EncodingError as exc:
        raise _bad(name) from exc


def _policy(document: dict[str, Any]) -> Policy | None:
    if "policy" not in document:
        return None
    try:
        return parse_policy(document["policy"])
    except TrustStoreError as exc:
        raise _bad("policy") from exc
