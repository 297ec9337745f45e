"""Pipelines and sweeps: what caching costs, and a sweep on each executor.

What is measured (each case on a fresh SQLite store and artifact folder in a temporary
directory; medians of ``--repeats``):

1. ``cached step``      the marginal cost of one cached no-op step: a 100-step pipeline and a
   1-step pipeline, both fully cached, timed end to end; (T100 - T1) / 99. Target < 5 ms.
2. ``cached pipeline``  a 100-step pipeline (10 independent chains of 10 no-op steps), every
   step cached, end to end (the tracking run, the records, 100 cache lookups). Target < 1 s.
3. ``first run``        the same 100 steps executed (threads), per step.
4. ``sweep``            20 trials of Optuna TPE over a scikit-learn LogisticRegression (3-fold
   cross-validation on 3,000 x 40 synthetic rows), every trial a nested tracked run: on the
   ``local`` executor (threads), ``process`` (a process pool, BLAS pinned to one thread per
   worker) and ``ray`` (a local Ray, started once and warmed before timing; its start time and
   memory are rows of their own). The peer is Optuna alone (``study.optimize``, nothing
   recorded) on 2 threads, the floor of what any tracking can add to.

Usage::

    .venv/bin/python bench/pipelines.py              # about 2 minutes on 2 cores
    .venv/bin/python bench/pipelines.py --quick      # a smoke test
    .venv/bin/python bench/pipelines.py --no-ray     # skip Ray

Writes ``bench/results/pipelines.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    fmt_number,
    machine_info,
    median,
    print_table,
    write_results,
)

_DATA: Any = None


def _data() -> Any:
    global _DATA
    if _DATA is None:
        from sklearn.datasets import make_classification

        _DATA = make_classification(n_samples=3_000, n_features=40, n_informative=12,
                                    random_state=0)
    return _DATA


def objective(C: float, class_weight: str) -> float:
    """Mean 3-fold accuracy of a LogisticRegression (lbfgs: BLAS does the work)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    X, y = _data()
    model = LogisticRegression(C=C, max_iter=500,
                               class_weight=None if class_weight == "none" else class_weight)
    return float(cross_val_score(model, X, y, cv=3).mean())


SPACE: dict[str, Any] = {"C": {"low": 1e-3, "high": 1e2, "log": True},
                         "class_weight": ["none", "balanced"]}


def _client(folder: Path) -> Any:
    import mlcycle as mc
    from mlcycle.config import Settings

    return mc.Client(settings=Settings(home=folder, flush_interval=0.5))


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _chains(width: int, depth: int) -> Any:
    import mlcycle as mc
    from mlcycle.pipelines import pipeline

    @mc.step
    def noop(x: int, i: int) -> int:
        return x

    @pipeline
    def flow() -> Any:
        ends = []
        for chain in range(width):
            value: Any = chain
            for i in range(depth):
                value = noop(value, i)
            ends.append(value)
        return ends

    return flow


