"""The issuer root key as it rotates (docs/server.md, "The root key rotates"): files in the data
directory beside the keyring's, never in the database.

    root.jwk         the root that speaks now (the first one until a rotation)
    root-links.cbor  every link so far, a CBOR array of their bytes (protocol.roots), in order
    root-next.jwk    only while a rotation is under way: the new root, before it replaces root.jwk

A rotation writes the new key to root-next.jwk, then the links file with the new link (the
commit point: an atomic rename), then renames root-next.jwk over root.jwk. The old root's private
key is not kept: it has signed its last link, and a copy could only forge bundles for terminals
that still pin it. Every server process reads these files when it signs a bundle or answers an
enrolment (`current`, cached while the files are unchanged), so all of them switch at once;
one that reads between the two renames finds the new root in root-next.jwk.

A root in an HSM (`server.hsm`) rotates inside its token: the new root is generated there,
sensitive and never extractable, labelled `<configured label>.<seq>` (`demo-univ/root.1`,
`.2`...), and the data dir names it instead of holding it:

    root-label       the token label of the root that speaks now (absent: the configured one)
    root-next-label  only while a rotation is under way: the new root's label

in the same order: root-next-label, the links file (the commit point), root-next-label renamed
over root-label. The old root stays in the token, never loaded or used again (`Keyring.load`
loads the root root-label names). A key a rotation generated and never linked (it failed
before its commit) is taken by the next rotation, which wants the same label: a key that
passes `hsm.load_key` was made in the token, and nobody ever saw its private half.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from duopass.lockfile import locked
from duopass.protocol.cbor import MalformedError, dumps, loads
from duopass.protocol.keys import Ed25519Signer, KeyFileError, KeyId, SigningKey
from duopass.protocol.roots import ROOT_LINKS_MAX, RootLink, RootLinkError, read_link, sign_link
from duopass.server import hsm
from duopass.server.hsm import HsmError, HsmKey, HsmReason

__all__ = [
    "LABEL_FILE",
    "LINKS_FILE",
    "RootError",
    "Roots",
    "Rotation",
    "current",
    "prepare",
    "read_label",
    "replace_file",
    "rotating",
    "sync_dir",
]

ROOT_FILE, LINKS_FILE, NEXT_FILE = "root.jwk", "root-links.cbor", "root-next.jwk"
LABEL_FILE, NEXT_LABEL_FILE = "root-label", "root-next-label"
_LABEL_FILE_BYTES_MAX = hsm.LABEL_CHARS_MAX + 2
_LOCK_FILE = ".root-rotation.lock"
LINKS_FILE_BYTES_MAX = 64 * 1024
LINKS_KEPT_MAX = 1000
"""Links the file holds: decades of yearly rotations; bundles carry only those in overlap."""
OVERLAP_MAX_S = 366 * 86_400


class RootError(RuntimeError):
    """The root files are missing, broken or disagree; the message says which."""


@dataclass(frozen=True)
class StoredLink:
    data: bytes
    link: RootLink
    signer: KeyId
    """The kid of the root that signed it."""


@dataclass(frozen=True)
class Roots:
    key: Ed25519Signer
    """The root that signs bundles now."""
    links: tuple[StoredLink, ...]

    @property
    def seq(self) -> int:
        return self.links[-1].link.seq if self.links else 0

    def speaking(self, now: int) -> tuple[bytes, ...]:
        """The links a bundle carries at `now`: those whose overlap has not ended (at most
        `ROOT_LINKS_MAX`, the newest)."""
        return tuple(stored.data for stored in self.links if stored.link.exp >= now)[
            -ROOT_LINKS_MAX:
        ]

    def knows(self, kid: KeyId) -> bool:
        """Whether `kid` is this chain's root now or was one of its roots."""
        old = {stored.signer for stored in self.links}
        return kid == self.key.kid or kid in old


@dataclass(frozen=True)
class Rotation:
    """A rotation prepared, not yet written: `commit` makes it the root."""

    key: SigningKey | HsmKey
    """A new key file's, or a new key in the root's token."""
    link: RootLink
    data: bytes
    previous: KeyId


_cache: dict[tuple[Path, bool], tuple[tuple[object, ...], Roots]] = {}
_cache_lock = threading.Lock()
_token_keys: dict[tuple[Path, str, str], HsmKey] = {}
"""The roots loaded from tokens by (module, token, label): each is checked once per process."""


