"""Loads the shared conformance vectors: from `$DUOPASS_SHARED`, else `../shared` beside the repo.

A missing folder fails the run loudly: the vectors are part of the suite and are never skipped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    """The shared folder holding `vectors/`; raises if it cannot be found."""
    configured = os.environ.get("DUOPASS_SHARED")
    folder = Path(configured) if configured else REPO.parent / "shared"
    if not (folder / "vectors").is_dir():
        raise RuntimeError(
            f"shared vectors not found at {folder / 'vectors'}: set DUOPASS_SHARED to the folder "
            "holding PROTOCOL.md and vectors/ (they are part of the test suite, never skipped)"
        )
    return folder


def vector_dir(*parts: str) -> Path:
    folder = shared_dir().joinpath("vectors", *parts)
    if not folder.is_dir():
        raise RuntimeError(f"vector folder {folder} is missing")
    return folder


def load_json_vectors(*parts: str) -> list[tuple[str, dict[str, Any]]]:
    """Every `*.json` file in a vector folder (recursively), as (relative name, content)."""
    folder = vector_dir(*parts)
    found = [
        (str(path.relative_to(folder)), json.loads(path.read_text()))
        for path in sorted(folder.rglob("*.json"))
    ]
    if not found:
        raise RuntimeError(f"no vectors in {folder}")
    return found
