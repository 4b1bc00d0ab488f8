"""The fleet watched, over HTTP on the movable clock: a terminal agent's own client sends its
heartbeats and bundle requests signed by its clock, the maintenance run sweeps the fleet, and the
card office sees the alerts (`/v1/admin/alerts`) and each terminal's state
(`/v1/admin/terminals`): one alert per episode, closed by the server when the terminal recovers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from duopass.risk import AlertKind
from duopass.risk.fleet import BUNDLE_LAG_CRITICAL_S, BUNDLE_LAG_WARNING_S, HEARTBEAT_MISSED_S
from duopass.server import maintenance
from duopass.server.services import fleet_watch
from duopass.server.store.tables import Terminal
from duopass.terminal.client import Client
from duopass.terminal.heartbeat import beat
from tests.server.harness import Admin, ManualClock, Running, enrolled_till

HEARTBEAT = AlertKind.HEARTBEAT_MISSED.value
LAG, CRITICAL = AlertKind.BUNDLE_LAG.value, AlertKind.BUNDLE_LAG_CRITICAL.value


@contextmanager
def agent_client(server: Running, name: str, clock: Callable[[], float]) -> Iterator[Client]:
    """An enrolled till's own HTTP client (duopass.terminal.client), on `clock`."""
    admin = server.admin()
    till, _merchant = enrolled_till(server.http, admin, name)
    client = Client(server.url, terminal_id=name, key=till.key, clock=clock)
    try:
        yield client
    finally:
        client.close()


def poll(client: Client, *, backlog: int = 0) -> None:
    """What an idle agent does every 300 s: a bundle, a heartbeat."""
    client.request("GET", "/v1/terminal/bundle?since=0", timeout=10)
    beat(client, bundle_seq=None, backlog=backlog, timeout_s=10)


def alerts_of(admin: Admin, terminal_id: str, state: str) -> list[dict[str, Any]]:
    answer = admin.http.get("/v1/admin/alerts", params={"state": state}, headers=admin.auth)
    assert answer.status_code == 200, answer.text
    return [a for a in answer.json()["items"] if a["terminal_id"] == terminal_id]


def kinds(admin: Admin, terminal_id: str, state: str = "open") -> list[str]:
    return sorted(a["kind"] for a in alerts_of(admin, terminal_id, state))


def fleet_row(admin: Admin, terminal_id: str) -> dict[str, Any]:
    answer = admin.http.get("/v1/admin/terminals", headers=admin.auth)
    return next(t for t in answer.json()["items"] if t["id"] == terminal_id)


def swept_after(server: Running, clock: ManualClock, seconds: float) -> None:
    clock.advance(seconds)
    maintenance.run_once(server.ctx)


def test_a_silent_terminal_misses_its_heartbeat_then_lags_once_per_episode(
    clocked_server: Running, clock: ManualClock
) -> None:
    admin = clocked_server.admin()
    with agent_client(clocked_server, "till-quiet", clock) as client:
        poll(client)
        swept_after(clocked_server, clock, 60)
        assert kinds(admin, "till-quiet") == []
        assert fleet_row(admin, "till-quiet")["online"] is True

        swept_after(clocked_server, clock, HEARTBEAT_MISSED_S)  # it stopped polling
        assert kinds(admin, "till-quiet") == [HEARTBEAT]
        swept_after(clocked_server, clock, 60)  # a minute later: the same episode
        assert kinds(admin, "till-quiet") == [HEARTBEAT]

        swept_after(clocked_server, clock, BUNDLE_LAG_WARNING_S - HEARTBEAT_MISSED_S - 120)
        assert kinds(admin, "till-quiet") == sorted([HEARTBEAT, LAG])
        row = fleet_row(admin, "till-quiet")
        assert row["online"] is False and row["fleet_alerts"] == [LAG, HEARTBEAT]
        lag = next(a for a in alerts_of(admin, "till-quiet", "open") if a["kind"] == LAG)
        assert lag["evidence"]["bundle_age_s"] >= BUNDLE_LAG_WARNING_S
        swept_after(clocked_server, clock, BUNDLE_LAG_CRITICAL_S - BUNDLE_LAG_WARNING_S)
        swept_after(clocked_server, clock, 60)
        assert kinds(admin, "till-quiet") == sorted([HEARTBEAT, LAG, CRITICAL])

        poll(client)  # it is back: the episode's alerts are closed by the server
        maintenance.run_once(clocked_server.ctx)
        assert kinds(admin, "till-quiet") == []
        closed = alerts_of(admin, "till-quiet", "resolved")
        assert {a["resolution"] for a in closed} == {fleet_watch.RECOVERED}
        assert fleet_row(admin, "till-quiet")["fleet_alerts"] == []

        swept_after(clocked_server, clock, BUNDLE_LAG_WARNING_S)  # silent again: new alerts
        assert kinds(admin, "till-quiet") == sorted([HEARTBEAT, LAG])
        assert kinds(admin, "till-quiet", "resolved") == sorted([HEARTBEAT, LAG, CRITICAL])


