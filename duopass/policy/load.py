"""Loading a policy file (TOML): every refusal names the file's line and column.

The file holds `version`, a list of `[[rule]]` tables (`name`, `when`, `outcome`,
`factors`) and the risk half's `[[signal]]` and `[[guard]]` tables (`load_risk`), nothing
else. Each `when` is compiled; each is checked for the names it reads
(every `section.field` must be one of the input document's) and run on sample documents, where
it must give a bool; the last rule is `when = "true"`, so some rule always decides.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Callable
from typing import Any, Final, NoReturn

import cel

from duopass.policy.inputs import ACTIONS, sample_inputs
from duopass.policy.layout import Layout, Spot, decode_string, scan
from duopass.policy.load_risk import load_risk
from duopass.policy.model import Factor, Outcome, Policy, PolicyError, Rule
from duopass.policy.names import unknown_name

__all__ = [
    "NAME_PATTERN",
    "POLICY_BYTES_MAX",
    "RULES_MAX",
    "VERSION_PATTERN",
    "WHEN_CHARS_MAX",
    "load",
    "load_bytes",
]

POLICY_BYTES_MAX: Final = 65_536
RULES_MAX: Final = 100
WHEN_CHARS_MAX: Final = 4_096
NAME_PATTERN: Final = re.compile(r"[a-z][a-z0-9_]{0,55}")
"""At most 56 characters, so that a name with `ERROR_MARK` after it fits the 64 of a record."""
VERSION_PATTERN: Final = re.compile(r"[!-~]{1,64}")
_OUTCOMES: Final = frozenset(outcome.value for outcome in Outcome)
_FACTORS: Final = frozenset(factor.value for factor in Factor)
_RULE_KEYS: Final = {"name", "when", "outcome", "factors"}
_TOML_WHERE: Final = re.compile(r"\(at line (\d+), column (\d+)\)")
_CEL_WHERE: Final = re.compile(r"<input>:(\d+):(\d+): (.*?)(?:\n|$)")
_ROOTS: Final = frozenset(sample_inputs().to_document())
_SAMPLES: Final = [sample_inputs(action).to_document() for action in sorted(ACTIONS)]


def load_bytes(data: bytes) -> Policy:
    """The policy in a file's bytes (UTF-8), or `PolicyError` (as `load`, or where the bytes
    stop being UTF-8)."""
    if len(data) > POLICY_BYTES_MAX:
        raise PolicyError(1, 1, f"a policy is at most {POLICY_BYTES_MAX} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = len(data[data.rfind(b"\n", 0, exc.start) + 1 : exc.start].decode()) + 1
        raise PolicyError(line, column, "not UTF-8") from exc
    return load(text)


def load(text: str) -> Policy:
    """The policy in `text`, or `PolicyError` at the line and column that is wrong."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) > POLICY_BYTES_MAX:
        raise PolicyError(1, 1, f"a policy is at most {POLICY_BYTES_MAX} bytes")
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = _TOML_WHERE.search(str(exc))
        line, column = (int(where[1]), int(where[2])) if where else (text.count("\n") + 1, 1)
        why = _TOML_WHERE.sub("", str(exc)).strip()
        raise PolicyError(line, column, f"not TOML: {why}") from exc
    layout = scan(text)
    fail = _failer(layout)
    for key in document.keys() - {"version", "rule", "signal", "guard"}:
        spot = layout.top.get(key, Spot(0, 0)).key
        fail(spot, f"unknown key {key!r} (version, rule, signal and guard only)")
    version = document.get("version")
    if not isinstance(version, str) or not VERSION_PATTERN.fullmatch(version):
        fail(layout.top.get("version", Spot(0, 0)).value, "version: 1 to 64 printable characters")
    tables = document.get("rule")
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        fail(layout.top.get("rule", Spot(0, 0)).key, "no rules: add [[rule]] tables")
    if len(tables) > RULES_MAX:
        fail(layout.rule_spot(RULES_MAX, "name").key, f"at most {RULES_MAX} rules")
    rules: list[Rule] = []
    for index, table in enumerate(tables):
        rule = _rule(layout, index, table, fail)
        if any(earlier.name == rule.name for earlier in rules):
            fail(layout.rule_spot(index, "name").value, f"a second rule named {rule.name!r}")
        rules.append(rule)
    if rules[-1].when.strip() != "true":
        fail(layout.rule_spot(len(rules) - 1, "when").value, 'the last rule is when = "true"')
    reads = frozenset(name for rule in rules for name in rule.program.variables()) & _ROOTS
    weights, guards, feature_reads = load_risk(document, layout, fail, _compile)
    digest = hashlib.sha256(data).digest()
    return Policy(str(version), digest, text, tuple(rules), reads, weights, guards, feature_reads)


