"""Data validation: mlcycle against pandera and Great Expectations on the same Parquet file.

What is measured: validating a synthetic 1,000,000 x 25 table (10 int, 10 float, 5 string
category columns; fixed seed) with the same checks in every tool:

- type of every column (int64 / float64 / string);
- not null on every int column and on every other float and string column;
- an inclusive range [min, max] on every int and float column;
- allowed categories on every string column.

A small, known number of violations is planted (values below min or above max, nulls in
non-nullable columns, unknown categories), so every tool must count failures; the counts of
each tool are compared per column and check with the planted truth, and the bench fails loudly
on any difference. Range failures are compared as one number per column (rows below min plus
rows above max), because Great Expectations checks both bounds in one expectation.

How: the table is written once to a Parquet file in a temporary directory. For every repeat,
each tool gets a fresh worker process (its own venv's python) that loads the file untimed, the
way the tool is used (polars for mlcycle, pandas for pandera and Great Expectations), builds its
schema / suite untimed, and then times only the validation and the reading of failure counts:
wall seconds and CPU seconds of all threads (``time.process_time``). Tools are interleaved
within each repeat; the table shows medians.

Usage::

    .venv/bin/python bench/_data_validation.py            # 1M x 25, 3 repeats
    .venv/bin/python bench/_data_validation.py --rows 100000 --repeats 1

``run_validation_case()`` is what ``bench/data.py`` calls. The peers live in their own venvs::

    python3 -m venv bench/.venvs/pandera
    bench/.venvs/pandera/bin/pip install -r bench/requirements-pandera.txt
    python3 -m venv bench/.venvs/gx
    bench/.venvs/gx/bin/pip install -r bench/requirements-gx.txt
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

from _common import (  # after the path tweak above, so the script runs from any directory
    MLCYCLE_PYTHON,
    fmt_number,
    median,
    peer_python,
    print_table,
    ratio,
    run_worker,
)

SCRIPT = Path(__file__).resolve()
SEED = 42
TOOLS = ("mlcycle", "pandera", "great_expectations")
VENV_OF = {"pandera": "pandera", "great_expectations": "gx"}
CATEGORIES = ["north", "south", "east", "west", "central", "remote"]
INT_RANGE = (0, 1000)
FLOAT_RANGE = (-100.0, 100.0)
# Planted violations per affected column, as fractions of the rows.
OUT_OF_RANGE = 0.0005  # below min, and as many again above max
NULLS = 0.002  # in a non-nullable column
NULLS_ALLOWED = 0.01  # in a nullable column (not a violation)
UNKNOWN = 0.0005  # categories outside the allowed set


# =========================================================================== data


def column_specs(cols: int) -> list[dict[str, Any]]:
    """The columns and their rules: 40% int, 40% float, 20% string categories."""
    n_int = n_float = cols * 2 // 5
    n_cat = cols - n_int - n_float
    specs: list[dict[str, Any]] = []
    for i in range(n_int):
        # Ints carry no nulls: pandas would turn such a column into float64 and the type
        # check would no longer mean the same thing in every tool.
        specs.append({"name": f"i{i:02d}", "type": "int", "nullable": False,
                      "min": INT_RANGE[0], "max": INT_RANGE[1]})
    for i in range(n_float):
        specs.append({"name": f"f{i:02d}", "type": "float", "nullable": i % 2 == 1,
                      "min": FLOAT_RANGE[0], "max": FLOAT_RANGE[1]})
    for i in range(n_cat):
        specs.append({"name": f"c{i:02d}", "type": "category", "nullable": i % 2 == 1,
                      "allowed": CATEGORIES})
    return specs


def make_table(rows: int, specs: list[dict[str, Any]], path: Path) -> dict[str, dict[str, int]]:
    """Write the synthetic table to *path*; return the planted failure counts
    ``{column: {"not_null": n, "range": n, "allowed": n}}``."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(SEED)
    data: dict[str, Any] = {}
    truth: dict[str, dict[str, int]] = {}
    for spec in specs:
        name, kind = spec["name"], spec["type"]
        k_range = int(rows * OUT_OF_RANGE)
        k_null = int(rows * (NULLS_ALLOWED if spec["nullable"] else NULLS))
        k_cat = int(rows * UNKNOWN)
        # Disjoint positions for every kind of planted value.
        picks = rng.choice(rows, size=2 * k_range + k_null + k_cat, replace=False)
        low, high = picks[:k_range], picks[k_range:2 * k_range]
        nulls = picks[2 * k_range:2 * k_range + k_null]
        unknown = picks[2 * k_range + k_null:]
        counts = {"not_null": 0, "range": 0, "allowed": 0}
        if kind == "int":
            values = rng.integers(INT_RANGE[0], INT_RANGE[1] + 1, rows)
            values[low] = rng.integers(-500, INT_RANGE[0], k_range)
            values[high] = rng.integers(INT_RANGE[1] + 1, 5000, k_range)
            counts["range"] = 2 * k_range
            series = pl.Series(name, values, dtype=pl.Int64)
        elif kind == "float":
            values = rng.uniform(*FLOAT_RANGE, rows)
            values[low] = FLOAT_RANGE[0] - rng.uniform(0.001, 50, k_range)
            values[high] = FLOAT_RANGE[1] + rng.uniform(0.001, 50, k_range)
            counts["range"] = 2 * k_range
            values[nulls] = np.nan
            series = pl.Series(name, values, dtype=pl.Float64, nan_to_null=True)
            counts["not_null"] = 0 if spec["nullable"] else k_null
        else:
            codes = rng.integers(0, len(CATEGORIES), rows)
            strings = np.array(CATEGORIES, dtype=object)[codes]
            strings[unknown] = [f"unknown-{j % 7}" for j in range(k_cat)]
            strings[nulls] = None
            counts["allowed"] = k_cat
            counts["not_null"] = 0 if spec["nullable"] else k_null
            series = pl.Series(name, strings, dtype=pl.String)
        data[name] = series
        truth[name] = counts
    pl.DataFrame(data).write_parquet(path, row_group_size=256 * 1024)
    return truth