def test_a_clock_off_by_more_than_freshness_raises_clock_drift(
    clocked_server: Running, clock: ManualClock
) -> None:
    admin = clocked_server.admin()
    freshness = clocked_server.ctx.settings.policy.freshness_s
    drift = {"s": freshness + 30}
    with agent_client(clocked_server, "till-fast", lambda: clock() + drift["s"]) as client:
        poll(client)
        assert fleet_row(admin, "till-fast")["clock_offset_s"] == freshness + 30
        maintenance.run_once(clocked_server.ctx)
        maintenance.run_once(clocked_server.ctx)
        [alert] = alerts_of(admin, "till-fast", "open")
        assert alert["kind"] == AlertKind.CLOCK_DRIFT.value
        assert alert["evidence"]["clock_offset_s"] == freshness + 30

        drift["s"] = freshness  # within the bound: the drift is over
        poll(client)
        maintenance.run_once(clocked_server.ctx)
        assert kinds(admin, "till-fast") == []


def test_a_growing_backlog_raises_one_alert(clocked_server: Running, clock: ManualClock) -> None:
    admin = clocked_server.admin()
    with agent_client(clocked_server, "till-stuck", clock) as client:
        for backlog in (30, 40, 50, 50, 60):  # rose at 4 sweeps in a row (level once): not yet
            poll(client, backlog=backlog)
            swept_after(clocked_server, clock, 60)
        assert kinds(admin, "till-stuck") == []
        for backlog in (70, 80, 100):
            poll(client, backlog=backlog)
            swept_after(clocked_server, clock, 60)
        [alert] = alerts_of(admin, "till-stuck", "open")
        assert alert["kind"] == AlertKind.JOURNAL_BACKLOG.value
        assert alert["evidence"]["journal_backlog"] == 70
        assert fleet_row(admin, "till-stuck")["journal_backlog"] == 100

        poll(client, backlog=0)  # the uploads went through
        swept_after(clocked_server, clock, 60)
        assert kinds(admin, "till-stuck") == []


def test_a_fleet_wide_lapse_is_raised_a_bounded_batch_a_run(server: Running) -> None:
    """Every terminal silent at once (rows made directly: 130 enrolments over HTTP would be the
    slowest part): a run raises at most `RAISE_MAX` alerts, the next run the rest, then none."""
    now = server.ctx.now()

    def silent(unit: Any) -> None:
        for i in range(fleet_watch.RAISE_MAX + 30):
            unit.session.add(
                Terminal(id=f"gate-{i:03}", mode="entry", state="enrolled", heartbeat_at=now - 700)
            )

    server.ctx.run(silent)
    runs = [server.ctx.run(fleet_watch.watch) for _ in range(3)]
    assert runs == [fleet_watch.RAISE_MAX, 30, 0]
