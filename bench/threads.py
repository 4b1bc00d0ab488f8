"""Where a payment's server CPU goes, by thread: the SQLite server `bench.online` drives, its
threads' CPU read from `/proc/<pid>/task/*/stat` around runs of real payments (every answer
must be `OK`: a refused scan costs far less and would flatter the figures).

The event loop's thread (HTTP, the request's signature, the route, the access log) is the
process's main thread; the group-commit writer (the unit of each payment and the batch's
commit) is the busiest of the others. Printed as microseconds of CPU a payment and as a ratio of
the whole; `python -m bench.threads [--rounds N]`.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter

import httpx

from bench.load import run
from bench.online import scan_requests, setup
from bench.online_server import TIERS, served

_TICK = os.sysconf("SC_CLK_TCK")
HOLDERS = 20
"""Each run takes 1/HOLDERS of its payments from every holder's 1,000 uses."""


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds so far of each live thread of `pid`, by thread id."""
    found = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = open(f"/proc/{pid}/task/{tid}/stat").read()  # noqa: SIM115
        except OSError:
            continue  # the thread ended meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        found[tid] = (int(fields[11]) + int(fields[12])) / _TICK
    return found


def measure(rounds: int, count: int) -> list[tuple[float, float, float, float]]:
    """(rate, event loop µs, writer µs, all threads µs) a payment, for each of `rounds` runs."""
    assert (count // HOLDERS) * (rounds + 1) <= 1_000, "past the holders' 1,000 uses"
    results = []
    with served("sqlite") as port:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            till, terminal_id, wallets = setup(http, HOLDERS)
        pid = TIERS[port].server
        run(port, scan_requests(till, terminal_id, wallets, count, first_ctr=0), 8)  # warm-up
        for k in range(1, rounds + 1):
            before = thread_cpu(pid)
            first = k * (count // HOLDERS)
            rate, _, _, bodies = run(
                port, scan_requests(till, terminal_id, wallets, count, first_ctr=first), 8
            )
            after = thread_cpu(pid)
            reasons = Counter(json.loads(body)["reason"] for body in bodies)
            assert reasons == {"OK": count}, f"not every payment was accepted: {dict(reasons)}"
            spent = {tid: after[tid] - before[tid] for tid in after if tid in before}
            loop = spent.pop(str(pid), 0.0)
            writer = max(spent.values(), default=0.0)
            total = loop + sum(spent.values())
            per = 1e6 / count
            results.append((rate, loop * per, writer * per, total * per))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few payments, for the suite")
    parser.add_argument("--rounds", type=int, default=3, choices=range(1, 5))
    args = parser.parse_args()
    count = 100 if args.quick else 2_000
    results = measure(1 if args.quick else args.rounds, count)
    print(f"a payment's server CPU by thread, SQLite, {count} payments a run over 8 connections")
    print("     rate/s   event loop µs   writer µs   all threads µs   writer share")
    for rate, loop, writer, total in results:
        print(
            f"  {rate:9.0f}   {loop:13.0f}   {writer:9.0f}   {total:14.0f}   {writer / total:11.2f}"
        )
    best = min(results, key=lambda r: r[3])
    print(f"RATIO threads_writer_share {best[2] / best[3]:.3f}")


if __name__ == "__main__":
    main()
