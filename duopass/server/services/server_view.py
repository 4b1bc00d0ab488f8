"""The server as a §3 verifier: the protocol core's `TrustView` and `TerminalMemory` over the
whole system's state, for online scans (`scans`) and journal re-checks (`journals.recheck`).

Online, the trust store cannot be stale, revocations and freezes are as they are right now (a
credential superseded by a refresh stays payable up to its mark, §4.2), and counters are
unique system-wide. Signing keys, which never change once written, are cached by kid."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from functools import lru_cache
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from duopass.protocol.keys import KeyId
from duopass.protocol.trust import Policy, TrustKey
from duopass.server.domain import HoldTerms
from duopass.server.services import signing_keys, tickets
from duopass.server.settings import Settings
from duopass.server.store import sql
from duopass.server.store.tables import SigningKeyRow
from duopass.server.store.tickets import Ticket

__all__ = ["NEVER_STALE_S", "Payer", "RecheckTrust", "ServerMemory", "ServerTrust"]

NEVER_STALE_S = 2**40


class Payer(NamedTuple):
    """A credential with its holder's freeze and account (a row of `sql.PAYER`)."""

    holder_id: int
    state: str
    mark: int | None
    release_mark: int | None
    uses: int
    txmax: int
    offline: bool
    holds_released: bool
    frozen: bool
    account_id: int
    balance: int
    overdraft: int
    held: int
    limit_daily: int | None = None
    limit_meal: int | None = None
    confirm_above: int | None = None
    pin_set: bool = False
    daily_max: int | None = None
    daily_default: int | None = None
    meal_max: int | None = None
    meal_default: int | None = None
    confirm_max: int | None = None
    confirm_default: int | None = None
    meals: str | None = None
    """The holder's purse limits and the office's bounds (`services.purse_limits`)."""

    @property
    def terms(self) -> HoldTerms:
        return HoldTerms(
            self.offline, self.uses, self.txmax, self.release_mark, self.holds_released
        )


_KEYS: dict[tuple[str, bytes], TrustKey] = {}
"""Signing keys by issuer and kid: their public half and window never change, so safe to keep
across requests (a revocation is read apart, `ServerTrust.key`).
By issuer too, since the cache is the process's: a key another issuer's server in this process
(tests run two) found must never count as this one's. One key a day: emptied when it reaches
`_KEYS_MAX` (years of keys), so it stays bounded all the same."""
_KEYS_MAX = 1024


class ServerTrust:
    """The trust view of the whole system: keys from the database, revocations and freezes as
    they are right now (a superseded credential stays payable up to its mark, §4.2)."""

    def __init__(
        self,
        session: Session,
        settings: Settings,
        payer: Payer | None,
        now: int,
        revoked: Mapping[bytes, bool] | None = None,
    ) -> None:
        """`revoked`: kid → whether revoked, read already in this transaction (a scan reads
        its code's with its other rows, `scans._read`)."""
        self.session, self.settings, self.payer = session, settings, payer
        self.issued_at, self.max_age_s = now, NEVER_STALE_S
        self._revoked: dict[bytes, bool] = dict(revoked or {})

    def key(self, iss: str, kid: bytes) -> TrustKey | None:
        """The signing key, unless unknown or revoked (read once per view: a revocation by any
        process is seen by the next scan, the key's row itself is cached)."""
        if iss != self.settings.issuer:
            return None
        revoked = self._revoked.get(kid)
        if revoked is None:
            revoked = self._revoked[kid] = signing_keys.is_revoked(self.session, kid)
        if revoked:
            return None
        cached = _KEYS.get((iss, kid))
        if cached is None:
            row = (
                self.session.connection()
                .execute(
                    select(SigningKeyRow.public_key, SigningKeyRow.nbf, SigningKeyRow.exp).where(
                        SigningKeyRow.kid == kid
                    )
                )
                .first()
            )
            if row is None:
                return None
            if len(_KEYS) >= _KEYS_MAX:
                _KEYS.clear()
            cached = _KEYS[iss, kid] = TrustKey(KeyId(kid), row.public_key, row.nbf, row.exp)
        return cached

    def policy(self, iss: str) -> Policy:
        return self.settings.policy

    def is_revoked(self, iss: str, cti: bytes, ctr: int | None = None) -> bool:
        payer = self.payer
        if payer is None or payer.state == "revoked":
            return True
        if payer.state == "superseded":
            return ctr is None or payer.mark is None or ctr > payer.mark
        return False

    def is_frozen(self, iss: str, sub: str) -> bool:
        return self.payer is not None and bool(self.payer.frozen)


class ServerMemory:
    """What the system as a whole accepted: counters are unique system-wide."""

    def __init__(
        self,
        session: Session,
        payer: Payer | None,
        seen: Mapping[tuple[bytes, int], bool] | None = None,
    ) -> None:
        self.session, self.payer = session, payer
        self.seen = seen or {}
        """(cti, ctr) → accepted, read already (with the account's lock held)."""

    def highest_generation(self, iss: str, sub: str) -> int | None:
        return None  # online, older generations are revoked in the database at reissue

    def counter_accepted(self, iss: str, cti: bytes, ctr: int) -> bool:
        known = self.seen.get((cti, ctr))
        if known is not None:
            return known
        return sql.raw(self.session).one(sql.COUNTER_SEEN, {"cti": cti, "ctr": ctr}) is not None

    def entries_accepted(self, iss: str, sub: str) -> int:
        """The entries the ticket `sub` used, on every list and generation (check 19)."""
        if self.payer is None:
            return 0
        ticket_id = self.session.scalar(select(Ticket.id).where(Ticket.sub == sub))
        return 0 if ticket_id is None else tickets.entries(self.session, ticket_id)

    def record(self, acceptance: object) -> None:
        raise AssertionError("online acceptances are booked by the scan service")


class RecheckTrust(ServerTrust):
    """For the re-check of an offline acceptance (§5.3): the server's keys, with revocations and
    freezes left to the evidence rules, and the freshness check widened by the issuer's clock
    skew (`ts` within freshness + skew of the scan time)."""

    def __init__(self, session: Session, settings: Settings, now: int) -> None:
        super().__init__(session, settings, None, now)
        self._policy = _widened(settings.policy)  # a batch re-checks every entry with it

    def policy(self, iss: str) -> Policy:
        return self._policy

    def is_revoked(self, iss: str, cti: bytes, ctr: int | None = None) -> bool:
        return False

    def is_frozen(self, iss: str, sub: str) -> bool:
        return False


@lru_cache(maxsize=16)
def _widened(base: Policy) -> Policy:
    """The policy with freshness widened by the clock skew, made once per policy (a journal
    batch re-checks every entry with it)."""
    return dataclasses.replace(base, freshness_s=base.freshness_s + base.clock_skew_s)
