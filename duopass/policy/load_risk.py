"""Loading the risk half of a policy file: its `[[signal]]` tables (`name`, `when`, `weight`)
and `[[guard]]` tables (`name`, `points`, `when`, `action`, `factors` for step_up,
`retry_after_s` for rate_limit), each refusal at the file's line and column, every `when`
compiled, its names checked against the risk document and run on a sample of every point.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final, NoReturn

from duopass.policy.guards import (
    FEATURE_NAMES,
    POINTS,
    REQUEST_FIELDS,
    Action,
    Guard,
    Weight,
    sample_risk_documents,
)
from duopass.policy.layout import Layout, Spot
from duopass.policy.model import Factor

__all__ = ["GUARDS_MAX", "RETRY_AFTER_MAX_S", "SIGNALS_MAX", "load_risk"]

SIGNALS_MAX: Final = 100
GUARDS_MAX: Final = 100
RETRY_AFTER_MAX_S: Final = 86_400
_NAME: Final = re.compile(r"[a-z][a-z0-9_]{0,55}")
_WHEN_MAX: Final = 4_096
_SIGNAL_KEYS: Final = {"name", "when", "weight"}
_GUARD_KEYS: Final = {"name", "points", "when", "action", "factors", "retry_after_s"}
_PATHS: Final = frozenset(
    {"point", "features", "request", "score", "signals"} | {f"request.{f}" for f in REQUEST_FIELDS}
)
_FEATURE_LITERAL: Final = re.compile(r"""features\s*\[\s*(['"])(.*?)\1\s*\]""")
_FEATURES_WORD: Final = re.compile(r"(?<![\w.])features\b")
_SAMPLES: Final = sample_risk_documents()

Fail = Callable[[int, str], NoReturn]


def load_risk(
    document: dict[str, Any], layout: Layout, fail: Fail, compile_when: Callable[..., Any]
) -> tuple[tuple[Weight, ...], tuple[Guard, ...], frozenset[str] | None]:
    """The signals and guards of a parsed policy file (none when it has none), and the feature
    names they read (None when one reads `features` other than as `features["name"]`)."""
    weights: list[Weight] = []
    for index, table in enumerate(_tables(document, "signal", SIGNALS_MAX, layout, fail)):
        weight = _signal(layout, index, table, fail, compile_when)
        if any(earlier.name == weight.name for earlier in weights):
            fail(layout.spot("signal", index, "name").value, f"a second signal {weight.name!r}")
        weights.append(weight)
    guards: list[Guard] = []
    for index, table in enumerate(_tables(document, "guard", GUARDS_MAX, layout, fail)):
        guard = _guard(layout, index, table, fail, compile_when)
        if any(earlier.name == guard.name for earlier in guards):
            fail(layout.spot("guard", index, "name").value, f"a second guard {guard.name!r}")
        guards.append(guard)
    return tuple(weights), tuple(guards), _feature_reads([*weights, *guards])


def _feature_reads(tables: list[Weight | Guard]) -> frozenset[str] | None:
    names: set[str] = set()
    for table in tables:
        literal = _FEATURE_LITERAL.findall(table.when)
        if len(literal) != len(_FEATURES_WORD.findall(table.when)):
            return None
        names.update(name for _, name in literal)
    return frozenset(names)


def _tables(
    document: dict[str, Any], kind: str, most: int, layout: Layout, fail: Fail
) -> list[dict[str, Any]]:
    tables = document.get(kind, [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        fail(layout.top.get(kind, Spot(0, 0)).key, f"{kind}: [[{kind}]] tables")
    if len(tables) > most:
        fail(layout.spot(kind, most, "name").key, f"at most {most} {kind}s")
    return tables


def _common(
    layout: Layout, kind: str, index: int, table: dict[str, Any], *, keys: set[str], fail: Fail
) -> tuple[str, str]:
    for key in sorted(table.keys() - keys):
        fail(layout.spot(kind, index, key).key, f"unknown key {key!r} in a {kind}")
    for key in ("name", "when"):
        if key not in table:
            fail(layout.spot(kind, index, "name").key, f"{kind} {index + 1} has no {key}")
    name, when = table["name"], table["when"]
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        fail(layout.spot(kind, index, "name").value, f"a {kind}'s name: a-z first, then a-z0-9_")
    if not isinstance(when, str) or not when.strip() or len(when) > _WHEN_MAX:
        fail(layout.spot(kind, index, "when").value, f"when: CEL, 1 to {_WHEN_MAX} characters")
    for match in _FEATURE_LITERAL.finditer(when):
        if match[2] not in FEATURE_NAMES:
            fail(layout.spot(kind, index, "when").value, f"{kind} {name}: no feature {match[2]!r}")
    return name, when


def _signal(
    layout: Layout, index: int, table: dict[str, Any], fail: Fail, compile_when: Callable[..., Any]
) -> Weight:
    name, when = _common(layout, "signal", index, table, keys=_SIGNAL_KEYS, fail=fail)
    weight = table.get("weight")
    if type(weight) is not int or not 1 <= weight <= 100:
        fail(layout.spot("signal", index, "weight").value, "weight: an integer 1 to 100")
    at = layout.spot("signal", index, "when").value
    program = compile_when(layout, at, when, name, fail, samples=_SAMPLES, paths=_PATHS)
    return Weight(name, when, weight, layout.position(at)[0], program)


def _guard(
    layout: Layout, index: int, table: dict[str, Any], fail: Fail, compile_when: Callable[..., Any]
) -> Guard:
    name, when = _common(layout, "guard", index, table, keys=_GUARD_KEYS, fail=fail)

    def at(key: str) -> int:
        return layout.spot("guard", index, key).value

    points = table.get("points")
    if not isinstance(points, list) or not points or not all(p in POINTS for p in points):
        fail(at("points"), f"points: a list of {', '.join(POINTS)}")
    if "reissue" in points:
        fail(at("points"), "reissues are decided by the [[rule]]s, which read risk.score")
    action = table.get("action")
    if action not in set(Action):
        fail(at("action"), f"action: one of {', '.join(Action)}")
    factors = table.get("factors", [])
    if not isinstance(factors, list) or not all(f in set(Factor) for f in factors):
        fail(at("factors"), f"factors: a list of {', '.join(Factor)}")
    if (action == Action.STEP_UP) != bool(factors):
        fail(at("action"), "a step_up guard, and only one, names the factors it accepts")
    retry = table.get("retry_after_s", 0)
    if (action == Action.RATE_LIMIT) != ("retry_after_s" in table):
        fail(at("action"), "a rate_limit guard, and only one, has retry_after_s")
    if type(retry) is not int or not 0 <= retry <= RETRY_AFTER_MAX_S:
        fail(at("retry_after_s"), f"retry_after_s: 1 to {RETRY_AFTER_MAX_S}")
    if action == Action.RATE_LIMIT and retry < 1:
        fail(at("retry_after_s"), f"retry_after_s: 1 to {RETRY_AFTER_MAX_S}")
    program = compile_when(layout, at("when"), when, name, fail, samples=_SAMPLES, paths=_PATHS)
    return Guard(
        name,
        tuple(dict.fromkeys(points)),
        when,
        Action(action),
        tuple(Factor(f) for f in factors),
        retry,
        layout.position(at("when"))[0],
        program,
    )
