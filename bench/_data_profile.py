"""Profiling a dataset version: mlcycle's one-pass, mergeable profile against pandas.

The table has ``rows`` rows and ``cols`` columns from a fixed seed, in the proportions of a
typical tabular dataset at 25 columns: 15 numeric (normal and log-normal floats, floats with 5 %
nulls and 1 % NaN, small and wide integers), 8 string categoricals of about 50 levels (Zipf-like
frequencies, 2 % nulls), one boolean and one timestamp column.

mlcycle's side is ``profile_table(table)`` on the Arrow table: counts, nulls, min, max, mean,
std, seven quantiles (KLL), distinct (HyperLogLog) and top-20 frequencies of every column.
The pandas baseline does the closest plain-pandas equivalent on a DataFrame of the same data
(converted beforehand, untimed): ``describe()``, the same seven quantiles per numeric column,
``nunique()``, null counts, and ``value_counts().head(20)`` per categorical and boolean column.
pandas' answers are exact but neither one-pass over batches nor mergeable, so the comparison is
of cost, not of capability. Wall and CPU seconds (``time.process_time``) are medians of
``repeats`` runs after one warm-up.

Run alone: ``.venv/bin/python bench/_data_profile.py [rows] [repeats]``.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from mlcycle.datasets.profile import QUANTILES, profile_table

SEED = 20240601


def build_table(rows: int = 1_000_000, cols: int = 25, seed: int = SEED) -> pa.Table:
    """The synthetic table: numeric, categorical, one boolean and one timestamp column."""
    rng = np.random.default_rng(seed)
    n_cat = max(1, round(cols * 8 / 25))
    n_num = max(1, cols - n_cat - 2)
    columns: dict[str, pa.Array] = {}
    for i in range(n_num):
        match i % 5:
            case 0:
                arr = pa.array(rng.normal(100.0, 15.0, rows))
            case 1:
                arr = pa.array(rng.lognormal(0.0, 1.0, rows))
            case 2:
                x = rng.normal(0.0, 1.0, rows)
                x[rng.random(rows) < 0.01] = np.nan
                arr = pa.array(x, mask=rng.random(rows) < 0.05)
            case 3:
                arr = pa.array(rng.integers(0, 100, rows))
            case _:
                arr = pa.array(rng.integers(-(10**12), 10**12, rows))
        columns[f"num_{i}"] = arr
    weights = 1.0 / np.arange(1, 51)
    weights /= weights.sum()
    for i in range(n_cat):
        levels = pa.array([f"cat{i}_level_{j:02d}" for j in range(50)])
        codes = pa.array(rng.choice(50, size=rows, p=weights), mask=rng.random(rows) < 0.02)
        columns[f"cat_{i}"] = levels.take(codes)
    columns["flag"] = pa.array(rng.random(rows) < 0.3)
    start = np.datetime64("2024-01-01T00:00:00", "us").astype(np.int64)
    stamps = start + rng.integers(0, 365 * 86_400 * 1_000_000, rows)
    columns["ts"] = pa.array(stamps.astype("datetime64[us]"), type=pa.timestamp("us", tz="UTC"))
    return pa.table(columns)


def _pandas_profile(df: Any) -> dict[str, Any]:
    numeric = df.select_dtypes(include="number")
    out: dict[str, Any] = {
        "describe": df.describe(),
        "quantiles": {c: numeric[c].quantile(list(QUANTILES)) for c in numeric.columns},
        "nunique": df.nunique(),
        "nulls": df.isna().sum(),
    }
    for name in df.columns:
        if name not in numeric.columns and name != "ts":
            out[name] = df[name].value_counts().head(20)
    out["ts"] = (df["ts"].min(), df["ts"].max(), df["ts"].quantile(list(QUANTILES)))
    return out


def _timed(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    fn()  # warm-up: imports, allocator
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def _label(rows: int) -> str:
    if rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}M"
    if rows % 1000 == 0:
        return f"{rows // 1000}k"
    return str(rows)


def run_profile_case(rows: int = 1_000_000, cols: int = 25, repeats: int = 3) -> dict[str, Any]:
    """One result row: median seconds to profile a ``rows`` x ``cols`` table, lower is better."""
    table = build_table(rows, cols)
    df = table.to_pandas()
    wall, cpu = _timed(lambda: profile_table(table), repeats)
    pd_wall, pd_cpu = _timed(lambda: _pandas_profile(df), repeats)
    return {
        "case": f"profile {_label(rows)} x {cols}",
        "unit": "s",
        "better": "lower",
        "mlcycle": round(wall, 4),
        "peers": {"pandas": round(pd_wall, 4)},
        "cpu": {"mlcycle": round(cpu, 4), "pandas": round(pd_cpu, 4)},
    }


if __name__ == "__main__":
    import json

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    print(json.dumps(run_profile_case(n, repeats=reps), indent=2))
