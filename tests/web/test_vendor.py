"""The browser assets vendored from npm are the files the manifest names, byte for byte (no
network: `scripts/vendor.sh` fetches and checks them against npm), each with its licence."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from duopass.server.web import templating

VENDOR = templating.STATIC_DIR / "vendor"
MANIFEST = json.loads((VENDOR / "manifest.json").read_text())


def test_every_vendored_file_matches_the_manifest():
    expected: set[Path] = {VENDOR / "manifest.json"}
    for package in MANIFEST["packages"]:
        folder = VENDOR / f"{package['name']}-{package['version']}"
        assert package["integrity"].startswith("sha512-")
        assert set(package["files"]) == set(package["sha256"])
        assert "LICENSE" in package["files"]
        for name, digest in package["sha256"].items():
            data = (folder / name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == digest, f"{folder.name}/{name}"
            expected.add(folder / name)
    assert {p for p in VENDOR.rglob("*") if p.is_file()} == expected  # nothing unlisted


def test_the_versions_the_pages_load_are_the_vendored_ones():
    names = {p["name"]: p["version"] for p in MANIFEST["packages"]}
    assert names["htmx.org"].startswith("2.")
    base = (templating.TEMPLATES / "console" / "base.html").read_text()
    for package in ("htmx.org", "axe-core"):
        assert f"vendor/{package}-{names[package]}/" in base
