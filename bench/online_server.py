"""The server the online benchmarks drive: the production path, `duopass serve --init` (access
log on, throttles on, `--workers N`), with the benchmark's settings in its environment
(credentials of 1,000 offline uses, so each holder has many counters to pay with) and a staff
login added by `duopass staff add`, as an operator does. Its log goes to a file, as a
production log goes to a pipe or a disk."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from duopass.demo.serving import wait_until_up

BENCH_ADMIN_PASSWORD = "bench-admin-password"
BENCH_SETTINGS = {
    "DUOPASS_OFFLINE_USES": "1000",
    "DUOPASS_OFFLINE_TXMAX": "100",
    "DUOPASS_REFRESH_MAX_PER_DAY": "100",
    # every client of the load generator comes from 127.0.0.1: a campus behind one NAT, which
    # a campus allowlists (else its reissues look like a farm to the risk policy)
    "DUOPASS_THROTTLE_EXEMPT_NETWORKS": '["127.0.0.0/8"]',
}


def start(db: str, data: Path, port: int, workers: int = 1) -> subprocess.Popen[bytes]:
    """`duopass serve` on `port` with its admin (login `admin`); its log in `data/../server.log`."""
    env = {**os.environ, **BENCH_SETTINGS}
    command = [sys.executable, "-m", "duopass", "serve", "--init", "--db", db]
    command += ["--data-dir", str(data), "--port", str(port), "--workers", str(workers)]
    with (data.parent / "server.log").open("ab") as log:
        server = subprocess.Popen(command, env=env, stdout=log)
    wait_until_up(server, f"http://127.0.0.1:{port}/v1/ping", timeout_s=120)
    password = data.parent / "admin-password"
    password.write_text(BENCH_ADMIN_PASSWORD + "\n")
    where = ["--password-file", str(password), "--data-dir", str(data), "--db", db]
    subprocess.run(
        [sys.executable, "-m", "duopass", "staff", "add", "admin", "--role", "admin", *where],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return server