def current(data_dir: Path, started: Ed25519Signer) -> Roots:
    """The root that speaks now, and the links so far. `started` is the root the keyring loaded
    at start: it speaks alone when the data dir holds no root files, or files that know nothing
    of it (a context whose keyring came from elsewhere). Files that are there but broken raise
    RootError: no bundle is signed with a root that may have been rotated out. A `started` from
    an HSM reads root-label and loads the key it names from the same token."""
    token = started if isinstance(started, HsmKey) else None
    stamp = _stamp(data_dir)
    if stamp[1] is None and (stamp[0] is None or token is not None):
        return Roots(started, ())
    with _cache_lock:
        held = _cache.get((data_dir, token is not None))
    if held is not None and held[0] == stamp:
        roots = held[1]
    else:
        roots = _read(data_dir, token)
        with _cache_lock:
            _cache[(data_dir, token is not None)] = (stamp, roots)
    return roots if roots.knows(started.kid) else Roots(started, ())


def _stamp(data_dir: Path) -> tuple[object, ...]:
    """What changes whenever a rotation writes (a rename makes a new inode)."""
    stamp: list[object] = []
    for name in (ROOT_FILE, LINKS_FILE, NEXT_FILE, LABEL_FILE, NEXT_LABEL_FILE):
        try:
            found = os.stat(data_dir / name)
            stamp.append((found.st_ino, found.st_mtime_ns, found.st_size))
        except (FileNotFoundError, NotADirectoryError):
            stamp.append(None)
    return tuple(stamp)


def _read(data_dir: Path, token: HsmKey | None = None) -> Roots:
    links = _read_links(data_dir)
    if token is not None:
        return _read_token(data_dir, token, links)
    for _ in range(3):  # a rotation may rename root-next.jwk over root.jwk as this reads
        for name in (ROOT_FILE, NEXT_FILE):
            try:
                key = SigningKey.from_jwk((data_dir / name).read_bytes())
            except FileNotFoundError:
                continue
            except (KeyFileError, OSError) as exc:
                raise RootError(f"{name}: {exc}") from exc
            if not links or key.kid == links[-1].link.kid:
                return Roots(key, links)
    raise RootError(f"no root key in {data_dir} matches the last link of {LINKS_FILE}")


def _read_token(data_dir: Path, started: HsmKey, links: tuple[StoredLink, ...]) -> Roots:
    """The root in the token that root-label (or root-next-label, between a rotation's renames)
    names, which must be the last link's; `started` before any rotation."""
    if not links:
        return Roots(started, links)
    for _ in range(3):
        for name in (LABEL_FILE, NEXT_LABEL_FILE):
            label = read_label(data_dir / name)
            if label is None:
                continue
            key = _token_key(started.config, label)
            if key.kid == links[-1].link.kid:
                return Roots(key, links)
    raise RootError(f"no root key {LABEL_FILE} names in the token matches the last link")


def _token_key(config: hsm.HsmConfig, label: str) -> HsmKey:
    """The key `label` on `config`'s token, loaded and checked once per process."""
    with _cache_lock:
        key = _token_keys.get((config.module, config.token, label))
    if key is None:
        try:
            key = hsm.load_key(config, label)
        except HsmError as exc:
            raise RootError(f"the root named in the data dir: {exc}") from exc
        with _cache_lock:
            _token_keys[(config.module, config.token, label)] = key
    return key


