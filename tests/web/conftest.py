"""A real server for the console's tests: on SQLite, axe-core served (`test_axe`), an admin
(`tests.server.harness`) and an operator; the session's Chromium (`tests.chromium`), here so
that every browser test module shares the one browser."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from duopass.server.services import staff
from tests.chromium import chromium_fixture  # noqa: F401  (a browser a module, for every module here)
from tests.server.harness import ManualClock, Running, running_server

OPERATOR = {"login": "olga", "password": "operator-password"}


def _started(tmp_path, clock=None, **settings) -> Iterator[Running]:
    extra = settings if clock is None else {"clock": clock, **settings}
    with running_server(
        f"sqlite:///{tmp_path / 'duopass.db'}", tmp_path / "data", test_axe=True, **extra
    ) as running:
        running.ctx.run(lambda unit: staff.add(unit, role="operator", **OPERATOR))
        yield running


@pytest.fixture(autouse=True)
def _close_browsers() -> Iterator[None]:
    from tests.web import console

    yield
    while console.OPEN:
        console.OPEN.pop().close()


@pytest.fixture
def shots(tmp_path) -> Path:
    """Where a browser test saves its screenshots: `$DUOPASS_SCREENSHOTS` when set (how
    docs/screenshots/ is made), else the test's own folder."""
    folder = Path(os.environ.get("DUOPASS_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def site(tmp_path) -> Iterator[Running]:
    yield from _started(tmp_path)


@pytest.fixture
def local_site(tmp_path) -> Iterator[Running]:
    """`site` whose `url` names `localhost` (the server still binds 127.0.0.1): WebAuthn
    refuses an IP address as relying party id, so passkeys are tried at http://localhost:PORT
    (a secure context, as https is)."""
    for running in _started(tmp_path):
        yield dataclasses.replace(running, url=running.url.replace("127.0.0.1", "localhost"))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def clocked_site(tmp_path, clock) -> Iterator[Running]:
    yield from _started(tmp_path, clock)


@pytest.fixture
def guarded_site(tmp_path) -> Iterator[Running]:
    """`site` with the default policy and guards at the counter's top-up (a big one is held for
    review: a `risk_decision` alert), as tests/server/test_risk_engine.py has them."""
    from duopass.policy import DEFAULT_POLICY
    from tests.server.test_risk_engine import GUARDED

    policy = tmp_path / "guarded.toml"
    policy.write_text(DEFAULT_POLICY.read_text() + GUARDED)
    yield from _started(tmp_path, policy_file=policy)
