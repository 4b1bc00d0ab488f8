"""The server's secrets, from files in the data directory, never from the database.

    root.jwk     issuer root key: signs trust bundles (terminals pin its public half)
    ledger.key   ledger key, a C2SP signed-note signer key: signs checkpoints
    wrap.key     32 random bytes sealing the daily signing keys stored in the database
    digest.key   32 random bytes: HMAC-SHA-256 of personal data before it enters a ledger leaf
    oauth.pem    ES256 (P-256) key, PKCS#8 PEM: signs partners' OAuth access tokens (its public
                 half at /v1/oauth/jwks); a data directory from before it gets one at load

`Keyring.create` writes missing files (mode 0600); `Keyring.load` refuses to start without them.
The root and ledger keys may instead be keys in an HSM (`server.hsm`, an `HsmConfig` naming
their labels on a PKCS#11 token): then their files are neither made nor read. A root rotated in
the token is the key the data dir's `root-label` names (`server.roots`), not the configured one;
a rotated ledger key the one `ledger-label` names (`server.ledger_token`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field
from pathlib import Path

import nacl.secret
import nacl.utils
from joserfc.jwk import ECKey

from duopass.ledger import NoteSigner
from duopass.protocol.keys import Ed25519Signer, SigningKey
from duopass.server import hsm, ledger_token, roots
from duopass.server.hsm import HsmConfig, HsmError

_ROOT, _LEDGER, _WRAP, _DIGEST = "root.jwk", "ledger.key", "wrap.key", "digest.key"
_OAUTH = "oauth.pem"
UNSEALED_KEYS_MAX = 4
"""Daily signing keys kept unsealed in the process (`Keyring.signing_key`): today's, and a
day's either side of midnight, with room for one more."""


class KeyringError(RuntimeError):
    """The data directory lacks a secret or holds a broken one."""


@dataclass(frozen=True, repr=False)
class Keyring:
    root: Ed25519Signer
    """A `SigningKey` from `root.jwk`, or an `hsm.HsmKey`."""
    ledger: NoteSigner
    wrap_key: bytes
    digest_key: bytes
    oauth: ECKey
    """Signs partners' access tokens (`partners.tokens`)."""
    _unsealed: dict[bytes, SigningKey] = field(default_factory=dict, init=False, compare=False)

    @classmethod
    def create(cls, data_dir: Path, *, origin: str, hsm: HsmConfig | None = None) -> Keyring:
        """Create whatever secret is missing (not the keys in `hsm`: `duopass keys hsm-init`
        makes those), then load them all."""
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if hsm is None or hsm.root_key is None:
            _write_new(data_dir / _ROOT, SigningKey.generate().to_jwk())
        if hsm is None or hsm.ledger_key is None:
            _write_new(data_dir / _LEDGER, (NoteSigner.generate(origin).skey() + "\n").encode())
        _write_new(data_dir / _WRAP, nacl.utils.random(32))
        _write_new(data_dir / _DIGEST, nacl.utils.random(32))
        _write_new(data_dir / _OAUTH, _new_oauth_pem())
        return cls.load(data_dir, hsm)

    @classmethod
    def load(cls, data_dir: Path, hsm: HsmConfig | None = None) -> Keyring:
        """The keys in `data_dir`, the root and ledger keys from `hsm`'s token if it names them."""
        root: Ed25519Signer | None
        root, ledger = _hsm_keys(hsm, data_dir) if hsm is not None else (None, None)
        try:
            if root is None:
                root = SigningKey.from_jwk((data_dir / _ROOT).read_bytes())
            if ledger is None:
                ledger = load_ledger_key(data_dir / _LEDGER)
            wrap, digest = (data_dir / _WRAP).read_bytes(), (data_dir / _DIGEST).read_bytes()
            oauth = ECKey.import_key(_oauth_pem(data_dir / _OAUTH))
        except (OSError, ValueError) as exc:
            raise KeyringError(
                f"cannot load the server's keys from {data_dir}: {exc} "
                "(run `duopass serve --init` once to create them)"
            ) from exc
        if len(wrap) != 32 or len(digest) != 32:
            raise KeyringError("wrap.key and digest.key must hold 32 bytes each")
        if oauth.curve_name != "P-256" or not oauth.is_private:
            raise KeyringError("oauth.pem must hold a private P-256 key")
        return cls(root, ledger, wrap, digest, oauth)

    def seal(self, secret: bytes) -> bytes:
        return bytes(nacl.secret.SecretBox(self.wrap_key).encrypt(secret))

    def unseal(self, sealed: bytes) -> bytes:
        return bytes(nacl.secret.SecretBox(self.wrap_key).decrypt(sealed))

    def signing_key(self, sealed_seed: bytes) -> SigningKey:
        """The daily signing key sealed in `sealed_seed`, unsealed once per process and kept
        (at most `UNSEALED_KEYS_MAX`, the oldest dropped first): every credential minted signs
        with today's key (docs/server.md, "Signing keys in memory")."""
        key = self._unsealed.get(sealed_seed)
        if key is None:
            key = SigningKey(self.unseal(sealed_seed))
            while len(self._unsealed) >= UNSEALED_KEYS_MAX:
                self._unsealed.pop(next(iter(self._unsealed)), None)
            self._unsealed[sealed_seed] = key
        return key

    def digest(self, personal: str) -> bytes:
        """The keyed digest that stands for personal data in ledger leaves (§7)."""
        return hmac.new(self.digest_key, personal.encode(), hashlib.sha256).digest()

    def inputs_digest(self, canonical: bytes) -> bytes:
        """The keyed digest of a decision's input document (its canonical JSON) in the
        decision's leaf: the inputs hold personal facts, and stay beside the leaf until erased."""
        message = b"duopass-decision-inputs-v1\n" + canonical
        return hmac.new(self.digest_key, message, hashlib.sha256).digest()

    def person_digest(self, person_key: bytes, number: str) -> bytes:
        """The keyed digest of a holder's number in their `holder_create` leaf: under the server
        secret and the holder's own `person_key`, so that erasing that key (with the number)
        leaves a digest nobody can match to a number again, whoever holds `digest.key`."""
        message = b"duopass-person-v1\n" + person_key + number.encode()
        return hmac.new(self.digest_key, message, hashlib.sha256).digest()


