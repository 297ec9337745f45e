"""A monitor's HTML report: one self-contained file with its plots.

The page holds the checks and why each has its status, the per-column drift table, reference
vs current distributions of the drifted features (of the highest-scoring ones when none
drifted), drift over time (from the stored results), quality per segment and latency over time
(from the logs of the window, in time buckets) and the alerts. Plotly's JavaScript is inlined
from the installed ``plotly`` package (``pip install mlcycle[monitoring]``), so the file opens
offline and loads nothing from a CDN. Every value on the page goes through Jinja2's
autoescaping; the plots' data travels as JSON (``tojson`` escapes ``<``, ``>`` and ``&``).

>>> html = render_report(client.monitors, "churn-daily")   # doctest: +SKIP
>>> Path("report.html").write_text(html)                   # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from mlcycle.errors import InvalidStateError
from mlcycle.monitoring.logs import LogWindow, input_columns
from mlcycle.monitoring.performance import PerformanceReport, Slice

if TYPE_CHECKING:
    from mlcycle.datasets.profile import DatasetProfile
    from mlcycle.entities import MonitorResult
    from mlcycle.monitoring.drift import DriftReport
    from mlcycle.monitoring.service import MonitorService

__all__ = ["render_report"]

_OVERLAYS = 6
_BINS = 30
_QUALITY = {"classification": "accuracy", "regression": "rmse"}
_REFERENCE, _CURRENT = "#4263eb", "#f76707"


def render_report(service: MonitorService, name: str, *, since: datetime | None = None,
                  until: datetime | None = None, bucket: str | None = None,
                  now: datetime | None = None) -> str:
    """The report of monitor *name* over ``[since, until)`` (default: its window ending now).

    The checks run afresh over that window (nothing is stored); drift over time comes from
    the results stored in it. *bucket* (``"hour"``, ``"6h"``, ``"day"``) defaults to hours
    for windows up to two days, else days.
    """
    monitor = service.get(name)
    until = until or now or datetime.now(UTC)
    since = since or until - timedelta(seconds=monitor.window_s)
    window = LogWindow(since=since, until=until)
    if bucket is None:
        bucket = "hour" if until - since <= timedelta(days=2) else "day"
    result, performance, drift = service.evaluate(monitor, window, bucket=bucket)
    frame = service.read_window(monitor, window) if drift is not None else None
    reference = result.details.get("checks", {}).get("drift", {})  # type: ignore[union-attr]
    profile = None
    if drift is not None:
        _, profile = service.reference_profile(monitor)
    history = sorted(service.results(name, since=since, until=until + timedelta(seconds=1),
                                     max_results=10_000), key=lambda r: r.run_at)
    plots: list[dict[str, Any]] = []
    overlays = _overlays(drift, profile, frame) if drift is not None and frame is not None \
        else []
    timelines = [*_drift_timeline(history), *_quality_timelines(performance),
                 *_latency_timeline(performance)]
    for i, plot in enumerate([*overlays, *timelines]):
        plot["id"] = f"plot-{i}"
        plots.append(plot)
    checks = result.details.get("checks", {})
    context = {
        "monitor": monitor, "status": result.status, "rows": result.details.get("rows", 0),
        "window_start": since.strftime("%Y-%m-%d %H:%M UTC"),
        "window_end": until.strftime("%Y-%m-%d %H:%M UTC"),
        "reference": reference.get("reference") if isinstance(reference, dict) else None,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "checks": checks, "overlays": overlays, "timelines": timelines, "plots": plots,
        "drift_verdict": drift.verdict if drift is not None else None,
        "drift_reason": drift.reason if drift is not None else "",
        "drift_columns": _drift_rows(drift),
        "alerts": [{"time": a.time.strftime("%Y-%m-%d %H:%M"), "status": a.status,
                    "previous": a.previous, "message": a.message, "delivery": a.delivery}
                   for a in service.alerts(name, max_results=50)],
    }
    return _template().render(**context, plotly_js=_plotly_js())


def _template() -> Any:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("mlcycle.monitoring", "templates"),
                      autoescape=select_autoescape(("html", "j2")))
    return env.get_template("monitor_report.html.j2")


def _plotly_js() -> Any:
    try:
        from plotly.offline import get_plotlyjs
    except ImportError as exc:
        raise InvalidStateError(
            "the HTML report needs plotly, whose JavaScript it inlines: "
            "pip install 'mlcycle[monitoring]'") from exc
    from markupsafe import Markup

    return Markup(get_plotlyjs())  # trusted: the installed package's own bundle


# --- tables ---------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}g}"


def _drift_rows(drift: DriftReport | None) -> list[dict[str, Any]]:
    if drift is None:
        return []
    rows = []
    for c in drift.columns.values():
        pvalue = c.statistics.get("ks_pvalue", c.statistics.get("chi2_pvalue"))
        rows.append({"name": c.name, "kind": c.kind, "verdict": c.verdict,
                     "score": _fmt(c.score), "psi": _fmt(c.statistics.get("psi")),
                     "pvalue": _fmt(pvalue, 2), "reason": c.reason})
    return sorted(rows, key=lambda r: (r["verdict"] != "drift", r["name"]))


# --- plots ----------------------------------------------------------------------------------


def _overlays(drift: DriftReport, profile: DatasetProfile | None, frame: pl.DataFrame
              ) -> list[dict[str, Any]]:
    """Reference vs current distributions of the drifted columns (else the top scores)."""
    if profile is None:
        return []
    current = frame.select(pl.col(c).alias(c.removeprefix("input_")) for c in input_columns(frame))
    ranked = sorted(drift.columns.values(),
                    key=lambda c: (not c.drifted, -(c.score or 0.0)))
    plots = []
    for column in ranked[:_OVERLAYS]:
        if column.name not in profile.columns or column.name not in current.columns:
            continue
        ref = profile.columns[column.name]
        values = current[column.name].drop_nulls()
        title = f"{column.name}: {column.verdict} (score {_fmt(column.score)})"
        if column.kind == "numeric":
            cur = values.cast(pl.Float64).to_numpy()
            cur = cur[np.isfinite(cur)]
            lo = min(float(ref.min), float(cur.min())) if cur.size else float(ref.min)
            hi = max(float(ref.max), float(cur.max())) if cur.size else float(ref.max)
            if not hi > lo:
                continue
            edges = np.linspace(lo, hi, _BINS + 1)
            ref_counts = ref.histogram(edges)
            cur_counts = np.histogram(cur, edges)[0].astype(float)
            mids = ((edges[:-1] + edges[1:]) / 2).tolist()
            data = [_bars("reference", mids, _share(ref_counts), _REFERENCE),
                    _bars("current", mids, _share(cur_counts), _CURRENT)]
            layout = {"title": {"text": title}, "barmode": "overlay", "bargap": 0,
                      "yaxis": {"title": {"text": "share of rows"}}}
        else:
            cur_counts_map = dict(zip(*np.unique(values.cast(pl.String).to_numpy(),
                                                 return_counts=True), strict=True))
            levels = [str(v) for v, _ in ref.top][:15]
            extra = [k for k, _ in sorted(cur_counts_map.items(), key=lambda kv: -kv[1])
                     if k not in levels][:5]
            levels += extra
            ref_map = {str(v): n for v, n in ref.top}
            ref_counts = np.array([ref_map.get(level, 0) for level in levels], dtype=float)
            cur_counts = np.array([cur_counts_map.get(level, 0) for level in levels],
                                  dtype=float)
            data = [_bars("reference", levels, (ref_counts / max(ref.count, 1)).tolist(),
                          _REFERENCE),
                    _bars("current", levels, (cur_counts / max(len(values), 1)).tolist(),
                          _CURRENT)]
            layout = {"title": {"text": title}, "barmode": "group",
                      "yaxis": {"title": {"text": "share of rows"}}}
        plots.append({"data": data, "layout": layout})
    return plots


def _share(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    return (counts / total).tolist() if total > 0 else counts.tolist()


def _bars(name: str, x: Sequence[Any], y: Sequence[float], color: str) -> dict[str, Any]:
    return {"type": "bar", "name": name, "x": list(x), "y": list(y), "opacity": 0.6,
            "marker": {"color": color}}


def _line(name: str, x: Sequence[Any], y: Sequence[Any], **extra: Any) -> dict[str, Any]:
    return {"type": "scatter", "mode": "lines+markers", "name": name, "x": list(x),
            "y": list(y), **extra}


def _drift_timeline(history: list[MonitorResult]) -> list[dict[str, Any]]:
    """Each feature's drift score at each stored run, and the drifted share."""
    scored = [r for r in history if any(k.startswith("drift.") for k in r.metrics)]
    if not scored:
        return []
    times = [r.run_at.isoformat() for r in scored]
    features = sorted({k.removeprefix("drift.score.") for r in scored for k in r.metrics
                       if k.startswith("drift.score.")})
    data = [_line(f, times, [r.metrics.get(f"drift.score.{f}") for r in scored])
            for f in features]
    data.append(_line("drifted share", times, [r.metrics.get("drift.share") for r in scored],
                      line={"dash": "dot", "color": "#212529"}))
    return [{"data": data, "layout": {"title": {"text": "Drift over time (per run)"},
                                      "yaxis": {"title": {"text": "drift score"}}}}]


