"""A holder's devices: a wallet's key enrolled with proof of possession, revoked one by one or
all at a loss report, and the credentials issued to them revoked with them."""

from __future__ import annotations

from sqlalchemy import select

from duopass.ledger.events import EventType
from duopass.protocol.keys import is_usable_public_key, verify_signature
from duopass.protocol.signed_requests import device_enrolment_message
from duopass.risk import Key, KeyKind, Signal
from duopass.risk.points import Point, Subject
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import risk_engine, risk_features, tlog, trust_changes
from duopass.server.store.tables import Credential, Device, Holder
from duopass.server.unit_of_work import Unit

__all__ = ["enrol_device", "revoke_device", "revoke_live_credentials"]


def enrol_device(
    unit: Unit,
    holder: Holder,
    *,
    public_key: bytes,
    proof: bytes,
    client: str | None = None,
    installation: str | None = None,
) -> Device:
    """Enrol a device key; the same key again is the same device. A new one is screened by the
    risk policy (`device_enrolment`: `risk_engine.Refused`) and counted, from `client`; the
    wallet `installation` it names (if any) is counted as trying the holder's account first,
    whatever the policy decides."""
    session = unit.session
    if not is_usable_public_key(public_key):
        raise Problem(
            ProblemCode.BAD_DEVICE_KEY, "not a usable Ed25519 key (small order or non-canonical)"
        )
    if not verify_signature(public_key, device_enrolment_message(holder.login, public_key), proof):
        raise Problem(ProblemCode.BAD_PROOF, "the proof of possession does not verify")
    existing = session.scalars(select(Device).where(Device.public_key == public_key)).one_or_none()
    if existing is not None:
        if existing.holder_id != holder.id or existing.revoked_at is not None:
            raise Problem(ProblemCode.CONFLICT, "this key is enrolled elsewhere or was revoked")
        return existing
    account = risk_engine.holder_key(holder.id)
    app = risk_features.installation_key(unit, installation)
    risk_features.observe(unit, *risk_features.tried(account, app, at=unit.now))
    subject = Subject(account, None, client, installation=app)
    risk_engine.screen(unit, Point.DEVICE_ENROLMENT, subject, holder=holder)
    device = Device(holder_id=holder.id, public_key=public_key, enrolled_at=unit.now)
    session.add(device)
    session.flush()
    subject = Subject(subject.account, Key(KeyKind.DEVICE, str(device.id)), client)
    risk_engine.observe(unit, Signal.DEVICE_ENROLMENT, subject)
    body = {"holder": unit.keyring.digest(holder.handle), "device": device.id, "key": public_key}
    tlog.append(unit, EventType.DEVICE_ENROL, body)
    return device


def revoke_live_credentials(
    unit: Unit, holder: Holder, *, device_id: int | None, reason: str
) -> int:
    """Revoke the holder's live and superseded credentials (of one device, or all): online at
    once, offline with the next bundle. Their holds stay until §4 releases them (§6)."""
    session = unit.session
    query = select(Credential).where(
        Credential.holder_id == holder.id, Credential.state != "revoked"
    )
    if device_id is not None:
        query = query.where(Credential.device_id == device_id)
    count = 0
    for credential in session.scalars(query):
        credential.state = "revoked"
        trust_changes.record(session, "revoke", cti=credential.cti, until=credential.exp)
        tlog.append(unit, EventType.CREDENTIAL_REVOKE, {"cti": credential.cti, "reason": reason})
        count += 1
    return count


def revoke_device(unit: Unit, holder: Holder, device_id: int) -> None:
    device = unit.session.get(Device, device_id)
    if device is None or device.holder_id != holder.id:
        raise Problem(ProblemCode.NOT_FOUND, "no such device")
    if device.revoked_at is None:
        device.revoked_at = unit.now
        revoke_live_credentials(unit, holder, device_id=device_id, reason="device revoked")
        tlog.append(unit, EventType.DEVICE_REVOKE, {"device": device_id})
