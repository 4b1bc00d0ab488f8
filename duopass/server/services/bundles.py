"""Trust bundles from the database: whole, or a delta of the trust changes since a version.

Every bundle renews `issued_at`, even when nothing changed, so a terminal that syncs stays fresh.
A delta never removes, but for a signing key revoked as compromised (`keys_removed`): expired
keys and revocations leave in the next whole bundle, which a terminal asks for with `since=0`
(the agent does so daily). Every bundle is signed by the root that speaks now (`server.roots`),
and carries the links of the roots still within their overlap.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import select
from sqlalchemy.orm import Session

from duopass.protocol.bundle import Bundle, encode_bundle
from duopass.protocol.trust import Policy, TrustKey
from duopass.server import roots
from duopass.server.services import signing_keys, trust_changes
from duopass.server.settings import Settings
from duopass.server.store.tables import Credential, Holder, SigningKeyRow, TrustChange
from duopass.server.store.tickets import Ticket
from duopass.server.unit_of_work import Unit


def build(unit: Unit, *, since: int) -> bytes:
    """The signed trust bundle: whole (`since` 0, or a version the log no longer starts at), or
    the changes since version `since`."""
    session, settings, now = unit.session, unit.settings, unit.now
    seq = trust_changes.current_seq(session)
    policy = settings.policy
    root = roots.current(settings.data_dir, unit.keyring.root)
    links = root.speaking(now)
    if 0 < since <= seq:
        delta = _delta(session, settings, policy, since=since, seq=seq, now=now)
        return encode_bundle(dataclasses.replace(delta, root_links=links), root.key)
    revoked = session.scalars(
        select(Credential.cti).where(
            Credential.exp + policy.clock_skew_s >= now,
            (Credential.state != "live") | Credential.offline.is_(False),
        )
    ).all()
    frozen = [
        *session.scalars(select(Holder.handle).where(Holder.frozen.is_(True))),
        # a freeze covers the holder's tickets too (check 10)
        *session.scalars(
            select(Ticket.sub).join(Holder, Holder.id == Ticket.holder_id).where(Holder.frozen)
        ),
    ]
    whole = Bundle(
        seq=seq,
        issued_at=now,
        max_age_s=settings.bundle_max_age_s,
        since=0,
        iss=settings.issuer,
        policy=policy,
        keys_added=tuple(signing_keys.published(session, now)),
        revoked_added=tuple(revoked),
        frozen_added=tuple(frozen),
        root_links=links,
    )
    return encode_bundle(whole, root.key)


def _delta(
    session: Session, settings: Settings, policy: Policy, *, since: int, seq: int, now: int
) -> Bundle:
    changes = session.scalars(
        select(TrustChange).where(TrustChange.seq > since).order_by(TrustChange.seq)
    ).all()
    kids = [change.kid for change in changes if change.change == "key" and change.kid is not None]
    unkeyed = [c.kid for c in changes if c.change == "unkey" and c.kid is not None]
    keys = (
        session.scalars(
            select(SigningKeyRow).where(
                SigningKeyRow.kid.in_(kids), SigningKeyRow.revoked_at.is_(None)
            )
        ).all()
        if kids
        else []
    )
    frozen: dict[str, bool] = {}
    for change in changes:
        if change.change in ("freeze", "unfreeze") and change.sub is not None:
            frozen[change.sub] = change.change == "freeze"
    return Bundle(
        seq=seq,
        issued_at=now,
        max_age_s=settings.bundle_max_age_s,
        since=since,
        iss=settings.issuer,
        policy=policy,
        keys_added=tuple(TrustKey(row.kid, row.public_key, row.nbf, row.exp) for row in keys),  # type: ignore[arg-type]
        keys_removed=tuple(unkeyed),
        revoked_added=tuple(c.cti for c in changes if c.change == "revoke" and c.cti is not None),
        frozen_added=tuple(sub for sub, on in frozen.items() if on),
        frozen_removed=tuple(sub for sub, on in frozen.items() if not on),
    )
