"""Model quality from ground truth and service operations, from a window of prediction logs.

:func:`measure` takes the frame :meth:`PredictionLogs.read` returns (predictions joined with
their feedback) and reports, overall, per model version, per segment and per time bucket:

- **quality** on the rows that got a label. Classification: ``accuracy``, ``f1`` (of the
  positive class, the larger label, for two classes; macro-averaged beyond) and ``roc_auc``
  when the model answers a score (a number that is not itself one of the two labels: the
  predicted class is then ``score >= 0.5``). Regression: ``rmse`` and ``mae``. The task is the
  monitor's ``task`` or inferred from the labels: strings and booleans are classes, and so are
  integral numbers with at most 20 distinct values; anything else is a regression target.
- **operations** per request (a request's rows share its latency and status): ``requests``,
  ``rows``, ``errors`` (status >= 400), ``error_rate``, ``latency_p50_ms`` / ``p95`` / ``p99``
  and ``throughput_rps`` (requests per second of the window or bucket).

Shadow answers (``role == "shadow"``) were never returned, so they count only in their own
version's slice. A segment is a SQL expression over the model's input columns, as written
against the training data (``region = 'EU'``), evaluated by polars
(:mod:`mlcycle.datasets.segments`) on the logged ``input_<column>`` values: it is parsed and
type-checked, never pasted into SQL.

>>> report = measure(frame, segments={"eu": "region = 'EU'"}, bucket="1h")  # doctest: +SKIP
>>> report.overall.quality.metrics["accuracy"]                            # doctest: +SKIP
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray

from mlcycle.datasets.segments import Segment, parse_segments
from mlcycle.errors import InvalidInputError
from mlcycle.monitoring.logs import input_columns

__all__ = [
    "TASKS",
    "OperationsMetrics",
    "PerformanceReport",
    "QualityMetrics",
    "Slice",
    "infer_task",
    "measure",
    "parse_bucket",
]

TASKS = ("classification", "regression")
Task = Literal["classification", "regression"]

_MAX_CLASSES = 20
_BUCKET_RE = re.compile(r"^(\d{1,6})(m|h|d)$")
_BUCKET_WORDS = {"minute": "1m", "hour": "1h", "day": "1d"}
_BUCKET_SECONDS = {"m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, slots=True)
class QualityMetrics:
    """Quality on ``labelled`` rows; ``metrics`` leaves out what is undefined (ROC AUC of one
    class, anything of no rows)."""

    task: str
    labelled: int
    metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "labelled": self.labelled, "metrics": dict(self.metrics)}


@dataclass(frozen=True, slots=True)
class OperationsMetrics:
    requests: int
    rows: int
    errors: int
    error_rate: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    throughput_rps: float | None

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class Slice:
    """The metrics of one slice of the window: all of it, a version, a segment or a bucket."""

    operations: OperationsMetrics
    quality: QualityMetrics | None
    start: datetime | None = None  # a bucket's start

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"operations": self.operations.to_dict(),
                               "quality": None if self.quality is None else self.quality.to_dict()}
        if self.start is not None:
            out["start"] = self.start.isoformat()
        return out

    def values(self) -> dict[str, float]:
        """Every finite number of this slice by a flat name (``accuracy``, ``latency_p95_ms``)."""
        out = {k: float(v) for k, v in self.operations.to_dict().items()
               if isinstance(v, int | float) and math.isfinite(v)}
        if self.quality is not None:
            out.update(self.quality.metrics)
            out["labelled"] = float(self.quality.labelled)
        return out


@dataclass(frozen=True, slots=True)
class PerformanceReport:
    """Quality and operations over a window; ``series`` holds one slice per time bucket."""

    task: str | None
    since: datetime | None
    until: datetime | None
    overall: Slice
    by_version: dict[str, Slice] = field(default_factory=dict)
    by_segment: dict[str, Slice] = field(default_factory=dict)
    series: list[Slice] = field(default_factory=list)
    segment_series: dict[str, list[Slice]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "since": None if self.since is None else self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "overall": self.overall.to_dict(),
            "by_version": {k: v.to_dict() for k, v in self.by_version.items()},
            "by_segment": {k: v.to_dict() for k, v in self.by_segment.items()},
            "series": [s.to_dict() for s in self.series],
            "segment_series": {k: [s.to_dict() for s in v]
                               for k, v in self.segment_series.items()},
        }


def parse_bucket(bucket: str | None) -> str | None:
    """``"hour"``/``"day"``/``"minute"`` or ``"<n>m|h|d"`` as a polars duration (``"1h"``)."""
    if bucket is None:
        return None
    spelled = _BUCKET_WORDS.get(bucket, bucket) if isinstance(bucket, str) else None
    if spelled is None or not _BUCKET_RE.match(spelled) or spelled.startswith("0"):
        raise InvalidInputError(
            f"bucket: expected minute, hour, day or a duration such as 15m, 6h, 1d; "
            f"got {bucket!r}", details={"field": "bucket"})
    return spelled


def _bucket_seconds(bucket: str) -> int:
    m = _BUCKET_RE.match(bucket)
    assert m is not None
    return int(m.group(1)) * _BUCKET_SECONDS[m.group(2)]


def infer_task(labels: pl.Series) -> Task:
    """``classification`` for strings, booleans and integral numbers with at most 20 distinct
    values; ``regression`` otherwise."""
    values = labels.drop_nulls()
    if values.dtype in (pl.String, pl.Boolean, pl.Categorical) or values.dtype == pl.Enum:
        return "classification"
    if values.dtype.is_numeric():
        x = values.cast(pl.Float64)
        if x.is_nan().any():
            return "regression"
        integral = bool((x == x.round(0)).all())
        return "classification" if integral and x.n_unique() <= _MAX_CLASSES else "regression"
    return "classification"


def measure(
    frame: pl.DataFrame,
    *,
    task: str | None = None,
    segments: Mapping[str, str] | Iterable[Segment] | None = None,
    bucket: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> PerformanceReport:
    """The :class:`PerformanceReport` of *frame* (as :meth:`PredictionLogs.read` returns it).

    *since*/*until* are the window's bounds, for throughput; without them the span of the
    logged times is used. Raises ``InvalidInputError`` naming the segment whose expression
    does not parse or names a column the model was not given.
    """
    if task is not None and task not in TASKS:
        raise InvalidInputError(
            f"The 'task' parameter must be 'classification' or 'regression'. Got {task!r} "
            "instead.", details={"field": "task"})
    parsed = parse_segments(segments if not isinstance(segments, Mapping) else dict(segments))
    duration = parse_bucket(bucket)
    labelled = frame.filter(pl.col("label").is_not_null())
    chosen: Task | None = task if task is not None else (  # type: ignore[assignment]
        infer_task(labelled["label"]) if labelled.height else None)

    served = frame.filter(pl.col("role") != "shadow")
    span = _span(frame, since, until)
    masks = _segment_masks(served, parsed)

    def slice_of(rows: pl.DataFrame, seconds: float | None,
                 start: datetime | None = None) -> Slice:
        return Slice(_operations(rows, seconds),
                     _quality(rows, chosen) if chosen is not None else None, start)

    by_version = {str(v): slice_of(rows, span)
                  for (v,), rows in sorted(frame.partition_by("version", as_dict=True).items(),
                                           key=lambda kv: str(kv[0][0]))}
    by_segment = {name: slice_of(served.filter(mask), span) for name, mask in masks.items()}
    series: list[Slice] = []
    segment_series: dict[str, list[Slice]] = {}
    if duration is not None and served.height:
        seconds = _bucket_seconds(duration)
        tagged = served.with_columns(pl.col("time").dt.truncate(duration).alias("_bucket"))
        for name, mask in masks.items():
            tagged = tagged.with_columns(mask.alias(f"_seg_{name}"))
        for (start,), rows in sorted(tagged.partition_by("_bucket", as_dict=True).items(),
                                     key=lambda kv: kv[0][0]):
            series.append(slice_of(rows, seconds, start))
            for name in masks:
                segment_series.setdefault(name, []).append(
                    slice_of(rows.filter(pl.col(f"_seg_{name}")), seconds, start))
    return PerformanceReport(task=chosen, since=since, until=until,
                             overall=slice_of(served, span), by_version=by_version,
                             by_segment=by_segment, series=series,
                             segment_series=segment_series)


# --- segments -------------------------------------------------------------------------------


def _segment_masks(frame: pl.DataFrame, segments: tuple[Segment, ...]) -> dict[str, pl.Series]:
    """A boolean Series per segment over *frame*'s rows, the expressions seeing the input
    columns by their own names (``age``, not ``input_age``)."""
    if not segments:
        return {}
    inputs = frame.select(pl.col(c).alias(c.removeprefix("input_")) for c in input_columns(frame))
    if not inputs.width:
        # Nothing logged (or no inputs): check each expression parses, then no row matches.
        for seg in segments:
            seg.expression()
        return {seg.name: pl.Series(seg.name, [False] * frame.height) for seg in segments}
    return {seg.name: seg.mask(inputs) for seg in segments}


# --- operations -----------------------------------------------------------------------------


def _span(frame: pl.DataFrame, since: datetime | None, until: datetime | None) -> float | None:
    start = since if since is not None else (frame["time"].min() if frame.height else None)
    end = until if until is not None else (frame["time"].max() if frame.height else None)
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        return None
    seconds = (end - start) / timedelta(seconds=1)
    return seconds if seconds > 0 else None


def _operations(rows: pl.DataFrame, seconds: float | None) -> OperationsMetrics:
    requests = rows.group_by("request_id").agg(pl.col("latency_ms").first(),
                                               pl.col("status").first())
    n = requests.height
    if n == 0:
        return OperationsMetrics(0, 0, 0, None, None, None, None, 0.0 if seconds else None)
    errors = int((requests["status"] >= 400).sum())
    latency = requests["latency_ms"].drop_nulls().to_numpy().astype(np.float64)
    p50, p95, p99 = (np.percentile(latency, [50, 95, 99]).tolist() if latency.size
                     else (None, None, None))
    return OperationsMetrics(
        requests=n, rows=rows.height, errors=errors, error_rate=errors / n,
        latency_p50_ms=p50, latency_p95_ms=p95, latency_p99_ms=p99,
        throughput_rps=n / seconds if seconds else None)


# --- quality --------------------------------------------------------------------------------


def _quality(rows: pl.DataFrame, task: Task) -> QualityMetrics:
    labelled = rows.filter(pl.col("label").is_not_null() & pl.col("output").is_not_null())
    if task == "regression":
        return QualityMetrics(task, labelled.height, _regression(labelled))
    return QualityMetrics(task, labelled.height, _classification(labelled))


def _as_float(series: pl.Series) -> NDArray[np.float64] | None:
    """*series* as floats, or ``None`` when some value is not a number."""
    if series.dtype.is_numeric() or series.dtype == pl.Boolean:
        return series.cast(pl.Float64).to_numpy()
    converted = series.cast(pl.Float64, strict=False)
    if converted.null_count() > series.null_count():
        return None
    return converted.to_numpy()


def _regression(rows: pl.DataFrame) -> dict[str, float]:
    y, p = _as_float(rows["label"]), _as_float(rows["output"])
    if y is None or p is None or not y.size:
        return {}
    err = p - y
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err)))}


def _classification(rows: pl.DataFrame) -> dict[str, float]:
    if not rows.height:
        return {}
    y_num, out_num = _as_float(rows["label"]), _as_float(rows["output"])
    scores: NDArray[np.float64] | None = None
    if y_num is not None and out_num is not None:
        y: NDArray[Any] = y_num
        classes = np.unique(y)
        if classes.size <= 2 and not np.isin(out_num, classes).all():
            # The model answers a score for the positive (larger) class.
            scores = out_num
            positive, negative = (1.0, 0.0) if np.isin(classes, (0.0, 1.0)).all() \
                else (classes.max(), classes.min())
            pred: NDArray[Any] = np.where(out_num >= 0.5, positive, negative)
        else:
            pred = out_num
    else:  # compare as text: '1' and 1 are the same class
        y = rows["label"].cast(pl.String).to_numpy()
        pred = rows["output"].cast(pl.String).to_numpy()
    out = {"accuracy": float(np.mean(pred == y)), "f1": _f1(y, pred)}
    if scores is not None and y_num is not None and np.unique(y_num).size == 2:
        out["roc_auc"] = _roc_auc(y_num == y_num.max(), scores)
    return out


def _f1(y: NDArray[Any], pred: NDArray[Any]) -> float:
    labels = np.unique(np.concatenate([y, pred]))
    if labels.size <= 2:
        return _f1_of(y, pred, labels.max())
    return float(np.mean([_f1_of(y, pred, c) for c in labels]))


def _f1_of(y: NDArray[Any], pred: NDArray[Any], positive: Any) -> float:
    tp = int(np.sum((pred == positive) & (y == positive)))
    fp = int(np.sum((pred == positive) & (y != positive)))
    fn = int(np.sum((pred != positive) & (y == positive)))
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def _roc_auc(positive: NDArray[np.bool_], scores: NDArray[np.float64]) -> float:
    """The Mann–Whitney form: the chance a positive outscores a negative (ties count half)."""
    from scipy import stats

    ranks = stats.rankdata(scores)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
