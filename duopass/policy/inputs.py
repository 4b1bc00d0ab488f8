"""The input document a policy decides on: plain facts the server gathers (purchase, device,
place, time, reissues, use, risk, sign-in), typed and frozen, and its JSON form.

The document is what rules read (`purchase.amount`, `device.is_new`), what the decision keeps
beside its ledger leaf, and what `duopass policy replay` runs again; `schema` names its
version, added to (never renamed) when a field is added. docs/policy.md describes every field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Final

__all__ = [
    "ACTIONS",
    "INPUTS_SCHEMA",
    "Auth",
    "Device",
    "Inputs",
    "InputsError",
    "Place",
    "Purchase",
    "Reissues",
    "Risk",
    "Time",
    "Used",
    "field_paths",
    "sample_inputs",
]

INPUTS_SCHEMA: Final = 1
"""The version of the input document; a stored document names the one it was made under."""
_TYPES: Final = {"int": int, "bool": bool, "str": str}


class InputsError(ValueError):
    """A document that is not an input document of this schema (a missing, unknown or
    mistyped field, a value outside its choices)."""


class _Section:
    """A section of the document: every field an int, a bool or a str, checked when made;
    `CHOICES` names the values a text field may take."""

    CHOICES: ClassVar[Mapping[str, frozenset[str]]] = {}

    def __post_init__(self) -> None:
        for spec in fields(self):  # type: ignore[arg-type]
            value = getattr(self, spec.name)
            wanted = _TYPES[str(spec.type)]
            if type(value) is not wanted:  # a bool is no int here, nor an int a bool
                raise InputsError(
                    f"{type(self).__name__.lower()}.{spec.name}: {spec.type} expected, "
                    f"not {type(value).__name__}"
                )
            choices = self.CHOICES.get(spec.name)
            if choices is not None and value not in choices:
                raise InputsError(
                    f"{type(self).__name__.lower()}.{spec.name}: one of {sorted(choices)}, "
                    f"not {value!r}"
                )


@dataclass(frozen=True)
class Purchase(_Section):
    order: str
    paid_by: str
    amount: int
    currency: str
    proof: str
    """The hex leaf hash of the payment's ledger event."""
    age_s: int
    CHOICES: ClassVar[Mapping[str, frozenset[str]]] = {
        "paid_by": frozenset({"account", "staff", "partner"})
    }


@dataclass(frozen=True)
class Device(_Section):
    is_new: bool
    enrolled: int
    active: int
    newest_age_s: int
    same_as_current: bool


@dataclass(frozen=True)
class Place(_Section):
    network: str
    position_given: bool
    distance_m: int
    CHOICES: ClassVar[Mapping[str, frozenset[str]]] = {
        "network": frozenset({"venue", "campus", "outside", "unknown"})
    }


@dataclass(frozen=True)
class Time(_Section):
    to_doors_s: int
    to_end_s: int


@dataclass(frozen=True)
class Reissues(_Section):
    ticket: int
    holder_30d: int


@dataclass(frozen=True)
class Used(_Section):
    entries: int
    allowed: int


@dataclass(frozen=True)
class Risk(_Section):
    score: int


@dataclass(frozen=True)
class Auth(_Section):
    method: str
    recent_s: int
    totp: bool
    email: bool
    CHOICES: ClassVar[Mapping[str, frozenset[str]]] = {
        "method": frozenset({"password", "device", "passkey", "staff", "partner"})
    }


ACTIONS: Final = frozenset({"reissue", "transfer", "lost"})
_SECTIONS: Final[Mapping[str, type[_Section]]] = {
    "purchase": Purchase,
    "device": Device,
    "place": Place,
    "time": Time,
    "reissues": Reissues,
    "used": Used,
    "risk": Risk,
    "auth": Auth,
}


@dataclass(frozen=True)
class Inputs:
    """One decision's facts. `to_document` is what rules see; `from_document` reads one back
    (a stored decision's), refusing anything that is not exactly this schema."""

    action: str
    purchase: Purchase
    device: Device
    place: Place
    time: Time
    reissues: Reissues
    used: Used
    risk: Risk
    auth: Auth

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise InputsError(f"action: one of {sorted(ACTIONS)}, not {self.action!r}")
        for name, kind in _SECTIONS.items():
            if type(getattr(self, name)) is not kind:
                raise InputsError(f"{name}: a {kind.__name__} expected")

    def to_document(self) -> dict[str, Any]:
        """The document as plain JSON values, `schema` first."""
        document: dict[str, Any] = {"schema": INPUTS_SCHEMA, "action": self.action}
        for name in _SECTIONS:  # not `asdict`, which copies deeply (ten times slower)
            document[name] = dict(vars(getattr(self, name)))
        return document

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Inputs:
        if not isinstance(document, Mapping):
            raise InputsError("an input document is an object")
        if document.get("schema") != INPUTS_SCHEMA:
            raise InputsError(f"schema {INPUTS_SCHEMA} expected, not {document.get('schema')!r}")
        _same_keys("the document", document, {"schema", "action", *_SECTIONS})
        sections: dict[str, _Section] = {}
        for name, kind in _SECTIONS.items():
            section = document[name]
            if not isinstance(section, Mapping):
                raise InputsError(f"{name}: an object expected")
            _same_keys(name, section, {spec.name for spec in fields(kind)})  # type: ignore[arg-type]
            sections[name] = kind(**section)
        return cls(action=document["action"], **sections)  # type: ignore[arg-type]


def _same_keys(where: str, given: Mapping[str, Any], wanted: set[str]) -> None:
    keys = set(given)
    if keys != wanted:
        raise InputsError(
            f"{where}: missing {sorted(wanted - keys)}, unknown {sorted(keys - wanted)}"
        )


def sample_inputs(action: str = "reissue") -> Inputs:
    """A typical request (a ticket paid from the account a day ago, moved to a new phone on
    campus, a day before doors): what `load` runs every rule on, and what benchmarks use."""
    return Inputs(
        action=action,
        purchase=Purchase(
            order="o-sample",
            paid_by="account",
            amount=8000,
            currency="CNY",
            proof="00" * 32,
            age_s=86_400,
        ),
        device=Device(is_new=True, enrolled=2, active=1, newest_age_s=60, same_as_current=False),
        place=Place(network="campus", position_given=True, distance_m=850),
        time=Time(to_doors_s=86_400, to_end_s=97_200),
        reissues=Reissues(ticket=0, holder_30d=0),
        used=Used(entries=0, allowed=1),
        risk=Risk(score=0),
        auth=Auth(method="password", recent_s=30, totp=False, email=True),
    )


def field_paths() -> frozenset[str]:
    """Every name a rule may read: the top-level ones and `section.field`."""
    document = sample_inputs().to_document()
    paths = set(document)
    for name, value in document.items():
        if isinstance(value, dict):
            paths.update(f"{name}.{key}" for key in value)
    return frozenset(paths)
