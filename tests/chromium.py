"""Debian's Chromium for the browser tests (`scripts/chromium.sh` installs it if absent), driven
by Playwright, which never downloads a browser of its own. A test module takes the session's
browser by importing the fixture::

    from tests.chromium import chromium_fixture  # noqa: F401

When the browser cannot be installed the fixture fails with the script's own message: it never
skips."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "chromium.sh"
INSTALL_TIMEOUT = 900  # seconds: a first run installs the package from Debian


class ChromiumError(RuntimeError):
    """`scripts/chromium.sh` found no browser and could not install one."""


def chromium_path() -> str:
    """/usr/bin/chromium, installed first if absent."""
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


_RUNNING: list[object] = []
"""The session's browser once started. Each module that imports the fixture holds its own
session-scoped copy of it, and Playwright's sync API runs once per thread: the first copy
starts the browser (and, set up first, is torn down last), every other one lends it."""


@pytest.fixture(scope="session", name="chromium")
def chromium_fixture() -> Iterator[object]:
    """A headless Chromium (Playwright's `Browser`) for the whole session."""
    if _RUNNING:
        yield _RUNNING[0]
        return
    os.environ["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True)
        _RUNNING.append(browser)
        try:
            yield browser
        finally:
            _RUNNING.clear()
            browser.close()
