"""The terminal agent sends its heartbeat by itself when idle: the server notes when, the bundle
version the terminal holds, its journal backlog and its clock offset (the fleet watched)."""

from __future__ import annotations

from typing import Any

from duopass.server.store.tables import Terminal
from duopass.terminal import AgentSettings, TerminalAgent, enrol
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
