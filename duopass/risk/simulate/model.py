"""What a labelled stream is made of: the world it runs in (holders, tills, gates, the evening's
event), its steps in time order (each labelled honest or with its fraud family and incident),
its incidents (what each one's goal is) and the fraud families' parameters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "CAMPUS_NAT",
    "CAMPUS_NETWORK",
    "HONEST",
    "Family",
    "HolderSpec",
    "Incident",
    "Kind",
    "Step",
    "Stream",
    "World",
]

HONEST = "honest"
"""The label of honest steps and holders."""
CAMPUS_NETWORK = "127.10.0.0/16"
"""The campus's network (its canteen's venue): the range a campus allowlists."""
CAMPUS_NAT = "127.10.0.1"
"""The one address the campus NAT gives every holder behind it."""


class Kind(StrEnum):
    """What a step does (the driver turns each into its HTTP requests)."""

    SIGN_IN = "sign_in"
    """A password sign-in; `typos` wrong passwords first."""
    STUFF = "stuff"
    """One pair of a leaked list tried: `login`, its password right or not (`right`)."""
    PAY_ONLINE = "pay_online"
    """The actor's wallet (or the phone stolen from them) pays `amount` at `till`, online."""
    PAY_OFFLINE = "pay_offline"
    """The actor's wallet (or its `clone`) pays `amount` at `till`, offline; the till journals
    `reported` (the amount, unless it misreports)."""
    COPY = "copy"
    """The actor's wallet copied onto another phone (its key, credential, counters): no
    request."""
    ENTER = "enter"
    """The actor's ticket scanned at `gate`."""
    LOST = "lost"
    """From a new phone: sign in, enrol it, report the others lost (the tickets move through
    the policy), sync the purse there."""
    REISSUE = "reissue"
    """Sign in on a new phone, enrol it, ask for ticket `ticket` on it, confirm when allowed."""


@dataclass(frozen=True)
class Step:
    at: int
    """Seconds from the stream's start."""
    kind: Kind
    actor: str
    """The login whose wallet or account the step uses."""
    address: str
    """The source address of its requests (a till's or gate's for scans)."""
    label: str = HONEST
    incident: int = -1
    """Its incident's index in `Stream.incidents`; -1 when honest."""
    counts: bool = False
    """Its success counts toward the incident's goal."""
    till: str = ""
    amount: int = 0
    reported: int = 0
    typos: int = 0
    ticket: int = 0
    login: str = ""
    right: bool = False
    clone: bool = False


@dataclass(frozen=True)
class Incident:
    family: str
    goal: int
    """Successful counting steps that complete it."""
    holders: tuple[str, ...] = ()
    """Logins it concerns: an alert naming one of them is about it."""
    terminal: str = ""


@dataclass(frozen=True)
class HolderSpec:
    login: str
    address: str
    tickets: int = 0
    balance: int = 0
    label: str = HONEST
    """Honest, or the family whose accounts these are (a farm's, a tout's)."""


@dataclass(frozen=True)
class World:
    holders: tuple[HolderSpec, ...]
    tills: tuple[str, ...]
    gates: tuple[str, ...]
    rogue_tills: tuple[str, ...]
    day_s: int
    doors_s: int
    ends_s: int


@dataclass(frozen=True)
class Family:
    """A fraud family, as its file (`families/NAME.toml`) describes it."""

    name: str
    about: str
    incidents: int
    point: str
    """Where the engine would act on it: its false flags on honest traffic are counted there."""
    catchable: bool
    why: str = ""
    params: Mapping[str, float] = field(default_factory=dict)

    def whole(self, name: str) -> int:
        return int(self.params[name])


@dataclass(frozen=True)
class Stream:
    seed: int
    world: World
    steps: tuple[Step, ...]
    incidents: tuple[Incident, ...]
    families: tuple[Family, ...]
