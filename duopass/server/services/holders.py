"""Holders: their accounts, loss reports and freezes. Devices are `devices`; signing in and
sessions `auth`; the second factor `second_factor`."""

from __future__ import annotations

import secrets

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from duopass.ledger.events import EventType
from duopass.server.logbook import Event, note
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import auth, devices, people, sessions, tickets, tlog, trust_changes
from duopass.server.services.people import Person
from duopass.server.store.passkeys import Passkey
from duopass.server.store.tables import Account, Credential, Device, Holder
from duopass.server.unit_of_work import Unit

__all__ = ["by_handle", "create_holder", "report_loss", "set_frozen"]


def by_handle(session: Session, handle: str) -> Holder:
    """The holder a handle (a code's `sub`) names, or NOT_FOUND."""
    holder = session.scalars(select(Holder).where(Holder.handle == handle)).one_or_none()
    if holder is None:
        raise Problem(ProblemCode.NOT_FOUND, "no such holder")
    return holder


def create_holder(
    unit: Unit,
    *,
    login: str,
    person: Person,
    password: str,
    overdraft: int,
    totp_secret: str | None = None,
    password_hash: str | None = None,
) -> Holder:
    """A holder, their account and their personal data (`people`, apart from the books); the
    number enters the ledger only as a digest salted with the holder's own key."""
    session, keyring = unit.session, unit.keyring
    if session.scalars(select(Holder.id).where(Holder.login == login)).first() is not None:
        raise Problem(ProblemCode.CONFLICT, f"login {login!r} is taken")
    handle = "h-" + secrets.token_hex(6)
    account = Account(
        kind="holder",
        name=f"holder:{handle}",
        currency=unit.settings.currency,
        balance=0,
        overdraft=overdraft,
        held=0,
        unconfirmed_released=0,
    )
    session.add(account)
    session.flush()
    holder = Holder(
        handle=handle,
        login=login,
        person_digest=bytes(32),  # set below, once the holder has an id for `people.record`
        password_hash=password_hash or auth.hash_password(unit.settings, password),
        totp_secret=totp_secret,
        account_id=account.id,
        created_at=unit.now,
    )
    session.add(holder)
    session.flush()
    holder.person_digest = people.record(unit, holder, person)
    body = {"holder": keyring.digest(handle), "person": holder.person_digest}
    tlog.append(unit, EventType.HOLDER_CREATE, body)
    return holder


def report_loss(
    unit: Unit,
    holder: Holder,
    *,
    keep: bytes | None,
    keep_device: int | None = None,
    by: int | None = None,
) -> int:
    """A loss report revokes every device and credential, deletes every passkey and ends every
    session but `keep` (the one that reported, if the holder did); it does not freeze (§6): a
    new device enrols and syncs at once, and its first credential is a reissue of the lost one.
    `keep_device`:
    the new device the report comes from (`POST /v1/me/lost`) stays, with its credentials.
    `by`: the staff member who took the report at the counter (in the log's note)."""
    session, now = unit.session, unit.now
    lost_devices = session.scalars(
        select(Device.id).where(
            Device.holder_id == holder.id,
            Device.revoked_at.is_(None),
            Device.id != (keep_device or 0),
        )
    ).all()
    session.execute(update(Device).where(Device.id.in_(lost_devices)).values(revoked_at=now))
    lost = select(Credential.cti).where(
        Credential.holder_id == holder.id,
        Credential.state != "revoked",
        Credential.device_id.is_(None) | (Credential.device_id != (keep_device or 0)),
    )
    session.execute(update(Credential).where(Credential.cti.in_(lost)).values(lost_at=now))
    count = sum(
        devices.revoke_live_credentials(unit, holder, device_id=device_id, reason="loss report")
        for device_id in lost_devices
    )
    if keep_device is None:  # and those of no device (none are issued so, but all must die)
        count += devices.revoke_live_credentials(unit, holder, device_id=None, reason="loss report")
    ended = sessions.end_sessions(session, staff=False, principal_id=holder.id, keep=keep)
    # a passkey may live on the lost phone: none signs in or steps up any more (the holder adds
    # one again after a password sign-in, which adding one asks for)
    gone = session.execute(delete(Passkey).where(Passkey.holder_id == holder.id))
    passkeys = int(getattr(gone, "rowcount", 0) or 0)
    body = {"devices": len(lost_devices), "credentials": count, "sessions": ended}
    tlog.append(unit, EventType.LOSS_REPORT, body)
    note(
        session,
        Event.LOSS_REPORTED,
        f"loss reported for holder {holder.id}",
        holder_id=holder.id,
        reported_by="holder" if keep is not None else "staff",
        by=by,
        devices=len(lost_devices),
        credentials=count,
        sessions=ended,
        passkeys=passkeys,
    )
    return count


def set_frozen(unit: Unit, holder: Holder, *, frozen: bool, reason: str, by: int) -> None:
    """Freeze or unfreeze at review: refused online at once, listed in the next bundle."""
    if holder.frozen == frozen:
        return
    holder.frozen = frozen
    change = "freeze" if frozen else "unfreeze"
    for sub in (holder.handle, *tickets.freeze_subs(unit.session, holder)):
        trust_changes.record(unit.session, change, sub=sub)
    keyring = unit.keyring
    tlog.append(
        unit,
        EventType.FREEZE if frozen else EventType.UNFREEZE,
        {"holder": keyring.digest(holder.handle), "reason": keyring.digest(reason), "by": by},
    )
    event, done = (Event.HOLDER_FROZEN, "frozen") if frozen else (Event.HOLDER_UNFROZEN, "unfrozen")
    note(unit.session, event, f"holder {holder.id} {done}", holder_id=holder.id, by=by)


def newest_device(session: Session, holder: Holder) -> Device:
    """The holder's most recently enrolled device still in use (a transfer's destination)."""
    device = session.scalars(
        select(Device)
        .where(Device.holder_id == holder.id, Device.revoked_at.is_(None))
        .order_by(Device.enrolled_at.desc(), Device.id.desc())
        .limit(1)
    ).first()
    if device is None:
        raise Problem(ProblemCode.NOT_FOUND, "the holder has no device enrolled to receive it")
    return device
