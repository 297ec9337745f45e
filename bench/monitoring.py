"""Drift detection: mlcycle against Evidently's DataDriftPreset and a plain NumPy/SciPy pass.

The data (``bench/_monitoring_data.py``): a seeded reference and current frame of 25 columns
(20 numeric, 5 categorical with 5-50 levels) with drift injected into 5 known columns (numeric
shifts of 0.1, 0.2, 0.3 and 0.5 standard deviations, and one categorical), at 10k, 100k and 1M
rows each, written once as Parquet; every tool reads the same files.

Each measurement is a fresh process (``bench/_monitoring_workers.py``): CPU seconds
(``getrusage``, all threads, from reading the files to the verdicts) and peak RSS, plus the
columns each tool calls drifted against the truth:

- ``mlcycle``           ``detect_drift(reference, current)`` on both Parquet files;
- ``mlcycle (profile)`` the same against the reference's stored profile: only the current file
  is read (the profile is computed once, untimed, as ingesting the dataset version would);
- ``numpy``             the same statistics the plain way (``ks_2samp``, ``wasserstein_distance``,
  quantile-bin PSI, ``chi2_contingency``, ``jensenshannon``) with mlcycle's verdict rule;
- ``evidently``         ``Report([DataDriftPreset()])`` with its defaults, in its own venv.

Then a false-alarm simulation: many seeded trials of the 5 categorical columns, reference and
current drawn from the same frequencies, 1,000 rows each (where Evidently picks its chi-squared
test). Every flag is a false alarm; a test at 5 % should flag about 5 %.

Repeats are interleaved (the tools' order rotates) and the table shows medians.

Usage::

    .venv/bin/python bench/monitoring.py            # 10k, 100k and 1M rows: ~10 min on 2 cores
    .venv/bin/python bench/monitoring.py --quick    # 10k and 100k, one repeat: ~1-2 min
    .venv/bin/python bench/monitoring.py --sizes 100000 --repeats 5

Writes ``bench/results/monitoring.json``. Evidently lives in its own venv (``make
bench-monitoring`` creates it from ``bench/requirements-evidently.txt``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    MLCYCLE_PYTHON,
    machine_info,
    median,
    peer_python,
    print_table,
    run_worker,
    write_results,
)
from _monitoring_data import CATEGORICAL, DRIFTED, NUMERIC, frames

WORKER = Path(__file__).resolve().parent / "_monitoring_workers.py"
TOOLS = ("mlcycle", "mlcycle_profile", "numpy", "evidently")
FALSE_ALARM_ROWS = 1000


def _label(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k"


def _write(n: int, folder: Path) -> dict[str, str]:
    """The frames of *n* rows as Parquet, and the reference's profile as stored JSON."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlcycle.datasets.profile import profile_table

    ref, cur = frames(n)
    paths = {k: str(folder / f"{k}-{n}.parquet") for k in ("ref", "cur")}
    ref_table = pa.Table.from_pandas(ref, preserve_index=False)
    pq.write_table(ref_table, paths["ref"])
    pq.write_table(pa.Table.from_pandas(cur, preserve_index=False), paths["cur"])
    profile = folder / f"ref-{n}.profile.json"
    profile.write_bytes(profile_table(ref_table).to_json())
    return {**paths, "profile": str(profile)}


def _python(tool: str) -> Path:
    return peer_python("evidently") if tool == "evidently" else MLCYCLE_PYTHON


def _measure(sizes: list[int], repeats: int, folder: Path) -> dict[int, dict[str, list[dict]]]:
    runs: dict[int, dict[str, list[dict]]] = {}
    for n in sizes:
        files = _write(n, folder)
        runs[n] = {tool: [] for tool in TOOLS}
        for repeat in range(repeats):
            order = TOOLS[repeat % len(TOOLS):] + TOOLS[: repeat % len(TOOLS)]
            for tool in order:
                spec = json.dumps({"tool": tool, **files})
                result = run_worker(_python(tool), [str(WORKER), spec], timeout=3600)
                runs[n][tool].append(result)
                print(f"  {_label(n):>4} repeat {repeat + 1}/{repeats} {tool:<16} "
                      f"{result['cpu_s']:7.2f} CPU-s {result['peak_mb']:7.0f} MB  "
                      f"flags {len(result['flagged'])}", file=sys.stderr)
    return runs


def _false_alarms(trials: int) -> dict[str, dict]:
    out = {}
    for tool in ("mlcycle", "evidently"):
        spec = json.dumps({"tool": tool, "rows": FALSE_ALARM_ROWS, "trials": trials})
        out[tool] = run_worker(_python(tool), [str(WORKER), spec], timeout=3600)
        print(f"  false alarms {tool}: {out[tool]['flag_rate']:.1%}", file=sys.stderr)
    return out


