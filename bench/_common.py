"""Helpers shared by the side-by-side benchmarks in ``bench/``.

Nothing here knows about a particular tool: it starts servers, runs worker subprocesses,
counts CPU time, and prints and writes result tables in the format of DESIGN.md
("Quality bar")::

    {"bench": "<area>", "rows": [{"case": "...", "unit": "points/s", "better": "higher",
                                  "mlcycle": 1.0, "peers": {"mlflow": 1.0}}]}

Only the standard library is needed; ``rich`` is used for the table when it is installed.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
VENVS_DIR = BENCH_DIR / ".venvs"
MLCYCLE_PYTHON = REPO / ".venv" / "bin" / "python"

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def peer_python(peer: str) -> Path:
    """The interpreter of a peer's own virtual environment, with a hint when it is missing."""
    python = VENVS_DIR / peer / "bin" / "python"
    if not python.exists():
        req = BENCH_DIR / f"requirements-{peer}.txt"
        sys.exit(
            f"missing {python}; create it with:\n"
            f"  python3 -m venv {VENVS_DIR / peer} && {VENVS_DIR / peer}/bin/pip install -r {req}"
        )
    return python


# --------------------------------------------------------------------------- CPU accounting


def process_tree_cpu(root_pid: int | None) -> float:
    """CPU seconds (user + system) used so far by ``root_pid`` and all its live descendants.

    Read from ``/proc`` so that it also covers server worker processes the benchmark did not
    start itself (e.g. uvicorn workers). Children already reaped are included through their
    parent's ``cutime``/``cstime``. Returns 0.0 for ``None`` or on a system without ``/proc``.
    """
    if root_pid is None or not os.path.isdir("/proc"):
        return 0.0
    children: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:  # the process ended while we were looking
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        pid, ppid = int(entry), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        ticks[pid] = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += ticks.get(pid, 0)
        stack.extend(children.get(pid, ()))
    return total / _CLK_TCK


class Stopwatch:
    """Wall time and CPU time of one timed section.

    CPU time counts every thread of this process (``time.process_time``) plus, when a server
    pid is given, the server's whole process tree: over HTTP most of the work happens there.
    """

    def __init__(self, server_pid: int | None = None) -> None:
        self.server_pid = server_pid
        self.wall = self.cpu = self.server_cpu = 0.0
        self.started_at = self.stopped_at = 0.0  # time.time(), comparable across processes
        self._t0 = self._c0 = self._s0 = 0.0

    def start(self) -> None:
        self._s0 = process_tree_cpu(self.server_pid)
        self._c0 = time.process_time()
        self.started_at = time.time()
        self._t0 = time.perf_counter()

    def stop(self) -> None:
        self.wall = time.perf_counter() - self._t0
        self.stopped_at = time.time()
        self.cpu = time.process_time() - self._c0
        self.server_cpu = process_tree_cpu(self.server_pid) - self._s0

    @property
    def total_cpu(self) -> float:
        return self.cpu + self.server_cpu

    def as_dict(self) -> dict[str, float]:
        return {"wall_s": self.wall, "client_cpu_s": self.cpu, "server_cpu_s": self.server_cpu}


# --------------------------------------------------------------------------- subprocesses


def run_worker(
    python: Path,
    args: Sequence[str],
    *,
    timeout: float,
    cwd: str | Path = REPO,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Run ``python args...`` in a fresh process; return the JSON object it prints last.

    Adds ``process_cpu_s``: the CPU seconds of the whole child (imports and setup included),
    from the kernel's resource usage of reaped children.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [str(python), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise WorkerFailed(f"{python} {' '.join(args)}", proc.returncode, proc.stderr)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise WorkerFailed(f"{python} {' '.join(args)}", 0, "no JSON on stdout\n" + proc.stderr)
    result: dict[str, Any] = json.loads(lines[-1])
    result["process_cpu_s"] = (after.ru_utime - before.ru_utime) + (
        after.ru_stime - before.ru_stime
    )
    return result


class WorkerFailed(RuntimeError):
    def __init__(self, command: str, returncode: int, stderr: str) -> None:
        tail = "\n".join(stderr.strip().splitlines()[-25:])
        super().__init__(f"worker failed (exit {returncode}): {command}\n{tail}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A server subprocess in its own process group, stopped with everything it spawned."""

    name: str
    command: list[str]
    health_url: str
    log_path: Path
    env: Mapping[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    started_in: float = 0.0

    def start(self, timeout: float = 180.0) -> Server:
        t0 = time.perf_counter()
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed by the child's exit
        self.proc = subprocess.Popen(
            self.command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            cwd=self.log_path.parent,
            start_new_session=True,  # own process group: stop() reaches worker processes
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} server exited early:\n{self._log_tail()}")
            try:
                with urllib.request.urlopen(self.health_url, timeout=2) as resp:
                    if resp.status == 200:
                        self.started_in = time.perf_counter() - t0
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"{self.name} server not healthy in {timeout:.0f}s:\n{self._log_tail()}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # The group may still hold workers whose parent already exited.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- results


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def ratio(mine: float | None, peer: float | None, better: str) -> float | None:
    """How many times better mlcycle is than the peer (>1 means mlcycle wins)."""
    if not mine or not peer:
        return None
    return mine / peer if better == "higher" else peer / mine


def machine_info() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def write_results(area: str, rows: list[dict[str, Any]], **extra: Any) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{area}.json"
    payload = {"bench": area, "rows": rows, **extra}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def fmt_number(value: float | None) -> str:
    if value is None:
        return "—"
    if float(value).is_integer() and abs(value) >= 1:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def fmt_seconds(seconds: float | None) -> str:
    """A short duration: 12 µs, 3.4 ms, 1.20 s."""
    if seconds is None:
        return "—"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def print_table(
    title: str, header: Sequence[str], rows: Sequence[Sequence[str]], notes: str, align: str = ""
) -> None:
    """A rich table when rich is importable, else aligned plain text.

    ``align`` has one letter per column, ``l`` or ``r`` (default: left).
    """
    align = align.ljust(len(header), "l")
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
        print(f"\n{title}")
        for line in (header, *rows):
            cells = zip(line, widths, align, strict=True)
            print("  ".join(c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in cells))
        print(notes)
        return
    table = Table(title=title, caption=notes, caption_justify="left")
    for name, a in zip(header, align, strict=True):
        table.add_column(name, justify="right" if a == "r" else "left")
    for row in rows:
        table.add_row(*row)
    Console(width=max(180, Console().width)).print(table)
