"""The ledger core stays pure, and its input checks survive `python -O`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import duopass.ledger

PACKAGE = Path(duopass.ledger.__file__).parent
ALLOWED_OUTSIDE_STDLIB = {"nacl", "rfc3161_client", "cryptography"}
"""Signatures only: Ed25519 (libsodium), and RFC 3161 timestamps with their X.509 chain
(`ledger.timestamp`), both pure checks of bytes."""
ALLOWED_DUOPASS = {"duopass.ledger", "duopass.protocol.cbor"}
"""The §7 leaf is the protocol core's deterministic CBOR, and nothing else of the core."""


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_ledger_imports_only_stdlib_signature_libraries_and_itself():
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) >= 8
    for path in modules:
        for name in imported_modules(path):
            top = name.partition(".")[0]
            if top == "duopass":
                assert any(name == a or name.startswith(a + ".") for a in ALLOWED_DUOPASS), (
                    path,
                    name,
                )
            else:
                assert top in sys.stdlib_module_names or top in ALLOWED_OUTSIDE_STDLIB, (path, name)


def test_every_module_says_its_job_and_stays_small():
    for path in PACKAGE.glob("*.py"):
        source = path.read_text()
        assert ast.get_docstring(ast.parse(source)), path
        assert len(source.splitlines()) <= 400, path  # STYLE.md: split past about 400


CHECKS_UNDER_O = """
from duopass.ledger import LedgerError, verify_consistency, verify_inclusion
h = bytes(32)
cases = [
    lambda: verify_inclusion(leaf_hash=h, index=0, size=1, proof=[], root=b"short"),
    lambda: verify_inclusion(leaf_hash=h, index=1, size=1, proof=[], root=h),
    lambda: verify_inclusion(leaf_hash=h, index=0, size=2, proof=[], root=h),
    lambda: verify_consistency(size1=0, size2=0, proof=[], root1=h, root2=h),
    lambda: verify_consistency(size1=1, size2=2, proof=[h, h], root1=h, root2=h),
]
for case in cases:
    try:
        case()
    except LedgerError:
        continue
    raise SystemExit("accepted under -O")
"""


def test_input_checks_survive_python_O():
    subprocess.run([sys.executable, "-O", "-c", CHECKS_UNDER_O], check=True)
