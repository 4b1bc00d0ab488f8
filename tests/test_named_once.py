"""The purse limits' terms are named once (issue 15, review mends): the payment PIN's form and
the limits' largest values in `duopass.protocol.purse`, which the server, the wallet and the
command line all read (the wallet may not import the server); and the office's six bounds and
defaults are listed by `Bounds` alone, not spelled out again where they are read or written."""

from __future__ import annotations

import ast
from pathlib import Path

import duopass
from duopass.protocol import purse
from duopass.server.services.purse_limits import BOUND_NAMES

PACKAGE = Path(duopass.__file__).parent
SIX_DIGITS = ("[0-9]{6}", r"\d{6}")
OTHER_SIX_DIGITS = {
    "server/api/routes/session.py": "a one-time code (TOTP), not a PIN",
    "wallet/client.py": "a one-time code (TOTP), not a PIN",
}


def _trees() -> list[tuple[str, ast.Module]]:
    return [
        (str(path.relative_to(PACKAGE)), ast.parse(path.read_text()))
        for path in sorted(PACKAGE.rglob("*.py"))
    ]


def test_the_pin_form_is_written_once() -> None:
    written = {
        name
        for name, tree in _trees()
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and any(form in node.value for form in SIX_DIGITS)
    }
    assert written - set(OTHER_SIX_DIGITS) == set()
    assert purse.is_pin("012345") and not purse.is_pin("12345") and not purse.is_pin("0123456")
    assert not purse.is_pin("012345\n") and not purse.is_pin("٠١٢٣٤٥")  # ASCII digits only


def _names(node: ast.AST) -> set[str]:
    """The bound names a node lists directly: attributes read, keywords, keys, strings."""
    found = set()
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Attribute):
            found.add(child.attr)
        elif isinstance(child, ast.keyword) and child.arg:
            found.add(child.arg)
        elif isinstance(child, ast.Constant) and isinstance(child.value, str):
            found.add(child.value)
    for part in getattr(node, "keys", []) or []:
        if isinstance(part, ast.Constant) and isinstance(part.value, str):
            found.add(part.value)
    return found & set(BOUND_NAMES)


def test_the_bounds_are_listed_by_bounds_alone() -> None:
    readers = ("server/services/purse_limits.py", "server/api/routes/purse.py")
    spelled = [
        (name, node.lineno)
        for name, tree in _trees()
        if name in readers
        for node in ast.walk(tree)
        if isinstance(node, ast.Call | ast.Tuple | ast.List | ast.Dict)
        and len(_names(node)) > 3  # the holder sees the three maxima
    ]
    assert spelled == []
    assert len(BOUND_NAMES) == 6
