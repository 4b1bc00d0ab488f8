"""The holder's history and disputes in the wallet (docs/wallet.md, "History and disputes"):
the server's movements (every field checked, as every answer the wallet reads), the codes this
wallet showed that the server has not seen used (offline payments perhaps not yet uploaded: a
wallet cannot know what a till accepted until the till uploads it), and disputing a payment."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from duopass.protocol.encoding import b64u_encode
from duopass.wallet.errors import Failure, WalletError
from duopass.wallet.wallet import Wallet

__all__ = ["Dispute", "Row", "dispute", "disputes", "history", "unseen_codes"]

_AMOUNT_MAX = 10**12
_TIME_MAX = 2**40
_ID_MAX = 2**31 - 1
_PAGE_MAX = 200
_TEXT_MAX = 500
_KIND = re.compile(r"[a-z_]{1,16}")
_DISPUTE_STATES = ("open", "upheld", "rejected")
REASON_CHARS_MAX = 500


@dataclass(frozen=True)
class Row:
    """One movement of the holder's account (minor units; negative: money out)."""

    id: int
    kind: str
    amount: int
    occurred_at: int
    """When it happened: a payment's scan time (the till's clock, corrected at its last sync)."""
    booked_at: int
    terminal: str | None
    venue: str | None
    merchant: str | None
    online: bool | None
    disputable: bool
    dispute_until: int | None
    dispute: str | None


@dataclass(frozen=True)
class Dispute:
    id: int
    entry: int
    amount: int
    currency: str
    merchant: str | None
    paid_at: int
    reason: str
    state: str
    opened_at: int
    note: str | None


def _bad(name: str) -> WalletError:
    return WalletError(Failure.BAD_ANSWER, f"the server's history has a bad {name}")


def _int(doc: dict[str, Any], name: str, low: int, high: int, *, optional: bool = False) -> Any:
    value = doc.get(name)
    if value is None and optional:
        return None
    if type(value) is not int or not low <= value <= high:
        raise _bad(name)
    return value


def _text(doc: dict[str, Any], name: str, high: int = 64, *, optional: bool = True) -> Any:
    value = doc.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > high or not value.isprintable():
        raise _bad(name)
    return value


def _row(doc: object) -> Row:
    if not isinstance(doc, dict):
        raise _bad("entry")
    kind, online, disputable = doc.get("kind"), doc.get("online"), doc.get("disputable")
    if not isinstance(kind, str) or not _KIND.fullmatch(kind):
        raise _bad("kind")
    if online not in (None, True, False) or disputable not in (True, False):
        raise _bad("flag")
    state = doc.get("dispute")
    if state not in (None, *_DISPUTE_STATES):
        raise _bad("dispute")
    return Row(
        id=_int(doc, "id", 1, _ID_MAX),
        kind=kind,
        amount=_int(doc, "amount", -_AMOUNT_MAX, _AMOUNT_MAX),
        occurred_at=_int(doc, "occurred_at", 0, _TIME_MAX),
        booked_at=_int(doc, "booked_at", 0, _TIME_MAX),
        terminal=_text(doc, "terminal"),
        venue=_text(doc, "venue"),
        merchant=_text(doc, "merchant", 128),
        online=online,
        disputable=bool(disputable),
        dispute_until=_int(doc, "dispute_until", 0, _TIME_MAX, optional=True),
        dispute=state,
    )


def history(wallet: Wallet, limit: int = 50) -> tuple[str, list[Row]]:
    """The currency and the latest `limit` movements, newest first."""
    answer = wallet.online(
        lambda client, token: client.call(
            "GET", f"/v1/wallet/history?limit={int(limit)}", None, token=token
        )
    )
    items = answer.get("items")
    if not isinstance(items, list) or len(items) > _PAGE_MAX:
        raise _bad("list")
    return str(_text(answer, "currency", 3, optional=False)), [_row(item) for item in items]


def unseen_codes(wallet: Wallet) -> list[int]:
    """The counters of the held credential this wallet showed (every one below its next) that
    the server has not seen used: perhaps offline payments not yet uploaded, perhaps codes
    shown and never scanned. Only the credential held now: a refresh forgets the old one's."""
    held = wallet.state.read().held
    if held is None or held.next_ctr == 0:
        return []
    cti = b64u_encode(held.credential.claims.cti)
    answer = wallet.online(
        lambda client, token: client.call("GET", f"/v1/wallet/seen?cti={cti}", None, token=token)
    )
    seen = answer.get("seen")
    if not isinstance(seen, list) or not all(type(ctr) is int for ctr in seen):
        raise _bad("counters")
    return sorted(set(range(held.next_ctr)) - set(seen))


def _dispute(doc: object) -> Dispute:
    if not isinstance(doc, dict) or doc.get("state") not in _DISPUTE_STATES:
        raise _bad("dispute")
    return Dispute(
        id=_int(doc, "id", 1, _ID_MAX),
        entry=_int(doc, "entry", 1, _ID_MAX),
        amount=_int(doc, "amount", 1, _AMOUNT_MAX),
        currency=str(_text(doc, "currency", 3, optional=False)),
        merchant=_text(doc, "merchant", 128),
        paid_at=_int(doc, "paid_at", 0, _TIME_MAX),
        reason=str(_text(doc, "reason", _TEXT_MAX, optional=False)),
        state=str(doc["state"]),
        opened_at=_int(doc, "opened_at", 0, _TIME_MAX),
        note=_text(doc, "note", _TEXT_MAX),
    )


def dispute(wallet: Wallet, entry: int, reason: str) -> Dispute:
    """Dispute the payment `entry` (its id in the history): REFUSED with the server's code
    (`dispute_too_late`, `already_disputed`, `not_disputable`, `not_found`)."""
    if not 0 < entry <= _ID_MAX:
        raise WalletError(Failure.REFUSED, f"not an entry id: {entry}")
    if not 0 < len(reason) <= REASON_CHARS_MAX:
        raise WalletError(Failure.REFUSED, f"a reason is 1 to {REASON_CHARS_MAX} characters")
    body = {"entry": entry, "reason": reason}
    return _dispute(
        wallet.online(
            lambda client, token: client.call("POST", "/v1/wallet/disputes", body, token=token)
        )
    )


def disputes(wallet: Wallet) -> list[Dispute]:
    """The holder's latest disputes, newest first."""
    answer = wallet.online(
        lambda client, token: client.call("GET", "/v1/wallet/disputes", None, token=token)
    )
    items = answer.get("items")
    if not isinstance(items, list) or len(items) > _PAGE_MAX:
        raise _bad("list")
    return [_dispute(item) for item in items]
