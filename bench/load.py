"""The online benchmarks' load generator: a lean asyncio HTTP/1.1 client over keep-alive
connections, sending ready-made requests (made and signed before the clock starts) until none
is left, each connection one request at a time; bounded by the requests and a deadline."""

from __future__ import annotations

import asyncio
import statistics
import time


async def _fire(
    port: int, requests: list[bytes], connections: int
) -> tuple[float, list[float], list[bytes]]:
    queue = list(reversed(requests))
    latencies: list[float] = []
    bodies: list[bytes] = []

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while queue:
            request = queue.pop()
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            bodies.append(await reader.readexactly(length))
            latencies.append(time.perf_counter() - started)
        writer.close()

    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(connections))), timeout=300)
    return time.perf_counter() - started, latencies, bodies


def run(
    port: int, requests: list[bytes], connections: int
) -> tuple[float, float, float, list[bytes]]:
    elapsed, latencies, bodies = asyncio.run(_fire(port, requests, connections))
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return len(requests) / elapsed, statistics.median(latencies), p99, bodies


Result = tuple[float, float, float, list[bytes]]
