"""Experiment tracking: mlcycle against MLflow, side by side, on the same machine and backend.

What is measured (every case on a local SQLite file and over HTTP to each project's own server
on 127.0.0.1, itself backed by SQLite):

1. ``log_metric``  single ``log_metric(key, value, step=i)`` calls inside one run, timed from
   the first call until the run has ended and every point is stored; then the stored history
   is read back and a missing point fails the bench. MLflow writes each call synchronously
   (~5 ms locally, tens of ms over HTTP), so it makes fewer calls and rates are compared. A
   second row compares against MLflow's opt-in asynchronous logging.
2. ``log_batch``   50,000 points (5 keys x 10,000 steps) in batches of 1,000; each call is
   durable on return.
3. ``runs``        creating runs with 10 params, 5 metrics and 3 tags each, the idiomatic way.
4. ``search``      a two-clause filter (``metrics.rmse < 0.5 and params.model = 'rf'``,
   ``max_results=100``) over 2,000 runs generated from a fixed seed; median of 20 searches
   after one warm-up; both tools must return the same number of matching runs.
5. ``history``     reading one 10,000-step metric history; median of 10 reads after a warm-up.
6. ``concurrent``  8 processes write to the same store at once (own run, single
   ``log_metric`` calls each); reports aggregate points/s, processes that raised, and points
   lost (expected - stored).
7. ``fresh_store`` 4 processes open a brand-new SQLite store at the same path at the same
   moment and create a run (SQLite only); reports processes that raised.

How: this script is the orchestrator (run it with mlcycle's venv python) and also the worker.
Every measurement is a fresh worker process — ``bench/.venvs/mlflow/bin/python`` for MLflow,
``.venv/bin/python`` for mlcycle — started as ``tracking.py --worker '<json spec>'``; it prints
one JSON line. For each case and repeat MLflow runs first, then mlcycle, and the table shows
the median of the repeats. Each local measurement gets a fresh temporary directory; over HTTP
one server per tool is started for the backend, each measurement uses its own experiment, and
the servers are stopped at the end. The data of the read cases (search, history) is written
once per tool and backend, untimed, through the SQLite file behind the server.

CPU time is reported next to wall time because the machine may be noisy: the worker's own CPU
(all threads) during the timed section plus, over HTTP, the CPU of the server's process tree,
divided by the operations done ("CPU/op").

Usage::

    .venv/bin/python bench/tracking.py              # the full bench, about 15 minutes on 2 cores
    .venv/bin/python bench/tracking.py --quick      # smaller sizes: a smoke test
    .venv/bin/python bench/tracking.py --cases search,history --backends sqlite --repeats 5

Writes ``bench/results/tracking.json``. MLflow lives in its own venv::

    python3 -m venv bench/.venvs/mlflow
    bench/.venvs/mlflow/bin/pip install -r bench/requirements-mlflow.txt
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import queue
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # after the path tweak above, so the script runs from any directory
    MLCYCLE_PYTHON,
    Server,
    Stopwatch,
    WorkerFailed,
    fmt_number,
    fmt_seconds,
    free_port,
    machine_info,
    median,
    peer_python,
    print_table,
    process_tree_cpu,
    ratio,
    run_worker,
    write_results,
)

SCRIPT = Path(__file__).resolve()
SEED = 42
SEARCH_FILTER = "metrics.rmse < 0.5 and params.model = 'rf'"
SEARCH_MAX_RESULTS = 100
PARAMS = {f"param_{i}": str(i * 7) for i in range(10)}
METRICS = {f"metric_{i}": i / 10 for i in range(5)}
TAGS = {f"tag_{i}": f"value-{i}" for i in range(3)}


# =========================================================================== tool adapters
# Each adapter does the same few things with one tool, the way its documentation shows.
# They are imported only inside their own venv's worker processes.


class MlflowTool:
    """MLflow: the fluent API for runs (as in its docs), ``MlflowClient`` for the rest."""

    name = "mlflow"

    def __init__(self, uri: str, async_logging: bool = False) -> None:
        import mlflow
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient

        mlflow.set_tracking_uri(uri)
        if async_logging:
            mlflow.config.enable_async_logging(True)
        self.async_logging = async_logging
        self.mlflow, self.Metric, self.Param = mlflow, Metric, Param
        self.client = MlflowClient(uri)
        self.version = mlflow.__version__
        self.experiment_id = ""

    @staticmethod
    def preload() -> None:
        import mlflow  # noqa: F401

    def use_experiment(self, name: str) -> None:
        self.experiment_id = self.mlflow.set_experiment(name).experiment_id

    def log_metric_calls(self, n: int, watch: Stopwatch) -> str:
        mlflow = self.mlflow
        run = mlflow.start_run(experiment_id=self.experiment_id, run_name="log-metric")
        watch.start()
        for i in range(n):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
        if self.async_logging:
            mlflow.flush_async_logging()  # end_run only hands queued data over; wait for it
        mlflow.end_run()
        watch.stop()
        return str(run.info.run_id)

    def log_batches(
        self, batches: list[list[tuple[str, float, int, int]]], watch: Stopwatch
    ) -> str:
        Metric = self.Metric
        run_id = self.client.create_run(self.experiment_id, run_name="log-batch").info.run_id
        watch.start()
        for batch in batches:
            metrics = [Metric(key, value, ts, step) for key, value, step, ts in batch]
            self.client.log_batch(run_id, metrics=metrics)
        watch.stop()
        self.client.set_terminated(run_id)
        return str(run_id)

    def create_runs(self, n: int, watch: Stopwatch) -> None:
        mlflow = self.mlflow
        watch.start()
        for i in range(n):
            with mlflow.start_run(experiment_id=self.experiment_id, run_name=f"r{i}"):
                mlflow.log_params(PARAMS)
                mlflow.log_metrics(METRICS)
                mlflow.set_tags(TAGS)
        watch.stop()

    def add_scored_runs(self, rows: list[tuple[str, str, float]]) -> None:
        """Populate for the search case: the fastest public way, two calls per run."""
        ts = int(time.time() * 1000)
        for name, model, rmse in rows:
            run_id = self.client.create_run(self.experiment_id, run_name=name).info.run_id
            self.client.log_batch(
                run_id,
                metrics=[self.Metric("rmse", rmse, ts, 0)],
                params=[self.Param("model", model)],
            )

    def add_history(self, key: str, steps: int) -> str:
        run_id = self.client.create_run(self.experiment_id, run_name="history").info.run_id
        ts = int(time.time() * 1000)
        for start in range(0, steps, 1000):
            points = range(start, min(start + 1000, steps))
            self.client.log_batch(
                run_id, metrics=[self.Metric(key, s / steps, ts, s) for s in points]
            )
        self.client.set_terminated(run_id)
        return str(run_id)

    def search(self, filter: str, max_results: int) -> list[tuple[str | None, float | None]]:
        runs = self.client.search_runs(
            [self.experiment_id], filter_string=filter, max_results=max_results
        )
        return [(r.data.params.get("model"), r.data.metrics.get("rmse")) for r in runs]

    def runs(self) -> list[RunSummary]:
        summaries, token = [], None
        while True:
            page = self.client.search_runs([self.experiment_id], max_results=1000, page_token=token)
            for r in page:
                user_tags = {k for k in r.data.tags if not k.startswith("mlflow.")}
                summaries.append(
                    RunSummary(r.info.run_id, set(r.data.params), set(r.data.metrics), user_tags)
                )
            token = page.token
            if not token:
                return summaries

    def history_len(self, run_id: str, key: str) -> int:
        return len(self.client.get_metric_history(run_id, key))


class MlcycleTool:
    """mlcycle: ``Client`` and its run context manager."""

    name = "mlcycle"

    def __init__(self, uri: str, artifacts: str | None) -> None:
        import mlcycle as mc

        kwargs: dict[str, Any] = {"tracking_uri": uri}
        if artifacts and not uri.startswith("http"):
            kwargs["artifact_uri"] = artifacts
        self.mc = mc
        self.client = mc.Client(**kwargs)
        self.version = _installed_version("mlcycle")
        self.experiment = ""
        self.experiment_id = ""

    @staticmethod
    def preload() -> None:
        import mlcycle  # noqa: F401

    def use_experiment(self, name: str) -> None:
        self.experiment = name
        self.experiment_id = self.client.get_or_create_experiment(name).experiment_id

    def _start(self, name: str, **kwargs: Any) -> Any:
        return self.client.start_run(
            experiment=self.experiment, name=name, log_system=False, **kwargs
        )

    def log_metric_calls(self, n: int, watch: Stopwatch) -> str:
        with self._start("log-metric") as run:
            watch.start()
            for i in range(n):
                run.log_metric("loss", 1.0 / (i + 1), step=i)
        watch.stop()  # leaving the block flushed every point and ended the run
        return str(run.run_id)

    def log_batches(
        self, batches: list[list[tuple[str, float, int, int]]], watch: Stopwatch
    ) -> str:
        Metric = self.mc.Metric
        with self._start("log-batch") as run:
            watch.start()
            for batch in batches:
                run.log_batch(
                    metrics=[Metric(key, value, step, ts) for key, value, step, ts in batch]
                )
            watch.stop()
        return str(run.run_id)

    def create_runs(self, n: int, watch: Stopwatch) -> None:
        watch.start()
        for i in range(n):
            with self._start(f"r{i}", params=PARAMS, tags=TAGS) as run:
                run.log_metrics(METRICS)
        watch.stop()

    def add_scored_runs(self, rows: list[tuple[str, str, float]]) -> None:
        ts = int(time.time() * 1000)
        for name, model, rmse in rows:
            with self._start(name, params={"model": model}) as run:
                run.log_batch(metrics=[self.mc.Metric("rmse", rmse, 0, ts)])

    def add_history(self, key: str, steps: int) -> str:
        ts = int(time.time() * 1000)
        with self._start("history") as run:
            for start in range(0, steps, 1000):
                points = range(start, min(start + 1000, steps))
                run.log_batch(metrics=[self.mc.Metric(key, s / steps, s, ts) for s in points])
        return str(run.run_id)

    def search(self, filter: str, max_results: int) -> list[tuple[str | None, float | None]]:
        page = self.client.search_runs(
            experiment_ids=[self.experiment_id], filter=filter, max_results=max_results
        )
        return [(r.params.get("model"), r.metrics.get("rmse")) for r in page.items]

    def runs(self) -> list[RunSummary]:
        summaries, token = [], None
        while True:
            page = self.client.search_runs(
                experiment_ids=[self.experiment_id], max_results=1000, page_token=token
            )
            summaries += [
                RunSummary(r.run_id, set(r.params), set(r.metrics), set(r.tags)) for r in page
            ]
            token = page.next_page_token
            if not token:
                return summaries

    def history_len(self, run_id: str, key: str) -> int:
        return len(self.client.get_metric_history(run_id, key))


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    params: set[str]
    metrics: set[str]
    tags: set[str]


def _installed_version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


def open_tool(spec: dict[str, Any]) -> MlflowTool | MlcycleTool:
    if spec["tool"] == "mlcycle":
        return MlcycleTool(spec["uri"], spec.get("artifacts"))
    return MlflowTool(spec["uri"], async_logging=spec["tool"] == "mlflow-async")


def tool_class(spec: dict[str, Any]) -> type[MlflowTool] | type[MlcycleTool]:
    return MlcycleTool if spec["tool"] == "mlcycle" else MlflowTool


# =========================================================================== data


def metric_batches(
    keys: int, steps: int, batch_size: int
) -> list[list[tuple[str, float, int, int]]]:
    """``keys`` x ``steps`` points as (key, value, step, timestamp_ms), step-major, in batches."""
    ts = int(time.time() * 1000)
    points = [
        (f"m{k}", (step % 97) / 97 + k, step, ts) for step in range(steps) for k in range(keys)
    ]
    return [points[i : i + batch_size] for i in range(0, len(points), batch_size)]


def scored_runs(n: int) -> list[tuple[str, str, float]]:
    """(name, model, rmse) for the search case, the same for every tool (fixed seed)."""
    rng = random.Random(SEED)
    return [(f"r{i}", rng.choice(("rf", "gbm", "lr")), rng.random()) for i in range(n)]


def expected_search_hits(n: int) -> int:
    matching = sum(1 for _, model, rmse in scored_runs(n) if model == "rf" and rmse < 0.5)
    return min(matching, SEARCH_MAX_RESULTS)


# =========================================================================== worker side
# One function per case. Each runs in a fresh process, gets the spec the orchestrator built,
# and returns a JSON-able dict with at least "value" (the figure the table shows), "n" (the
# operations done) and "cpu_per_op_s".


class BenchError(RuntimeError):
    """A tool returned wrong data: the bench fails loudly rather than report a fast wrong run."""


def open_experiment(spec: dict[str, Any]) -> MlflowTool | MlcycleTool:
    tool = open_tool(spec)
    tool.use_experiment(spec["experiment"])
    return tool


def rate(n: int, watch: Stopwatch) -> dict[str, Any]:
    return {"value": n / watch.wall, "n": n, "cpu_per_op_s": watch.total_cpu / n, **watch.as_dict()}


def work_log_metric(spec: dict[str, Any]) -> dict[str, Any]:
    tool = open_experiment(spec)
    watch = Stopwatch(spec.get("server_pid"))
    n = spec["n"]
    run_id = tool.log_metric_calls(n, watch)
    stored = tool.history_len(run_id, "loss")
    if stored != n:
        raise BenchError(f"{spec['tool']}: {n - stored} of {n} points missing after the run ended")
    return rate(n, watch)


def work_log_batch(spec: dict[str, Any]) -> dict[str, Any]:
    tool = open_experiment(spec)
    keys, steps = spec["keys"], spec["steps"]
    batches = metric_batches(keys, steps, spec["batch_size"])
    watch = Stopwatch(spec.get("server_pid"))
    run_id = tool.log_batches(batches, watch)
    for k in range(keys):
        stored = tool.history_len(run_id, f"m{k}")
        if stored != steps:
            raise BenchError(f"{spec['tool']}: m{k} has {stored} of {steps} points")
    return rate(keys * steps, watch)


def work_runs(spec: dict[str, Any]) -> dict[str, Any]:
    tool = open_experiment(spec)
    n = spec["n"]
    watch = Stopwatch(spec.get("server_pid"))
    tool.create_runs(n, watch)
    runs = tool.runs()
    if len(runs) != n:
        raise BenchError(f"{spec['tool']}: {len(runs)} of {n} runs stored")
    for run in runs:
        if run.params != set(PARAMS) or run.metrics != set(METRICS) or not set(TAGS) <= run.tags:
            raise BenchError(f"{spec['tool']}: run {run.run_id} lacks params, metrics or tags")
    return rate(n, watch)


def work_search_populate(spec: dict[str, Any]) -> dict[str, Any]:
    tool = open_experiment(spec)
    tool.add_scored_runs(scored_runs(spec["runs"]))
    return {}


def work_search(spec: dict[str, Any]) -> dict[str, Any]:
    tool = open_experiment(spec)
    expected = expected_search_hits(spec["runs"])
    found = tool.search(SEARCH_FILTER, SEARCH_MAX_RESULTS)  # warm-up, and the correctness check
    wrong = [hit for hit in found if hit[0] != "rf" or hit[1] is None or not hit[1] < 0.5]
    if len(found) != expected or wrong:
        raise BenchError(
            f"{spec['tool']}: search returned {len(found)} runs, expected {expected}; "
            f"{len(wrong)} do not match the filter"
        )
    return latency(lambda: tool.search(SEARCH_FILTER, SEARCH_MAX_RESULTS), spec) | {
        "hits": expected
    }


def work_history_populate(spec: dict[str, Any]) -> dict[str, Any]:
    tool = open_experiment(spec)
    return {"run_id": tool.add_history("loss", spec["steps"])}


def work_history(spec: dict[str, Any]) -> dict[str, Any]:
    tool = open_experiment(spec)
    steps = spec["steps"]

    def read() -> None:
        if (got := tool.history_len(spec["run_id"], "loss")) != steps:
            raise BenchError(f"{spec['tool']}: history has {got} of {steps} points")

    read()  # warm-up
    return latency(read, spec)


def latency(call: Callable[[], object], spec: dict[str, Any]) -> dict[str, Any]:
    """Median milliseconds of ``spec["calls"]`` calls, and CPU per call over all of them."""
    times = []
    watch = Stopwatch(spec.get("server_pid"))
    watch.start()
    for _ in range(spec["calls"]):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    watch.stop()
    n = spec["calls"]
    return {
        "value": median(times) * 1000,
        "n": n,
        "cpu_per_op_s": watch.total_cpu / n,
        **watch.as_dict(),
    }


def describe(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first[:160]}"


def _create_experiment(spec: dict[str, Any]) -> None:
    open_experiment(spec)


def _writer(spec: dict[str, Any], barrier: Any, reports: Any) -> None:
    """One of the concurrent writers: its own run, ``spec["n"]`` single log_metric calls."""
    report: dict[str, Any] = {"error": None, "t0": None, "t1": None, "cpu": 0.0}
    try:
        tool = open_experiment(spec)
    except BaseException as exc:
        barrier.abort()  # release the others rather than let them wait for the timeout
        reports.put(report | {"error": describe(exc)})
        return
    c0 = time.process_time()
    try:
        barrier.wait(timeout=300)
        report["t0"] = time.time()
        tool.log_metric_calls(spec["n"], Stopwatch())
    except BaseException as exc:
        report["error"] = describe(exc)
    report["t1"] = time.time()
    report["cpu"] = time.process_time() - c0
    reports.put(report)


def _gather(procs: list[Any], reports: Any, timeout: float) -> list[dict[str, Any]]:
    """Every process's report; a process that died without one counts as an error."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(got) < len(procs) and time.monotonic() < deadline:
        try:
            got.append(reports.get(timeout=1))
        except queue.Empty:
            if all(not p.is_alive() for p in procs) and reports.empty():
                break
    for p in procs:
        p.join(timeout=10)
        if p.is_alive():
            p.kill()
    for _ in range(len(procs) - len(got)):
        got.append({"error": "process ended without a report", "t0": None, "t1": None, "cpu": 0.0})
    return got


