"""The wallet's durable state: one SQLite file (WAL, `synchronous=FULL`) holding the account,
the credential, its counters, a refresh in flight and the clock sample (PROTOCOL.md §2, §4.2).

**One lock across instances.** Every change is one `BEGIN IMMEDIATE` transaction: SQLite's write
lock is taken at the start, so two processes (or threads) never read the same next counter, and
the commit is on disk (WAL fsynced) before the transaction returns, so a counter is durably used
before any code with it is signed, let alone shown.

**Refresh.** `begin_sync` stores the request id and the mark (the highest counter displayed plus
`REFRESH_RESERVE`, never above what may still be signed) and lowers the ceiling to the mark in
the same transaction, before anything is sent; every retry reuses both until an answer is stored.

**Never restored from a backup.** The file is bound to where it lives: at creation (and at each
fresh credential) the row stores `binding`, the machine id (`/etc/machine-id`) and the inode
number of the database file. SQLite never replaces its file, so the binding holds for the life
of a wallet; a copy (a backup restored onto a new phone or disk, a copied home folder, `cp -a`
of the data dir) has a new inode or another machine's id. A state whose binding differs is
*restored*: it signs nothing, and its next sync forgets the original's refresh in flight (a
retry could return a credential whose counters the original already showed; a request is
stored with the binding it was made under, so the copy's own is retried as usual) and sends no
mark (it cannot know what the original displayed, so no holds are released on its word); the
fresh credential rebinds the file. Chosen over a marker file outside the data dir because a
home-folder backup would carry that marker along too. What it cannot see: a backup copied
*into* the existing file (`cp backup wallet.db` keeps the inode) and a whole-disk or
virtual-machine snapshot rolled back; a holder who does that on purpose controls their own
wallet, which §4.6 bounds anyway. The device number is left out: it can change at a reboot
(some filesystems, removable or network disks), and a false alarm costs an online sync.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from duopass.protocol.cbor import MalformedError, loads
from duopass.protocol.code import Credential, decode_credential
from duopass.protocol.trust import Policy, dump_policy, parse_policy
from duopass.wallet.clock import ClockSample
from duopass.wallet.errors import Failure, WalletError
from duopass.wallet.files import create_private
from duopass.wallet.limits import L1_BYTES_MAX, LOCK_TIMEOUT_S, REFRESH_RESERVE, REQUEST_ID_BYTES
from duopass.wallet.schema import upgrade

__all__ = [
    "Account",
    "Held",
    "Pending",
    "Snapshot",
    "State",
    "decode_l1",
    "usable",
]

_T = TypeVar("_T")
_MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))
_MACHINE_ID_CHARS_MAX = 64
_SELECT = (
    "SELECT binding, server, login, token, token_expires, device_id, l1, offline, next_ctr,"
    " ceiling, request_id, request_mark, request_binding, clock_server, clock_wall,"
    " clock_elapsed, clock_boot, policy FROM wallet WHERE id = 1"
)


@dataclass(frozen=True)
class Account:
    """Where the wallet is enrolled, and its session."""

    server: str
    login: str
    device_id: int
    token: str | None
    token_expires: int


@dataclass(frozen=True)
class Held:
    """The credential the wallet holds and its counters: `next_ctr` is the next one to use,
    `ceiling` the highest one it may still sign (`uses - 1`, or a refresh's mark)."""

    l1: bytes
    credential: Credential
    offline: bool
    next_ctr: int
    ceiling: int

    @property
    def left(self) -> int:
        """Codes this credential may still make."""
        return max(0, self.ceiling + 1 - self.next_ctr)


@dataclass(frozen=True)
class Pending:
    """A sync request stored before it was sent: retried with the same id and mark.
    `binding` is where it was stored: a restored state does not retry the original's."""

    request_id: str
    mark: int | None
    binding: str


@dataclass(frozen=True)
class Snapshot:
    """Everything the wallet knows, read in one transaction."""

    account: Account | None
    held: Held | None
    pending: Pending | None
    clock: ClockSample | None
    restored: bool
    policy: Policy = field(default_factory=Policy)
    """The issuer's, from the last sync answer; §3's defaults when it carried none."""


class State:
    """The state file. Methods that change it are one `BEGIN IMMEDIATE` transaction each."""

    def __init__(self, path: Path) -> None:
        self.path = path
        create_private(path)
        try:
            self._db = sqlite3.connect(path, timeout=LOCK_TIMEOUT_S, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._binding = _binding(path)
            with self._transaction() as db:
                upgrade(db, path, self._binding)
        except sqlite3.Error as exc:
            raise WalletError(Failure.STATE, f"{path}: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    @property
    def binding(self) -> str:
        """Where this file lives now (a credential stored under another binding was copied)."""
        return self._binding

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """One `BEGIN IMMEDIATE` transaction: the one lock across instances (`tickets.py`)."""
        return self._transaction()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise WalletError(Failure.STATE, f"{self.path}: {exc}") from exc

    def _read(self, db: sqlite3.Connection) -> Snapshot:
        row = db.execute(_SELECT).fetchone()
        if row is None:
            raise WalletError(Failure.STATE, f"{self.path}: the wallet row is missing")
        try:
            return _snapshot(row, self._binding)
        except (TypeError, ValueError, MalformedError) as exc:
            raise WalletError(Failure.STATE, f"{self.path}: damaged state ({exc})") from exc

    def read(self) -> Snapshot:
        with self._transaction() as db:
            return self._read(db)

    def enrol(self, *, server: str, login: str, token: str, expires: int, device_id: int) -> None:
        """Record where the wallet is enrolled; any credential of another enrolment goes."""
        with self._transaction() as db:
            db.execute(
                "UPDATE wallet SET server = ?, login = ?, token = ?, token_expires = ?,"
                " device_id = ?, l1 = NULL, offline = NULL, next_ctr = 0, ceiling = -1,"
                " request_id = NULL, request_mark = NULL, request_binding = NULL WHERE id = 1",
                (server, login, token, expires, device_id),
            )

    def set_session(self, token: str | None, expires: int) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE wallet SET token = ?, token_expires = ? WHERE id = 1", (token, expires)
            )

    def reserve(self, now: int) -> tuple[Held, int | None]:
        """Use the next counter, durably, before any code with it exists (§2); None for a
        credential without `cnf` (a static code uses no counter). Raises WalletError."""
        with self._transaction() as db:
            snapshot = self._read(db)
            held = usable(snapshot, now)
            if held.credential.claims.device_key is None:
                return held, None
            if held.next_ctr > held.ceiling:
                raise _used_up(held, snapshot.pending)
            db.execute("UPDATE wallet SET next_ctr = next_ctr + 1 WHERE id = 1")
            return held, held.next_ctr

    def begin_sync(self) -> Pending:
        """The request to send: the one in flight, or a new one whose mark lowers the ceiling
        in the same transaction, before it is sent (§4.2)."""
        with self._transaction() as db:
            snapshot = self._read(db)
            if snapshot.pending is not None and snapshot.pending.binding == self._binding:
                return snapshot.pending
            held = snapshot.held
            mark: int | None = None
            if held is not None and not snapshot.restored and held.credential.claims.uses:
                mark = min(held.next_ctr - 1 + REFRESH_RESERVE, held.ceiling)
                db.execute("UPDATE wallet SET ceiling = ? WHERE id = 1", (mark,))
            pending = Pending(secrets.token_hex(REQUEST_ID_BYTES), mark, self._binding)
            db.execute(
                "UPDATE wallet SET request_id = ?, request_mark = ?, request_binding = ?"
                " WHERE id = 1",
                (pending.request_id, pending.mark, pending.binding),
            )
            return pending

    def finish_sync(
        self,
        request_id: str,
        *,
        l1: bytes,
        offline: bool,
        clock: ClockSample,
        policy: Policy | None = None,
    ) -> Held:
        """Store the answer to `request_id`: a new credential starts at counter 0 and binds the
        file to where it now lives. The same credential again (another instance stored this
        answer first) keeps its counters. The answer's policy replaces the one kept."""
        credential = decode_l1(l1)
        with self._transaction() as db:
            snapshot = self._read(db)
            held = snapshot.held
            same = held is not None and held.credential.claims.cti == credential.claims.cti
            ours = snapshot.pending is not None and snapshot.pending.request_id == request_id
            if not same and not ours:
                raise WalletError(
                    Failure.STATE, "another sync changed the wallet meanwhile: sync again"
                )
            if not same:
                uses = credential.claims.uses
                db.execute(
                    "UPDATE wallet SET l1 = ?, offline = ?, next_ctr = 0, ceiling = ?,"
                    " binding = ? WHERE id = 1",
                    (l1, int(offline), (uses or 0) - 1, self._binding),
                )
            if ours:
                db.execute(
                    "UPDATE wallet SET request_id = NULL, request_mark = NULL,"
                    " request_binding = NULL WHERE id = 1"
                )
            db.execute(
                "UPDATE wallet SET clock_server = ?, clock_wall = ?, clock_elapsed = ?,"
                " clock_boot = ?, policy = ? WHERE id = 1",
                (clock.server, clock.wall, clock.elapsed, clock.boot, _policy_text(policy)),
            )
            held = self._read(db).held
            assert held is not None
            return held

    def set_clock(self, clock: ClockSample, policy: Policy | None) -> None:
        """The server's time and policy from another answer than the purse's (the tickets')."""
        with self._transaction() as db:
            db.execute(
                "UPDATE wallet SET clock_server = ?, clock_wall = ?, clock_elapsed = ?,"
                " clock_boot = ?, policy = ? WHERE id = 1",
                (clock.server, clock.wall, clock.elapsed, clock.boot, _policy_text(policy)),
            )


def usable(snapshot: Snapshot, now: int) -> Held:
    """The held credential if codes may be made from it at server time `now`; else why not."""
    if snapshot.account is None:
        raise WalletError(
            Failure.NOT_ENROLLED, "this wallet is not enrolled: run `duopass wallet enrol`"
        )
    held = snapshot.held
    if held is None:
        raise WalletError(
            Failure.NO_CREDENTIAL, "no credential yet: run `duopass wallet sync` while online"
        )
    if snapshot.restored:
        raise WalletError(
            Failure.RESTORED,
            "this wallet's state was restored or copied from elsewhere, so its counters cannot"
            " be trusted: run `duopass wallet sync` while online for a fresh credential",
        )
    if now >= held.credential.claims.exp:
        raise WalletError(
            Failure.EXPIRED,
            "the credential has expired: run `duopass wallet sync` while online for a new one",
        )
    return held


def _used_up(held: Held, pending: Pending | None) -> WalletError:
    if pending is not None:
        return WalletError(
            Failure.USED_UP,
            f"a refresh was requested: the old credential signs no counter above its mark"
            f" ({held.ceiling}); run `duopass wallet sync` while online to finish it",
        )
    return WalletError(
        Failure.USED_UP,
        f"this credential's offline codes are all used ({held.credential.claims.uses}):"
        " run `duopass wallet sync` while online for a new one",
    )


def decode_l1(l1: bytes) -> Credential:
    """The decoded credential (§2's structure; the issuer's signature is the terminal's job)."""
    if len(l1) > L1_BYTES_MAX:
        raise MalformedError("credential too long")
    return decode_credential(loads(l1), l1)


def _snapshot(row: tuple[object, ...], binding: str) -> Snapshot:
    (
        bound, server, login, token, token_expires, device_id, l1, offline, next_ctr, ceiling,
        request_id, request_mark, request_binding, c_server, c_wall, c_elapsed, c_boot, policy,
    ) = row  # fmt: skip
    account = None
    if device_id is not None:
        account = Account(
            server=_typed(server, str),
            login=_typed(login, str),
            device_id=_typed(device_id, int),
            token=_typed(token, str) if token is not None else None,
            token_expires=_typed(token_expires, int),
        )
    held = None
    if l1 is not None:
        held = Held(
            _typed(l1, bytes),
            decode_l1(_typed(l1, bytes)),
            bool(_typed(offline, int)),
            _typed(next_ctr, int),
            _typed(ceiling, int),
        )
    pending = None
    if request_id is not None:
        mark = _typed(request_mark, int) if request_mark is not None else None
        pending = Pending(_typed(request_id, str), mark, _typed(request_binding, str))
    clock = None
    if c_server is not None:
        boot = _typed(c_boot, str) if c_boot is not None else None
        clock = ClockSample(
            _typed(c_server, int), _typed(c_wall, float), _typed(c_elapsed, float), boot
        )
    kept = Policy() if policy is None else parse_policy(json.loads(_typed(policy, str)))
    return Snapshot(account, held, pending, clock, restored=bound != binding, policy=kept)


def _policy_text(policy: Policy | None) -> str | None:
    return None if policy is None else json.dumps(dump_policy(policy))


def _typed(value: object, kind: type[_T]) -> _T:
    if type(value) is not kind:
        raise TypeError(f"a {kind.__name__} was expected")
    return value


def _binding(path: Path) -> str:
    """What a copy of the state file would not carry along: this machine and this file."""
    machine = ""
    for candidate in _MACHINE_ID_FILES:
        try:
            with candidate.open("rb") as handle:
                machine = handle.read(_MACHINE_ID_CHARS_MAX).decode("ascii", "replace").strip()
            break
        except OSError:
            continue
    return f"{machine}/{os.stat(path).st_ino}"
