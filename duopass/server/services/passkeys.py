"""Passkeys (WebAuthn, through the `webauthn` library): a holder registers one while signed in,
signs in with it (no password: `passwordless.without_password`), and proves a step-up with it
(`step_up`, factor `passkey`); lists and deletes theirs.

Every ceremony's challenge is 32 random bytes stored (as its SHA-256) with what it is for
(`PasskeyChallenge`: the kind, the holder, the step-up's purpose, the relying party id), good
for `CHALLENGE_TTL_S` and deleted by its answer, whatever the verdict: each is answered once.
The relying party id is the wallet's host name (`webauthn_rp_id`, else the host the request
names) and the origins those of `webauthn_origins` (else the request's own): an IP address is
refused (409 `passkey_host`), as browsers refuse it. Registration, sign-in and step-up all ask
for user verification (the phone's PIN or biometrics), so a passkey alone is two factors. A
signature counter that does not move forward (when either side is non-zero) is a cloned
authenticator's: refused (403 `passkey_cloned`), the stored counter left as it was."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from sqlalchemy import func, select
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import options_to_json_dict
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from duopass.protocol.encoding import EncodingError, b64u_decode, b64u_encode
from duopass.server.limits import (
    PASSKEY_ID_BYTES_MAX,
    PASSKEY_PUBLIC_KEY_BYTES_MAX,
    PASSKEY_SIGN_IN_CHALLENGES_MAX,
    PASSKEY_SIGN_IN_CHALLENGES_PER_NETWORK_MAX,
    PASSKEYS_PER_HOLDER_MAX,
)
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import passkey_challenges
from duopass.server.store.passkeys import Passkey, PasskeyChallenge
from duopass.server.store.tables import Holder
from duopass.server.unit_of_work import Unit

__all__ = [
    "asserted",
    "begin_registration",
    "begin_sign_in",
    "begin_step_up",
    "delete_passkey",
    "describe",
    "finish_registration",
    "has_passkey",
    "listing",
    "sign_in_passkey",
    "step_up_proof",
]

_ALGORITHMS = [
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
]
_TRANSPORTS = frozenset(each.value for each in AuthenticatorTransport)
_UNREADABLE = (WebAuthnException, ValueError, TypeError, KeyError, IndexError, OverflowError)
"""What the library raises for an answer it cannot read (a CBOR error is a ValueError)."""


def _user_handle(unit: Unit, holder: Holder) -> bytes:
    """The WebAuthn user id of a holder's passkeys: keyed, so it names nobody; the same for all
    of theirs (a second passkey on one authenticator replaces the first)."""
    message = f"duopass-passkey-user-v1\n{holder.id}".encode()
    return hmac.new(unit.keyring.digest_key, message, hashlib.sha256).digest()[:16]


def _theirs(unit: Unit, holder_id: int) -> list[Passkey]:
    query = select(Passkey).where(Passkey.holder_id == holder_id).order_by(Passkey.id)
    return list(unit.session.scalars(query))


def _descriptors(rows: list[Passkey]) -> list[PublicKeyCredentialDescriptor]:
    return [
        PublicKeyCredentialDescriptor(
            id=row.credential_id,
            transports=[AuthenticatorTransport(each) for each in json.loads(row.transports)],
        )
        for row in rows
    ]


def has_passkey(unit: Unit, holder_id: int) -> bool:
    query = select(func.count()).select_from(Passkey).where(Passkey.holder_id == holder_id)
    return (unit.session.scalar(query) or 0) > 0


def begin_registration(
    unit: Unit, holder: Holder, rp: passkey_challenges.Relying
) -> dict[str, Any]:
    """Options for `navigator.credentials.create`: a discoverable credential, user verified,
    none of the holder's passkeys made again."""
    rows = _theirs(unit, holder.id)
    if len(rows) >= PASSKEYS_PER_HOLDER_MAX:
        raise Problem(
            ProblemCode.PASSKEY_LIMIT,
            f"{PASSKEYS_PER_HOLDER_MAX} passkeys are the most: delete one first",
        )
    options = generate_registration_options(
        rp_id=rp.rp_id,
        rp_name=unit.settings.issuer,
        user_name=holder.login,
        user_id=_user_handle(unit, holder),
        challenge=passkey_challenges.issue(unit, "register", rp, holder_id=holder.id),
        timeout=passkey_challenges.CHALLENGE_TTL_S * 1000,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=_descriptors(rows),
        supported_pub_key_algs=_ALGORITHMS,
    )
    return options_to_json_dict(options)