def work_concurrent(spec: dict[str, Any]) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    tool_class(spec).preload()  # import once; the children inherit the module, not a connection
    setup = ctx.Process(target=_create_experiment, args=(spec,))
    setup.start()
    setup.join()
    if setup.exitcode != 0:
        raise BenchError(f"{spec['tool']}: could not create the experiment")

    procs_n, n = spec["processes"], spec["n"]
    barrier, reports = ctx.Barrier(procs_n), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(spec, barrier, reports)) for _ in range(procs_n)]
    server_cpu0 = process_tree_cpu(spec.get("server_pid"))
    for p in procs:
        p.start()
    results = _gather(procs, reports, timeout=spec["timeout"])
    server_cpu = process_tree_cpu(spec.get("server_pid")) - server_cpu0

    tool = open_experiment(spec)
    stored = sum(tool.history_len(run.run_id, "loss") for run in tool.runs())
    starts = [r["t0"] for r in results if r["t0"]]
    ends = [r["t1"] for r in results if r["t1"]]
    window = (max(ends) - min(starts)) if starts and ends else float("nan")
    errors = [r["error"] for r in results if r["error"]]
    client_cpu = sum(r["cpu"] for r in results)
    return {
        "value": stored / window if stored else 0.0,
        "n": procs_n * n,
        "processes": procs_n,
        "errors": len(errors),
        "lost": procs_n * n - stored,
        "error_messages": sorted(set(errors)),
        "cpu_per_op_s": (client_cpu + server_cpu) / max(stored, 1),
        "wall_s": window,
        "client_cpu_s": client_cpu,
        "server_cpu_s": server_cpu,
    }