def bench_cache(repeats: int) -> list[dict[str, Any]]:
    from mlcycle.pipelines import LocalExecutor, PipelineRunner

    big, small = _chains(10, 10), _chains(1, 1)
    first, cached_big, cached_small = [], [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp, _client(Path(tmp)) as client:
            with PipelineRunner(client, executor=LocalExecutor(workers=2)) as runner:
                runner.run(small)  # warm: the store's schema, imports, system facts
                first.append(_timed(lambda: runner.run(big)))
                runner.run(small)
                cached_big.append(_timed(lambda: runner.run(big)))
                cached_small.append(_timed(lambda: runner.run(small)))
                steps = runner.store.list_pipeline_runs(max_results=1).items[0]
                assert all(s.cache_hit for s in runner.store.list_step_runs(
                    steps.pipeline_run_id))
    per_step = (median(cached_big) - median(cached_small)) / 99
    return [
        {"case": "cached no-op step (marginal)", "unit": "ms", "better": "lower",
         "mlcycle": per_step * 1e3, "peers": {}, "target": 5.0,
         "samples": {"pipeline_100_s": cached_big, "pipeline_1_s": cached_small}},
        {"case": "100-step pipeline, all cached", "unit": "s", "better": "lower",
         "mlcycle": median(cached_big), "peers": {}, "target": 1.0},
        {"case": "1-step pipeline, cached, end to end", "unit": "ms", "better": "lower",
         "mlcycle": median(cached_small) * 1e3, "peers": {}},
        {"case": "100-step pipeline, first run (threads), per step", "unit": "ms",
         "better": "lower", "mlcycle": median(first) / 100 * 1e3, "peers": {}},
    ]


def _tree_rss_mb(root: int) -> float:
    """Resident memory of *root*'s descendants (not itself), in MB, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            statm = Path(f"/proc/{entry}/statm").read_text().split()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
        rss[int(entry)] = int(statm[1]) * page
    total, stack = 0, list(children.get(root, []))
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total / 1e6


def bench_sweep(n_trials: int, repeats: int, with_ray: bool) -> list[dict[str, Any]]:
    import optuna

    import mlcycle as mc
    from mlcycle.pipelines import LocalExecutor, RayExecutor
    from mlcycle.pipelines.sweeps import parse_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _data()
    executors: dict[str, Any] = {"local": LocalExecutor(workers=2),
                                 "process": LocalExecutor(workers=2, processes=True)}
    rows: list[dict[str, Any]] = []
    if with_ray:
        ray_executor = RayExecutor(num_cpus=2, init_options={"log_to_driver": False})
        start = _timed(ray_executor.start)
        rows.append({"case": "ray: start a local Ray (dashboard off) and warm 2 workers",
                     "unit": "s", "better": "lower", "mlcycle": start, "peers": {},
                     "memory_mb": _tree_rss_mb(os.getpid())})
        executors["ray"] = ray_executor

    dims = parse_space(SPACE)

    def plain_optuna() -> None:
        def inner(trial: optuna.Trial) -> float:
            return objective(trial.suggest_float("C", dims["C"].low, dims["C"].high, log=True),
                             trial.suggest_categorical("class_weight", ["none", "balanced"]))

        study = optuna.create_study(direction="maximize",
                                    sampler=optuna.samplers.TPESampler(seed=0))
        study.optimize(inner, n_trials=n_trials, n_jobs=2)

    peer = median([_timed(plain_optuna) for _ in range(repeats)])
    timings: dict[str, list[float]] = {name: [] for name in executors}
    best: dict[str, float] = {}
    for _ in range(repeats):
        for name, executor in executors.items():
            with tempfile.TemporaryDirectory() as tmp, _client(Path(tmp)) as client:
                # Workers in other processes import sklearn and Optuna on their first trial:
                # warm them untimed, as a long sweep would be.
                if name in ("process", "ray"):
                    mc.sweep(objective, SPACE, 2, sampler="random", seed=1, client=client,
                             executor=executor, direction="maximize")
                start = time.perf_counter()
                sweep = mc.sweep(objective, SPACE, n_trials, sampler="tpe", seed=0,
                                 client=client, executor=executor, direction="maximize")
                timings[name].append(time.perf_counter() - start)
                assert len(sweep.trials) == n_trials and sweep.best_value is not None
                best[name] = sweep.best_value
    for name, executor in executors.items():
        rows.append({"case": f"{n_trials}-trial sweep, {name} executor", "unit": "s",
                     "better": "lower", "mlcycle": median(timings[name]),
                     "peers": {"optuna alone (2 threads, no tracking)": peer},
                     "best_accuracy": best[name], "samples": timings[name]})
        executor.close()
    if with_ray:
        executors["ray"].shutdown()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray cases")
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    rows = bench_cache(repeats)
    rows += bench_sweep(5 if args.quick else 20, repeats, not args.no_ray)
    table = []
    for r in rows:
        peers = ", ".join(f"{k}: {fmt_number(v)}" for k, v in r["peers"].items()) or "—"
        extra = f"target < {fmt_number(r['target'])}" if "target" in r else ""
        if "memory_mb" in r:
            extra = f"{fmt_number(r['memory_mb'])} MB resident"
        table.append([r["case"], f"{fmt_number(r['mlcycle'])} {r['unit']}", peers, extra])
    print_table("pipelines: caching overhead and sweeps by executor (medians)",
                ["case", "mlcycle", "peers", "notes"], table,
                notes=f"{repeats} repeat(s); {os.cpu_count()} CPUs", align="lrll")
    path = write_results("pipelines", rows, machine=machine_info(), repeats=repeats)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