def load_ledger_key(path: Path) -> NoteSigner:
    """A ledger key file (`ledger.key`, or a rotation's `ledger.key.next`). Raises OSError,
    or ValueError (LedgerError) for a file that holds no signer key."""
    return NoteSigner.parse(path.read_text().strip())


def write_ledger_key(path: Path, key: NoteSigner) -> None:
    """Write a new ledger key file (mode 0600, synced), replacing any there."""
    path.unlink(missing_ok=True)
    _write_new(path, (key.skey() + "\n").encode())


def _hsm_keys(config: HsmConfig, data_dir: Path) -> tuple[hsm.HsmKey | None, NoteSigner | None]:
    """The root and ledger keys the HSM holds (None for one it does not): the root that
    root-label names once the root has rotated, the ledger key ledger-label names once it has
    (`ledger_token`), the configured ones before."""
    try:
        root = None
        if config.root_key is not None:
            label = roots.read_label(data_dir / roots.LABEL_FILE) or config.root_key
            root = hsm.load_key(config, label)
        if config.ledger_key is None:
            return root, None
        return root, ledger_token.load(config, data_dir)
    except ledger_token.LedgerTokenError as exc:
        raise KeyringError(f"cannot load the server's keys from the HSM: {exc}") from exc
    except HsmError as exc:
        raise KeyringError(f"cannot load the server's keys from the HSM: {exc}") from exc
    except roots.RootError as exc:
        raise KeyringError(f"cannot read the root's label: {exc}") from exc


def _new_oauth_pem() -> bytes:
    return ECKey.generate_key("P-256").as_pem(private=True)


def _oauth_pem(path: Path) -> bytes:
    """The token-signing key's PEM, made first if the data directory predates it: written to a
    file of its own, then linked into place, so that of several server processes starting at
    once on one directory one key wins and every process reads it whole."""
    if not path.exists():
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        partial.unlink(missing_ok=True)
        _write_new(partial, _new_oauth_pem())
        try:
            os.link(partial, path)
        except FileExistsError:
            pass
        finally:
            partial.unlink(missing_ok=True)
    return path.read_bytes()


def _write_new(path: Path, content: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
