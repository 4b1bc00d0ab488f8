"""The issuer root key and the ledger key in a hardware security module, through PKCS#11
(python-pkcs11; Debian's SoftHSM in the tests, `scripts/softhsm.sh`).

A key is an Ed25519 pair (`CKK_EC_EDWARDS`, signing with `CKM_EDDSA`) generated in the token by
`duopass keys hsm-init`: its private half is sensitive and never extractable, and a key that ever
was either is refused at load. The server finds each key by its label (`Settings.hsm_root_key`,
`hsm_ledger_key`); the ledger key's label is also its signed-note key name, the log's origin
(`<issuer>/ledger`). A rotated root is a key of its own in the same token, `<root label>.<seq>`
(`server.roots`); so is a rotated ledger key, `<ledger label>.<n>`, still named after the
configured label, the log's origin (`server.ledger_token`). At load each key signs a test
message that its public half must verify.

One logged-in session per token serves the whole process (PKCS#11 refuses a second login), one
call at a time (not every module's sessions are thread safe; a signature takes 0.2 to 0.9 ms in
SoftHSM). A process forked from the one that opened it (`duopass serve --workers`) initialises
the module again and logs in anew before its first signature. Errors say what is wrong with a
stable reason (`HsmReason`), never the PIN.
"""

from __future__ import annotations

import hmac
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar

from duopass.protocol.keys import KeyId, kid_of, verify_signature

if TYPE_CHECKING:
    from pkcs11 import Key, Session, SignMixin

    from duopass.server.settings import Settings

__all__ = [
    "HsmConfig",
    "HsmError",
    "HsmKey",
    "HsmReason",
    "config",
    "generate_key",
    "load_key",
    "read_pin",
]

PIN_BYTES_MAX: Final = 256
"""Longest PIN read from a PIN file (a module's own limit is usually far lower)."""
LABEL_CHARS_MAX: Final = 80
"""Longest key label: `<issuer>/ledger` for the longest issuer id (64)."""
TOKEN_LABEL_CHARS_MAX: Final = 32
"""A PKCS#11 token label is 32 bytes, blank-padded."""
_ED25519_OID: Final = "1.3.101.112"
_CHECK: Final = b"duopass-hsm-key-check-v1"


class HsmReason(StrEnum):
    """Why a key in an HSM cannot be used; stable, for scripts and tests to match."""

    MODULE = "hsm_module"
    TOKEN = "hsm_token"  # noqa: S105 (a reason, not a password)
    PIN = "hsm_pin"
    KEY = "hsm_key"
    KEY_EXTRACTABLE = "hsm_key_extractable"
    KEY_EXISTS = "hsm_key_exists"
    FAILED = "hsm_failed"


class HsmError(RuntimeError):
    """A module, token, PIN or key that cannot be used: the message never holds the PIN."""

    def __init__(self, reason: HsmReason, detail: str) -> None:
        super().__init__(f"{detail} ({reason})")
        self.reason = reason


@dataclass(frozen=True)
class HsmConfig:
    """Where the keys are: the PKCS#11 module, the token's label, its user PIN, and the labels of
    the keys kept there (None: that key is a file in the data directory)."""

    module: Path
    token: str
    pin: str = field(repr=False)
    root_key: str | None = None
    ledger_key: str | None = None


def config(settings: Settings) -> HsmConfig | None:
    """The HSM the settings name, its PIN read from `DUOPASS_HSM_PIN` or the PIN file; None if
    they name none (`Settings` has checked that a module comes with a token and a key)."""
    if settings.hsm_module is None or settings.hsm_token is None:
        return None
    if settings.hsm_pin is not None:
        pin = settings.hsm_pin.get_secret_value()
    elif settings.hsm_pin_file is not None:
        pin = read_pin(settings.hsm_pin_file)
    else:
        raise HsmError(HsmReason.PIN, "no PIN for the HSM: set DUOPASS_HSM_PIN or hsm_pin_file")
    return HsmConfig(
        settings.hsm_module, settings.hsm_token, pin, settings.hsm_root_key, settings.hsm_ledger_key
    )


