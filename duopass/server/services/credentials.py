"""Issuing credentials (§4): the wallet's sync issues a purse L1 sized to the free funds and
holds each counter at `txmax`; a refresh supersedes the previous credential at the wallet's mark.
The first credential after a loss report is a reissue of the lost one (§6)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from duopass.ledger.events import EventType
from duopass.protocol.cbor import loads
from duopass.protocol.claims import Claims, Kind, reissue
from duopass.protocol.code import decode_credential, mint_credential
from duopass.risk import Key, KeyKind
from duopass.risk.points import Point, Subject
from duopass.server import domain
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import (
    accounts,
    counters,
    devices,
    idempotency,
    purse_limits,
    risk_engine,
    signing_keys,
    tlog,
    trust_changes,
)
from duopass.server.store.tables import Account, Credential, Device, Holder
from duopass.server.unit_of_work import Unit

__all__ = ["CTI_BYTES", "Issued", "sync"]

CTI_BYTES = 12


@dataclass(frozen=True)
class Issued:
    credential: Credential
    server_time: int


def sync(
    unit: Unit,
    *,
    holder: Holder,
    device_id: int,
    request_id: str,
    mark: int | None,
    client: str | None = None,
) -> Issued:
    """Issue (or, with `mark`, refresh) the holder's purse credential for a device of theirs.
    The same request id again returns the first answer; with another device or mark it is
    refused. Request ids are the holder's own: another holder's is a fresh one here. A new
    sync is screened by the risk policy (`wallet_sync`, from `client`): it may be refused
    (`risk_engine.Refused`) or suspend offline use before the credential is issued."""
    session, now = unit.session, unit.now
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
        raise Problem(ProblemCode.NOT_FOUND, "no such device")
    if device.revoked_at is not None:
        raise Problem(ProblemCode.FORBIDDEN, "the device is revoked")
    if holder.frozen:
        raise Problem(ProblemCode.FROZEN, "the account is frozen pending review")
    subject = Subject(
        risk_engine.holder_key(holder.id), Key(KeyKind.DEVICE, str(device_id)), client
    )
    # read before screening: a suspend_offline revokes the live credentials, and their
    # replacement is a refresh all the same
    refreshing, suspended = bool(_live(session, holder)), holder.offline_suspended
    risk_engine.screen(unit, Point.WALLET_SYNC, subject, holder=holder)
    account = accounts.lock(session, holder.account_id)
    live = _live(session, holder)
    refreshing = refreshing or bool(live)
    # at most refresh_max_per_day refreshes a day (§4.2), but for the one replacing what this
    # sync's suspension revoked: a refusal would leave the holder without a credential
    if refreshing and (suspended or not holder.offline_suspended):
        _within_refresh_limit(unit, holder)
    for old in live:
        _supersede(unit, account, old, mark=mark)
    account = accounts.lock(session, holder.account_id)  # re-read after the releases
    credential = _issue(
        unit,
        holder=holder,
        device=device,
        account=account,
        request=(request_id, fingerprint),
        refresh=refreshing,
    )
    return Issued(credential, now)


def _live(session: Session, holder: Holder) -> Sequence[Credential]:
    """The holder's live purse credentials: what a sync refreshes."""
    return session.scalars(
        select(Credential).where(
            Credential.holder_id == holder.id,
            Credential.state == "live",
            Credential.kind == Kind.PURSE,
        )
    ).all()


def _within_refresh_limit(unit: Unit, holder: Holder) -> None:
    settings = unit.settings
    refreshed_today = unit.session.scalar(
        select(func.count())
        .select_from(Credential)
        .where(
            Credential.holder_id == holder.id,
            Credential.issued_day == accounts.business_date(unit.now, settings.zone),
            Credential.refresh.is_(True),
        )
    )
    if (refreshed_today or 0) >= settings.refresh_max_per_day:
        raise Problem(
            ProblemCode.REFRESH_LIMIT, f"at most {settings.refresh_max_per_day} refreshes a day"
        )