# =========================================================================== workers
# Each worker loads the file untimed, builds its rules untimed, then times validation and the
# extraction of per-column failure counts. It runs inside its tool's own venv.


def _timed(fn: Any) -> tuple[dict[str, dict[str, int]], float, float]:
    c0, t0 = time.process_time(), time.perf_counter()
    counts = fn()
    return counts, time.perf_counter() - t0, time.process_time() - c0


def worker_mlcycle(path: str, specs: list[dict[str, Any]]) -> dict[str, Any]:
    import polars as pl

    from mlcycle.datasets.contracts import ColumnRule, Contract
    from mlcycle.datasets.validation import validate

    df = pl.read_parquet(path)
    contract = Contract(columns=tuple(
        ColumnRule(name=s["name"], type=s["type"], nullable=s["nullable"], min=s.get("min"),
                   max=s.get("max"),
                   allowed=tuple(s["allowed"]) if s.get("allowed") else None)
        for s in specs
    ))

    def run() -> dict[str, dict[str, int]]:
        report = validate(df, contract)
        counts: dict[str, dict[str, int]] = {s["name"]: {} for s in specs}
        for c in report.checks:
            if c.column is None:
                continue
            key = "range" if c.check in ("min", "max") else c.check
            if key == "type" and not c.passed:
                raise SystemExit(f"mlcycle: type check failed on {c.column}: {c.message}")
            if key in ("not_null", "range", "allowed"):
                counts[c.column][key] = counts[c.column].get(key, 0) + c.failed_rows
        return counts

    counts, wall, cpu = _timed(run)
    from importlib.metadata import version

    return {"counts": counts, "wall_s": wall, "cpu_s": cpu,
            "version": f"{version('mlcycle')} (polars {pl.__version__})"}