def _fresh_store_opener(spec: dict[str, Any], barrier: Any, reports: Any) -> None:
    error = None
    try:
        barrier.wait(timeout=120)
        # The store does not exist yet: each process may be the one that creates it.
        open_experiment(spec).create_runs(1, Stopwatch())
    except BaseException as exc:
        error = describe(exc)
    reports.put({"error": error, "t0": None, "t1": None, "cpu": 0.0})


def work_fresh_store(spec: dict[str, Any]) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    tool_class(spec).preload()
    procs_n = spec["processes"]
    barrier, reports = ctx.Barrier(procs_n), ctx.Queue()
    procs = [
        ctx.Process(target=_fresh_store_opener, args=(spec, barrier, reports))
        for _ in range(procs_n)
    ]
    for p in procs:
        p.start()
    results = _gather(procs, reports, timeout=spec["timeout"])
    errors = [r["error"] for r in results if r["error"]]
    try:
        tool = open_experiment(spec)
        runs_stored: int | str = len(tool.runs())
    except Exception as exc:  # a store broken by the race is a finding, not a bench crash
        runs_stored = f"store unreadable: {describe(exc)}"
    return {
        "value": len(errors),
        "n": procs_n,
        "processes": procs_n,
        "errors": len(errors),
        "runs_stored": runs_stored,
        "error_messages": sorted(set(errors)),
        "cpu_per_op_s": None,
    }


WORKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "log_metric": work_log_metric,
    "log_batch": work_log_batch,
    "runs": work_runs,
    "search:populate": work_search_populate,
    "search": work_search,
    "history:populate": work_history_populate,
    "history": work_history,
    "concurrent": work_concurrent,
    "fresh_store": work_fresh_store,
}


def worker_main(spec: dict[str, Any]) -> None:
    result = WORKERS[spec["case"]](spec)
    result["version"] = _installed_version("mlcycle" if spec["tool"] == "mlcycle" else "mlflow")
    print(json.dumps(result), flush=True)


# =========================================================================== orchestrator side


@dataclass(frozen=True)
class Case:
    key: str
    title: str
    unit: str
    better: str  # "higher" | "lower"
    op: str  # one operation, for CPU per op
    backends: tuple[str, ...] = ("sqlite", "http")
    populate: bool = False  # write the data once per tool and backend, untimed
    peer_variants: tuple[tuple[str, str], ...] = (("mlflow", ""),)  # (worker tool, row suffix)


CASES = (
    Case(
        "log_metric",
        "log_metric calls",
        "points/s",
        "higher",
        "point",
        peer_variants=(("mlflow", ""), ("mlflow-async", ", MLflow async logging")),
    ),
    Case("log_batch", "log_batch, 1,000 points a call", "points/s", "higher", "point"),
    Case("runs", "create runs, 10p + 5m + 3t each", "runs/s", "higher", "run"),
    Case("search", "search, 2-clause filter, top 100", "ms", "lower", "search", populate=True),
    Case("history", "read one metric history", "ms", "lower", "read", populate=True),
    Case("concurrent", "concurrent writer processes", "points/s", "higher", "point"),
    Case(
        "fresh_store",
        "new store, 4 processes at once",
        "failed processes",
        "lower",
        "process",
        backends=("sqlite",),
    ),
)


