"""Holders and staff: accounts of people, passwords (argon2), one-time codes (TOTP), tokens,
devices (enrolled with proof of possession), loss reports and freezes."""

from __future__ import annotations

import hashlib
import secrets

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from duopass.protocol.keys import is_usable_public_key, verify_signature
from duopass.protocol.requests import device_enrolment_message
from duopass.server.config import Settings
from duopass.server.errors import Code, Problem
from duopass.server.keyring import Keyring
from duopass.server.services import ledger, trustlog
from duopass.server.store.tables import Account, Credential, Device, Holder, Staff, Token

TOKEN_LIFETIME_S = 8 * 3600
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a password anyone has")


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
        password_hash=password_hash or _hasher.hash(password),
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


def sign_in(
    session: Session, *, login: str, password: str, otp: str | None, staff: bool, now: int
) -> tuple[str, int]:
    """A bearer token for a holder or staff member; TOTP is required where one is enrolled."""
    person: Holder | Staff | None
    if staff:
        person = session.scalars(select(Staff).where(Staff.login == login)).one_or_none()
    else:
        person = session.scalars(select(Holder).where(Holder.login == login)).one_or_none()
    try:
        _hasher.verify(person.password_hash if person else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError) as exc:
        raise Problem(Code.UNAUTHENTICATED, "wrong login or password") from exc
    assert person is not None  # the dummy hash never verifies
    totp = getattr(person, "totp_secret", None)
    if totp is not None and (
        otp is None or not pyotp.TOTP(totp).verify(otp, for_time=now, valid_window=1)
    ):
        raise Problem(Code.STEP_UP_REQUIRED, "a valid one-time code is required")
    token = secrets.token_urlsafe(32)
    role = person.role if isinstance(person, Staff) else "holder"
    expires = now + TOKEN_LIFETIME_S
    session.add(
        Token(
            digest=hashlib.sha256(token.encode()).digest(),
            role=role,
            principal_id=person.id,
            expires_at=expires,
        )
    )
    return token, expires


def token_principal(session: Session, token: str, now: int) -> Token | None:
    row = session.get(Token, hashlib.sha256(token.encode()).digest())
    return row if row is not None and row.expires_at > now else None


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


def report_loss(session: Session, settings: Settings, holder: Holder, now: int) -> int:
    """A loss report revokes every device and credential; it does not freeze (§6): a new device
    enrols and syncs at once."""
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
    ledger.append(
        session,
        "loss_report",
        now,
        settings.issuer,
        {"devices": len(devices), "credentials": count},
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


def new_totp(holder: Holder, issuer: str) -> tuple[str, str]:
    """A fresh TOTP secret and its otpauth:// URI (for a QR code in an authenticator app)."""
    secret = pyotp.random_base32()
    return secret, pyotp.TOTP(secret).provisioning_uri(name=holder.login, issuer_name=issuer)


def enable_totp(
    session: Session,
    settings: Settings,
    keyring: Keyring,
    holder: Holder,
    *,
    secret: str,
    otp: str,
    now: int,
) -> None:
    """Turn on the second factor once the holder proves their authenticator shows `otp`."""
    try:
        matches = pyotp.TOTP(secret).verify(otp, for_time=now, valid_window=1)
    except ValueError as exc:  # pyotp refuses short or badly padded secrets
        raise Problem(Code.INVALID_REQUEST, "not a TOTP secret this server handed out") from exc
    if not matches:
        raise Problem(Code.BAD_PROOF, "the one-time code does not match the secret")
    holder.totp_secret = secret
    ledger.append(
        session, "totp_enable", now, settings.issuer, {"holder": keyring.digest(holder.handle)}
    )