def read_pin(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(PIN_BYTES_MAX + 1)
    except OSError as exc:
        raise HsmError(HsmReason.PIN, f"cannot read the PIN file {path}: {exc.strerror}") from exc
    try:
        pin = data.decode().strip("\r\n")
    except UnicodeDecodeError:
        pin = ""
    if not pin or len(data) > PIN_BYTES_MAX or "\n" in pin:
        raise HsmError(HsmReason.PIN, f"the PIN file {path} does not hold one PIN of UTF-8 text")
    return pin


@dataclass(frozen=True, repr=False, eq=False)
class HsmKey:
    """An Ed25519 key in a token (`protocol.keys.Ed25519Signer`, `ledger.note.NoteKey`): its
    public half here, its private half in the token, which signs."""

    label: str
    public: bytes
    _token: _Token
    config: HsmConfig
    """The configuration it was loaded with (a rotated root's sibling is loaded the same way)."""

    @property
    def kid(self) -> KeyId:
        return kid_of(self.public)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of `message`, made in the token."""
        return self._token.sign(self.label, message)

    def __repr__(self) -> str:
        return f"HsmKey(label={self.label!r}, kid={self.kid.hex()})"


def load_key(hsm: HsmConfig, label: str) -> HsmKey:
    """The key labelled `label` on the token, checked: Ed25519, never extractable, always
    sensitive, and its public half verifying what its private half signs."""
    token = _token(hsm)
    with token.lock:
        session = token.session()
        private, public = _pair(session, hsm.token, label)
        _check_private(private, label)
        point = _public_bytes(public, label)
    key = HsmKey(label, point, token, hsm)
    if not verify_signature(point, _CHECK, key.sign(_CHECK)):
        raise HsmError(HsmReason.KEY, f"the key labelled {label!r}: its halves do not match")
    return key


def generate_key(hsm: HsmConfig, label: str) -> HsmKey:
    """A new Ed25519 key generated in the token, labelled `label` (refused if one is)."""
    from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass  # noqa: PLC0415
    from pkcs11.util.ec import encode_named_curve_parameters  # noqa: PLC0415

    token = _token(hsm)
    with token.lock:
        session = token.session()
        if any(True for _ in session.get_objects({Attribute.LABEL: label})):
            raise HsmError(HsmReason.KEY_EXISTS, f"the token already holds a key {label!r}")
        curve = {Attribute.EC_PARAMS: encode_named_curve_parameters(_ED25519_OID)}
        parameters = session.create_domain_parameters(KeyType.EC_EDWARDS, curve, local=True)
        private_template = {
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.PRIVATE: True,
            Attribute.SIGN: True,
        }
        _call(
            lambda: parameters.generate_keypair(
                mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
                store=True,
                label=label,
                public_template={Attribute.VERIFY: True, Attribute.CLASS: ObjectClass.PUBLIC_KEY},
                private_template=private_template,
            ),
            f"cannot generate the key {label!r}",
        )
    return load_key(hsm, label)


def _pair(session: Session, token: str, label: str) -> tuple[Key, Key]:
    from pkcs11 import KeyType, ObjectClass  # noqa: PLC0415
    from pkcs11.exceptions import MultipleObjectsReturned, NoSuchKey  # noqa: PLC0415

    try:
        private = session.get_key(ObjectClass.PRIVATE_KEY, KeyType.EC_EDWARDS, label=label)
        public = session.get_key(ObjectClass.PUBLIC_KEY, KeyType.EC_EDWARDS, label=label)
    except NoSuchKey as exc:
        detail = (
            f"no Ed25519 key pair labelled {label!r} on the token {token!r}"
            " (`duopass keys hsm-init` makes one)"
        )
        raise HsmError(HsmReason.KEY, detail) from exc
    except MultipleObjectsReturned as exc:
        raise HsmError(HsmReason.KEY, f"several keys labelled {label!r}") from exc
    return private, public


def _check_private(private: Key, label: str) -> None:
    from pkcs11 import Attribute  # noqa: PLC0415

    kept = (
        private[Attribute.SENSITIVE],
        private[Attribute.ALWAYS_SENSITIVE],
        not private[Attribute.EXTRACTABLE],
        private[Attribute.NEVER_EXTRACTABLE],
    )
    if not all(kept):
        detail = (
            f"the key labelled {label!r} is or was extractable or not sensitive: make one in"
            " the token with `duopass keys hsm-init`"
        )
        raise HsmError(HsmReason.KEY_EXTRACTABLE, detail)


def _public_bytes(public: Key, label: str) -> bytes:
    """The raw 32-byte key from `CKA_EC_POINT`: DER OCTET STRING as PKCS#11 3.0 says, or the
    bare bytes some modules give."""
    from pkcs11 import Attribute  # noqa: PLC0415

    point = bytes(public[Attribute.EC_POINT])
    if len(point) == 34 and point[:2] == b"\x04\x20":
        point = point[2:]
    if len(point) != 32:
        raise HsmError(HsmReason.KEY, f"the public key labelled {label!r} is not Ed25519")
    return point


class _Token:
    """The process's logged-in session on one token, opened again in a forked process."""

    def __init__(self, hsm: HsmConfig) -> None:
        self.hsm = hsm
        self.lock = threading.Lock()
        self._pid = 0
        self._session: Session | None = None
        self._keys: dict[str, SignMixin] = {}

    def session(self) -> Session:
        """The session of this process (the caller holds `lock`)."""
        if self._session is None or self._pid != os.getpid():
            forked = self._pid not in (0, os.getpid())
            self._keys.clear()
            self._session = _open(self.hsm, reinitialise=forked)
            self._pid = os.getpid()
        return self._session

    def sign(self, label: str, message: bytes) -> bytes:
        """`label`'s signature of `message`; a session the token lost (it restarted, or the
        link to a network HSM broke) is opened again, and logged in, once."""
        from pkcs11 import exceptions as p11  # noqa: PLC0415

        lost = (p11.SessionClosed, p11.SessionHandleInvalid, p11.UserNotLoggedIn)
        with self.lock:
            try:
                return self._sign(label, message)
            except lost:
                self._session = None  # the next `session()` opens a new one
            except p11.PKCS11Error as exc:
                raise _failed(exc, label) from exc
            try:
                return self._sign(label, message)
            except p11.PKCS11Error as exc:
                raise _failed(exc, label) from exc

    def _sign(self, label: str, message: bytes) -> bytes:
        from pkcs11 import KeyType, Mechanism, ObjectClass, SignMixin  # noqa: PLC0415

        session = self.session()
        key = self._keys.get(label)
        if key is None:
            found = session.get_key(ObjectClass.PRIVATE_KEY, KeyType.EC_EDWARDS, label=label)
            if not isinstance(found, SignMixin):
                raise HsmError(HsmReason.KEY, f"the key labelled {label!r} cannot sign")
            key = self._keys[label] = found
        return bytes(key.sign(message, mechanism=Mechanism.EDDSA))


def _failed(exc: Exception, label: str) -> HsmError:
    return HsmError(HsmReason.FAILED, f"the HSM cannot sign with {label!r}: {type(exc).__name__}")


_tokens: dict[tuple[Path, str], _Token] = {}
_tokens_lock = threading.Lock()


def _token(hsm: HsmConfig) -> _Token:
    """The process's one `_Token` for the token `hsm` names; a second configuration naming it
    must give the same PIN (the session logged in with the first)."""
    with _tokens_lock:
        token = _tokens.get((hsm.module, hsm.token))
        if token is None:
            token = _Token(hsm)
            with token.lock:
                token.session()  # a wrong module, token or PIN is refused here
            _tokens[(hsm.module, hsm.token)] = token
        elif not hmac.compare_digest(token.hsm.pin.encode(), hsm.pin.encode()):
            raise HsmError(HsmReason.PIN, f"the token {hsm.token!r} refused the PIN")
        return token


def _open(hsm: HsmConfig, *, reinitialise: bool) -> Session:
    import pkcs11  # noqa: PLC0415
    from pkcs11 import exceptions as p11  # noqa: PLC0415

    try:
        lib = pkcs11.lib(str(hsm.module))
        if reinitialise:
            lib.reinitialize()  # a forked process: the parent's state is not its own
    except p11.PKCS11Error as exc:
        raise HsmError(HsmReason.MODULE, f"cannot load the PKCS#11 module {hsm.module}") from exc
    try:
        token = lib.get_token(token_label=hsm.token)
    except (p11.NoSuchToken, p11.MultipleTokensReturned) as exc:
        detail = f"no token, or several, labelled {hsm.token!r} in {hsm.module}"
        raise HsmError(HsmReason.TOKEN, detail) from exc
    except p11.PKCS11Error as exc:
        raise HsmError(HsmReason.TOKEN, f"cannot list the tokens of {hsm.module}") from exc
    try:
        return token.open(user_pin=hsm.pin, rw=True)
    except p11.UserAlreadyLoggedIn:  # by another part of this process: its sessions share that
        return _call(lambda: token.open(rw=True), f"cannot open the token {hsm.token!r}")
    except (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange) as exc:
        raise HsmError(HsmReason.PIN, f"the token {hsm.token!r} refused the PIN") from exc
    except (p11.PinLocked, p11.PinExpired) as exc:
        raise HsmError(HsmReason.PIN, f"the PIN of the token {hsm.token!r} is locked") from exc
    except p11.PKCS11Error as exc:
        detail = f"cannot log in to the token {hsm.token!r}: {type(exc).__name__}"
        raise HsmError(HsmReason.TOKEN, detail) from exc


_T = TypeVar("_T")


def _call(work: Callable[[], _T], what: str) -> _T:
    from pkcs11.exceptions import PKCS11Error  # noqa: PLC0415

    try:
        return work()
    except PKCS11Error as exc:
        raise HsmError(HsmReason.FAILED, f"the HSM: {what}: {type(exc).__name__}") from exc
