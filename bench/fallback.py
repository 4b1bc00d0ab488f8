"""TerminalAgent fallback: time from scan to verdict with the server unreachable, as a ratio to the
configured online timeout. Goal: at most 1.1 for the first scan after the cut, and far below 1
once the terminal knows it is offline.

A real server (SQLite), a TCP proxy on 127.0.0.1 in front of it, and an enrolled till in this
process (`duopass.terminal.Terminal`, its probe thread running). Each round: the link online and
warm, then the proxy cut two ways: *silent* (connections accepted, nothing answered: the worst
case, the whole timeout is spent) and *refused* (closed at once). Every scan is a real payment
with a distinct counter, journalled durably before its verdict.

    python -m bench.fallback [--quick] [--timeout-ms 300]
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.timing import parser, table
from duopass.demo.netcut import Mode, Proxy
from duopass.protocol.reasons import Reason
from duopass.terminal import AgentSettings, TerminalAgent, enrol
from tests.server.harness import ready_wallet
from tests.terminal.conftest import till_code

_KNOWN_SCANS = 20
"""Scans timed per round once the terminal knows it is offline."""


def _timed(terminal: TerminalAgent, code: str) -> tuple[float, bool]:
    started = time.perf_counter()
    result = terminal.scan_path.scan(code, amount=1)
    elapsed = time.perf_counter() - started
    assert result.reason is Reason.OK, result
    return elapsed, result.online


def _warm(terminal: TerminalAgent, make: Callable[[], str]) -> float:
    """The link back online and one scan answered online (a loaded machine may miss the
    timeout once): that scan's time."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if terminal.link.online:
            elapsed, online = _timed(terminal, make())
            if online:
                return elapsed
        time.sleep(0.01)
    raise RuntimeError("the link did not come back")


def main() -> None:
    args_parser = parser(__doc__ or "")
    args_parser.add_argument("--timeout-ms", type=int, default=300)
    args = args_parser.parse_args()
    rounds = 1 if args.quick else 5
    timeout_s = args.timeout_ms / 1000
    with tempfile.TemporaryDirectory() as tmp:
        _run(Path(tmp), rounds, timeout_s)


def _run(tmp: Path, rounds: int, timeout_s: float) -> None:
    from tests.server.harness import running_server

    with running_server(
        f"sqlite:///{tmp / 'duopass.db'}", tmp / "server", offline_uses=1000, offline_txmax=100
    ) as server:
        admin = server.admin()
        wallet = ready_wallet(server.http, admin, "bench", balance=10_000_000)
        code, _ = till_code(admin)
        proxy = Proxy(int(server.url.rsplit(":", 1)[1]))
        try:
            enrol(tmp / "till", server=proxy.url, terminal_id="till-1", code=code)
            settings = AgentSettings(
                timeout_s=timeout_s, probe_s=0.05, upload_s=3600, bundle_s=3600
            )
            with TerminalAgent(tmp / "till", settings) as terminal:
                terminal.bundles.sync()
                terminal.start()
                figures = _rounds(terminal, proxy, wallet, rounds, timeout_s)
        finally:
            proxy.close()
    _report(figures, timeout_s, rounds)


def _rounds(
    terminal: TerminalAgent, proxy: Proxy, wallet: object, rounds: int, timeout_s: float
) -> dict[str, list[float]]:
    make = wallet.code  # type: ignore[attr-defined]
    figures: dict[str, list[float]] = {}
    for _ in range(rounds):
        for cut in (Mode.SILENT, Mode.REFUSE):
            proxy.set(Mode.FORWARD)
            figures.setdefault("online", []).append(_warm(terminal, make))
            proxy.set(cut)
            before = terminal.link.online
            first, _ = _timed(terminal, make())
            figures.setdefault(f"{cut}: first scan after the cut", []).append(first)
            if terminal.link.online:  # a timeout: one more scan waits before the link gives up
                second, _ = _timed(terminal, make())
                figures.setdefault(f"{cut}: second scan (link gives up)", []).append(second)
            assert before and not terminal.link.online
            for _ in range(_KNOWN_SCANS):
                known, was_online = _timed(terminal, make())
                assert not was_online
                figures.setdefault(f"{cut}: known offline", []).append(known)
    return figures


def _report(figures: dict[str, list[float]], timeout_s: float, rounds: int) -> None:
    print(f"terminal fallback, online timeout {timeout_s * 1000:.0f} ms, {rounds} rounds")
    rows = []
    for name, values in figures.items():
        worst, median = max(values), statistics.median(values)
        rows.append(
            (
                name,
                f"worst {worst * 1000:7.1f} ms  {worst / timeout_s:5.3f}x   "
                f"median {median * 1000:7.1f} ms  {median / timeout_s:5.3f}x",
            )
        )
    table(rows)
    for name in ("silent", "refuse"):
        first = max(figures[f"{name}: first scan after the cut"])
        known = max(figures[f"{name}: known offline"])
        print(f"RATIO fallback_{name}_first_vs_timeout {first / timeout_s:.3f}")
        print(f"RATIO fallback_{name}_known_offline_vs_timeout {known / timeout_s:.3f}")


if __name__ == "__main__":
    main()
