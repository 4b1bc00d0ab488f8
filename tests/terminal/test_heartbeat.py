"""The terminal agent sends its heartbeat by itself when idle: the server notes when, the bundle
version the terminal holds, its journal backlog and its clock offset (the fleet watched); and a
terminal whose clock jumped sets it again instead of being refused for ever."""

from __future__ import annotations

import time
from typing import Any

import pytest

from duopass.server.store.tables import Terminal
from duopass.terminal import AgentSettings, TerminalAgent, enrol
from duopass.terminal.bundles import BundleSync
from duopass.terminal.client import Client, Refused
from duopass.terminal.enrol import load_key
from duopass.terminal.heartbeat import beat
from duopass.terminal.store import Store
from tests.server.harness import Running
from tests.terminal.conftest import till_code, wait_for


def _row(server: Running) -> Any:
    return server.ctx.run(lambda unit: unit.session.get(Terminal, "till-1"))


def test_an_idle_agent_sends_heartbeats_on_its_own(server: Running, tmp_path) -> None:
    code, _merchant = till_code(server.admin())
    data = tmp_path / "till"
    enrol(data, server=server.url, terminal_id="till-1", code=code)
    with TerminalAgent(data, AgentSettings(heartbeat_s=0.2)) as agent:
        agent.start()
        wait_for(lambda: _row(server).heartbeat_at is not None, "a first heartbeat")
        wait_for(lambda: agent.store.get("bundle_seq") is not None, "the first bundle")
        held = agent.store.get("bundle_seq")
        wait_for(lambda: _row(server).held_bundle_seq == held, "a heartbeat after the bundle")
        row = _row(server)
        assert row.reported_backlog == 0 and abs(row.clock_offset_s) <= 2


def test_a_clock_that_jumped_is_set_again_from_the_refusal(server: Running, tmp_path) -> None:
    """A terminal whose clock jumped 1,000 s (a reset RTC) signs every request outside the
    server's 300 s window: the bundle sync reads the offset from the 401's `Date` and goes on,
    and its heartbeat then shows the server a clock in step."""
    code, _merchant = till_code(server.admin())
    data = tmp_path / "till"
    enrol(data, server=server.url, terminal_id="till-1", code=code)
    store = Store(data)
    jumped = Client(
        server.url,
        terminal_id="till-1",
        key=load_key(data),
        offset=store.clock_offset,
        clock=lambda: time.time() + 1000,
    )
    try:
        with pytest.raises(Refused) as refused:
            beat(jumped, bundle_seq=None, backlog=0, timeout_s=10)
        assert refused.value.status == 401
        BundleSync(store, jumped, timeout_s=10).sync()
        assert abs(jumped.offset + 1000) <= 2
        assert abs(beat(jumped, bundle_seq=None, backlog=0, timeout_s=10)) <= 2
        assert abs(_row(server).clock_offset_s) <= 2
    finally:
        jumped.close()
        store.close()