def read_label(path: Path) -> str | None:
    """The token label `path` holds (root-label, root-next-label); None if it is absent."""
    try:
        with path.open("rb") as handle:
            data = handle.read(_LABEL_FILE_BYTES_MAX + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RootError(f"{path.name}: {exc.strerror}") from exc
    label = data.decode("latin-1").removesuffix("\n")
    if not re.fullmatch(r"[!-~]+", label) or len(label) > hsm.LABEL_CHARS_MAX:
        raise RootError(f"{path.name} does not hold one key label")
    return label


def _read_links(data_dir: Path) -> tuple[StoredLink, ...]:
    try:
        with (data_dir / LINKS_FILE).open("rb") as handle:
            data = handle.read(LINKS_FILE_BYTES_MAX + 1)
    except FileNotFoundError:
        return ()
    if len(data) > LINKS_FILE_BYTES_MAX:
        raise RootError(f"{LINKS_FILE} is larger than {LINKS_FILE_BYTES_MAX} bytes")
    try:
        items = loads(data)
        if type(items) is not list or not all(type(item) is bytes for item in items):
            raise MalformedError("not an array of byte strings")
        stored = []
        for item in items:
            signer, link = read_link(item)
            stored.append(StoredLink(item, link, signer))
    except (MalformedError, RootLinkError) as exc:
        raise RootError(f"{LINKS_FILE}: {exc}") from exc
    if [s.link.seq for s in stored] != list(range(1, len(stored) + 1)):
        raise RootError(f"{LINKS_FILE}: the links' seqs are not 1, 2, 3...")
    return tuple(stored)


@contextmanager
def rotating(data_dir: Path, started: Ed25519Signer | None = None) -> Iterator[Roots]:
    """Hold the data dir's rotation lock (one rotation at a time) and give the roots as the
    files are, a rotation left half done by a crash finished first. `started` is the keyring's
    root: one from an HSM has the roots read from the token (`current`)."""
    token = started if isinstance(started, HsmKey) else None
    with locked(data_dir / _LOCK_FILE):
        roots = _read(data_dir, token)
        if (data_dir / NEXT_FILE).exists() or (data_dir / NEXT_LABEL_FILE).exists():
            _finish(data_dir, roots)
        yield roots


def prepare(roots: Roots, *, iss: str, now: int, overlap_s: int) -> Rotation:
    """A new root and the link the current one signs for it, written by `commit`."""
    if not 0 <= overlap_s <= OVERLAP_MAX_S:
        raise RootError(f"an overlap is 0 to {OVERLAP_MAX_S} s")
    if len(roots.links) >= LINKS_KEPT_MAX:
        raise RootError(f"{LINKS_FILE} holds {LINKS_KEPT_MAX} links already")
    seq = roots.seq + 1
    key = (
        _new_token_root(roots.key, seq) if isinstance(roots.key, HsmKey) else SigningKey.generate()
    )
    link = RootLink(iss=iss, seq=seq, key=key.public, nbf=now, exp=now + overlap_s)
    return Rotation(key, link, sign_link(roots.key, link), roots.key.kid)


def _new_token_root(current: HsmKey, seq: int) -> HsmKey:
    """The root of link `seq` in `current`'s token, `<configured label>.<seq>`: generated, or
    taken as a rotation cut short before its commit left it."""
    label = f"{current.config.root_key or current.label}.{seq}"
    if len(label) > hsm.LABEL_CHARS_MAX:
        raise RootError(f"the new root's label {label!r} is over {hsm.LABEL_CHARS_MAX} characters")
    try:
        try:
            return hsm.generate_key(current.config, label)
        except HsmError as exc:
            if exc.reason is not HsmReason.KEY_EXISTS:
                raise
        return hsm.load_key(current.config, label)
    except HsmError as exc:
        raise RootError(f"cannot make the new root in the token: {exc}") from exc


def commit(data_dir: Path, roots: Roots, rotation: Rotation) -> None:
    """Write the rotation (inside `rotating`): root-next.jwk (root-next-label for a root in a
    token), the links file (from here on the new root speaks), then root-next.jwk over root.jwk
    (root-next-label over root-label)."""
    if isinstance(rotation.key, HsmKey):
        waiting, token = (rotation.key.label + "\n").encode(), rotation.key
        _replace(data_dir / NEXT_LABEL_FILE, waiting, data_dir)
    else:
        _replace(data_dir / NEXT_FILE, rotation.key.to_jwk(), data_dir)
        token = None
    chain = [stored.data for stored in roots.links] + [rotation.data]
    _replace(data_dir / LINKS_FILE, dumps(chain), data_dir)
    _finish(data_dir, _read(data_dir, token))


def _finish(data_dir: Path, roots: Roots) -> None:
    """root-next.jwk over root.jwk (root-next-label over root-label) once the links name it; a
    leftover the links do not name (a rotation that failed before its commit) is removed."""
    if isinstance(roots.key, HsmKey):
        _finish_label(data_dir, roots.key)
        return
    next_path = data_dir / NEXT_FILE
    try:
        waiting = SigningKey.from_jwk(next_path.read_bytes())
    except FileNotFoundError:
        return
    except KeyFileError:
        waiting = None
    if waiting is not None and roots.links and roots.links[-1].link.kid == waiting.kid:
        os.replace(next_path, data_dir / ROOT_FILE)
    else:
        next_path.unlink()
    _sync_dir(data_dir)


def _finish_label(data_dir: Path, speaking: HsmKey) -> None:
    next_path = data_dir / NEXT_LABEL_FILE
    try:
        waiting = read_label(next_path)
    except RootError:
        waiting = ""
    if waiting is None:
        return
    if waiting == speaking.label:  # `_read` found the key it names to be the last link's
        os.replace(next_path, data_dir / LABEL_FILE)
    else:
        next_path.unlink()
    _sync_dir(data_dir)


def _replace(path: Path, content: bytes, data_dir: Path) -> None:
    """`path` holds `content` whole or not at all (a file of its own, fsynced, renamed)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
    _sync_dir(data_dir)


def _sync_dir(data_dir: Path) -> None:
    fd = os.open(data_dir, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


replace_file = _replace
"""`_replace`, for the ledger key's label files (`server.ledger_token`)."""
sync_dir = _sync_dir
