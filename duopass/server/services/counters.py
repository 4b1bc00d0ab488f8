"""Counters seen and counters held: the database's side of `domain.holds` (§4.1). A counter of
a purse credential holds `txmax` until it is seen (its acceptance settles against the hold)."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from duopass.protocol.claims import Kind
from duopass.server.domain import HoldTerms, holds
from duopass.server.store.tables import CounterSeen, Credential

__all__ = ["is_held", "outstanding", "seen", "terms"]


class HoldSource(Protocol):
    """What decides a credential's holds: a stored credential, or a batch's row of one."""

    @property
    def offline(self) -> bool: ...
    @property
    def kind(self) -> int: ...
    @property
    def uses(self) -> int: ...
    @property
    def txmax(self) -> int: ...
    @property
    def release_mark(self) -> int | None: ...
    @property
    def holds_released(self) -> bool: ...


def terms(credential: HoldSource) -> HoldTerms:
    """What of a stored credential decides its holds (none but a purse's)."""
    return HoldTerms(
        offline=credential.offline and credential.kind == Kind.PURSE,
        uses=credential.uses,
        txmax=credential.txmax,
        release_mark=credential.release_mark,
        holds_released=credential.holds_released,
    )


def seen(session: Session, cti: bytes) -> set[int]:
    """The counters of a credential accepted anywhere (at most `uses` of them that matter)."""
    return set(session.scalars(select(CounterSeen.ctr).where(CounterSeen.cti == cti)))


def outstanding(session: Session, credential: Credential) -> int:
    """How many counters of a credential still hold `txmax`: unseen and holding (up to the
    release mark, not the wallet's mark: the holds the overdraft kept above the mark at a
    refresh are held too, and the sweep must release them)."""
    rule = terms(credential)
    if not rule.offline or rule.holds_released:
        return 0
    used = seen(session, credential.cti)
    return sum(1 for ctr in range(rule.uses) if holds(rule, ctr) and ctr not in used)


def is_held(session: Session, credential: Credential, ctr: int) -> bool:
    """Whether counter `ctr` of the credential still holds `txmax` (§4.1)."""
    if not holds(terms(credential), ctr):
        return False
    return session.get(CounterSeen, (credential.cti, ctr)) is None
