"""One measurement of ``bench/monitoring.py`` in a fresh process: ``python _monitoring_workers.py
'<json spec>'`` prints one JSON line.

Runs under mlcycle's venv (tools ``mlcycle``, ``mlcycle_profile``, ``numpy``) or Evidently's
(``evidently``), so it imports neither at module level. CPU is ``getrusage(RUSAGE_SELF)`` user +
system time (every thread) from after the imports to the verdicts, reading the Parquet files
included; memory is the process's peak resident set (``VmHWM``), imports included, the same
for every tool.

Every tool reads the same Parquet files. The verdict rule of the NumPy pass is mlcycle's
(``DriftConfig`` defaults), so its flags are comparable; Evidently uses its own defaults.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _monitoring_data import CATEGORICAL, NUMERIC, undrifted_categorical

ALPHA, WASSERSTEIN, JS, PSI = 0.05, 0.05, 0.1, 0.2


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_mb() -> float:
    """Peak resident memory of this process image: ``VmHWM``. Not ``ru_maxrss``, which on Linux
    starts from the parent's high-water mark at ``fork`` (the orchestrator held the frames)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --------------------------------------------------------------------------- mlcycle


def _mlcycle(spec: dict[str, Any]) -> dict[str, Any]:
    from mlcycle.datasets.profile import DatasetProfile
    from mlcycle.monitoring import detect_drift

    rss_before = _peak_mb()
    c0, t0 = _cpu(), time.perf_counter()
    if spec["tool"] == "mlcycle_profile":
        reference: Any = DatasetProfile.from_json(Path(spec["profile"]).read_bytes())
    else:
        reference = spec["ref"]
    # Given the paths, detect_drift reads one column of each file at a time.
    report = detect_drift(reference, spec["cur"])
    return {
        "cpu_s": _cpu() - c0,
        "wall_s": time.perf_counter() - t0,
        "peak_mb": _peak_mb(),
        "rss_after_imports_mb": rss_before,
        "flagged": sorted(report.drifted),
        "dataset_drift": report.verdict == "drift",
        "drifted_share": report.drifted_share,
    }


# --------------------------------------------------------------------------- NumPy / SciPy


def _psi(p: Any, q: Any) -> float:
    import numpy as np

    p, q = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
    return float(np.sum((q - p) * np.log(q / p)))


