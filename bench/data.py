"""The data stage: mlcycle against DVC, pandera, Great Expectations and pandas, side by side.

Cases (each module documents its own method; all take medians of interleaved repeats and report
CPU seconds next to wall time, since the machine is shared):

1. versioning raw files against DVC (``bench/_data_versioning.py``): ``dvc add`` of one 1 GiB
   file and of a folder of 20,000 files of 4 KiB, the no-change ``dvc status`` and the re-version
   after editing one small file;
2. ingesting a table (this file): a 1M-row x 25-column CSV ingested as a dataset version
   (parse, Parquet snapshot, BLAKE3, profile, metadata), against the plain pandas
   ``read_csv`` + ``to_parquet`` a user would write without versioning; then the re-ingest of
   the unchanged CSV (fingerprint check, nothing read) against ``dvc status`` of the same file;
3. validating 1M rows x 25 columns (types, nulls, ranges, allowed categories) against pandera
   and Great Expectations (``bench/_data_validation.py``); failure counts must agree;
4. profiling 1M rows x 25 columns against the equivalent pandas calls
   (``bench/_data_profile.py``).

Usage::

    .venv/bin/python bench/data.py                  # everything, ~10 minutes on 2 cores
    .venv/bin/python bench/data.py --quick          # small sizes: a smoke test
    .venv/bin/python bench/data.py --cases ingest,validate --repeats 5

Writes ``bench/results/data.json`` (with ``--cases``, only those rows). Peers live in their own
venvs under ``bench/.venvs/`` (``make bench-data`` creates them from bench/requirements-*.txt).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    MLCYCLE_PYTHON,
    REPO,
    VENVS_DIR,
    machine_info,
    median,
    print_table,
    ratio,
    run_worker,
    write_results,
)

SCRIPT = Path(__file__).resolve()
CASES = ("versioning", "ingest", "validate", "profile")


# --------------------------------------------------------------------------- ingest


def _ingest_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs in a fresh process: one timed operation, printed as JSON."""
    os.chdir(spec["home"])
    t0, c0 = time.perf_counter(), time.process_time()
    if spec["tool"] == "pandas":
        import pandas as pd

        pd.read_csv(spec["csv"]).to_parquet(Path(spec["home"]) / "out.parquet")
        rows = None
    else:
        import mlcycle as mc

        mc.get_client().data  # noqa: B018 - an open client; opening one is not ingest work
        t0, c0 = time.perf_counter(), time.process_time()
        version = mc.data.ingest("bench", spec["csv"])
        rows = version.num_rows
    return {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
            "rows": rows}


def _write_csv(path: Path, rows: int, cols: int) -> None:
    from _data_profile import build_table
    from pyarrow import csv

    csv.write_csv(build_table(rows, cols), path)


