"""The web UI with 10,000 runs in one experiment: how long the server takes to answer a page.

What is measured: full HTTP round trips from this process to ``mlcycle ui`` started as its own
process on 127.0.0.1 (SQLite store), each the median of ``--repeats`` requests after one
warm-up, with the page checked (status 200 and the expected number of table rows):

1. ``runs page``           the experiment's runs table, 50 rows, default columns (newest first).
2. ``runs page filtered``  ``metrics.rmse < 0.5 and params.model = 'rf'`` (the tracking bench's
   two-clause filter), 50 rows.
3. ``runs page sorted``    ordered by ``metrics.rmse DESC``, 50 rows.
4. ``runs page 200 rows``  200 rows, 5 metric and 5 param columns.
5. ``runs page 2``         the second page, through the first page's token.
6. ``run page``            one run's page (its params, metrics, tags, artifacts list).

The runs are written once, untimed, through the tracking service: 10 params, 5 metrics and
3 tags each, from a fixed seed. No peer runs: MLflow's UI is a React application that draws
in the browser from its REST API (its search is in the tracking bench), so a server-side page
time has no counterpart there; ``peers`` is ``{}``.

Usage::

    .venv/bin/python bench/ui.py                 # 10,000 runs
    .venv/bin/python bench/ui.py --runs 1000     # a smoke test

Writes ``bench/results/ui.json``.
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # after the path tweak above, so the script runs from any directory
    free_port,
    machine_info,
    median,
    write_results,
)

ROOT = Path(__file__).resolve().parents[1]
MLCYCLE = ROOT / ".venv" / "bin" / "mlcycle"
ROW = re.compile(r'name="run_id" value="')


def fill(home: Path, runs: int) -> tuple[str, str]:
    """*runs* runs in the experiment ``bench``: its id and one run's id."""
    import mlcycle as mc
    from mlcycle.entities import Metric

    rng = random.Random(0)
    client = mc.Client(settings=mc.Settings(home=home))
    try:
        service = client.service
        experiment = service.get_or_create_experiment("bench")
        run_id = ""
        for i in range(runs):
            run = service.create_run(
                experiment.experiment_id, name=f"run-{i}",
                params={"model": rng.choice(["rf", "gbm", "lr"]), "depth": str(rng.randint(2, 9)),
                        "lr": f"{rng.uniform(0.001, 0.3):.4f}",
                        **{f"p{k}": str(rng.randint(0, 99)) for k in range(7)}},
                tags={"team": rng.choice(["a", "b"]), "stage": "dev", "seed": str(i)},
            )
            service.log_batch(run.run_id, metrics=[
                Metric(key, rng.random(), 0, 0)
                for key in ("rmse", "mae", "r2", "loss", "accuracy")])
            run_id = run.run_id
        return experiment.experiment_id, run_id
    finally:
        client.close()


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=60) as response:
        assert response.status == 200, f"{url}: {response.status}"
        return str(response.read().decode())


def timed(url: str, repeats: int, rows: int | None) -> float:
    page = fetch(url)  # warm-up, and the check
    if rows is not None:
        found = len(ROW.findall(page))
        assert found == rows, f"{url}: {found} rows, expected {rows}"
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fetch(url)
        times.append(time.perf_counter() - start)
    return median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mlcycle-bench-ui-") as tmp:
        home = Path(tmp) / ".mlcycle"
        start = time.perf_counter()
        experiment_id, run_id = fill(home, args.runs)
        print(f"wrote {args.runs:,} runs in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        port = free_port()
        server = subprocess.Popen(
            [str(MLCYCLE), "--tracking-uri", f"sqlite:///{home / 'mlcycle.db'}", "ui",
             "--port", str(port)], stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(200):
                try:
                    fetch(f"{base}/health")
                    break
                except OSError:
                    time.sleep(0.1)
            runs_url = f"{base}/experiments/{experiment_id}"
            first = fetch(runs_url)
            token = re.search(r'page_token=([^&"]+)', first)
            assert token, "the first page has no link to the next"
            cols = "&".join(f"col=metrics.{k}" for k in ("rmse", "mae", "r2", "loss", "accuracy"))
            cols += "&" + "&".join(f"col=params.{k}" for k in ("model", "depth", "lr", "p0", "p1"))
            cases: list[tuple[str, str, int | None]] = [
                ("runs page", runs_url, 50),
                ("runs page filtered",
                 f"{runs_url}?filter=metrics.rmse+%3C+0.5+and+params.model+%3D+%27rf%27", 50),
                ("runs page sorted", f"{runs_url}?order_by=metrics.rmse+DESC", 50),
                ("runs page 200 rows", f"{runs_url}?page_size=200&{cols}", 200),
                ("runs page 2", f"{runs_url}?page_token={token.group(1)}&page=2", 50),
                ("run page", f"{base}/runs/{run_id}", None),
            ]
            rows: list[dict[str, Any]] = []
            for case, url, expected in cases:
                seconds = timed(url, args.repeats, expected)
                rows.append({"case": f"{case} ({args.runs:,} runs)", "unit": "ms",
                             "better": "lower", "mlcycle": round(seconds * 1000, 2),
                             "peers": {}})
                print(f"{case:<22} {seconds * 1000:8.1f} ms", file=sys.stderr)
        finally:
            server.terminate()
            server.wait(10)
    path = write_results("ui", rows, runs=args.runs, repeats=args.repeats,
                         machine=machine_info())
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
