"""`duopass demo`: the lunch rush (duopass.demo.rush) or, with `--doors`, a concert's doors
(duopass.demo.doors); self-contained or against `make run`."""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from duopass.cli.numbers import seconds, whole

if TYPE_CHECKING:
    from duopass.demo.rush import Server

_PHASES = {
    "wallets": "phones enrol and sync",
    "online": "lunch rush, server reachable",
    "offline": "the tills' network is cut",
    "upload": "reconnected: journals upload",
    "attendees": "attendees buy and sync tickets",
    "doors-online": "doors open, gates online",
    "doors-offline": "two gates cut off, a lost phone",
}


def demo(
    server: Annotated[
        str | None,
        typer.Option(help="a running server (e.g. http://127.0.0.1:8000 from `make run`)"),
    ] = None,
    demo_json: Annotated[
        Path, typer.Option(help="its demo.json (admin and holder passwords, merchants)")
    ] = Path("duopass-data/demo.json"),
    wallets: Annotated[int, whole(3, 300, help="phones in the rush")] = 200,
    online_s: Annotated[float, seconds(1, 3600, help="seconds with the server")] = 20.0,
    offline_s: Annotated[float, seconds(65, 3600, help="seconds cut off (> 60)")] = 70.0,
    work_dir: Annotated[
        Path | None, typer.Option(help="keep the phones' and terminals' data here")
    ] = None,
    doors: Annotated[
        bool, typer.Option("--doors", help="a concert's doors instead of the lunch rush")
    ] = False,
    attendees: Annotated[int, whole(20, 300, help="attendees at the doors (--doors)")] = 300,
) -> None:
    """Play a lunch rush: tills and gates online, then cut off and offline within one scan, a
    cloned phone, the network back, journals reconciled; then the report. With --doors: a
    concert's entry gates, two cut off, a lost phone reissued at the door, its old code tried
    offline before and after the gate's bundle knew; then the checks."""
    for name in ("duopass.terminal", "duopass.server.events"):  # the table tells the story
        logging.getLogger(name).setLevel(logging.ERROR)
    console = Console(width=max(Console().width, 100))
    with _folder(work_dir) as folder, _progress(console) as events:
        running = _server(console, folder, server, demo_json)
        with running as connected:
            if doors:
                from duopass.demo.doors import Doors, DoorsPlan

                report = Doors(connected, folder, DoorsPlan(attendees=attendees), events).run()
            else:
                from duopass.demo.rush import Plan, Rush

                plan = Plan(wallets=wallets, online_s=online_s, offline_s=offline_s)
                report = Rush(connected, folder, plan, events).run()
    if doors:
        _doors_summary(console, report)
        if not report["ok"]:
            raise typer.Exit(1)
        return
    _summary(console, report)
    if not _believable(report):
        raise typer.Exit(1)


def _server(
    console: Console, folder: Path, url: str | None, demo_json: Path
) -> contextlib.AbstractContextManager[Server]:
    """A server of our own in `folder`, or the running one `demo_json` describes."""
    if url is None:
        from duopass.demo.server import own_server

        console.print(f"starting a server of our own in {folder / 'server'}")
        return own_server(folder)
    from duopass.demo.rush import connect

    try:
        document = json.loads(demo_json.read_text())
    except (OSError, ValueError) as exc:
        console.print(f"[red]cannot read {demo_json}: {exc}")
        raise typer.Exit(2) from exc
    return contextlib.nullcontext(connect(url, document))


@contextlib.contextmanager
def _folder(work_dir: Path | None) -> Iterator[Path]:
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
        yield work_dir
        return
    with tempfile.TemporaryDirectory(prefix="duopass-demo-") as tmp:
        yield Path(tmp)


@contextlib.contextmanager
def _progress(console: Console) -> Iterator[Any]:
    columns = (
        TextColumn("{task.description:<32}"),
        BarColumn(),
        TextColumn("{task.completed:>4}/{task.total:<4}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        tasks: dict[str, TaskID] = {}

        def event(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(_PHASES.get(phase, phase), total=total)
            progress.update(tasks[phase], completed=done, total=total)

        yield event


def _believable(report: dict[str, Any]) -> bool:
    """What the demonstration claims: every payment applied once, money conserved, the clone
    caught, and the tills kept serving offline."""
    return bool(
        report["paid_at_tills"] == report["credited_to_merchants"]
        and report["sum_of_balances"] == 0
        and report["clone_alerts"] >= 1
        and report["scans_offline"] > 0
    )


def _summary(console: Console, report: dict[str, Any]) -> None:
    table = Table(title="lunch rush", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_column()

    def money(minor: int) -> str:
        return f"{minor // 100:,}.{minor % 100:02d} CNY"

    def check(ok: bool) -> str:
        return "[green]ok" if ok else "[red]WRONG"

    fallback = report["first_offline_verdict_s"]
    table.add_row("scans decided online", f"{report['scans_online']:,}", "")
    table.add_row("scans decided offline", f"{report['scans_offline']:,}", "")
    for reason, count in sorted(report["by_reason"].items()):
        table.add_row(f"  verdict {reason}", f"{count:,}", "")
    table.add_row(
        "first offline verdict after the cut",
        f"{max(fallback.values(), default=0) * 1000:.0f} ms" if fallback else "-",
        "worst terminal, 300 ms timeout",
    )
    table.add_row("payments accepted at the tills", f"{report['payments']:,}", "")
    table.add_row(
        "taken at the tills / credited to merchants",
        f"{money(report['paid_at_tills'])} / {money(report['credited_to_merchants'])}",
        check(report["paid_at_tills"] == report["credited_to_merchants"]),
    )
    table.add_row(
        "sum of all balances (closed loop)",
        money(report["sum_of_balances"]),
        check(report["sum_of_balances"] == 0),
    )
    table.add_row(
        "cloned phone: accepted offline, then flagged",
        f"{report['clone_accepted_offline']} / {report['clone_alerts']} clone alert(s)",
        check(report["clone_alerts"] >= 1),
    )
    console.print(table)


def _doors_summary(console: Console, report: dict[str, Any]) -> None:
    table = Table(title="doors", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_column()
    for label, value in report["figures"]:
        table.add_row(label, value, "")
    for label, value, ok in report["checks"]:
        table.add_row(label, value, "[green]ok" if ok else "[red]WRONG")
    console.print(table)