def run_ingest_cases(rows: int, cols: int, repeats: int) -> list[dict[str, Any]]:
    import subprocess

    samples: dict[str, list[dict[str, Any]]] = {"first": [], "pandas": [], "unchanged": [],
                                                "dvc_status": []}
    dvc = VENVS_DIR / "dvc" / "bin" / "dvc"
    with tempfile.TemporaryDirectory(prefix="mlcycle-bench-ingest-") as tmp:
        csv_path = Path(tmp) / "table.csv"
        _write_csv(csv_path, rows, cols)
        repo = Path(tmp) / "dvcrepo"
        repo.mkdir()
        env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
        dvc_csv = repo / "table.csv"
        os.link(csv_path, dvc_csv)
        for cmd in (["git", "init", "-q"], [str(dvc), "init", "-q"],
                    [str(dvc), "config", "--local", "core.site_cache_dir", str(repo / ".sc")],
                    [str(dvc), "add", "-q", "table.csv"]):
            subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True)
        for i in range(repeats):
            home = Path(tmp) / f"home-{i}"
            home.mkdir()
            base = {"csv": str(csv_path), "home": str(home)}
            for tool, key in (("pandas", "pandas"), ("mlcycle", "first"),
                              ("mlcycle", "unchanged")):
                spec = json.dumps({**base, "tool": tool})
                t0 = time.perf_counter()
                result = run_worker(MLCYCLE_PYTHON, [str(SCRIPT), "--worker", spec],
                                    timeout=900, env={"PYTHONPATH": str(REPO / "src")})
                result["process_wall_s"] = time.perf_counter() - t0
                samples[key].append(result)
            t0 = time.perf_counter()
            out = subprocess.run([str(dvc), "status", "table.csv.dvc"], cwd=repo, env=env,
                                 capture_output=True, text=True, check=True)
            samples["dvc_status"].append({"wall_s": time.perf_counter() - t0})
            if "up to date" not in out.stdout:
                raise RuntimeError(f"dvc status is not clean: {out.stdout}")
    if any(s["rows"] != rows for s in samples["first"] + samples["unchanged"]):
        raise RuntimeError("an ingest recorded another row count")
    m = {k: median([s["wall_s"] for s in v]) for k, v in samples.items()}
    whole = {k: median([s["process_wall_s"] for s in v]) for k, v in samples.items()
             if k != "dvc_status"}
    cpu = {k: median([s["cpu_s"] for s in v]) for k, v in samples.items() if k != "dvc_status"}
    label = f"{rows // 1_000_000}M" if rows >= 1_000_000 else f"{rows:,}"
    return [
        {"case": f"ingest CSV {label} x {cols} (new version)", "unit": "s", "better": "lower",
         "mlcycle": round(m["first"], 4), "peers": {"pandas read_csv+to_parquet":
                                                    round(m["pandas"], 4)},
         "cpu": {"mlcycle": round(cpu["first"], 4), "pandas": round(cpu["pandas"], 4)}},
        {"case": f"re-ingest unchanged CSV {label} x {cols} (a process each)", "unit": "s",
         "better": "lower", "mlcycle": round(whole["unchanged"], 4),
         "peers": {"dvc status": round(m["dvc_status"], 4)},
         "mlcycle_in_call": round(m["unchanged"], 4),
         "note": "both as a fresh process (interpreter start and imports included); "
                 "mlcycle_in_call is the ingest call alone"},
    ]


# --------------------------------------------------------------------------- driver


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    parser.add_argument("--cases", default=",".join(CASES), help=f"any of {', '.join(CASES)}")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_ingest_worker(json.loads(args.worker))))
        return
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = set(cases) - set(CASES)
    if unknown:
        parser.error(f"unknown cases: {', '.join(sorted(unknown))}")
    repeats = 1 if args.quick else args.repeats
    rows_n = 50_000 if args.quick else 1_000_000
    rows: list[dict[str, Any]] = []
    if "versioning" in cases:
        from _data_versioning import run_versioning_cases

        rows += run_versioning_cases(repeats=repeats, big_mib=64 if args.quick else 1024,
                                     n_small=2_000 if args.quick else 20_000)
    if "ingest" in cases:
        rows += run_ingest_cases(rows_n, 25, repeats)
    if "validate" in cases:
        from _data_validation import run_validation_case

        rows += run_validation_case(rows=rows_n, cols=25, repeats=repeats)
    if "profile" in cases:
        from _data_profile import run_profile_case

        rows.append(run_profile_case(rows=rows_n, cols=25, repeats=repeats))
    table = []
    for row in rows:
        for peer, value in row["peers"].items():
            r = ratio(row["mlcycle"], value, row["better"])
            table.append([row["case"], row["unit"], f"{row['mlcycle']:.4g}", peer,
                          f"{value:.4g}", f"{r:.1f}x" if r else "—"])
    header = ["case", "unit", "mlcycle", "peer", "peer value", "mlcycle is"]
    print_table("data: mlcycle vs peers (medians)", header, table,
                notes=f"repeats={repeats}; ratios > 1 mean mlcycle is faster", align="llrlrr")
    path = write_results("data", rows, machine=machine_info(), repeats=repeats)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
