"""The serving bench's load generator: a bounded, closed-loop aiohttp client in its own process.

Usage: ``python _serving_load.py '<json spec>'``; prints one JSON line. The spec names the
``url``, a ``body_path`` (the request body, sent as is with ``content_type``), the
``concurrency`` (that many clients, each sending its next request when the previous one is
answered, over kept-alive connections), and either ``duration`` seconds or a request ``count``,
after ``warmup`` seconds (or ``warmup_count`` requests) that are not recorded; a duration run
also ends as soon as ``stop_path`` exists, touches ``ready_path`` when its recorded window
begins, and tallies the values of the response header ``count_header``. With
``server_pid`` it also reads the CPU seconds the server's whole process tree used during the
recorded window. A request fails on a transport error, a timeout or a status other than 200.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import process_tree_cpu  # after the path tweak above


class Phase:
    def __init__(self, *, duration: float | None = None, count: int | None = None,
                 stop_path: str | None = None, header: str | None = None) -> None:
        self.end = time.perf_counter() + duration if duration is not None else None
        self.left = count
        self.stop_path = Path(stop_path) if stop_path else None
        self.header = header
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.header_values: Counter[str] = Counter()

    def take(self) -> bool:
        """Whether a client may send one more request in this phase."""
        if self.stop_path is not None and self.stop_path.exists():
            return False
        if self.end is not None:
            return time.perf_counter() < self.end
        assert self.left is not None
        if self.left <= 0:
            return False
        self.left -= 1
        return True


async def client(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str],
                 phase: Phase) -> None:
    while phase.take():
        t0 = time.perf_counter()
        try:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                status = response.status
                if phase.header:
                    phase.header_values[response.headers.get(phase.header, "-")] += 1
        except (TimeoutError, aiohttp.ClientError) as exc:
            phase.errors[type(exc).__name__] += 1
            continue
        phase.latencies.append(time.perf_counter() - t0)
        phase.statuses[str(status)] += 1


async def run_phase(session: aiohttp.ClientSession, spec: dict[str, Any], body: bytes,
                    phase: Phase) -> None:
    headers = {"Content-Type": spec.get("content_type", "application/json")}
    await asyncio.gather(*(client(session, spec["url"], body, headers, phase)
                           for _ in range(spec["concurrency"])))


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    body = Path(spec["body_path"]).read_bytes()
    connector = aiohttp.TCPConnector(limit=spec["concurrency"], ttl_dns_cache=None)
    timeout = aiohttp.ClientTimeout(total=spec.get("timeout", 30))
    pid = spec.get("server_pid")
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        if spec.get("warmup_count"):
            await run_phase(session, spec, body, Phase(count=spec["warmup_count"]))
        elif spec.get("warmup"):
            await run_phase(session, spec, body, Phase(duration=spec["warmup"]))
        if spec.get("ready_path"):  # tell whoever waits for the recorded window to begin
            Path(spec["ready_path"]).touch()
        phase = (Phase(count=spec["count"]) if spec.get("count")
                 else Phase(duration=spec["duration"], stop_path=spec.get("stop_path"),
                            header=spec.get("count_header")))
        cpu0, client0 = process_tree_cpu(pid), time.process_time()
        t0 = time.perf_counter()
        await run_phase(session, spec, body, phase)
        wall = time.perf_counter() - t0
        server_cpu = process_tree_cpu(pid) - cpu0
        client_cpu = time.process_time() - client0
    ok = phase.statuses.get("200", 0)
    failed = sum(phase.statuses.values()) - ok + sum(phase.errors.values())
    latencies = sorted(phase.latencies)
    return {
        "ok": ok,
        "failed": failed,
        "statuses": dict(phase.statuses),
        "errors": dict(phase.errors),
        "header_values": dict(phase.header_values),
        "wall_s": wall,
        "rps": ok / wall if wall else None,
        "p50_s": percentile(latencies, 0.50),
        "p99_s": percentile(latencies, 0.99),
        "server_cpu_s": server_cpu,
        "server_cpu_per_request_s": server_cpu / ok if ok and pid else None,
        "client_cpu_s": client_cpu,
    }


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))))
