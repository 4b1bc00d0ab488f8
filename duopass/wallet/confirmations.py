"""Payments the holder confirms in the wallet (docs/wallet.md, "Confirming a payment"): a till's
payment above the holder's PIN amount, sent without the PIN, waits on the server; the wallet
lists those waiting, approves one with the PIN or declines it. Each answer is checked like
every other the wallet reads; the PIN is sent once and never stored."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from duopass.protocol.purse import is_pin
from duopass.wallet.errors import Failure, WalletError
from duopass.wallet.wallet import Wallet

__all__ = ["Confirmation", "approve", "decline", "waiting"]

_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_AMOUNT_MAX = 10**9
_SEQ_MAX = 2**53
_TIME_MAX = 2**40
_LISTED_MAX = 20
_STATES = ("pending", "approved", "declined", "used")


@dataclass(frozen=True)
class Confirmation:
    """A payment waiting for the holder (or what they decided)."""

    id: str
    amount: int
    """Minor units."""
    currency: str | None
    terminal: str
    venue: str | None
    seq: int
    state: str
    created_at: int
    expires_at: int


def _bad(name: str) -> WalletError:
    return WalletError(Failure.BAD_ANSWER, f"the server's confirmation has a bad {name}")


def _text(doc: dict[str, Any], name: str, *, optional: bool = False) -> str | None:
    value = doc.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= 64 or not value.isprintable():
        raise _bad(name)
    return value


def _number(doc: dict[str, Any], name: str, high: int) -> int:
    value = doc.get(name)
    if type(value) is not int or not 0 <= value <= high:
        raise _bad(name)
    return value


def _confirmation(doc: object) -> Confirmation:
    if not isinstance(doc, dict):
        raise _bad("entry")
    found = doc.get("id")
    if not isinstance(found, str) or not _ID.fullmatch(found):
        raise _bad("id")
    state = doc.get("state")
    if state not in _STATES:
        raise _bad("state")
    return Confirmation(
        id=found,
        amount=_number(doc, "amount", _AMOUNT_MAX),
        currency=_text(doc, "currency", optional=True),
        terminal=str(_text(doc, "terminal")),
        venue=_text(doc, "venue", optional=True),
        seq=_number(doc, "seq", _SEQ_MAX),
        state=str(state),
        created_at=_number(doc, "created_at", _TIME_MAX),
        expires_at=_number(doc, "expires_at", _TIME_MAX),
    )


def _target(confirmation: str) -> str:
    if not _ID.fullmatch(confirmation):
        raise WalletError(Failure.REFUSED, f"not a confirmation id: {confirmation[:40]!r}")
    return f"/v1/wallet/confirmations/{confirmation}"


def waiting(wallet: Wallet) -> list[Confirmation]:
    """The payments waiting for the holder, oldest first."""
    answer = wallet.online(
        lambda client, token: client.call("GET", "/v1/wallet/confirmations", None, token=token)
    )
    items = answer.get("confirmations")
    if not isinstance(items, list) or len(items) > _LISTED_MAX:
        raise _bad("list")
    return [_confirmation(item) for item in items]


def approve(wallet: Wallet, confirmation: str, pin: str) -> Confirmation:
    """Approve a waiting payment with the PIN: the till's next ask for it passes. A wrong PIN is
    REFUSED (`pin_wrong`), and wrong PINs here count with those typed at tills (`throttled`)."""
    if not is_pin(pin):
        raise WalletError(Failure.REFUSED, "a PIN is 6 digits")
    target = _target(confirmation)
    return _confirmation(
        wallet.online(lambda client, token: client.call("POST", target, {"pin": pin}, token=token))
    )


def decline(wallet: Wallet, confirmation: str) -> Confirmation:
    """Decline a waiting payment: the till's next ask for it is refused (`pin_declined`)."""
    target = _target(confirmation)
    return _confirmation(
        wallet.online(lambda client, token: client.call("DELETE", target, None, token=token))
    )
