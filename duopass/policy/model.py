"""A loaded policy (its version, the SHA-256 of its text, its named rules compiled) and how it
decides: the first rule whose `when` holds on the input document gives the ruling.

A rule that fails to evaluate at run time (load checks every rule on sample documents, so it
should not) denies, naming the rule with `ERROR_MARK` after it: a decision never raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

import cel

from duopass.policy.inputs import INPUTS_SCHEMA, Inputs

__all__ = [
    "ERROR_MARK",
    "NO_RULE",
    "Factor",
    "Outcome",
    "Policy",
    "PolicyError",
    "Rule",
    "Ruling",
    "decide",
]

ERROR_MARK: Final = "!error"
"""Put after a rule's name in a ruling when that rule failed to evaluate."""
NO_RULE: Final = "no_rule_matched"
"""The rule of a ruling when no rule matched: impossible for a loaded policy, whose last rule
is `when = "true"`; kept so that `decide` is total."""


class Outcome(StrEnum):
    ALLOW = "allow"
    STEP_UP = "step_up"
    """Allowed once the holder passes one of the rule's factors."""
    REVIEW = "review"
    """A person decides."""
    DENY = "deny"


class Factor(StrEnum):
    """What a step-up may ask for: any one of a rule's factors is enough."""

    EMAIL_OTP = "email_otp"
    TOTP = "totp"
    PASSKEY = "passkey"


class PolicyError(ValueError):
    """A policy file that cannot be loaded, at a line and column of the file (1-based)."""

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(f"line {line}, column {column}: {message}")
        self.line = line
        self.column = column
        self.message = message


@dataclass(frozen=True)
class Rule:
    name: str
    when: str
    """The CEL expression, as written."""
    outcome: Outcome
    factors: tuple[Factor, ...]
    line: int
    """The line of the policy file where `when`'s value starts."""
    program: Any = field(compare=False, repr=False)
    """The compiled expression (`cel.Program`)."""


@dataclass(frozen=True)
class Policy:
    version: str
    sha256: bytes
    """Of the file's exact bytes (UTF-8): what pins a decision to this text."""
    text: str = field(repr=False)
    rules: tuple[Rule, ...]
    reads: frozenset[str] = field(default=frozenset(), repr=False)
    """The document's top-level names its rules read: only these are handed to CEL, whose
    conversion of a value costs more than evaluating a rule (docs/policy.md, speed)."""
    weights: tuple[Any, ...] = ()
    """The risk half's `[[signal]]`s (`guards.Weight`), in file order."""
    guards: tuple[Any, ...] = ()
    """The risk half's `[[guard]]`s (`guards.Guard`), in file order: the first that holds acts."""
    feature_reads: frozenset[str] | None = field(default=None, repr=False)
    """The features its signals and guards name (`features["..."]`), the only ones handed to
    CEL; None when one reads `features` otherwise (then every feature is)."""

    def describe(self) -> dict[str, Any]:
        """The policy as `GET /v1/policy` shows it: enough to re-check any decision."""
        return {
            "version": self.version,
            "sha256": self.sha256.hex(),
            "rules": [
                {
                    "name": rule.name,
                    "when": rule.when,
                    "outcome": rule.outcome.value,
                    "factors": [factor.value for factor in rule.factors],
                }
                for rule in self.rules
            ],
            "inputs_schema": INPUTS_SCHEMA,
            "signals": [{"name": w.name, "when": w.when, "weight": w.weight} for w in self.weights],
            "guards": [
                {
                    "name": g.name,
                    "points": list(g.points),
                    "when": g.when,
                    "action": g.action.value,
                    "factors": [factor.value for factor in g.factors],
                    "retry_after_s": g.retry_after_s,
                }
                for g in self.guards
            ],
        }


@dataclass(frozen=True)
class Ruling:
    outcome: Outcome
    rule: str
    """The name of the rule that decided (`name!error` when it failed to evaluate)."""
    factors: tuple[Factor, ...] = ()
    error: str | None = None
    """Why the rule failed to evaluate, for the log; None when it did not."""


def decide(policy: Policy, inputs: Inputs | Mapping[str, Any]) -> Ruling:
    """The ruling of the first rule that holds; never raises."""
    document = inputs.to_document() if isinstance(inputs, Inputs) else inputs
    try:  # converted once for every rule
        context = cel.Context({name: document[name] for name in policy.reads})
    except Exception as exc:  # one CEL cannot hold: deny, never raise
        first = policy.rules[0].name if policy.rules else NO_RULE
        return Ruling(Outcome.DENY, first + ERROR_MARK, error=f"{type(exc).__name__}: {exc}")
    for rule in policy.rules:
        try:
            holds = rule.program.execute(context)
        except Exception as exc:  # the CEL library raises several kinds
            return Ruling(Outcome.DENY, rule.name + ERROR_MARK, error=_why(exc))
        if holds is True:
            return Ruling(rule.outcome, rule.name, rule.factors)
        if holds is not False:
            return Ruling(
                Outcome.DENY, rule.name + ERROR_MARK, error=f"returned {holds!r}, not a bool"
            )
    return Ruling(Outcome.DENY, NO_RULE)


def _why(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"
