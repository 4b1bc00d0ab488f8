"""`duopass demo`: the lunch rush (duopass.demo.rush), self-contained or against `make run`."""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from duopass.cli.numbers import seconds, whole

_PHASES = {
    "wallets": "phones enrol and sync",
    "online": "lunch rush, server reachable",
    "offline": "the tills' network is cut",
    "upload": "reconnected: journals upload",
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
        Path | None, typer.Option(help="keep the phones' and tills' data here")
    ] = None,
) -> None:
    """Play a lunch rush: tills and gates online, then cut off and offline within one scan, a
    cloned phone, the network back, journals reconciled; then the report."""
    from duopass.demo.rush import Plan, Rush, connect

    logging.getLogger("duopass.terminal").setLevel(logging.ERROR)  # the table tells the story
    console = Console(width=max(Console().width, 100))
    plan = Plan(wallets=wallets, online_s=online_s, offline_s=offline_s)
    with _folder(work_dir) as folder, _progress(console) as events:
        if server is None:
            from duopass.demo.server import own_server

            console.print(f"starting a server of our own in {folder / 'server'}")
            with own_server(folder) as running:
                report = Rush(running, folder, plan, events).run()
        else:
            try:
                document = json.loads(demo_json.read_text())
            except (OSError, ValueError) as exc:
                console.print(f"[red]cannot read {demo_json}: {exc}")
                raise typer.Exit(2) from exc
            report = Rush(connect(server, document), folder, plan, events).run()
    _summary(console, report)
    if not _believable(report):
        raise typer.Exit(1)


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