def finish_registration(
    unit: Unit, holder: Holder, rp: passkey_challenges.Relying, credential: dict[str, Any]
) -> dict[str, Any] | Problem:
    """Keep the passkey `navigator.credentials.create` made, once its answer verifies."""
    taken = passkey_challenges.take(unit, credential, "register", holder_id=holder.id, purpose=None)
    if isinstance(taken, Problem):
        return taken
    try:
        made = verify_registration_response(
            credential=credential,
            expected_challenge=taken.challenge,
            expected_rp_id=taken.rp_id,
            expected_origin=list(rp.origins),
            require_user_verification=True,
            supported_pub_key_algs=_ALGORITHMS,
        )
    except _UNREADABLE:
        return Problem(ProblemCode.PASSKEY_REFUSED, "the passkey's answer did not verify")
    if len(made.credential_public_key) > PASSKEY_PUBLIC_KEY_BYTES_MAX:
        return Problem(ProblemCode.PASSKEY_REFUSED, "the passkey's public key is too large")
    if (
        _named_id(credential) != made.credential_id
        or len(made.credential_id) > PASSKEY_ID_BYTES_MAX
    ):
        return Problem(ProblemCode.PASSKEY_REFUSED, "the credential id is not the one attested")
    session = unit.session
    if session.scalars(
        select(Passkey.id).where(Passkey.credential_id == made.credential_id)
    ).first():
        return Problem(ProblemCode.PASSKEY_EXISTS, "this passkey is registered already")
    if len(_theirs(unit, holder.id)) >= PASSKEYS_PER_HOLDER_MAX:
        return Problem(ProblemCode.PASSKEY_LIMIT, "too many passkeys: delete one first")
    reported = credential["response"].get("transports") or []
    row = Passkey(
        holder_id=holder.id,
        credential_id=made.credential_id,
        user_handle=_user_handle(unit, holder),
        public_key=made.credential_public_key,
        sign_count=made.sign_count,
        transports=json.dumps(sorted({each for each in reported if each in _TRANSPORTS})),
        created_at=unit.now,
    )
    session.add(row)
    session.flush()
    return describe(row)


def describe(row: Passkey) -> dict[str, Any]:
    return {
        "id": row.id,
        "created_at": row.created_at,
        "last_used_at": row.last_used_at,
        "transports": json.loads(row.transports),
    }


def listing(unit: Unit, holder_id: int) -> list[dict[str, Any]]:
    return [describe(row) for row in _theirs(unit, holder_id)]


def delete_passkey(unit: Unit, holder_id: int, passkey_id: int) -> None:
    row = unit.session.get(Passkey, passkey_id)
    if row is None or row.holder_id != holder_id:
        raise Problem(ProblemCode.NOT_FOUND, "no such passkey of yours")
    unit.session.delete(row)


def begin_sign_in(
    unit: Unit, rp: passkey_challenges.Relying, network: str | None = None
) -> dict[str, Any]:
    """Options for `navigator.credentials.get` with no login: the authenticator offers the
    passkeys it holds for this relying party. At most `PASSKEY_SIGN_IN_CHALLENGES_MAX` live,
    and `PASSKEY_SIGN_IN_CHALLENGES_PER_NETWORK_MAX` of them for one source `network` (None:
    not counted, an exempt network's)."""
    live = select(func.count()).select_from(PasskeyChallenge)
    live = live.where(PasskeyChallenge.kind == "sign_in", PasskeyChallenge.expires_at > unit.now)
    if network is not None:
        mine = unit.session.scalar(live.where(PasskeyChallenge.network == network))
        if (mine or 0) >= PASSKEY_SIGN_IN_CHALLENGES_PER_NETWORK_MAX:
            raise Problem(ProblemCode.THROTTLED, "too many passkey sign-ins from this network")
    if (unit.session.scalar(live) or 0) >= PASSKEY_SIGN_IN_CHALLENGES_MAX:
        raise Problem(ProblemCode.BUSY, "too many passkey sign-ins at once: try again soon")
    challenge = passkey_challenges.issue(unit, "sign_in", rp, network=network)
    return _options(rp, challenge, rows=[])