def worker_pandera(path: str, specs: list[dict[str, Any]]) -> dict[str, Any]:
    import pandas as pd
    import pandera
    import pandera.pandas as pa
    from pandera.errors import SchemaErrors

    df = pd.read_parquet(path)
    dtype = {"int": "int64", "float": "float64", "category": str}
    columns = {}
    for s in specs:
        checks = []
        if "min" in s:
            checks += [pa.Check.ge(s["min"]), pa.Check.le(s["max"])]
        if s.get("allowed"):
            checks.append(pa.Check.isin(s["allowed"]))
        columns[s["name"]] = pa.Column(dtype[s["type"]], checks=checks, nullable=s["nullable"])
    schema = pa.DataFrameSchema(columns)
    names = {"not_nullable": "not_null", "greater_than_or_equal_to": "range",
             "less_than_or_equal_to": "range", "isin": "allowed"}

    def run() -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {s["name"]: {} for s in specs}
        try:
            schema.validate(df, lazy=True)
        except SchemaErrors as exc:
            cases = exc.failure_cases
            for (column, check), n in cases.groupby(["column", "check"]).size().items():
                key = next((v for k, v in names.items() if str(check).startswith(k)), None)
                if key is None:
                    raise SystemExit(f"pandera: unexpected failure {column} {check}") from exc
                counts[column][key] = counts[column].get(key, 0) + int(n)
        return counts

    counts, wall, cpu = _timed(run)
    return {"counts": counts, "wall_s": wall, "cpu_s": cpu, "version": pandera.__version__}


def worker_gx(path: str, specs: list[dict[str, Any]]) -> dict[str, Any]:
    import logging

    import pandas as pd

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.disable(logging.WARNING)
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig

    df = pd.read_parquet(path)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_definition = (context.data_sources.add_pandas("bench").add_dataframe_asset("table")
                        .add_batch_definition_whole_dataframe("all"))
    suite = gx.ExpectationSuite("contract")
    pandas_type = {"int": "int64", "float": "float64", "category": str(df[specs[-1]["name"]].dtype)}
    for s in specs:
        name = s["name"]
        suite.add_expectation(gxe.ExpectColumnValuesToBeOfType(column=name,
                                                                type_=pandas_type[s["type"]]))
        if not s["nullable"]:
            suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=name))
        if "min" in s:
            suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(
                column=name, min_value=s["min"], max_value=s["max"]))
        if s.get("allowed"):
            suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column=name,
                                                                  value_set=s["allowed"]))
    suite = context.suites.add(suite)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": df})
    names = {"expect_column_values_to_not_be_null": "not_null",
             "expect_column_values_to_be_between": "range",
             "expect_column_values_to_be_in_set": "allowed"}

    def run() -> dict[str, dict[str, int]]:
        result = batch.validate(suite, result_format="BASIC")
        counts: dict[str, dict[str, int]] = {s["name"]: {} for s in specs}
        for r in result.results:
            config = r.expectation_config
            column = config.kwargs["column"]
            if r.exception_info.get("raised_exception"):
                raise SystemExit(f"great_expectations: {config.type} on {column} raised: "
                                 f"{r.exception_info.get('exception_message')}")
            if config.type == "expect_column_values_to_be_of_type":
                if not r.success:
                    raise SystemExit(f"great_expectations: type check failed on {column}: "
                                     f"{r.result}")
                continue
            counts[column][names[config.type]] = int(r.result["unexpected_count"])
        return counts

    counts, wall, cpu = _timed(run)
    return {"counts": counts, "wall_s": wall, "cpu_s": cpu, "version": gx.__version__}


WORKERS = {"mlcycle": worker_mlcycle, "pandera": worker_pandera,
           "great_expectations": worker_gx}


# =========================================================================== orchestration


