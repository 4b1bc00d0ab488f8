"""The names a rule reads, checked against the input document before it ever runs: a rule
that reads `device.is_neww` would otherwise evaluate to false (or error) only on the inputs
that reach it, since CEL's `&&` and `||` absorb what they do not need.

The check reads the expression's text (string literals blanked): every `root.field` whose root
is a section of the document must name one of its fields; a scalar (`action`) has none; and
every variable CEL reports must be the document's or bound by a macro (`x` in `all(x, ...)`).
"""

from __future__ import annotations

import re
from typing import Final

from duopass.policy.inputs import field_paths

__all__ = ["unknown_name"]

_PATHS: Final = field_paths()
_ROOTS: Final = frozenset(path for path in _PATHS if "." not in path)
_SECTIONS: Final = frozenset(path.split(".")[0] for path in _PATHS if "." in path)
_STRING: Final = re.compile(
    r"""[rRbB]{0,2}('''[\s\S]*?'''|\"\"\"[\s\S]*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")"""
)
_PATH: Final = re.compile(r"(?<![\w.])([A-Za-z_]\w*)((?:\s*\.\s*[A-Za-z_]\w*)*)(\s*\()?")
_MACRO_VARIABLE: Final = re.compile(
    r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,"
)


def unknown_name(
    when: str, variables: list[str], paths: frozenset[str] | None = None
) -> tuple[int, str] | None:
    """The index in `when` of the first name the input document lacks, and why; None when
    every name is known. `paths`: the document's names (`field_paths()` form); the reissue
    input document's when None."""
    if paths is None:
        return _unknown(when, variables, _PATHS, _ROOTS, _SECTIONS)
    roots = frozenset(path for path in paths if "." not in path)
    sections = frozenset(path.split(".")[0] for path in paths if "." in path)
    return _unknown(when, variables, paths, roots, sections)


def _unknown(
    when: str,
    variables: list[str],
    paths: frozenset[str],
    roots: frozenset[str],
    sections: frozenset[str],
) -> tuple[int, str] | None:
    text = _STRING.sub(lambda m: " " * len(m[0]), when)
    bound = set(_MACRO_VARIABLE.findall(text))
    for name in variables:
        if name not in roots and name not in bound:
            found = re.search(rf"(?<![\w.]){re.escape(name)}\b", text)
            return (found.start() if found else 0), f"no input named {name!r}"
    for match in _PATH.finditer(text):
        root, members = match[1], [m.strip() for m in match[2].split(".")[1:]]
        if root not in roots or root in bound or not members:
            continue
        called = match[3] is not None  # the last member is a method: `x.startsWith(...)`
        fields = members[:-1] if called else members
        if not fields:
            continue
        where = match.start(2) + match[2].index(fields[0])
        if root not in sections:
            return where, f"{root} has no fields (it is a {_kind(root)})"
        if f"{root}.{fields[0]}" not in paths:
            return where, f"{root} has no field {fields[0]!r}"
        if len(fields) > 1:
            return where, f"{root}.{fields[0]} has no fields"
    return None


def _kind(root: str) -> str:
    if root == "features":
        return 'map: features["account.sign_in_failure.1h"]'
    if root == "signals":
        return "list"
    return "number" if root in ("schema", "score") else "string"