def _numpy(spec: dict[str, Any]) -> dict[str, Any]:
    """The same tests written the plain way: SciPy's functions on whole columns."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    rss_before = _peak_mb()
    c0, t0 = _cpu(), time.perf_counter()
    ref, cur = pq.read_table(spec["ref"]), pq.read_table(spec["cur"])
    flagged = []
    for name in NUMERIC:
        a = ref.column(name).to_numpy()
        b = cur.column(name).to_numpy()
        pvalue = stats.ks_2samp(a, b, method="asymp").pvalue
        wasserstein = stats.wasserstein_distance(a, b) / a.std()
        edges = np.quantile(a, np.arange(1, 10) / 10)
        p = np.bincount(np.searchsorted(edges, a), minlength=10) / a.size
        q = np.bincount(np.searchsorted(edges, b), minlength=10) / b.size
        if pvalue < ALPHA and (wasserstein >= WASSERSTEIN or _psi(p, q) >= PSI):
            flagged.append(name)
    for name in CATEGORICAL:
        both = pa.concat_arrays([ref.column(name).combine_chunks(),
                                 cur.column(name).combine_chunks()])
        encoded = pc.dictionary_encode(both)
        codes = encoded.indices.to_numpy()
        k = len(encoded.dictionary)
        table = np.vstack([np.bincount(codes[: ref.num_rows], minlength=k),
                           np.bincount(codes[ref.num_rows:], minlength=k)])
        pvalue = stats.chi2_contingency(table, correction=False).pvalue
        js = jensenshannon(table[0], table[1], base=2)
        shares = table / table.sum(axis=1, keepdims=True)
        if pvalue < ALPHA and (js >= JS or _psi(shares[0], shares[1]) >= PSI):
            flagged.append(name)
    share = len(flagged) / (len(NUMERIC) + len(CATEGORICAL))
    return {
        "cpu_s": _cpu() - c0,
        "wall_s": time.perf_counter() - t0,
        "peak_mb": _peak_mb(),
        "rss_after_imports_mb": rss_before,
        "flagged": sorted(flagged),
        "dataset_drift": share >= 0.2,
        "drifted_share": share,
    }


# --------------------------------------------------------------------------- Evidently


def _evidently_run(ref: Any, cur: Any, numeric: list[str], categorical: list[str]) -> Any:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    return Report([DataDriftPreset()]).run(
        current_data=Dataset.from_pandas(cur, data_definition=definition),
        reference_data=Dataset.from_pandas(ref, data_definition=definition),
    )


def _evidently_flags(snapshot: Any) -> tuple[list[str], bool, float]:
    """Columns Evidently calls drifted, and its dataset verdict, from the snapshot's dict.

    A ``ValueDrift`` metric holds a p-value (its method's name says ``p_value``; drift below
    the threshold) or a distance (drift at or above it), as Evidently's own stattests decide.
    """
    flagged: list[str] = []
    share, drift_share = 0.0, 0.5
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith("DriftedColumnsCount"):
            share, drift_share = metric["value"]["share"], config["drift_share"]
        elif config["type"].endswith("ValueDrift"):
            value, threshold = metric["value"], config["threshold"]
            is_pvalue = "p_value" in config["method"]
            if (value < threshold) if is_pvalue else (value >= threshold):
                flagged.append(config["column"])
    return sorted(flagged), share >= drift_share, share


def _evidently(spec: dict[str, Any]) -> dict[str, Any]:
    import evidently  # noqa: F401 - imported before the clock starts, like the others
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report  # noqa: F401
    from evidently.presets import DataDriftPreset  # noqa: F401

    rss_before = _peak_mb()
    c0, t0 = _cpu(), time.perf_counter()
    ref, cur = pd.read_parquet(spec["ref"]), pd.read_parquet(spec["cur"])
    flagged, dataset_drift, share = _evidently_flags(
        _evidently_run(ref, cur, list(NUMERIC), list(CATEGORICAL))
    )
    return {
        "cpu_s": _cpu() - c0,
        "wall_s": time.perf_counter() - t0,
        "peak_mb": _peak_mb(),
        "rss_after_imports_mb": rss_before,
        "flagged": flagged,
        "dataset_drift": dataset_drift,
        "drifted_share": share,
    }


# --------------------------------------------------------------------------- false alarms


def _false_alarms(spec: dict[str, Any]) -> dict[str, Any]:
    """Undrifted categorical columns, many seeded trials: every flag is a false alarm."""
    n, trials, tool = spec["rows"], spec["trials"], spec["tool"]
    flagged = rejected = 0
    for trial in range(trials):
        ref, cur = undrifted_categorical(n, trial)
        if tool == "evidently":
            flags, _, _ = _evidently_flags(_evidently_run(ref, cur, [], list(CATEGORICAL)))
            flagged += len(flags)
            continue
        from mlcycle.monitoring import detect_drift

        report = detect_drift(ref, cur)
        flagged += len(report.drifted)
        rejected += sum(c.statistics["chi2_pvalue"] < ALPHA for c in report.columns.values())
    columns = trials * len(CATEGORICAL)
    result = {"columns": columns, "flag_rate": flagged / columns}
    if tool != "evidently":
        result["test_rejection_rate"] = rejected / columns
    return result


def main() -> None:
    spec = json.loads(sys.argv[1])
    if "trials" in spec:
        print(json.dumps(_false_alarms(spec)))
        return
    run = {"mlcycle": _mlcycle, "mlcycle_profile": _mlcycle, "numpy": _numpy,
           "evidently": _evidently}[spec["tool"]]
    print(json.dumps(run(spec)))


if __name__ == "__main__":
    main()