def _request_options(
    unit: Unit,
    rp: passkey_challenges.Relying,
    kind: str,
    *,
    holder_id: int | None,
    purpose: str | None,
    rows: list[Passkey],
) -> dict[str, Any]:
    challenge = passkey_challenges.issue(unit, kind, rp, holder_id=holder_id, purpose=purpose)
    return _options(rp, challenge, rows=rows)


def _options(
    rp: passkey_challenges.Relying, challenge: bytes, *, rows: list[Passkey]
) -> dict[str, Any]:
    options = generate_authentication_options(
        rp_id=rp.rp_id,
        challenge=challenge,
        timeout=passkey_challenges.CHALLENGE_TTL_S * 1000,
        allow_credentials=_descriptors(rows),
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return options_to_json_dict(options)


def sign_in_passkey(
    unit: Unit, rp: passkey_challenges.Relying, credential: dict[str, Any]
) -> tuple[Holder, Passkey, passkey_challenges.Taken] | Problem:
    """The holder and passkey an answer to a sign-in challenge names (the challenge now used);
    the assertion itself is checked by `asserted`, inside the risk policy's judgement."""
    taken = passkey_challenges.take(unit, credential, "sign_in", holder_id=None, purpose=None)
    if isinstance(taken, Problem):
        return taken
    row = _named(unit, credential)
    if row is None:
        return Problem(ProblemCode.PASSKEY_UNKNOWN, "this passkey is not registered (any more)")
    holder = unit.session.get(Holder, row.holder_id)
    assert holder is not None
    return holder, row, taken


def _named_id(credential: dict[str, Any]) -> bytes | None:
    try:
        return b64u_decode(credential["rawId"])
    except (EncodingError, KeyError, TypeError):
        return None


def _named(unit: Unit, credential: dict[str, Any]) -> Passkey | None:
    raw = _named_id(credential)
    if raw is None:
        return None
    return unit.session.scalars(select(Passkey).where(Passkey.credential_id == raw)).one_or_none()


def asserted(
    unit: Unit,
    rp: passkey_challenges.Relying,
    row: Passkey,
    credential: dict[str, Any],
    taken: passkey_challenges.Taken,
) -> Problem | None:
    """None when the assertion is this passkey's over the challenge `taken`, user verified,
    its counter moving forward (stored now, with the time used); else why not."""
    handle = credential["response"].get("userHandle")
    if handle is not None and handle != b64u_encode(row.user_handle):
        return Problem(ProblemCode.PASSKEY_REFUSED, "the passkey names another user")
    try:
        checked = verify_authentication_response(
            credential=credential,
            expected_challenge=taken.challenge,
            expected_rp_id=taken.rp_id,
            expected_origin=list(rp.origins),
            credential_public_key=row.public_key,
            credential_current_sign_count=0,  # compared below, after the signature
            require_user_verification=True,
        )
    except _UNREADABLE:
        return Problem(ProblemCode.PASSKEY_REFUSED, "the passkey's answer did not verify")
    count = checked.new_sign_count
    if (count > 0 or row.sign_count > 0) and count <= row.sign_count:
        return Problem(
            ProblemCode.PASSKEY_CLONED,
            f"the passkey's counter went from {row.sign_count} to {count}: it may be cloned",
        )
    row.sign_count, row.last_used_at = count, unit.now
    return None


def begin_step_up(
    unit: Unit, holder: Holder, purpose: str, rp: passkey_challenges.Relying
) -> dict[str, Any]:
    """Options for `navigator.credentials.get` that prove the step-up for `purpose` with one
    of the holder's passkeys."""
    rows = _theirs(unit, holder.id)
    if not rows:
        raise Problem(ProblemCode.FACTOR_UNAVAILABLE, "no passkey is registered")
    return _request_options(unit, rp, "step_up", holder_id=holder.id, purpose=purpose, rows=rows)


def step_up_proof(
    unit: Unit,
    holder: Holder,
    purpose: str,
    rp: passkey_challenges.Relying,
    credential: dict[str, Any],
) -> Problem | None:
    """None when the answer to the step-up's challenge for `purpose` is a passkey of the
    holder's (`asserted`); else why not."""
    taken = passkey_challenges.take(
        unit, credential, "step_up", holder_id=holder.id, purpose=purpose
    )
    if isinstance(taken, Problem):
        return taken
    row = _named(unit, credential)
    if row is None or row.holder_id != holder.id:
        return Problem(ProblemCode.PASSKEY_UNKNOWN, "this passkey is not registered (any more)")
    return asserted(unit, rp, row, credential, taken)
