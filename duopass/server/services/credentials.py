"""Issuing credentials (§4): the wallet's sync issues a purse L1 sized to the free funds and
holds each counter at `txmax`; a refresh supersedes the previous credential at the wallet's mark.
The first credential after a loss report is a reissue of the lost one (§6)."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from duopass.protocol.cbor import loads
from duopass.protocol.claims import Claims, Kind, reissue
from duopass.protocol.code import decode_credential, mint_credential
from duopass.server.config import Settings
from duopass.server.errors import Code, Problem
from duopass.server.keyring import Keyring
from duopass.server.services import accounts, idempotency, ledger, people, signing, trustlog
from duopass.server.store.tables import Account, CounterSeen, Credential, Device, Holder

CTI_BYTES = 12


@dataclass(frozen=True)
class Issued:
    credential: Credential
    server_time: int


def sync(
    session: Session,
    keyring: Keyring,
    settings: Settings,
    *,
    holder: Holder,
    device_id: int,
    request_id: str,
    mark: int | None,
    now: int,
) -> Issued:
    """Issue (or, with `mark`, refresh) the holder's purse credential for a device of theirs.
    The same request id again returns the first answer; with another device or mark it is
    refused. Request ids are the holder's own: another holder's is a fresh one here."""
    fingerprint = idempotency.sync(device_id=device_id, mark=mark)
    earlier = session.scalars(
        select(Credential).where(
            Credential.holder_id == holder.id, Credential.request_id == request_id
        )
    ).one_or_none()
    if earlier is not None:
        if earlier.request_fingerprint is None:  # from before 0005: the mark is not known,
            # and any is the retry's (the wallet keeps to the lowest mark it sent, §4.2)
            same = earlier.device_id == device_id
        else:
            same = earlier.request_fingerprint == fingerprint
        if not same:
            raise idempotency.refuse("this request id")
        return Issued(earlier, now)
    device = session.get(Device, device_id)
    if device is None or device.holder_id != holder.id:  # one answer: ids are no oracle
        raise Problem(Code.NOT_FOUND, "no such device")
    if device.revoked_at is not None:
        raise Problem(Code.FORBIDDEN, "the device is revoked")
    if holder.frozen:
        raise Problem(Code.FROZEN, "the account is frozen pending review")
    account = accounts.lock(session, holder.account_id)
    live = session.scalars(
        select(Credential).where(
            Credential.holder_id == holder.id,
            Credential.state == "live",
            Credential.kind == Kind.PURSE,
        )
    ).all()
    if live:  # a refresh: at most refresh_max_per_day of them a day (§4.2)
        _within_refresh_limit(session, settings, holder, now)
    for old in live:
        _supersede(session, settings, account, old, mark=mark, now=now)
    account = accounts.lock(session, holder.account_id)  # re-read after the releases
    credential = _issue(
        session,
        keyring,
        settings,
        holder=holder,
        device=device,
        account=account,
        request=(request_id, fingerprint),
        refresh=bool(live),
        now=now,
    )
    return Issued(credential, now)


def _within_refresh_limit(session: Session, settings: Settings, holder: Holder, now: int) -> None:
    refreshed_today = session.scalar(
        select(func.count())
        .select_from(Credential)
        .where(
            Credential.holder_id == holder.id,
            Credential.issued_day == accounts.business_date(now, settings.zone),
            Credential.refresh.is_(True),
        )
    )
    if (refreshed_today or 0) >= settings.refresh_max_per_day:
        raise Problem(Code.REFRESH_LIMIT, f"at most {settings.refresh_max_per_day} refreshes a day")


def _issue(
    session: Session,
    keyring: Keyring,
    settings: Settings,
    *,
    holder: Holder,
    device: Device,
    account: Account,
    request: tuple[str, bytes],
    refresh: bool,
    now: int,
) -> Credential:
    """A new purse credential for the sync `request` (id, fingerprint): sized to free funds."""
    uses, txmax, offline = _size(account, settings, holder)
    fresh = Claims(
        iss=settings.issuer,
        sub=holder.handle,
        iat=now,
        exp=now + settings.credential_lifetime_s,
        cti=os.urandom(CTI_BYTES),
        kind=Kind.PURSE,
        device_key=device.public_key,
        uses=uses,
        txmax=txmax,
        cur=account.currency,
        gen=_generation(session, holder),
    )
    claims, lost = (fresh, None) if refresh else _reissue(session, settings, holder, fresh, now)
    key = signing.current(session, keyring, settings, now)
    credential = Credential(
        cti=claims.cti,
        holder_id=holder.id,
        device_id=device.id,
        kind=Kind.PURSE,
        gen=claims.gen,
        uses=uses,
        txmax=txmax,
        iat=claims.iat,
        exp=claims.exp,
        state="live",
        l1=mint_credential(claims, key),
        request_id=request[0],
        request_fingerprint=request[1],
        offline=offline,
        issued_day=accounts.business_date(now, settings.zone),
        refresh=refresh,
    )
    session.add(credential)
    if offline:
        accounts.change_held(session, account.id, uses * txmax)
    else:
        trustlog.record(session, "revoke", cti=claims.cti, until=claims.exp)
    ledger.append(
        session,
        "credential_issue",
        now,
        settings.issuer,
        {
            "cti": claims.cti,
            "kid": key.kid,
            "holder": keyring.digest(holder.handle),
            "uses": uses,
            "txmax": txmax,
            "exp": claims.exp,
            "offline": int(offline),
            "gen": claims.gen,
            **({} if lost is None else {"replaces": lost}),
        },
    )
    return credential


def _generation(session: Session, holder: Holder) -> int:
    """The generation of the holder's newest purse credential: every later one keeps at least
    it, since a terminal that accepted a generation refuses older ones (§3 check 9)."""
    highest = session.scalar(
        select(func.max(Credential.gen)).where(
            Credential.holder_id == holder.id, Credential.kind == Kind.PURSE
        )
    )
    return highest or 0


def _replaced(session: Session, holder: Holder) -> Credential | None:
    """The lost purse credential the holder's next one replaces (§6): the newest a loss report
    named, unless a credential was issued since (a later generation, or a later issue)."""
    lost = session.scalars(
        select(Credential)
        .where(
            Credential.holder_id == holder.id,
            Credential.kind == Kind.PURSE,
            Credential.lost_at.is_not(None),
        )
        .order_by(Credential.lost_at.desc(), Credential.iat.desc())
        .limit(1)
    ).first()
    if lost is None or lost.lost_at is None:
        return None
    since = session.scalar(
        select(func.count())
        .select_from(Credential)
        .where(
            Credential.holder_id == holder.id,
            (Credential.gen > lost.gen) | (Credential.iat > lost.lost_at),
        )
    )
    return None if since else lost


def _reissue(
    session: Session, settings: Settings, holder: Holder, fresh: Claims, now: int
) -> tuple[Claims, bytes | None]:
    """The claims of a credential that is not a refresh, and the `cti` it replaces. The first
    after a loss report is a §6 reissue of the lost credential: every older credential of the
    holder revoked, its validity kept (`reissue`), bound to the new device, with `uses` and
    `txmax` sized to the funds now. A lost credential that has expired leaves nothing to keep:
    a purse's validity is only its daily renewal, so the replacement gets `fresh`'s, at the
    next generation all the same."""
    lost = _replaced(session, holder)
    if lost is None:
        return fresh, None
    people.revoke_live_credentials(
        session, settings, holder, device_id=None, reason="reissue", now=now
    )
    old = decode_credential(loads(lost.l1), lost.l1).claims
    kept = reissue(old, cti=fresh.cti, iat=fresh.iat, device_key=fresh.device_key)
    if kept is None:
        return replace(fresh, gen=old.gen + 1), lost.cti
    return replace(kept, uses=fresh.uses, txmax=fresh.txmax, cur=fresh.cur), lost.cti


def _size(account: Account, settings: Settings, holder: Holder) -> tuple[int, int, bool]:
    """(uses, txmax, offline): holds that fit in the free funds; fewer or smaller when funds are
    low. With nothing to hold, or offline use suspended, the credential is for online use only."""
    free = accounts.free_funds(account)
    if free < 1 or holder.offline_suspended:
        return 1, 1, False
    txmax = min(settings.offline_txmax, free)
    return min(settings.offline_uses, free // txmax), txmax, True


def outstanding(session: Session, credential: Credential, *, upto: int | None = None) -> int:
    """How many counters of a credential still hold `txmax`: unseen, within `uses` and not
    released at a refresh. That is up to the release mark, not the wallet's mark: the holds the
    overdraft kept above the mark (§4.2) are held too, and the sweep must release them."""
    if not credential.offline or credential.holds_released or credential.kind != Kind.PURSE:
        return 0
    limit = (
        credential.uses - 1
        if credential.release_mark is None
        else min(credential.release_mark, credential.uses - 1)
    )
    if upto is not None:
        limit = min(limit, upto)
    if limit < 0:
        return 0
    seen = session.scalar(
        select(func.count())
        .select_from(CounterSeen)
        .where(CounterSeen.cti == credential.cti, CounterSeen.ctr <= limit)
    )
    return limit + 1 - (seen or 0)


def holds(credential: Credential, ctr: int) -> bool:
    """Whether counter `ctr` of the credential holds `txmax` until it is seen (§4.1): within
    `uses`, not released at a refresh, and the credential's holds not released by the sweep."""
    if not credential.offline or credential.holds_released or ctr >= credential.uses:
        return False
    return credential.release_mark is None or ctr <= credential.release_mark


