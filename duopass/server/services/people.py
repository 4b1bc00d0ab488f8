"""Holders: their accounts, devices (enrolled with proof of possession), loss reports and
freezes. Signing in and sessions are `auth`; the second factor is `second_factor`."""

from __future__ import annotations

import secrets

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from duopass.protocol.keys import is_usable_public_key, verify_signature
from duopass.protocol.requests import device_enrolment_message
from duopass.server.config import Settings
from duopass.server.errors import Code, Problem
from duopass.server.keyring import Keyring
from duopass.server.services import auth, ledger, trustlog
from duopass.server.store.tables import Account, Credential, Device, Holder


def create_holder(
    session: Session,
    keyring: Keyring,
    settings: Settings,
    *,
    login: str,
    person_id: str,
    password: str,
    overdraft: int,
    now: int,
    totp_secret: str | None = None,
    password_hash: str | None = None,
) -> Holder:
    if session.scalars(select(Holder.id).where(Holder.login == login)).first() is not None:
        raise Problem(Code.CONFLICT, f"login {login!r} is taken")
    handle = "h-" + secrets.token_hex(6)
    account = Account(
        kind="holder",
        name=f"holder:{handle}",
        currency=settings.currency,
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
        person_digest=keyring.digest(person_id),
        password_hash=password_hash or auth.hash_password(password),
        totp_secret=totp_secret,
        account_id=account.id,
    )
    session.add(holder)
    session.flush()
    ledger.append(
        session,
        "holder_create",
        now,
        settings.issuer,
        {"holder": keyring.digest(handle), "person": holder.person_digest},
    )
    return holder


def enrol_device(
    session: Session,
    settings: Settings,
    keyring: Keyring,
    holder: Holder,
    *,
    public_key: bytes,
    proof: bytes,
    now: int,
) -> Device:
    if not is_usable_public_key(public_key):
        raise Problem(
            Code.BAD_DEVICE_KEY, "not a usable Ed25519 key (small order or non-canonical)"
        )
    if not verify_signature(public_key, device_enrolment_message(holder.login, public_key), proof):
        raise Problem(Code.BAD_PROOF, "the proof of possession does not verify")
    existing = session.scalars(select(Device).where(Device.public_key == public_key)).one_or_none()
    if existing is not None:
        if existing.holder_id != holder.id or existing.revoked_at is not None:
            raise Problem(Code.CONFLICT, "this key is enrolled elsewhere or was revoked")
        return existing
    device = Device(holder_id=holder.id, public_key=public_key, enrolled_at=now)
    session.add(device)
    session.flush()
    ledger.append(
        session,
        "device_enrol",
        now,
        settings.issuer,
        {"holder": keyring.digest(holder.handle), "device": device.id, "key": public_key},
    )
    return device


def revoke_live_credentials(
    session: Session,
    settings: Settings,
    holder: Holder,
    *,
    device_id: int | None,
    reason: str,
    now: int,
) -> int:
    """Revoke the holder's live and superseded credentials (of one device, or all): online at
    once, offline with the next bundle. Their holds stay until §4 releases them (§6)."""
    query = select(Credential).where(
        Credential.holder_id == holder.id, Credential.state != "revoked"
    )
    if device_id is not None:
        query = query.where(Credential.device_id == device_id)
    count = 0
    for credential in session.scalars(query):
        credential.state = "revoked"
        trustlog.record(session, "revoke", cti=credential.cti, until=credential.exp)
        ledger.append(
            session,
            "credential_revoke",
            now,
            settings.issuer,
            {"cti": credential.cti, "reason": reason},
        )
        count += 1
    return count


def revoke_device(
    session: Session, settings: Settings, holder: Holder, device_id: int, now: int
) -> None:
    device = session.get(Device, device_id)
    if device is None or device.holder_id != holder.id:
        raise Problem(Code.NOT_FOUND, "no such device")
    if device.revoked_at is None:
        device.revoked_at = now
        revoke_live_credentials(
            session, settings, holder, device_id=device_id, reason="device revoked", now=now
        )
        ledger.append(session, "device_revoke", now, settings.issuer, {"device": device_id})


def report_loss(
    session: Session, settings: Settings, holder: Holder, now: int, *, keep: bytes | None
) -> int:
    """A loss report revokes every device and credential and ends every session but `keep`
    (the one that reported, if the holder did); it does not freeze (§6): a new device enrols
    and syncs at once."""
    devices = session.scalars(
        select(Device.id).where(Device.holder_id == holder.id, Device.revoked_at.is_(None))
    ).all()
    session.execute(update(Device).where(Device.id.in_(devices)).values(revoked_at=now))
    lost = select(Credential.cti).where(
        Credential.holder_id == holder.id, Credential.state != "revoked"
    )
    session.execute(update(Credential).where(Credential.cti.in_(lost)).values(lost_at=now))
    count = revoke_live_credentials(
        session, settings, holder, device_id=None, reason="loss report", now=now
    )
    ended = auth.end_sessions(session, staff=False, principal_id=holder.id, keep=keep)
    ledger.append(
        session,
        "loss_report",
        now,
        settings.issuer,
        {"devices": len(devices), "credentials": count, "sessions": ended},
    )
    return count


def set_frozen(
    session: Session,
    settings: Settings,
    keyring: Keyring,
    holder: Holder,
    *,
    frozen: bool,
    reason: str,
    by: int,
    now: int,
) -> None:
    """Freeze or unfreeze at review: refused online at once, listed in the next bundle."""
    if holder.frozen == frozen:
        return
    holder.frozen = frozen
    trustlog.record(session, "freeze" if frozen else "unfreeze", sub=holder.handle)
    ledger.append(
        session,
        "freeze" if frozen else "unfreeze",
        now,
        settings.issuer,
        {
            "holder": keyring.digest(holder.handle),
            "reason": keyring.digest(reason),
            "by": by,
        },
    )