def _rows(runs: dict[int, dict[str, list[dict]]], alarms: dict[str, dict] | None,
          repeats: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    undrifted = len(NUMERIC) + len(CATEGORICAL) - len(DRIFTED)
    for n, by_tool in runs.items():
        shape = f"{_label(n)} rows x 25 cols"

        def med(tool: str, key: str, tool_runs: dict[str, list[dict]] = by_tool) -> float:
            return round(median([r[key] for r in tool_runs[tool]]), 4)

        def flags(tool: str, tool_runs: dict[str, list[dict]] = by_tool) -> set[str]:
            return set(tool_runs[tool][0]["flagged"])  # deterministic: the same each repeat

        for unit, key, what in (("CPU-s", "cpu_s", "CPU"), ("MB", "peak_mb", "peak RSS")):
            for mine, label in (("mlcycle", "raw reference"),
                                ("mlcycle_profile", "stored profile")):
                rows.append({
                    "case": f"drift report {shape}, {what} ({label})",
                    "unit": unit,
                    "better": "lower",
                    "mlcycle": med(mine, key),
                    "peers": {"evidently": med("evidently", key), "numpy": med("numpy", key)},
                    "samples": {t: [round(r[key], 4) for r in by_tool[t]] for t in TOOLS},
                    "repeats": repeats,
                })
        found = {t: len(flags(t) & DRIFTED) for t in TOOLS}
        false = {t: len(flags(t) - DRIFTED) for t in TOOLS}
        rows.append({
            "case": f"drifted columns found of {len(DRIFTED)}, {shape}",
            "unit": "columns", "better": "higher",
            "mlcycle": found["mlcycle"],
            "peers": {"evidently": found["evidently"], "numpy": found["numpy"]},
            "mlcycle_profile": found["mlcycle_profile"],
            "missed": {t: sorted(DRIFTED - flags(t)) for t in TOOLS},
        })
        rows.append({
            "case": f"false alarms of {undrifted} undrifted columns, {shape}",
            "unit": "columns", "better": "lower",
            "mlcycle": false["mlcycle"],
            "peers": {"evidently": false["evidently"], "numpy": false["numpy"]},
            "mlcycle_profile": false["mlcycle_profile"],
            "false_alarms": {t: sorted(flags(t) - DRIFTED) for t in TOOLS},
        })
        verdict = {t: by_tool[t][0]["dataset_drift"] for t in TOOLS}
        rows.append({
            "case": f"dataset verdict with 5 of 25 columns drifted, {shape} (1 = drift)",
            "unit": "verdict", "better": "higher",
            "mlcycle": int(verdict["mlcycle"]),
            "peers": {"evidently": int(verdict["evidently"]), "numpy": int(verdict["numpy"])},
            "mlcycle_profile": int(verdict["mlcycle_profile"]),
            "drifted_share": {t: by_tool[t][0]["drifted_share"] for t in TOOLS},
        })
    if alarms:
        mine = alarms["mlcycle"]
        rows.append({
            "case": f"categorical false-alarm rate, undrifted, {FALSE_ALARM_ROWS:,} rows "
                    f"(nominal 5%; {mine['columns']:,} column tests)",
            "unit": "%", "better": "lower",
            "mlcycle": round(100 * mine["test_rejection_rate"], 2),
            "peers": {"evidently": round(100 * alarms["evidently"]["flag_rate"], 2)},
            "mlcycle_verdict_rate": round(100 * mine["flag_rate"], 2),
            "note": "mlcycle: rejections of its two-sample chi-squared test at 5 %; its drift "
                    "verdict (which also needs an effect size) flags mlcycle_verdict_rate",
        })
    return rows


def _ratio(peer: float | None, mine: float | None) -> str:
    if not peer or not mine:
        return "—"
    return f"{peer / mine:.1f}x"


def _print(rows: list[dict[str, Any]]) -> None:
    table = []
    for row in rows:
        peers = row["peers"]
        cells = [row["case"], row["unit"], f"{row['mlcycle']:g}",
                 f"{peers.get('numpy', '—'):g}" if "numpy" in peers else "—",
                 f"{peers['evidently']:g}"]
        if row["unit"] in ("CPU-s", "MB"):
            cells += [_ratio(peers["evidently"], row["mlcycle"]),
                      f"{row['mlcycle'] / peers['numpy']:.2f}" if peers.get("numpy") else "—"]
        else:
            cells += ["", ""]
        table.append(cells)
    print_table(
        "Drift detection: mlcycle vs Evidently DataDriftPreset vs a plain NumPy/SciPy pass",
        ["case", "unit", "mlcycle", "numpy", "evidently", "evidently/mlcycle",
         "mlcycle/numpy"],
        table,
        "CPU-s: getrusage user+system of the worker from reading the Parquet files to the "
        "verdicts (medians of interleaved repeats); MB: the worker's peak RSS, imports "
        "included. evidently/mlcycle > 1: mlcycle uses less.",
        align="lrrrrrr",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="10k and 100k rows, one repeat, 50 false-alarm trials")
    parser.add_argument("--sizes", help="comma-separated row counts (default 10k,100k,1M)")
    parser.add_argument("--repeats", type=int, default=None, help="default 3 (1 with --quick)")
    parser.add_argument("--trials", type=int, default=None,
                        help="false-alarm trials (default 200, 50 with --quick; 0 skips)")
    args = parser.parse_args(argv)
    sizes = ([int(s) for s in args.sizes.split(",")] if args.sizes
             else [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000])
    repeats = args.repeats or (1 if args.quick else 3)
    trials = args.trials if args.trials is not None else (50 if args.quick else 200)
    peer_python("evidently")  # fail early with the hint when the venv is missing

    with tempfile.TemporaryDirectory(prefix="mlcycle-bench-monitoring-") as tmp:
        runs = _measure(sizes, repeats, Path(tmp))
    alarms = _false_alarms(trials) if trials else None
    rows = _rows(runs, alarms, repeats)
    _print(rows)
    version = run_worker(peer_python("evidently"), ["-c", "import evidently, json; "
                         "print(json.dumps({'v': evidently.__version__}))"], timeout=120)["v"]
    path = write_results("monitoring", rows, versions={"evidently": version},
                         machine=machine_info(), false_alarm_trials=trials)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