def _failer(layout: Layout) -> Callable[[int, str], NoReturn]:
    def fail(offset: int, message: str) -> NoReturn:
        raise PolicyError(*layout.position(offset), message)

    return fail


def _rule(
    layout: Layout, index: int, table: dict[str, Any], fail: Callable[[int, str], NoReturn]
) -> Rule:
    def at(key: str) -> int:
        return layout.rule_spot(index, key).value

    for key in sorted(table.keys() - _RULE_KEYS):
        fail(layout.rule_spot(index, key).key, f"unknown key {key!r} in a rule")
    for key in sorted(_RULE_KEYS - {"factors"} - table.keys()):
        fail(layout.rule_spot(index, "name").key, f"rule {index + 1} has no {key}")
    name, when, outcome = table["name"], table["when"], table["outcome"]
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        fail(at("name"), "a rule's name: a-z first, then a-z, 0-9 or _, at most 56")
    if not isinstance(outcome, str) or outcome not in _OUTCOMES:
        fail(at("outcome"), f"outcome: one of {', '.join(Outcome)}")
    factors = table.get("factors", [])
    if not isinstance(factors, list) or not all(
        isinstance(f, str) and f in _FACTORS for f in factors
    ):
        fail(at("factors"), f"factors: a list of {', '.join(Factor)}")
    if len(set(factors)) != len(factors):
        fail(at("factors"), "factors: each at most once")
    if outcome == Outcome.STEP_UP and not factors:
        fail(at("outcome"), "a step_up rule names the factors it accepts")
    if outcome != Outcome.STEP_UP and factors:
        fail(at("factors"), "only a step_up rule has factors")
    if not isinstance(when, str) or not when.strip():
        fail(at("when"), "when: a CEL expression (a string)")
    if len(when) > WHEN_CHARS_MAX:
        fail(at("when"), f"when: at most {WHEN_CHARS_MAX} characters")
    program = _compile(layout, at("when"), when, name, fail)
    line = layout.position(at("when"))[0]
    return Rule(name, when, Outcome(outcome), tuple(Factor(f) for f in factors), line, program)


def _compile(
    layout: Layout,
    start: int,
    when: str,
    name: str,
    fail: Callable[[int, str], NoReturn],
    *,
    samples: list[dict[str, Any]] | None = None,
    paths: frozenset[str] | None = None,
) -> Any:
    """The compiled expression, its names known (the reissue document's, or `paths`), and a
    bool on every sample (the reissue samples, or `samples`)."""
    offsets = _offsets(layout, start, when)
    try:
        program = cel.compile(when)
    except (ValueError, RuntimeError) as exc:
        where = _CEL_WHERE.search(str(exc))
        if where is None:
            fail(start, f"rule {name}: CEL: {exc}")
        else:
            line, column, message = int(where[1]), int(where[2]), where[3]
            fail(offsets[_index(when, line, column)], f"rule {name}: CEL: {message}")
    wrong = unknown_name(when, program.variables(), paths)
    if wrong is not None:
        fail(offsets[min(wrong[0], len(when))], f"rule {name}: {wrong[1]}")
    for sample in _SAMPLES if samples is None else samples:
        try:
            result = program.execute(sample)
        except Exception as exc:  # the CEL library raises several kinds
            fail(start, f"rule {name}: fails on a sample input: {type(exc).__name__}: {exc}")
        if type(result) is not bool:
            fail(start, f"rule {name}: gives {type(result).__name__}, not a bool")
    return program


def _offsets(layout: Layout, start: int, when: str) -> list[int]:
    """The file offset of each character of `when` (and one past its end): from the text when
    its string could be decoded to exactly `when`, else `start` for every one."""
    try:
        decoded, offsets = decode_string(layout.text, start)
    except (ValueError, IndexError):
        decoded, offsets = "", []
    if decoded != when:
        return [start] * (len(when) + 1)
    return offsets


def _index(when: str, line: int, column: int) -> int:
    """The index in `when` of CEL's 1-based line and column (characters)."""
    lines = when.split("\n")
    line = max(1, min(line, len(lines)))
    index = sum(len(text) + 1 for text in lines[: line - 1]) + column - 1
    return max(0, min(index, len(when)))
