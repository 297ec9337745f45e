"""Model serving: ``mlcycle serve`` against MLflow, BentoML and a bare FastAPI endpoint.

Every server serves the same model — a scikit-learn LogisticRegression on the breast cancer
dataset bundled with scikit-learn, 30 numeric features — in its own process (tree) on
127.0.0.1, one at a time:

- ``mlcycle``     ``mlcycle serve models:/cancer@production`` (logged and registered first),
                  one worker, with its defaults (validation, metrics, prediction logging);
- ``mlcycle-2w``  the same with ``--workers 2`` (shows whether multi-worker serving pays the
                  ~44 ms keep-alive penalty of uvicorn's shared socket without TCP_NODELAY);
- ``mlcycle-nb``  one worker with micro-batching off (``--max-batch-size 1``: every request is
                  its own model call), to show when batching helps;
- ``mlflow``      ``mlflow models serve -m PATH --env-manager local`` (its default: 1 worker);
- ``bentoml``     ``bentoml serve _bentoml_service:CancerClassifier`` (1 worker, a plain
                  synchronous API taking records);
- ``fastapi``     the floor: ``bench/_serving_fastapi.py`` under uvicorn with uvloop and
                  httptools, ``model.predict`` on a DataFrame built from the records.

Each venv trains and saves the model in its own format (``bench/_serving_model.py``), and each
server must answer the reference predictions before it is measured.

What is measured, per server and repeat:

1. cold start: from spawning the server process to its first successful prediction;
2. single-row requests at concurrency 1, 8 and 32 (closed loop, kept-alive connections, a
   short unrecorded warm-up, then ``--duration`` seconds): requests/s, p50/p99 latency, failed
   requests (transport errors, timeouts, any status but 200), and the CPU seconds of the
   server's whole process tree per answered request (``/proc``: utime + stime of the server
   and every descendant, read just before and after the recorded window);
3. a 1,000-row request: p50 latency of 30 sequential requests after 3 warm-up ones;
4. memory after load: RSS per worker (the mean of the N largest processes of the tree, N the
   worker count) and RSS of the whole tree (supervisors included).

The load comes from ``bench/_serving_load.py`` (aiohttp, uvloop), a separate process started
for each level. Servers are interleaved: each repeat measures every server once, in an order
rotated by one each repeat; the table shows medians of the repeats (failed requests: totals).

Deployment switches (failed requests during a blue-green switch and a canary rollback under
load) are measured once ``mlcycle deploy`` and ``mlcycle serve --deployment`` exist; until
then the bench says why those rows are missing.

Usage::

    .venv/bin/python bench/serving.py              # the full bench, under 10 minutes on 2 cores
    .venv/bin/python bench/serving.py --quick      # 1 repeat, short windows: a 2-minute smoke
    .venv/bin/python bench/serving.py --servers mlcycle,fastapi --repeats 5

Writes ``bench/results/serving.json``. ``make bench-serving`` builds the peers' venvs
(``bench/.venvs/mlflow``, ``bench/.venvs/bentoml``) first.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # after the path tweak above, so the script runs from any directory
    BENCH_DIR,
    MLCYCLE_PYTHON,
    Server,
    WorkerFailed,
    fmt_number,
    free_port,
    machine_info,
    median,
    peer_python,
    print_table,
    ratio,
    run_worker,
    write_results,
)

MODEL_SCRIPT = BENCH_DIR / "_serving_model.py"
LOAD_SCRIPT = BENCH_DIR / "_serving_load.py"
MLCYCLE_CLI = MLCYCLE_PYTHON.parent / "mlcycle"
SERVERS = ("mlcycle", "mlcycle-2w", "mlcycle-nb", "fastapi", "mlflow", "bentoml")
#: mlcycle's variants: their values sit beside mlcycle's in each row, not among the peers.
VARIANTS = {"mlcycle-2w": "mlcycle_2_workers", "mlcycle-nb": "mlcycle_no_batching"}
PEERS = ("fastapi", "mlflow", "bentoml")
LABELS = {"mlcycle": "mlcycle", "mlcycle-2w": "mlcycle 2w", "mlcycle-nb": "no batching",
          "fastapi": "FastAPI",
          "mlflow": "MLflow", "bentoml": "BentoML"}
BIG_ROWS = 1000
# Which versions each model-saving job reports (the venvs share some distributions).
VERSION_OF = {"mlcycle": ("mlcycle", "scikit-learn", "uvicorn"), "fastapi": ("fastapi",),
              "mlflow": ("mlflow",), "bentoml": ("bentoml",)}
# No usage telemetry from a benchmark; every server inherits these.
QUIET_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
             "BENTOML_DO_NOT_TRACK": "true"}


class BenchError(RuntimeError):
    pass


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# =========================================================================== servers


@dataclass
class Target:
    """How to start one server and talk to it."""

    key: str
    port: int
    workers: int
    command: list[str]
    predict_path: str
    wrap: Callable[[list[dict[str, float]]], Any]  # records -> the JSON body it expects
    unwrap: Callable[[Any], list[Any]]  # its JSON answer -> the predictions
    env: dict[str, str] = field(default_factory=dict)

    def body(self, records: list[dict[str, float]]) -> bytes:
        return json.dumps(self.wrap(records)).encode()


class PredictingServer(Server):
    """A :class:`Server` that counts as started at its first successful prediction."""

    def __init__(self, target: Target, url: str, body: bytes, log_path: Path) -> None:
        super().__init__(target.key, target.command, url, log_path, env=target.env)
        self.body = body

    def start(self, timeout: float = 180.0) -> PredictingServer:
        t0 = time.perf_counter()
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed by the child's exit
        self.proc = subprocess.Popen(
            self.command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env},
            cwd=self.log_path.parent, start_new_session=True)
        deadline = time.monotonic() + timeout
        request = urllib.request.Request(self.health_url, data=self.body,
                                         headers={"Content-Type": "application/json"})
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} server exited early:\n{self._log_tail()}")
            try:
                with urllib.request.urlopen(request, timeout=5) as resp:
                    if resp.status == 200:
                        resp.read()
                        self.started_in = time.perf_counter() - t0
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.02)
        self.stop()
        raise BenchError(f"{self.name} did not predict within {timeout:.0f}s:\n{self._log_tail()}")


def make_targets(models: dict[str, dict[str, Any]], port: int) -> dict[str, Target]:
    """The servers whose models were saved (``--servers`` may leave some out)."""
    path = {key: m.get("path", "") for key, m in models.items()}
    records: Callable[[list[dict[str, float]]], Any] = lambda rows: rows  # noqa: E731
    predictions: Callable[[Any], list[Any]] = lambda body: body["predictions"]  # noqa: E731
    mlcycle = models["mlcycle"]
    mlcycle_env = {"MLCYCLE_HOME": mlcycle["home"], "MLCYCLE_TRACKING_URI": "",
                   "MLCYCLE_ARTIFACT_URI": ""}
    serve = [str(MLCYCLE_CLI), "serve", mlcycle["uri"], "--host", "127.0.0.1", "--port", str(port)]
    venvs = BENCH_DIR / ".venvs"
    return {
        "mlcycle": Target("mlcycle", port, 1, serve, "/predict", records, predictions,
                          mlcycle_env),
        "mlcycle-2w": Target("mlcycle-2w", port, 2, [*serve, "--workers", "2"], "/predict",
                             records, predictions, mlcycle_env),
        "mlcycle-nb": Target("mlcycle-nb", port, 1, [*serve, "--max-batch-size", "1"],
                             "/predict", records, predictions, mlcycle_env),
        "fastapi": Target(
            "fastapi", port, 1,
            [str(MLCYCLE_PYTHON), "-m", "uvicorn", "_serving_fastapi:app", "--app-dir",
             str(BENCH_DIR), "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop",
             "--http", "httptools", "--log-level", "warning", "--no-access-log"],
            "/predict", records, predictions, {"BENCH_MODEL_PATH": path.get("fastapi", "")}),
        "mlflow": Target(
            "mlflow", port, 1,
            [str(venvs / "mlflow" / "bin" / "mlflow"), "models", "serve", "-m",
             path.get("mlflow", ""), "--env-manager", "local", "-h", "127.0.0.1", "-p",
             str(port)],
            "/invocations", lambda rows: {"dataframe_records": rows}, predictions,
            with_path(venvs / "mlflow")),  # it runs `uvicorn` from PATH
        "bentoml": Target(
            "bentoml", port, 1,
            [str(venvs / "bentoml" / "bin" / "bentoml"), "serve",
             "_bentoml_service:CancerClassifier", "--working-dir", str(BENCH_DIR), "--host",
             "127.0.0.1", "--port", str(port)],
            "/predict", lambda rows: {"records": rows}, lambda body: body,
            {"BENCH_MODEL_PATH": path.get("bentoml", ""), **with_path(venvs / "bentoml")}),
    }


def with_path(venv: Path) -> dict[str, str]:
    """The environment of a venv's tool that starts other programs of the venv by name."""
    return {"PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "VIRTUAL_ENV": str(venv)}


# =========================================================================== /proc


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, stack = [], [root]
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(children.get(pid, ()))
    return out


def rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def memory(root: int, workers: int) -> dict[str, float]:
    sizes = sorted((rss_mib(pid) for pid in process_tree(root)), reverse=True)
    top = sizes[:workers]
    return {"rss_per_worker_mib": sum(top) / len(top), "rss_tree_mib": sum(sizes),
            "processes": len(sizes)}


# =========================================================================== the bench


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.versions: dict[str, str] = {}
        self.samples: dict[str, list[dict[str, Any]]] = {s: [] for s in args.servers}
        self.switches: dict[str, Any] = {}

    # ---- preparation

    def prepare(self) -> None:
        """Each venv saves the model in its format; requests bodies are written once."""
        jobs = {"mlcycle": (MLCYCLE_PYTHON, "mlcycle")}
        if "fastapi" in self.args.servers:
            jobs["fastapi"] = (MLCYCLE_PYTHON, "pickle")
        if "mlflow" in self.args.servers:
            jobs["mlflow"] = (peer_python("mlflow"), "mlflow")
        if "bentoml" in self.args.servers:
            jobs["bentoml"] = (peer_python("bentoml"), "pickle")
        self.models: dict[str, dict[str, Any]] = {}
        for key, (python, fmt) in jobs.items():
            t0 = time.perf_counter()
            self.models[key] = run_worker(python, [str(MODEL_SCRIPT), fmt, str(self.tmp / key)],
                                          timeout=600, env=QUIET_ENV)
            versions = self.models[key]["versions"]
            for dist in VERSION_OF[key]:
                self.versions[dist] = versions.get(dist, "?")
            say(f"model saved for {key} ({fmt}) in {time.perf_counter() - t0:.1f}s")
        expected = {tuple(m["predictions"]) for m in self.models.values()}
        if len(expected) != 1:
            raise BenchError(f"the venvs trained different models: {self.models}")
        self.expected = list(next(iter(expected)))

        from sklearn.datasets import load_breast_cancer

        frame = load_breast_cancer(as_frame=True).data
        rows = frame.to_dict(orient="records")
        self.one_row = rows[:1]
        self.check_rows = rows[: len(self.expected)]
        self.big = (rows * (BIG_ROWS // len(rows) + 1))[:BIG_ROWS]

    # ---- one server, one repeat

    def load(self, target: Target, url: str, body: bytes, pid: int, **spec: Any
             ) -> dict[str, Any]:
        body_path = self.tmp / f"body-{target.key}-{len(body)}.json"
        if not body_path.exists():
            body_path.write_bytes(body)
        spec = {"url": url, "body_path": str(body_path), "server_pid": pid, "timeout": 30,
                **spec}
        return run_worker(MLCYCLE_PYTHON, [str(LOAD_SCRIPT), json.dumps(spec)], timeout=300)

    def measure(self, target: Target, rep: int) -> dict[str, Any]:
        a = self.args
        url = f"http://127.0.0.1:{target.port}{target.predict_path}"
        log = self.tmp / f"{target.key}-{rep}" / "server.log"
        log.parent.mkdir()
        server = PredictingServer(target, url, target.body(self.one_row), log)
        sample: dict[str, Any] = {}
        with server:
            sample["cold_start_s"] = server.started_in
            got = target.unwrap(json.loads(urllib.request.urlopen(urllib.request.Request(
                url, data=target.body(self.check_rows),
                headers={"Content-Type": "application/json"}), timeout=30).read()))
            if list(got) != self.expected:
                raise BenchError(f"{target.key} predicted {got}, expected {self.expected}")
            single = target.body(self.one_row)
            for c in a.concurrency:
                sample[f"c{c}"] = self.load(target, url, single, server.pid, concurrency=c,
                                            warmup=a.warmup, duration=a.duration)
            sample["big"] = self.load(target, url, target.body(self.big), server.pid,
                                      concurrency=1, warmup_count=3, count=a.big_requests)
            sample |= memory(server.pid, target.workers)
        c_hi = sample[f"c{a.concurrency[-1]}"]
        say(f"#{rep + 1} {target.key:<10} cold {sample['cold_start_s']:.2f}s  "
            f"c={a.concurrency[-1]} {c_hi['rps']:.0f} req/s p50 {c_hi['p50_s'] * 1e3:.1f} ms "
            f"p99 {c_hi['p99_s'] * 1e3:.1f} ms cpu/req {c_hi['server_cpu_per_request_s'] * 1e3:.2f}"
            f" ms failed {sum(sample[f'c{c}']['failed'] for c in a.concurrency)}  "
            f"1k rows p50 {sample['big']['p50_s'] * 1e3:.1f} ms  "
            f"rss/worker {sample['rss_per_worker_mib']:.0f} MiB")
        return sample

    def run(self) -> None:
        self.prepare()
        port = free_port()
        targets = make_targets(self.models, port)
        order = list(self.args.servers)
        for rep in range(self.args.repeats):
            rotated = order[rep % len(order):] + order[: rep % len(order)]
            for key in rotated:
                self.samples[key].append(self.measure(targets[key], rep))
        self.switches = deployment_switches(self)

    # ---- results

    def rows(self) -> list[dict[str, Any]]:
        a = self.args
        rows: list[dict[str, Any]] = []

        def add(case: str, unit: str, better: str, get: Callable[[dict[str, Any]], float | None],
                total: bool = False) -> None:
            values: dict[str, float | None] = {}
            samples: dict[str, list[float | None]] = {}
            for key in a.servers:
                got = [get(s) for s in self.samples[key]]
                samples[key] = got
                present = [g for g in got if g is not None]
                values[key] = (sum(present) if total else median(present)) if present else None
            mine = values.get("mlcycle")
            rows.append({
                "case": case, "unit": unit, "better": better, "mlcycle": mine,
                "peers": {p: values[p] for p in PEERS if p in values},
                **{field: values.get(key) for key, field in VARIANTS.items()},
                "ratios": {p: (None if total else ratio(mine, values[p], better))
                           for p in PEERS if p in values},
                "samples": samples,
            })

        for c in a.concurrency:
            add(f"single-row requests/s, c={c}", "requests/s", "higher",
                lambda s, c=c: s[f"c{c}"]["rps"])
        for c in a.concurrency:
            add(f"single-row p50 latency, c={c}", "ms", "lower",
                lambda s, c=c: s[f"c{c}"]["p50_s"] * 1e3)
        for c in a.concurrency:
            add(f"single-row p99 latency, c={c}", "ms", "lower",
                lambda s, c=c: s[f"c{c}"]["p99_s"] * 1e3)
        for c in a.concurrency:
            add(f"server CPU per single-row request, c={c}", "ms", "lower",
                lambda s, c=c: _ms(s[f"c{c}"]["server_cpu_per_request_s"]))
        add("failed single-row requests (all levels, all repeats)", "requests", "lower",
            lambda s: sum(s[f"c{c}"]["failed"] for c in a.concurrency), total=True)
        add(f"{BIG_ROWS:,}-row request p50 latency", "ms", "lower",
            lambda s: s["big"]["p50_s"] * 1e3)
        add("cold start to first prediction", "s", "lower", lambda s: s["cold_start_s"])
        add("RSS per worker after load", "MiB", "lower", lambda s: s["rss_per_worker_mib"])
        add("RSS of the server process tree", "MiB", "lower", lambda s: s["rss_tree_mib"])
        details = self.switches.get("details", {})
        for case, value in self.switches.get("rows", {}).items():
            kind = "blue-green switch" if "blue-green" in case else "canary rollback"
            rows.append({"case": case, "unit": "requests", "better": "lower", "mlcycle": value,
                         "peers": {}, "mlcycle_2_workers": value, "mlcycle_no_batching": None,
                         "ratios": {},
                         "detail": {**details.get(kind, {}),
                                    "probe_failures": details.get("probe_failures")}})
        return rows


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e3


# =========================================================================== deployments


def deployment_switches(bench: Bench) -> dict[str, Any]:
    """Failed requests during a blue-green switch and a canary rollback, both under load.

    One ``mlcycle serve --deployment cancer --workers 2`` serves version 1; single-row load at
    concurrency 8 runs through each phase (the load generator also tallies the
    ``x-model-version`` of the answers). Blue-green: ``mlcycle deploy cancer --model
    models:/cancer/2 --strategy blue-green``, then the load goes on until 20 answers in a row
    come from version 2, and one second more. Canary rollback: ``mlcycle deploy cancer --model
    models:/cancer/3 --strategy canary --steps 50,100`` (a huge ``--min-requests``, so the
    controller leaves it at 50 %), load until version 3 answers, one second more, ``mlcycle
    deploy rollback cancer``, load until 20 answers in a row come from version 2, one second
    more. The probes that watch for a version count their failures too.

    Needs ``mlcycle deploy`` and ``mlcycle serve --deployment``; without them the rows are left
    out and the reason is recorded.
    """
    if not bench.args.switches:
        return {"skipped": "--no-switches"}
    wide = {**os.environ, "COLUMNS": "200"}
    deploy = subprocess.run([str(MLCYCLE_CLI), "deploy", "--help"], capture_output=True,
                            text=True, env=wide)
    serve = subprocess.run([str(MLCYCLE_CLI), "serve", "--help"], capture_output=True, text=True,
                           env=wide)
    missing = []
    if deploy.returncode != 0:
        missing.append("`mlcycle deploy`")
    if "--deployment" not in serve.stdout:
        missing.append("`mlcycle serve --deployment`")
    if missing:
        reason = (f"deployment switch rows skipped: {' and '.join(missing)} not available in "
                  "this checkout yet")
        say(reason)
        return {"skipped": reason}
    return Switches(bench).run()


class Switches:
    NAME = "cancer"
    CONCURRENCY = 8

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.dir = bench.tmp / "switches"
        self.dir.mkdir()
        self.env = {"MLCYCLE_HOME": bench.models["mlcycle"]["home"], "MLCYCLE_TRACKING_URI": "",
                    "MLCYCLE_ARTIFACT_URI": ""}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/predict"
        self.body = json.dumps(bench.one_row).encode()
        self.probe_failures = 0

    def cli(self, *args: str) -> None:
        done = subprocess.run([str(MLCYCLE_CLI), *args], capture_output=True, text=True,
                              timeout=120, env={**os.environ, **self.env}, cwd=self.dir)
        if done.returncode != 0:
            raise BenchError(f"mlcycle {' '.join(args)} failed:\n{done.stdout}{done.stderr}")

    def probe(self) -> str | None:
        """The version answering one request (None, counted, when it fails)."""
        request = urllib.request.Request(self.url, data=self.body,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                resp.read()
                return resp.headers.get("x-model-version")
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            self.probe_failures += 1
            return None

    def until(self, what: str, done: Callable[[], bool], timeout: float = 60.0) -> float:
        t0 = time.perf_counter()
        while not done():
            if time.perf_counter() - t0 > timeout:
                raise BenchError(f"deployment switch: no {what} within {timeout:.0f}s")
            time.sleep(0.05)
        return time.perf_counter() - t0

    def only(self, version: str, times: int = 20) -> Callable[[], bool]:
        return lambda: all(self.probe() == version for _ in range(times))

    def seen(self, version: str) -> Callable[[], bool]:
        return lambda: self.probe() == version

    @contextlib.contextmanager
    def load(self, phase: str) -> Iterator[dict[str, Any]]:
        """Load at concurrency 8 from entering the block until leaving it (plus one second)."""
        stop, ready = self.dir / f"{phase}.stop", self.dir / f"{phase}.ready"
        body_path = self.dir / "one-row.json"
        body_path.write_bytes(self.body)
        spec = {"url": self.url, "body_path": str(body_path), "concurrency": self.CONCURRENCY,
                "duration": 300, "warmup": 0.3, "timeout": 30, "stop_path": str(stop),
                "ready_path": str(ready), "count_header": "x-model-version"}
        proc = subprocess.Popen([str(MLCYCLE_PYTHON), str(LOAD_SCRIPT), json.dumps(spec)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        result: dict[str, Any] = {}
        try:
            self.until("load generator", lambda: ready.exists() or proc.poll() is not None, 60)
            time.sleep(1.0)
            yield result
            time.sleep(1.0)
        finally:
            stop.touch()
            out, err = proc.communicate(timeout=60)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if proc.returncode != 0 or not lines:
            raise BenchError(f"load generator failed during {phase}:\n{err[-2000:]}")
        result.update(json.loads(lines[-1]))

    def run(self) -> dict[str, Any]:
        name = self.NAME
        self.cli("deploy", name, "--model", f"models:/{name}/1")
        server = Server("mlcycle --deployment",
                        [str(MLCYCLE_CLI), "serve", "--deployment", name, "--host", "127.0.0.1",
                         "--port", str(self.port), "--workers", "2"],
                        f"http://127.0.0.1:{self.port}/v2/health/ready", self.dir / "server.log",
                        env=self.env)
        rows: dict[str, int] = {}
        details: dict[str, Any] = {}
        with server:
            self.until("version 1 answering", self.only("1", 5))
            with self.load("blue-green") as bg:
                self.cli("deploy", name, "--model", f"models:/{name}/2", "--strategy",
                         "blue-green")
                switch_s = self.until("switch to version 2", self.only("2"))
            with self.load("canary-rollback") as canary:
                self.cli("deploy", name, "--model", f"models:/{name}/3", "--strategy", "canary",
                         "--steps", "50,100", "--min-requests", "1000000")
                canary_s = self.until("canary version 3 answering", self.seen("3"))
                time.sleep(1.0)
                self.cli("deploy", "rollback", name, "--reason", "bench: canary rollback")
                rollback_s = self.until("rollback to version 2", self.only("2"))
        for key, result, seconds, expect in (
                ("blue-green switch", bg, switch_s, {"1", "2"}),
                ("canary rollback", canary, rollback_s, {"2", "3"})):
            versions = result["header_values"]
            if not expect <= set(versions):
                raise BenchError(f"{key}: the load saw versions {versions}, expected {expect}")
            rows[f"failed requests during a {key} under load (c={self.CONCURRENCY}, 2 workers)"] \
                = result["failed"]
            details[key] = {"requests": result["ok"] + result["failed"],
                            "failed": result["failed"], "statuses": result["statuses"],
                            "errors": result["errors"], "versions": versions,
                            "seconds_to_switch": round(seconds, 2)}
        details["canary rollback"]["seconds_to_canary_traffic"] = round(canary_s, 2)
        details["probe_failures"] = self.probe_failures
        say(f"deployment switches: {json.dumps(details)}")
        return {"rows": rows, "details": details}


# =========================================================================== report


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "ms":
        return f"{value:.2f}" if value < 10 else f"{value:.1f}"
    return fmt_number(round(value, 2) if unit in ("s", "MiB") else value)


def table_rows(rows: list[dict[str, Any]], servers: list[str]) -> list[list[str]]:
    out = []
    for row in rows:
        cells = [row["case"], row["unit"]]
        for key in servers:
            value = (row["mlcycle"] if key == "mlcycle" else row.get(VARIANTS[key])
                     if key in VARIANTS else row["peers"].get(key))
            cells.append(fmt_value(value, row["unit"]))
        for peer in PEERS:
            if peer in servers:
                r = row["ratios"].get(peer)
                cells.append(f"{r:.2f}x" if r else "—")
        out.append(cells)
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Model serving: mlcycle serve against MLflow, BentoML and bare FastAPI.")
    parser.add_argument("--quick", action="store_true",
                        help="1 repeat and short windows: a 1-2 minute smoke test")
    parser.add_argument("--repeats", type=int, help="measurements per server (default 3; "
                        "--quick: 1)")
    parser.add_argument("--duration", type=float,
                        help="seconds recorded per concurrency level (default 3; --quick: 1)")
    parser.add_argument("--concurrency", default="1,8,32",
                        help="comma-separated concurrency levels (default 1,8,32)")
    parser.add_argument("--servers", default=",".join(SERVERS),
                        help="comma-separated subset of: " + ", ".join(SERVERS))
    parser.add_argument("--no-switches", dest="switches", action="store_false",
                        help="leave out the deployment switch rows")
    args = parser.parse_args(argv)
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if unknown := set(args.servers) - set(SERVERS):
        parser.error(f"--servers: unknown {', '.join(sorted(unknown))}")
    if "mlcycle" not in args.servers:
        parser.error("--servers must include mlcycle (every row compares against it)")
    args.servers = [s for s in SERVERS if s in args.servers]
    try:
        args.concurrency = sorted({int(c) for c in args.concurrency.split(",")})
    except ValueError:
        parser.error("--concurrency: comma-separated integers")
    if args.concurrency[0] < 1:
        parser.error("--concurrency levels must be at least 1")
    args.repeats = args.repeats or (1 if args.quick else 3)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    args.duration = args.duration or (1.0 if args.quick else 3.0)
    args.warmup = 0.3 if args.quick else 0.5
    args.big_requests = 10 if args.quick else 30
    return args


@contextlib.contextmanager
def quiet_environment() -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in QUIET_ENV}
    os.environ.update(QUIET_ENV)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    t0 = time.perf_counter()
    with quiet_environment(), tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        bench = Bench(args, Path(tmp))
        try:
            bench.run()
        except (WorkerFailed, BenchError, subprocess.TimeoutExpired) as exc:
            sys.exit(f"bench failed: {exc}")
    elapsed = time.perf_counter() - t0
    rows = bench.rows()
    machine = machine_info()
    path = write_results(
        "serving", rows, versions=bench.versions, machine=machine, repeats=args.repeats,
        quick=args.quick, duration_s=args.duration, concurrency=args.concurrency,
        deployment_switches=bench.switches.get("skipped") or bench.switches.get("details"),
        seconds=round(elapsed, 1))
    versions = ", ".join(f"{k} {v}" for k, v in sorted(bench.versions.items()))
    notes = (
        f"{versions}; Python {machine['python']}, {machine['cpus']} CPUs; median of "
        f"{args.repeats} interleaved repeats{' (--quick)' if args.quick else ''}, "
        f"{args.duration:g} s per level; {elapsed / 60:.1f} min.\n"
        "x: how many times better mlcycle (1 worker) is than the peer (>1: mlcycle ahead).\n"
        "CPU: the server's whole process tree (/proc utime+stime) per answered request.\n"
        "RSS per worker: mean of the N largest processes of the tree (N workers); the tree row "
        "counts supervisors too.")
    if skipped := bench.switches.get("skipped"):
        notes += f"\n{skipped}."
    header = ["Case", "Unit", *(LABELS[s] for s in args.servers),
              *(f"x {LABELS[p]}" for p in PEERS if p in args.servers)]
    align = "ll" + "r" * (len(header) - 2)
    print_table("Model serving: mlcycle vs FastAPI (floor), MLflow and BentoML", header,
                table_rows(rows, args.servers), notes, align=align)
    print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


if __name__ == "__main__":
    main()
