"""Debian's Chromium for the browser tests (`scripts/chromium.sh` installs it if absent), driven
by Playwright, which never downloads a browser of its own. A test folder takes the session's
browser by importing the fixture in its conftest (once)::

    from tests.chromium import chromium_fixture  # noqa: F401

When the browser cannot be installed the fixture fails with the script's own message: it never
skips."""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "chromium.sh"
INSTALL_TIMEOUT = 900  # seconds: a first run installs the package from Debian


class ChromiumError(RuntimeError):
    """`scripts/chromium.sh` found no browser and could not install one."""


@functools.cache
def chromium_path() -> str:
    """/usr/bin/chromium, installed first if absent (asked once a process)."""
    result = subprocess.run(
        [str(SCRIPT)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        timeout=INSTALL_TIMEOUT,
    )
    if result.returncode != 0:
        raise ChromiumError(result.stderr.strip())
    return result.stdout.strip()


@pytest.fixture(scope="module", name="chromium")
def chromium_fixture() -> Iterator[object]:
    """A headless Chromium (Playwright's `Browser`) for one test module. Not for the session:
    Playwright's sync API keeps an event loop running on the worker's thread until it stops, and
    a later test of another module there that calls `asyncio.run` would be refused."""
    os.environ["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True)
        try:
            yield browser
        finally:
            browser.close()
