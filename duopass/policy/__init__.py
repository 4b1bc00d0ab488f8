"""Policy: the written rules that decide whether a reissue, a transfer or a loss report's
reissue of a ticket is allowed, asks for a step-up, goes to a person, or is refused.

A policy is a TOML file of named rules in CEL (Common Expression Language, through the
`common-expression-language` package), first match wins, its last rule `when = "true"`;
`load` checks it whole and pins it by the SHA-256 of its text; `decide` runs it on the input
document (`Inputs`: purchase proof, device history, place, timing, reissue counts, use, risk,
sign-in). `place` works out the place section from an address and a claimed position. The
same file's risk half (`guards`, loaded by `load_risk`): `[[signal]]`s weighted into a score
and `[[guard]]`s that act at a point (sign-in, reissue, ...) on the risk document.
docs/policy.md describes the format, every input and how a decision is replayed.

May import: the standard library, the CEL library and `duopass.protocol`. Never the server.
"""

from importlib.resources import files

from duopass.policy.inputs import (
    INPUTS_SCHEMA,
    Auth,
    Device,
    Inputs,
    InputsError,
    Place,
    Purchase,
    Reissues,
    Risk,
    Time,
    Used,
    sample_inputs,
)
from duopass.policy.load import load, load_bytes
from duopass.policy.model import (
    ERROR_MARK,
    NO_RULE,
    Factor,
    Outcome,
    Policy,
    PolicyError,
    Rule,
    Ruling,
    decide,
)
from duopass.policy.place import distance_m, place

__all__ = [
    "DEFAULT_POLICY",
    "ERROR_MARK",
    "INPUTS_SCHEMA",
    "NO_RULE",
    "Auth",
    "Device",
    "Factor",
    "Inputs",
    "InputsError",
    "Outcome",
    "Place",
    "Policy",
    "PolicyError",
    "Purchase",
    "Reissues",
    "Risk",
    "Rule",
    "Ruling",
    "Time",
    "Used",
    "bench_inputs",
    "decide",
    "distance_m",
    "load",
    "load_bytes",
    "place",
    "sample_inputs",
]

DEFAULT_POLICY = files(__name__) / "reissue.toml"
"""The policy the server loads unless told another (`duopass serve --policy FILE`)."""


def bench_inputs() -> Inputs:
    """A typical reissue's input document, for benchmarks (`sample_inputs("reissue")`)."""
    return sample_inputs("reissue")