def sizes(case: str, tool: str, backend: str, quick: bool) -> dict[str, Any]:
    """How much work one measurement does. MLflow gets fewer single calls where it is slow."""
    q = 10 if quick else 1  # --quick divides the sizes
    is_mlflow = tool.startswith("mlflow")
    if case == "log_metric":
        n = {"sqlite": 500, "http": 200}[backend] if is_mlflow else 5000
        return {"n": n // q}
    if case == "log_batch":
        return {"keys": 5, "steps": 10_000 // q, "batch_size": 1000}
    if case == "runs":
        n = {"sqlite": 500, "http": 60}[backend] if is_mlflow else 500
        return {"n": max(n // q, 5)}
    if case == "search":
        return {"runs": 2000 // q, "calls": 20 // (2 if quick else 1)}
    if case == "history":
        return {"steps": 10_000 // q, "calls": 10 // (2 if quick else 1)}
    if case == "concurrent":
        n = 100 if is_mlflow else 2000
        return {"processes": 8 if not quick else 4, "n": n // q}
    if case == "fresh_store":
        return {"processes": 4}
    raise ValueError(case)


@dataclass
class Store:
    """Where one tool keeps its data for a measurement."""

    uri: str
    artifacts: str
    cwd: str
    populate_uri: str  # for untimed data loading: the SQLite file itself, also behind a server
    server_pid: int | None = None


def sqlite_uri(path: Path) -> str:
    return f"sqlite:///{path}"  # an absolute path gives the four slashes


class Stores:
    """Hands out stores for one backend: a new directory per call locally, the server over HTTP."""

    def __init__(self, backend: str, root: Path, servers: dict[str, tuple[Server, Path]]) -> None:
        self.backend, self.root, self.servers = backend, root, servers

    def fresh(self, tool: str) -> Store:
        base = tool.split("-")[0]  # "mlflow-async" uses MLflow's store and server
        if self.backend == "http":
            server, directory = self.servers[base]
            return Store(
                uri=server.health_url.removesuffix("/health"),
                artifacts=str(directory / "artifacts"),
                cwd=str(directory),
                populate_uri=sqlite_uri(directory / f"{base}.db"),
                server_pid=server.pid,
            )
        directory = Path(tempfile.mkdtemp(prefix=f"{tool}-", dir=self.root))
        uri = sqlite_uri(directory / f"{base}.db")
        return Store(uri, str(directory / "artifacts"), str(directory), uri)


@contextmanager
def backend_stores(backend: str, root: Path, tools: list[str]) -> Iterator[Stores]:
    """Stores for ``backend``; over HTTP, starts each tool's server first and stops it after."""
    servers: dict[str, tuple[Server, Path]] = {}
    try:
        if backend == "http":
            for tool in tools:
                directory = Path(tempfile.mkdtemp(prefix=f"{tool}-server-", dir=root))
                server = make_server(tool, directory)
                say(f"[http] starting the {tool} server on {server.health_url} ...")
                server.start()
                say(f"[http] {tool} server healthy after {server.started_in:.1f}s")
                servers[tool] = (server, directory)
        yield Stores(backend, root, servers)
    finally:
        for server, _ in servers.values():
            server.stop()


def make_server(tool: str, directory: Path) -> Server:
    port = free_port()
    db, artifacts = directory / f"{tool}.db", directory / "artifacts"
    health = f"http://127.0.0.1:{port}/health"
    log = directory / "server.log"
    address = ["--host", "127.0.0.1", "--port", str(port)]
    if tool == "mlflow":
        mlflow_cli = peer_python("mlflow").parent / "mlflow"
        store = ["--backend-store-uri", sqlite_uri(db), "--default-artifact-root", str(artifacts)]
        # Its default 4 workers. The job runner (huey consumers for GenAI jobs) is no part of
        # tracking; off, it adds no idle CPU to the server's figures.
        env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        return Server("mlflow", [str(mlflow_cli), "server", *address, *store], health, log, env)
    mlcycle_cli = MLCYCLE_PYTHON.parent / "mlcycle"
    store = ["--tracking-uri", sqlite_uri(db), "--artifact-uri", str(artifacts)]
    return Server("mlcycle", [str(mlcycle_cli), "server", *address, *store], health, log)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.pythons = {"mlcycle": MLCYCLE_PYTHON}
        if "mlflow" in args.tools:
            self.pythons["mlflow"] = peer_python("mlflow")
        self.versions: dict[str, str] = {}
        self.timeout = 300 if args.quick else 1200

    def measure(self, tool: str, case: str, store: Store, **spec: Any) -> dict[str, Any]:
        spec = {
            "tool": tool,
            "case": case,
            "uri": store.uri,
            "artifacts": store.artifacts,
            "server_pid": store.server_pid,
            "timeout": self.timeout,
            **spec,
        }
        python = self.pythons[tool.split("-")[0]]
        result = run_worker(
            python, [str(SCRIPT), "--worker", json.dumps(spec)], timeout=self.timeout, cwd=store.cwd
        )
        self.versions[tool.split("-")[0]] = result.get("version", "?")
        return result

    def run_case(self, case: Case, backend: str, stores: Stores) -> list[dict[str, Any]]:
        tools = [t for t, _ in case.peer_variants if "mlflow" in self.args.tools]
        tools += ["mlcycle"] if "mlcycle" in self.args.tools else []
        quick = self.args.quick
        prepared = {
            tool: self.populate(case, backend, stores, tool) for tool in tools if case.populate
        }

        samples: dict[str, list[dict[str, Any]]] = {tool: [] for tool in tools}
        for rep in range(self.args.repeats):
            for tool in tools:  # the peer first, then mlcycle, every repeat
                if tool in prepared:
                    store, spec = prepared[tool]
                else:
                    store = stores.fresh(tool)
                    spec = {"experiment": f"{case.key}-{uuid.uuid4().hex[:8]}"}
                size = sizes(case.key, tool, backend, quick)
                result = self.measure(tool, case.key, store, **spec, **size)
                samples[tool].append(result)
                say(
                    f"[{backend}] {case.title} #{rep + 1} {tool}: "
                    f"{fmt_number(result['value'])} {case.unit}"
                )
        peers = [(p, s) for p, s in case.peer_variants if p in samples] or [case.peer_variants[0]]
        return [self.row(case, backend, peer, suffix, samples) for peer, suffix in peers]

    def populate(
        self, case: Case, backend: str, stores: Stores, tool: str
    ) -> tuple[Store, dict[str, Any]]:
        """Write a read case's data once, untimed, through the SQLite file (also over HTTP)."""
        store, experiment = stores.fresh(tool), f"{case.key}-{uuid.uuid4().hex[:8]}"
        loader = Store(store.populate_uri, store.artifacts, store.cwd, store.populate_uri)
        t0 = time.perf_counter()
        size = sizes(case.key, tool, backend, self.args.quick)
        result = self.measure(tool, f"{case.key}:populate", loader, experiment=experiment, **size)
        say(f"[{backend}] {case.key}: {tool} data written in {time.perf_counter() - t0:.1f}s")
        extra = {k: v for k, v in result.items() if k not in ("process_cpu_s", "version")}
        return store, {"experiment": experiment, **extra}

    def row(
        self,
        case: Case,
        backend: str,
        peer: str,
        suffix: str,
        samples: dict[str, list[dict[str, Any]]],
    ) -> dict[str, Any]:
        """One result row: mlcycle against one MLflow variant, medians of the repeats."""
        tools = {"mlcycle": samples.get("mlcycle", []), "mlflow": samples.get(peer, [])}
        counting = case.key == "fresh_store"  # failures add up over repeats; rates take medians

        def summary(key: str) -> dict[str, Any]:
            out = {}
            for name, runs in tools.items():
                values = [s[key] for s in runs if s.get(key) is not None]
                out[name] = (sum(values) if counting else median(values)) if values else None
            return out

        def total(key: str) -> dict[str, Any]:
            return {name: sum(s[key] for s in runs) for name, runs in tools.items()}

        value = summary("value")
        row: dict[str, Any] = {
            "case": case.title + suffix,
            "backend": backend,
            "unit": case.unit,
            "better": case.better,
            "mlcycle": value["mlcycle"],
            "peers": {"mlflow": value["mlflow"]},
            "ratio": None if counting else ratio(value["mlcycle"], value["mlflow"], case.better),
            "n": summary("n"),
            "op": case.op,
            "cpu_s_per_op": summary("cpu_per_op_s"),
            "samples": {name: [s["value"] for s in runs] for name, runs in tools.items()},
        }
        if peer == "mlflow-async":
            row["mlflow_logging"] = "async"
        if case.key == "search":
            row["hits"] = {name: [s["hits"] for s in runs] for name, runs in tools.items()}
        if case.key in ("concurrent", "fresh_store"):
            row["processes"] = total("processes")
            row["errors"] = total("errors")
            if case.key == "concurrent":
                row["lost_points"] = total("lost")
            else:
                row["runs_stored"] = {n: [s["runs_stored"] for s in r] for n, r in tools.items()}
            row["error_messages"] = {
                name: sorted({m for s in runs for m in s["error_messages"]})
                for name, runs in tools.items()
            }
        return row

    def run(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        wanted = self.args.cases
        with tempfile.TemporaryDirectory(prefix="bench-tracking-") as tmp:
            for backend in self.args.backends:
                cases = [c for c in CASES if backend in c.backends and c.key in wanted]
                if not cases:
                    continue
                with backend_stores(backend, Path(tmp), self.args.tools) as stores:
                    for case in cases:
                        rows += self.run_case(case, backend, stores)
        return rows


# =========================================================================== report


def table_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    out = []
    for row in rows:
        mine, theirs = row["mlcycle"], row["peers"]["mlflow"]
        cpu = row["cpu_s_per_op"]
        notes = []
        if "errors" in row:
            procs, errors = row["processes"], row["errors"]
            notes.append(
                f"errors {errors['mlcycle']}/{procs['mlcycle']} vs "
                f"{errors['mlflow']}/{procs['mlflow']}"
            )
        if "lost_points" in row:
            lost = row["lost_points"]
            notes.append(f"lost points {lost['mlcycle']} vs {lost['mlflow']}")
        elif row["n"]["mlcycle"] != row["n"]["mlflow"] and row["n"]["mlflow"] is not None:
            notes.append(f"n {fmt_number(row['n']['mlcycle'])} vs {fmt_number(row['n']['mlflow'])}")
        out.append(
            [
                row["case"],
                row["backend"],
                row["unit"],
                fmt_number(mine),
                fmt_number(theirs),
                f"{row['ratio']:.1f}x" if row["ratio"] else "—",
                fmt_seconds(cpu["mlcycle"]),
                fmt_seconds(cpu["mlflow"]),
                "; ".join(notes),
            ]
        )
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Experiment tracking: mlcycle against MLflow, side by side."
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per tool (median)")
    parser.add_argument(
        "--cases",
        default=",".join(c.key for c in CASES),
        help="comma-separated subset of: " + ", ".join(c.key for c in CASES),
    )
    parser.add_argument("--backends", default="sqlite,http", help="sqlite, http or both")
    parser.add_argument("--tools", default="mlflow,mlcycle", help="which tools to measure")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: one measurement
    args = parser.parse_args(argv)
    for name, allowed in (
        ("cases", {c.key for c in CASES}),
        ("backends", {"sqlite", "http"}),
        ("tools", {"mlflow", "mlcycle"}),
    ):
        chosen = [x.strip() for x in getattr(args, name).split(",") if x.strip()]
        if unknown := set(chosen) - allowed:
            parser.error(f"--{name}: unknown {', '.join(sorted(unknown))}")
        setattr(args, name, chosen)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def check_mlcycle() -> None:
    probe = subprocess.run(
        [str(MLCYCLE_PYTHON), "-c", "import mlcycle; mlcycle.Client"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        sys.exit(
            f"mlcycle is not importable from {MLCYCLE_PYTHON}:\n{probe.stderr.strip()}\n"
            "install it with: .venv/bin/pip install -e '.[dev]'"
        )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        worker_main(json.loads(args.worker))
        return
    if "mlcycle" in args.tools:
        check_mlcycle()
    # No usage telemetry from a benchmark: MLflow sends it by default from a background thread
    # (which also raced with forked writers: KeyError '_MLFLOW_TELEMETRY_SESSION_ID').
    # Every worker and server inherits these.
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ["DO_NOT_TRACK"] = "true"
    bench = Bench(args)
    t0 = time.perf_counter()
    try:
        rows = bench.run()
    except (WorkerFailed, BenchError, RuntimeError) as exc:
        sys.exit(f"bench failed: {exc}")
    elapsed = time.perf_counter() - t0
    machine = machine_info()
    path = write_results(
        "tracking",
        rows,
        versions=bench.versions,
        machine=machine,
        repeats=args.repeats,
        quick=args.quick,
        seconds=round(elapsed, 1),
    )
    versions = ", ".join(f"{k} {v}" for k, v in sorted(bench.versions.items()))
    notes = (
        f"{versions}; Python {machine['python']}, {machine['cpus']} CPUs; median of "
        f"{args.repeats}{' (--quick sizes)' if args.quick else ''}; {elapsed / 60:.1f} min.\n"
        "x better: mlcycle/MLflow for rates, MLflow/mlcycle for times (>1: mlcycle ahead).\n"
        "CPU/op: CPU time of the client process (all threads) plus, over HTTP, of the server's "
        "process tree, averaged over the operations of the timed section.\n"
        "MLflow logs synchronously by default, so it makes fewer single calls (n); its server "
        "runs with its default 4 workers, job execution and telemetry off."
    )
    header = [
        "Case",
        "Backend",
        "Unit",
        "mlcycle",
        "MLflow",
        "x better",
        "CPU/op mlcycle",
        "CPU/op MLflow",
        "Notes",
    ]
    title = "Experiment tracking: mlcycle vs MLflow"
    print_table(title, header, table_rows(rows), notes, align="lllrrrrrl")
    print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


if __name__ == "__main__":
    main()