def is_held(session: Session, credential: Credential, ctr: int) -> bool:
    """Whether counter `ctr` of the credential still holds `txmax` (§4.1)."""
    return holds(credential, ctr) and session.get(CounterSeen, (credential.cti, ctr)) is None


def _supersede(
    session: Session,
    settings: Settings,
    account: Account,
    old: Credential,
    *,
    mark: int | None,
    now: int,
) -> None:
    """Mark `old` superseded at the wallet's mark and release the holds above it, within the
    overdraft of unconfirmed releases (§4.2); the rest stay until their counters or expiry."""
    wallet_mark = old.uses - 1 if mark is None else max(-1, min(mark, old.uses - 1))
    release_mark = wallet_mark
    before = outstanding(session, old)
    after = outstanding(session, old, upto=release_mark)
    releasable = (before - after) * old.txmax
    room = max(0, account.overdraft - account.unconfirmed_released)
    if releasable > room:  # keep the holds whose release the overdraft cannot cover
        kept = -(-(releasable - room) // old.txmax)
        release_mark = min(old.uses - 1, release_mark + kept)
        after = outstanding(session, old, upto=release_mark)
        releasable = (before - after) * old.txmax
    old.state = "superseded"
    old.mark, old.release_mark, old.released = wallet_mark, release_mark, releasable
    accounts.change_held(session, account.id, -releasable)
    account.unconfirmed_released += releasable
    trustlog.record(session, "revoke", cti=old.cti, until=old.exp)
    ledger.append(
        session,
        "credential_refresh",
        now,
        settings.issuer,
        {
            "cti": old.cti,
            "mark": wallet_mark,
            "release_mark": release_mark,
            "released": releasable,
        },
    )
