"""The tree shows the architecture (docs/architecture.json): every import between parts is an
allowed arrow and none is a never; pure parts do no I/O and read no clock; every package says
its job and its public surface; no module over 400 lines, no function over 70.

Imports are read from the code (the AST of every module, imports inside functions and relative
imports included), so a new arrow that breaks the picture fails here."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import duopass

PACKAGE = Path(duopass.__file__).parent
ROOT = PACKAGE.parent
PICTURE = json.loads((ROOT / "docs" / "architecture.json").read_text())
IO_AND_CLOCK = {
    "os",
    "time",
    "datetime",
    "socket",
    "sqlite3",
    "subprocess",
    "pathlib",
    "io",
    "threading",
    "random",
    "sqlalchemy",
    "fastapi",
    "starlette",
    "httpx",
    "uvicorn",
}
"""What a pure part never imports: files, sockets, clocks, threads, databases, HTTP."""
MODULE_LINES_MAX = 400
FUNCTION_LINES_MAX = 70
LONG_ALLOWED = {
    "duopass/protocol/verify.py:verify_code",  # the 19 numbered checks of §3, read as the spec
}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module's path, relative to the repository
    target: str  # the dotted name imported (a module, or a module's attribute)


def _dotted(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text())
    here = _dotted(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(str(path.relative_to(ROOT)), alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the importing package
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            for alias in node.names:
                yield Import(str(path.relative_to(ROOT)), f"{module}.{alias.name}")
            yield Import(str(path.relative_to(ROOT)), module)


def _modules() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if "migrations" not in path.parts)


def _part(where: str) -> str | None:
    """The part a path (or a dotted module name) belongs to: the longest matching prefix."""
    path = where if where.endswith(".py") or "/" in where else where.replace(".", "/")
    best: tuple[int, str | None] = (0, None)
    for name, part in PICTURE["parts"].items():
        for prefix in part["is"]:
            bare = prefix.removesuffix(".py").rstrip("/")
            hit = path == bare or path.startswith(bare + "/") or path.startswith(bare + ".py")
            if hit and len(bare) > best[0]:
                best = (len(bare), name)
    return best[1]


def _edges() -> dict[tuple[str, str], list[Import]]:
    edges: dict[tuple[str, str], list[Import]] = {}
    for path in _modules():
        for found in _imports(path):
            if not found.target.startswith("duopass"):
                continue
            source, target = _part(found.module), _part(found.target)
            if source and target and source != target:
                edges.setdefault((source, target), []).append(found)
    return edges


EDGES = _edges()


def test_every_module_belongs_to_a_part():
    assert [str(p) for p in _modules() if _part(str(p.relative_to(ROOT))) is None] == []


@pytest.mark.parametrize(("source", "target", "why"), PICTURE["never"])
def test_no_import_crosses_a_never(source, target, why):
    assert (source, target) not in EDGES, (why, EDGES.get((source, target)))


def test_every_import_between_parts_is_an_arrow_of_the_picture():
    allowed = {(arrow[0], arrow[1]) for arrow in PICTURE["arrows"]}
    unexpected = {edge: found[:2] for edge, found in EDGES.items() if edge not in allowed}
    assert unexpected == {}


def test_the_ledger_reads_only_the_protocol_cores_cbor():
    ledger = EDGES.get(("Ledger", "Protocol"), [])
    assert {found.target for found in ledger} <= {
        "duopass.protocol.cbor",
        "duopass.protocol.cbor.MalformedError",
        "duopass.protocol.cbor.dumps",
        "duopass.protocol.cbor.encoded",
        "duopass.protocol.cbor.loads",
    }


@pytest.mark.parametrize("part", [n for n, p in PICTURE["parts"].items() if p.get("pure")])
def test_pure_parts_do_no_io_and_read_no_clock(part):
    for path in _modules():
        if _part(str(path.relative_to(ROOT))) != part:
            continue
        for found in _imports(path):
            assert found.target.split(".")[0] not in IO_AND_CLOCK, found


def test_every_package_says_its_job_and_its_public_surface():
    for init in PACKAGE.rglob("__init__.py"):
        if "migrations" in init.parts:
            continue
        tree = ast.parse(init.read_text())
        assert ast.get_docstring(tree), f"{init} has no docstring"
        declared = [
            node
            for node in tree.body
            if isinstance(node, ast.Assign | ast.AnnAssign)
            and any(getattr(t, "id", None) == "__all__" for t in _targets(node))
        ]
        assert declared, f"{init} has no __all__"


def _targets(node: ast.Assign | ast.AnnAssign) -> list[ast.expr]:
    return node.targets if isinstance(node, ast.Assign) else [node.target]


def test_modules_and_functions_stay_small():
    too_long = []
    for path in _modules():
        source = path.read_text()
        where = str(path.relative_to(ROOT))
        if source.count("\n") > MODULE_LINES_MAX:
            too_long.append(f"{where}: {source.count(chr(10))} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > FUNCTION_LINES_MAX and f"{where}:{node.name}" not in LONG_ALLOWED:
                    too_long.append(f"{where}:{node.name}: {lines} lines")
    assert too_long == []


def test_the_picture_names_every_room_of_the_coming_parts():
    rooms = {"Tickets", "Policy", "Risk", "Web", "Partners"}
    assert rooms <= PICTURE["parts"].keys()
    for room in rooms:
        for prefix in PICTURE["parts"][room]["is"]:
            assert (ROOT / prefix / "__init__.py").is_file(), prefix