def _issue(
    unit: Unit,
    *,
    holder: Holder,
    device: Device,
    account: Account,
    request: tuple[str, bytes],
    refresh: bool,
) -> Credential:
    """A new purse credential for the sync `request` (id, fingerprint): sized to free funds."""
    session, settings, now = unit.session, unit.settings, unit.now
    uses, txmax, offline = _sizing(unit, holder, account)
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
    claims, lost = (fresh, None) if refresh else _reissue(unit, holder, fresh)
    key = signing_keys.current(unit)
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
        accounts.hold(session, account.id, uses * txmax)
    else:
        trust_changes.record(session, "revoke", cti=claims.cti, until=claims.exp)
    body: dict[str, Any] = {
        "cti": claims.cti,
        "kid": key.kid,
        "holder": unit.keyring.digest(holder.handle),
    }
    body.update(uses=uses, txmax=txmax, exp=claims.exp, offline=int(offline), gen=claims.gen)
    tlog.append(
        unit, EventType.CREDENTIAL_ISSUE, body if lost is None else {**body, "replaces": lost}
    )
    return credential


def _sizing(unit: Unit, holder: Holder, account: Account) -> domain.Sizing:
    """Sized to the free funds, and to the holder's purse limits where §3 can carry them
    offline: `txmax` at most the daily total (`purse_limits.offline_txmax`)."""
    settings = unit.settings
    return domain.size(
        accounts.free_funds(account),
        uses_max=settings.offline_uses,
        txmax_max=purse_limits.offline_txmax(unit, holder, settings.offline_txmax),
        suspended=holder.offline_suspended,
    )


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
            Credential.kind == Kind.PURSE,  # a ticket minted since replaces no purse
            (Credential.gen > lost.gen) | (Credential.iat > lost.lost_at),
        )
    )
    return None if since else lost


def _reissue(unit: Unit, holder: Holder, fresh: Claims) -> tuple[Claims, bytes | None]:
    """The claims of a credential that is not a refresh, and the `cti` it replaces. The first
    after a loss report is a §6 reissue of the lost credential: every older credential of the
    holder revoked, its validity kept (`reissue`), bound to the new device, with `uses` and
    `txmax` sized to the funds now. A lost credential that has expired leaves nothing to keep:
    a purse's validity is only its daily renewal, so the replacement gets `fresh`'s, at the
    next generation all the same."""
    lost = _replaced(unit.session, holder)
    if lost is None:
        return fresh, None
    devices.revoke_live_credentials(unit, holder, device_id=None, reason="reissue")
    old = decode_credential(loads(lost.l1), lost.l1).claims
    kept = reissue(old, cti=fresh.cti, iat=fresh.iat, device_key=fresh.device_key)
    if kept is None:
        return replace(fresh, gen=old.gen + 1), lost.cti
    return replace(kept, uses=fresh.uses, txmax=fresh.txmax, cur=fresh.cur), lost.cti


def _supersede(unit: Unit, account: Account, old: Credential, *, mark: int | None) -> None:
    """Mark `old` superseded at the wallet's mark and release the holds above it, within the
    overdraft of unconfirmed releases (§4.2); the rest stay until their counters or expiry."""
    room = account.overdraft - account.unconfirmed_released
    seen = counters.seen(unit.session, old.cti)
    release = domain.refresh_release(counters.terms(old), mark=mark, seen=seen, room=room)
    old.state = "superseded"
    old.mark, old.release_mark, old.released = release
    accounts.release(unit.session, account.id, release.released)
    account.unconfirmed_released += release.released
    trust_changes.record(unit.session, "revoke", cti=old.cti, until=old.exp)
    tlog.append(
        unit,
        EventType.CREDENTIAL_REFRESH,
        {
            "cti": old.cti,
            "mark": release.wallet_mark,
            "release_mark": release.release_mark,
            "released": release.released,
        },
    )
