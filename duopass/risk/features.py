"""The names of the streaming features: what is counted (signals), per what (keys), what an
observation records, what a decision asks (queries), what it read (`Features`), and the
interface every feature store implements (`FeatureStore`: the database or Redis).

An observation says that at one time one signal touched some keys (an account, a device, an
address and its network, ...): each key's count of that signal goes up by one in every window.
Its pairs (account -> device, network -> account, ...) say which other keys a key was seen
with, for distinct counts ("how many accounts failed to sign in from this network in an hour").
The window arithmetic and what "exact" means are in `windows`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from duopass.risk.windows import Window

__all__ = [
    "KEYS_MAX",
    "KEY_CHARS_MAX",
    "PAIRS_MAX",
    "QUERIES_MAX",
    "SEEN_WITH_MAX",
    "Count",
    "Derived",
    "Distinct",
    "FeatureStore",
    "Features",
    "Key",
    "KeyKind",
    "LastSeen",
    "Observation",
    "Pair",
    "Query",
    "Signal",
    "ip_of",
    "network_of",
]

KEY_CHARS_MAX = 120
"""Longest key value (an address, a login's digest, an id)."""
KEYS_MAX = 8
"""Most keys one observation touches."""
PAIRS_MAX = 8
"""Most pairs one observation records."""
QUERIES_MAX = 64
"""Most queries one read asks (one statement in the database)."""
SEEN_WITH_MAX = 100
"""Most keys one `seen_with` lists."""


class KeyKind(StrEnum):
    """What a count is kept per. Added, never renamed (they are in stored keys and records)."""

    ACCOUNT = "account"
    DEVICE = "device"
    ADDRESS = "address"
    NETWORK = "network"
    """An IPv4 /24 or IPv6 /64 (`network_of`)."""
    TERMINAL = "terminal"
    VENUE = "venue"
    EVENT = "event"
    INSTALLATION = "installation"
    """A wallet installation, by the id it says it has (`Duopass-Installation`), as a keyed
    digest: one phone's app, whatever accounts it signs in to. Client-chosen, so a signal (a
    careless farm or tout shows), never proof (a careful one sends none, or a new one each time).
    A device key (`DEVICE`) cannot say this: a key is enrolled on one account only."""
    CLIENT = "client"
    """A partner's OAuth client, by its row id (`partner_clients.id`)."""


class Signal(StrEnum):
    """What is counted. Added, never renamed."""

    SIGN_IN = "sign_in"
    SIGN_IN_FAILURE = "sign_in_failure"
    REISSUE_REQUEST = "reissue_request"
    DEVICE_ENROLMENT = "device_enrolment"
    TOP_UP = "top_up"
    REFUND = "refund"
    ONLINE_SCAN = "online_scan"
    ONLINE_REFUSAL = "online_refusal"
    OFFLINE_ACCEPTANCE = "offline_acceptance"
    AMOUNT_MISMATCH = "amount_mismatch"
    """A journal entry whose amount is not what the server approved online (§5.1 amend), or
    above the credential's `txmax`: per terminal (one that misreports amounts)."""
    ACCOUNT_ATTEMPT = "account_attempt"
    """An installation offered for an account (a sign-in by password or device key, a device
    enrolment), whatever came of it: per installation, paired installation -> account (how
    many accounts one phone tries)."""
    PARTNER_CALL = "partner_call"
    """A partner's call admitted (a token granted included): per client, for its rate limit."""


@dataclass(frozen=True, order=True)
class Key:
    """One thing counted: its kind and an id the caller chooses (a holder id, an address)."""

    kind: KeyKind
    value: str

    def __post_init__(self) -> None:
        if not 0 < len(self.value) <= KEY_CHARS_MAX or not self.value.isprintable():
            raise ValueError(f"a key value is 1 to {KEY_CHARS_MAX} printable characters")

    def __str__(self) -> str:
        """How stores name it: `kind:value` (the value may hold colons: an IPv6 address)."""
        return f"{self.kind}:{self.value}"

    @classmethod
    def parse(cls, text: str) -> Key:
        kind, _, value = text.partition(":")
        return cls(KeyKind(kind), value)


def ip_of(address: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """A client's IP address; an IPv4 one as IPv4 even when a dual-stack listener (`--host ::`)
    gives it mapped into IPv6 (`::ffff:a.b.c.d`), or every IPv4 client would share one /64."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def network_of(address: str | None) -> str | None:
    """The network an address is counted in: its /24 (IPv4) or /64 (IPv6); None for what is no
    IP address (a Unix socket, a test transport)."""
    ip = ip_of(address)
    if ip is None:
        return None
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


@dataclass(frozen=True, order=True)
class Pair:
    """`subject` was seen with `other`: counted among the distinct `other.kind`s of `subject`."""

    subject: Key
    other: Key


@dataclass(frozen=True)
class Observation:
    """At `at` (Unix seconds), `signal` touched `keys` (each counted `events` times, by default
    once) and saw `pairs`. An observation of -1 event at the same `at` withdraws a pending one
    (a sign-in counted as a failure when it starts, withdrawn once its password is right): it
    falls in the same buckets, so every window's count is as if the pending one never was."""

    at: int
    signal: Signal
    keys: tuple[Key, ...]
    pairs: tuple[Pair, ...] = ()
    events: int = 1

    def __post_init__(self) -> None:
        if len(set(self.keys)) != len(self.keys) or len(self.keys) > KEYS_MAX:
            raise ValueError(f"an observation touches at most {KEYS_MAX} distinct keys")
        if len(set(self.pairs)) != len(self.pairs) or len(self.pairs) > PAIRS_MAX:
            raise ValueError(f"an observation records at most {PAIRS_MAX} distinct pairs")
        if self.events not in (1, -1):
            raise ValueError("an observation counts one event, or withdraws one")

    def at_time(self, at: int) -> Observation:
        """This observation at `at`: its keys and pairs checked once, not again (a journal
        batch makes hundreds alike, one a holder's acceptance)."""
        moved: Observation = object.__new__(Observation)
        vars(moved).update(vars(self), at=at)
        return moved


@dataclass(frozen=True)
class Count:
    """How many times `signal` touched `key` in `window`."""

    key: Key
    signal: Signal
    window: Window
    name: str = ""
    """The feature's name; by default `kind.signal.window`: `network.sign_in_failure.1h`."""

    @property
    def feature(self) -> str:
        return self.name or f"{self.key.kind}.{self.signal}.{self.window.label}"


@dataclass(frozen=True)
class Distinct:
    """How many distinct keys of kind `of` were seen with `key` on `signal` in `window`
    (exact to the second: each pair remembers when it was last seen)."""

    key: Key
    signal: Signal
    of: KeyKind
    window: Window
    name: str = ""
    """By default `kind.signal.distinct_of.window`:
    `network.sign_in_failure.distinct_account.1h`."""

    @property
    def feature(self) -> str:
        default = f"{self.key.kind}.{self.signal}.distinct_{self.of}.{self.window.label}"
        return self.name or default


@dataclass(frozen=True)
class LastSeen:
    """When `signal` last touched `key` (Unix seconds), if within the day window; else None."""

    key: Key
    signal: Signal
    name: str = ""
    """By default `kind.signal.last_at`."""

    @property
    def feature(self) -> str:
        return self.name or f"{self.key.kind}.{self.signal}.last_at"


Query = Count | Distinct | LastSeen


@dataclass(frozen=True)
class Derived:
    """A feature computed from what stores hold rather than read from one (the km/h between a
    holder's two latest venues): named, with the key it is of, so a record explains it."""

    key: Key
    name: str

    @property
    def feature(self) -> str:
        return self.name


class Features(Mapping[str, int | None]):
    """What a decision read: each feature's name -> its value (a count, or a time for
    `LastSeen`), in the order asked. Names are unique within one `Features`."""

    __slots__ = ("_read", "_values")

    def __init__(self, read: Sequence[tuple[Query | Derived, int | None]] = ()) -> None:
        self._read = tuple(read)
        self._values = {query.feature: value for query, value in self._read}
        if len(self._values) != len(self._read):
            raise ValueError("two queries of one read have the same feature name")

    def __getitem__(self, name: str) -> int | None:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Features({self._values!r})"

    def __or__(self, other: Features) -> Features:
        return Features(self._read + other._read)

    @property
    def queries(self) -> tuple[Query | Derived, ...]:
        return tuple(query for query, _ in self._read)

    def explained(self) -> list[dict[str, str | int | None]]:
        """For a decision record: each feature's name, the key it was read for, its value."""
        return [
            {"feature": query.feature, "key": str(query.key), "value": value}
            for query, value in self._read
        ]


class FeatureStore(Protocol):
    """Where the counts live. Every backend answers the same reads for the same observations
    (`windows` defines them); the database's also commits them with its caller's transaction."""

    def record(self, observations: Sequence[Observation], *, now: int) -> None:
        """Count `observations`. An observation timed after `now` counts as at `now`; buckets
        already expired at `now` (an observation older than a window) are left out."""
        ...

    def read(self, queries: Sequence[Query], *, now: int) -> Features:
        """The value of each query at `now` (at most `QUERIES_MAX`)."""
        ...

    def seen_with(
        self, key: Key, signal: Signal, of: KeyKind, *, window: Window, now: int, limit: int
    ) -> list[tuple[Key, int]]:
        """The keys of kind `of` seen with `key` on `signal` in `window` at `now` (those a
        `Distinct` counts), each with when it was last, latest first (ties in any order), at most
        `limit` (up to `SEEN_WITH_MAX`): the venues a holder was just at, for geovelocity."""
        ...

    def expire(self, *, now: int) -> int:
        """Forget what no window counts any more at `now`; how many rows (or entries) went."""
        ...
