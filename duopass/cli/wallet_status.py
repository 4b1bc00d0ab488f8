"""`duopass wallet status` for people: money in yuan (`183.00 CNY`), times in local time, what
is held and why; `--json` keeps the raw fields (`Wallet.status`)."""

from __future__ import annotations

from typing import Any

from duopass.cli.people import local_time, money

__all__ = ["status_lines"]

_CODES = {
    "ok": "",
    "no_credential": "none yet: run `duopass wallet sync` while online",
    "expired": "none: the credential has expired; run `duopass wallet sync` while online",
    "used_up": "none left: run `duopass wallet sync` while online",
    "restored": "none: this wallet was restored or copied; run `duopass wallet sync`",
}


def status_lines(doc: dict[str, Any]) -> list[str]:
    """The status document as lines of `name  value`."""
    if not doc.get("enrolled"):
        return ["wallet      not enrolled: run `duopass wallet enrol`"]
    signed = "signed in" if doc.get("signed_in") else "signed out: `duopass wallet login`"
    lines = [f"wallet      {doc['login']} on {doc['server']} (device {doc['device_id']}, {signed})"]
    held = doc.get("credential")
    if held is not None:
        lines += _credential(held, doc)
    elif doc.get("codes") != "ok":
        lines.append(f"codes       {_CODES.get(doc['codes'], doc['codes'])}")
    if doc.get("refresh_pending"):
        lines.append("refresh     sent, answer not yet received: `duopass wallet sync` resends it")
    account = doc.get("account")
    if account is not None:
        lines += _account(account, held, doc)
    return lines


def _credential(held: dict[str, Any], doc: dict[str, Any]) -> list[str]:
    mode = "offline and online" if held["offline"] else "online only"
    lines = [f"credential  valid until {local_time(held['exp'])}, {mode}"]
    problem = _CODES.get(doc["codes"], doc["codes"])
    if problem:
        lines.append(f"codes       {problem}")
    elif held["offline"]:
        each = money(held["txmax"], held["cur"])
        shown = held["next_counter"]
        lines.append(
            f"codes       {held['left']} left of {held['uses']} ({shown} shown), up to {each} each"
        )
    return lines


def _account(
    account: dict[str, Any], held: dict[str, Any] | None, doc: dict[str, Any]
) -> list[str]:
    if "error" in account:
        return [f"balance     unknown: {account['message']}"]
    currency = account["currency"]
    lines = [
        f"balance     {money(account['balance'], currency)}"
        + (f" (overdraft {money(account['overdraft'], currency)})" if account["overdraft"] else ""),
        f"free        {money(account['free_funds'], currency)}: what a new code may spend",
    ]
    if account["held"]:
        lines += _held(money(account["held"], currency), account, held, doc)
    for row in account.get("recent", [])[:5]:
        lines.append(
            f"recent      {local_time(row['occurred_at'])}  {row['kind']:8} "
            f"{money(row['amount'], currency)}"
        )
    return lines


def _held(
    amount: str, account: dict[str, Any], held: dict[str, Any] | None, doc: dict[str, Any]
) -> list[str]:
    """Why money is held, as the server's rule has it (PROTOCOL §4.1-4.2): every counter of a
    credential the server has not seen paid holds `txmax`. No count of codes is given: the total
    spans earlier credentials, with other `txmax`, and the wallet cannot tell which of its shown
    codes were paid. Held money comes back as payments arrive, or from the server's sweep once
    its credential's `exp` plus freshness, skew and the late window has passed. A sync (a
    refresh) gives back codes never shown only within the overdraft (what earlier refreshes gave
    back counts against it until the sweep confirms it): with overdraft 0, none."""
    lines = [
        f"held        {amount}: offline codes the server has not seen paid may still charge it.",
        "            It comes back as their payments arrive; the server's sweep releases the",
        "            rest after the credential it was held for expires plus the late window.",
    ]
    if held is not None and doc.get("hold_horizon_s") is not None:
        # the credentials this wallet held before the current one expired no later than it
        latest = local_time(held["exp"] + doc["hold_horizon_s"])
        lines[-1] = lines[-1][:-1] + ":"
        lines.append(f"            all of this wallet's by the first sweep after {latest}.")
    if account["overdraft"] > 0:
        overdraft = money(account["overdraft"], account["currency"])
        lines.append(f"            A sync gives back codes never shown only up to {overdraft}.")
    else:
        lines.append("            A sync gives none of it back: that needs an overdraft.")
    return lines