def _normalise(counts: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Drop zero counts, so a tool that reports passing checks and one that reports only
    failures compare equal."""
    return {col: {k: v for k, v in sorted(c.items()) if v} for col, c in sorted(counts.items())}


def run_validation_case(
    rows: int = 1_000_000, cols: int = 25, repeats: int = 3
) -> list[dict[str, Any]]:
    """Run the case; return two bench rows (CPU-s and wall-s, medians, lower is better).

    Raises ``RuntimeError`` when any tool's failure counts differ from the planted truth.
    """
    specs = column_specs(cols)
    pythons = {"mlcycle": MLCYCLE_PYTHON,
               **{tool: peer_python(venv) for tool, venv in VENV_OF.items()}}
    samples: dict[str, list[dict[str, Any]]] = {tool: [] for tool in TOOLS}
    with tempfile.TemporaryDirectory(prefix="mlcycle-bench-validation-") as tmp:
        path = Path(tmp) / "table.parquet"
        truth = _normalise(make_table(rows, specs, path))
        spec_file = Path(tmp) / "specs.json"
        spec_file.write_text(json.dumps(specs))
        for _ in range(repeats):
            for tool in TOOLS:
                job = json.dumps({"tool": tool, "path": str(path), "specs": str(spec_file)})
                result = run_worker(pythons[tool], [str(SCRIPT), "--worker", job], timeout=900,
                                    env={"PYTHONPATH": str(SCRIPT.parents[1] / "src")})
                got = _normalise(result["counts"])
                if got != truth:
                    diff = {col: (truth.get(col), got.get(col)) for col in truth.keys() | got
                            if truth.get(col) != got.get(col)}
                    raise RuntimeError(
                        f"{tool} counted different failures than were planted "
                        f"(column: (planted, counted)): {diff}"
                    )
                samples[tool].append(result)
    cpu = {tool: median([s["cpu_s"] for s in samples[tool]]) for tool in TOOLS}
    wall = {tool: median([s["wall_s"] for s in samples[tool]]) for tool in TOOLS}
    versions = {tool: samples[tool][0]["version"] for tool in TOOLS}
    case = f"validate {rows // 1_000_000 if rows >= 1_000_000 else rows:,}" + (
        "M" if rows >= 1_000_000 else "") + f" x {cols}"
    failures = sum(n for col in truth.values() for n in col.values())
    common = {"failing_values": failures, "repeats": repeats, "versions": versions}
    return [
        {"case": case, "unit": "CPU-s", "better": "lower", "mlcycle": round(cpu["mlcycle"], 4),
         "peers": {t: round(cpu[t], 4) for t in TOOLS[1:]}, **common},
        {"case": case, "unit": "wall-s", "better": "lower", "mlcycle": round(wall["mlcycle"], 4),
         "peers": {t: round(wall[t], 4) for t in TOOLS[1:]}, **common},
    ]


def _worker_main(job_json: str) -> None:
    job = json.loads(job_json)
    specs = json.loads(Path(job["specs"]).read_text())
    result = WORKERS[job["tool"]](job["path"], specs)
    print(json.dumps(result))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cols", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: one measurement
    args = parser.parse_args(argv)
    if args.worker:
        _worker_main(args.worker)
        return
    rows = run_validation_case(args.rows, args.cols, args.repeats)
    print(json.dumps(rows, indent=2))
    table = []
    for row in rows:
        for peer, value in row["peers"].items():
            speedup = ratio(row["mlcycle"], value, row["better"])
            table.append([row["case"], row["unit"], fmt_number(row["mlcycle"]), peer,
                          fmt_number(value), f"{speedup:.1f}x" if speedup else "—"])
    print_table("Data validation", ["case", "unit", "mlcycle", "peer", "peer value",
                                    "mlcycle faster by"], table,
                f"medians of {args.repeats} fresh workers per tool; versions "
                + ", ".join(f"{k} {v}" for k, v in rows[0]["versions"].items()),
                align="llrlrr")


if __name__ == "__main__":
    main()
