"""The tree shows the architecture: the protocol core imports no party, no I/O, no clock."""

from __future__ import annotations

import ast
from pathlib import Path

import duopass

PACKAGE = Path(duopass.__file__).parent
FORBIDDEN_IN_CORE = {"os", "time", "datetime", "socket", "sqlite3", "subprocess", "pathlib", "io"}


def _imports(folder: Path) -> dict[str, set[str]]:
    found = {}
    for path in folder.rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
        found[str(path.relative_to(PACKAGE))] = names
    return found


def test_protocol_imports_only_itself_among_duopass_packages():
    for module, names in _imports(PACKAGE / "protocol").items():
        ours = {name for name in names if name.startswith("duopass")}
        assert all(name.startswith("duopass.protocol") for name in ours), (module, ours)
        assert not names & FORBIDDEN_IN_CORE, (module, names & FORBIDDEN_IN_CORE)


def test_ledger_imports_no_party():
    ledger = PACKAGE / "ledger"
    if not ledger.exists():
        return
    for module, names in _imports(ledger).items():
        ours = {name for name in names if name.startswith("duopass")}
        assert all(name.startswith(("duopass.ledger", "duopass.protocol")) for name in ours), (
            module,
            ours,
        )
        assert not names & FORBIDDEN_IN_CORE, (module, names & FORBIDDEN_IN_CORE)


def test_every_package_declares_its_public_surface():
    for init in PACKAGE.rglob("__init__.py"):
        tree = ast.parse(init.read_text())
        assert ast.get_docstring(tree), f"{init} has no docstring"


def test_the_wallet_talks_to_the_server_over_http_only():
    for module, names in _imports(PACKAGE / "wallet").items():
        ours = {name for name in names if name.startswith("duopass")}
        assert all(name.startswith(("duopass.wallet", "duopass.protocol")) for name in ours), (
            module,
            ours,
        )


def test_the_terminal_talks_to_the_server_over_http_only():
    for module, names in _imports(PACKAGE / "terminal").items():
        assert not any(name.startswith("duopass.server") for name in names), module