def _quality_timelines(report: PerformanceReport) -> list[dict[str, Any]]:
    if report.task is None or not report.series:
        return []
    metric = _QUALITY[report.task]
    series = {"all": report.series, **report.segment_series}
    data = []
    for name, slices in series.items():
        points = [(s.start, s.quality.metrics.get(metric)) for s in slices
                  if s.quality is not None and s.start is not None]
        data.append(_line(name, [t.isoformat() for t, _ in points if t is not None],
                          [v for _, v in points]))
    return [{"data": data, "layout": {"title": {"text": f"{metric} over time, per segment"},
                                      "yaxis": {"title": {"text": metric}}}}]


def _latency_timeline(report: PerformanceReport) -> list[dict[str, Any]]:
    if not report.series:
        return []
    times = [s.start.isoformat() for s in report.series if s.start is not None]

    def values(pick: str) -> list[Any]:
        return [getattr(s.operations, pick) for s in report.series]

    data = [_line(p, times, values(f"latency_{p}_ms")) for p in ("p50", "p95", "p99")]
    data.append(_line("error rate", times, _rates(report.series), yaxis="y2",
                      line={"dash": "dot"}))
    return [{"data": data, "layout": {
        "title": {"text": "Latency and errors over time"},
        "yaxis": {"title": {"text": "latency (ms)"}},
        "yaxis2": {"title": {"text": "error rate"}, "overlaying": "y", "side": "right",
                   "rangemode": "tozero"}}}]


def _rates(series: list[Slice]) -> list[float | None]:
    return [s.operations.error_rate for s in series]
