"""Evaluate a candidate model on a holdout: overall and per-segment metrics, latency, size, and
the same numbers for a baseline (the production version) on the very same rows.

The result is what gets stored on a model version and what the gates read, so it is a plain,
JSON-serialisable record (:meth:`EvaluationResult.to_dict` / :meth:`EvaluationResult.from_dict`)
rather than live objects. Each model predicts once over the whole holdout; segments index into
those predictions, so a segment breakdown costs no extra predict calls and candidate and baseline
are always compared on identical rows.

A segment too small to give stable numbers (fewer than ``min_segment_rows`` rows) or holding a
single class carries ``skipped`` with the reason instead of metrics: an accuracy of 1.0 on three
rows is not a fact a gate should act on.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray

from mlcycle.datasets.contracts import as_polars
from mlcycle.datasets.segments import Segment, parse_segments
from mlcycle.errors import InvalidInputError
from mlcycle.evaluation import metrics as m

__all__ = ["EvaluationResult", "SegmentResult", "evaluate"]

DEFAULT_MIN_SEGMENT_ROWS: Final = 20
_SCHEMA_VERSION: Final = 1
_TASKS: Final = ("binary", "multiclass", "regression", "classification")


@dataclass(frozen=True, slots=True)
class SegmentResult:
    """One segment's share of an evaluation: its rows and metrics, or why it has none."""

    name: str
    expr: str
    rows: int
    metrics: dict[str, float] = field(default_factory=dict)
    baseline_metrics: dict[str, float] | None = None
    skipped: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def deltas(self) -> dict[str, float]:
        """Candidate minus baseline, per metric both have."""
        return _deltas(self.metrics, self.baseline_metrics)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "expr": self.expr,
            "rows": self.rows,
            "metrics": dict(self.metrics),
            "baseline_metrics": (dict(self.baseline_metrics)
                                 if self.baseline_metrics is not None else None),
            "deltas": self.deltas,
            "skipped": self.skipped,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SegmentResult:
        return cls(
            name=data["name"],
            expr=data["expr"],
            rows=int(data["rows"]),
            metrics=_floats(data.get("metrics") or {}),
            baseline_metrics=(_floats(data["baseline_metrics"])
                              if data.get("baseline_metrics") is not None else None),
            skipped=data.get("skipped"),
            notes=tuple(data.get("notes") or ()),
        )


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    """What evaluating a candidate found; stored on the model version, read by the gates.

    ``baseline_*`` are None without a baseline. ``latency_ms_per_row`` is the median over a few
    timed ``predict`` calls divided by their row count; ``model_size_bytes`` is what the caller
    passed as ``model_size``. ``curves`` holds the confusion matrix and the ROC, precision-recall
    and calibration curves (classification) or the residual histogram (regression).
    """

    task: m.Task
    target: str
    rows: int
    metrics: dict[str, float]
    labels: tuple[Any, ...] | None = None
    segments: tuple[SegmentResult, ...] = ()
    baseline_name: str | None = None
    baseline_metrics: dict[str, float] | None = None
    latency_ms_per_row: float | None = None
    baseline_latency_ms_per_row: float | None = None
    model_size_bytes: int | None = None
    curves: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def deltas(self) -> dict[str, float]:
        """Candidate minus baseline, per metric both have (empty without a baseline)."""
        return _deltas(self.metrics, self.baseline_metrics)

    def find_segment(self, name: str) -> SegmentResult | None:
        return next((s for s in self.segments if s.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (no NaN, no numpy types); ``deltas`` is included for readers
        and recomputed, not read, by :meth:`from_dict`."""
        return {
            "schema_version": _SCHEMA_VERSION,
            "task": self.task,
            "target": self.target,
            "rows": self.rows,
            "labels": list(self.labels) if self.labels is not None else None,
            "metrics": dict(self.metrics),
            "baseline_name": self.baseline_name,
            "baseline_metrics": (dict(self.baseline_metrics)
                                 if self.baseline_metrics is not None else None),
            "deltas": self.deltas,
            "segments": [s.to_dict() for s in self.segments],
            "latency_ms_per_row": self.latency_ms_per_row,
            "baseline_latency_ms_per_row": self.baseline_latency_ms_per_row,
            "model_size_bytes": self.model_size_bytes,
            "curves": self.curves,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluationResult:
        """The result :meth:`to_dict` wrote; a malformed record raises ``InvalidInputError``."""
        if not isinstance(data, Mapping):
            raise InvalidInputError(
                f"evaluation result: expected a mapping, got {type(data).__name__}",
                details={"field": "evaluation"},
            )
        version = data.get("schema_version", _SCHEMA_VERSION)
        if version != _SCHEMA_VERSION:
            raise InvalidInputError(
                f"evaluation result: schema_version {version!r} is not supported; expected "
                f"{_SCHEMA_VERSION}",
                details={"field": "schema_version"},
            )
        try:
            task = data["task"]
            if task not in m.METRICS:
                raise InvalidInputError(
                    f"evaluation result: task must be one of {', '.join(m.METRICS)}, got "
                    f"{task!r}",
                    details={"field": "task"},
                )
            labels = data.get("labels")
            return cls(
                task=task,
                target=data["target"],
                rows=int(data["rows"]),
                metrics=_floats(data["metrics"]),
                labels=tuple(labels) if labels is not None else None,
                segments=tuple(SegmentResult.from_dict(s) for s in data.get("segments") or ()),
                baseline_name=data.get("baseline_name"),
                baseline_metrics=(_floats(data["baseline_metrics"])
                                  if data.get("baseline_metrics") is not None else None),
                latency_ms_per_row=_optional_float(data.get("latency_ms_per_row")),
                baseline_latency_ms_per_row=_optional_float(
                    data.get("baseline_latency_ms_per_row")),
                model_size_bytes=(int(data["model_size_bytes"])
                                  if data.get("model_size_bytes") is not None else None),
                curves=dict(data.get("curves") or {}),
                notes=tuple(data.get("notes") or ()),
            )
        except KeyError as exc:
            raise InvalidInputError(
                f"evaluation result: missing {exc.args[0]!r}",
                details={"field": str(exc.args[0])},
            ) from exc
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"evaluation result: malformed record: {exc}", details={"field": "evaluation"}
            ) from exc


def _floats(values: Mapping[str, Any]) -> dict[str, float]:
    return {str(k): float(v) for k, v in values.items()}


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _deltas(current: Mapping[str, float], baseline: Mapping[str, float] | None) -> dict[str, float]:
    if baseline is None:
        return {}
    # Counts that ride along with the metrics (mape_excluded_rows) are not metrics to compare.
    known = {name for names in m.METRICS.values() for name in names}
    return {k: current[k] - baseline[k] for k in current if k in baseline and k in known}


# --------------------------------------------------------------------------- evaluate


@dataclass(frozen=True, slots=True)
class _Predictions:
    """One model's outputs over the whole holdout."""

    pred: NDArray[Any]
    proba: NDArray[np.float64] | None
    labels: NDArray[Any] | None


def _features(data: Any, target: str) -> tuple[Any, pl.DataFrame]:
    """The frame the model sees (same library as given, without the target) and a polars view
    of the whole frame for the target and the segment masks."""
    frame = as_polars(data)
    if target not in frame.columns:
        import difflib

        close = difflib.get_close_matches(target, frame.columns, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InvalidInputError(
            f"target: column {target!r} is not in the data{hint}; columns are {frame.columns}",
            details={"field": "target", "column": target},
        )
    if frame.height == 0:
        raise InvalidInputError("data: expected at least one row to evaluate, got none",
                                details={"field": "data"})
    column = frame[target]
    missing = column.null_count() + (int(column.is_nan().sum()) if column.dtype.is_float() else 0)
    if missing:
        raise InvalidInputError(
            f"target: {missing} of {frame.height} rows have no {target!r} value; drop or fill "
            "them before evaluating",
            details={"field": "target", "rows": missing},
        )
    if isinstance(data, pl.DataFrame | pl.LazyFrame):
        return frame.drop(target), frame
    if type(data).__module__.startswith("pandas"):
        return data.drop(columns=[target]), frame
    return frame.drop(target), frame  # pyarrow: models get polars


def _head(features: Any, rows: int) -> Any:
    if isinstance(features, pl.DataFrame):
        return features.head(rows)
    return features.iloc[:rows]


def _call(model: Any, method: str, features: Any, who: str, rows: int) -> NDArray[Any]:
    try:
        out = np.asarray(getattr(model, method)(features))
    except Exception as exc:  # the model's own code: translate at this boundary
        raise InvalidInputError(
            f"{who}: {method} failed on the evaluation data: {type(exc).__name__}: {exc}",
            details={"field": who, "method": method},
        ) from exc
    if out.shape[0] != rows:
        raise InvalidInputError(
            f"{who}: {method} returned {out.shape[0]} rows for {rows} input rows",
            details={"field": who, "method": method},
        )
    return out


def _predict(model: Any, features: Any, who: str, rows: int, classify: bool) -> _Predictions:
    pred = _call(model, "predict", features, who, rows)
    if pred.ndim == 2 and pred.shape[1] == 1:
        pred = pred[:, 0]
    classes = getattr(model, "classes_", None)
    labels = np.asarray(classes) if classes is not None else None
    proba = None
    if classify and callable(getattr(model, "predict_proba", None)):
        proba = _call(model, "predict_proba", features, who, rows).astype(np.float64)
    return _Predictions(pred=pred, proba=proba, labels=labels)


def _task(task: str | None, y: NDArray[Any], model: Any) -> m.Task:
    if task is not None and task not in _TASKS:
        raise InvalidInputError(
            f"task: expected one of {', '.join(_TASKS)}, got {task!r}", details={"field": "task"}
        )
    if task in ("binary", "multiclass", "regression"):
        return task  # type: ignore[return-value]
    classes = getattr(model, "classes_", None)
    if task == "classification" or (task is None and classes is not None):
        seen = set(np.unique(y).tolist()) | (set(np.asarray(classes).tolist())
                                              if classes is not None else set())
        return "binary" if len(seen) <= 2 else "multiclass"
    return m.infer_task(y)


def _latency(model: Any, features: Any, rows: int, repeats: int) -> float | None:
    """Median milliseconds per row over *repeats* timed predict calls after one warm-up call
    (first calls pay for lazy imports and caches that serving pays once)."""
    if rows <= 0 or repeats <= 0:
        return None
    sample = _head(features, rows)
    n = sample.shape[0]
    model.predict(sample)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict(sample)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000.0 / n


def _score(
    task: m.Task, y: NDArray[Any], p: _Predictions, rows: NDArray[np.bool_] | None = None
) -> tuple[dict[str, float], list[str]]:
    if rows is not None:
        y = y[rows]
        p = _Predictions(pred=p.pred[rows], proba=p.proba[rows] if p.proba is not None else None,
                         labels=p.labels)
    if task == "regression":
        return m._regression(y, p.pred)
    labels = p.labels.tolist() if p.labels is not None else None
    return m._classification(y, p.pred, p.proba, labels, None)


def _curves(task: m.Task, y: NDArray[Any], p: _Predictions, notes: list[str]) -> dict[str, Any]:
    if task == "regression":
        return {"residuals": m.residual_histogram(y, p.pred)}
    labels = p.labels.tolist() if p.labels is not None else None
    cm_labels = None
    if labels is not None:
        # Classes the model never predicts still get a row; unseen holdout classes are appended.
        extra = {*np.unique(y).tolist(), *np.unique(p.pred).tolist()} - set(labels)
        cm_labels = [*labels, *sorted(extra, key=str)]
    curves: dict[str, Any] = {"confusion_matrix": m.confusion_matrix(y, p.pred, labels=cm_labels)}
    known = labels is None or set(np.unique(y).tolist()) <= set(labels)
    if p.proba is not None and known:
        try:
            curves["roc"] = m.roc_curve(y, p.proba, labels=labels)
            curves["precision_recall"] = m.precision_recall_curve(y, p.proba, labels=labels)
            curves["calibration"] = m.calibration_curve(y, p.proba, labels=labels)
        except InvalidInputError as exc:  # proba shape vs labels: already noted by the metrics
            notes.append(f"curves not drawn: {exc.message}")
    return curves


def _segment_result(
    seg: Segment,
    mask: NDArray[np.bool_],
    task: m.Task,
    y: NDArray[Any],
    cand: _Predictions,
    base: _Predictions | None,
    min_rows: int,
) -> SegmentResult:
    rows = int(mask.sum())
    skipped = None
    if rows < min_rows:
        skipped = (f"{rows} rows, fewer than the {min_rows} needed for stable metrics"
                   if rows else "no rows in the evaluation data")
    elif task != "regression":
        classes = np.unique(y[mask])
        if classes.size < 2:
            skipped = (f"only class {m._json_scalar(classes[0])!r} among its {rows} rows: "
                       "metrics that compare classes are undefined")
    if skipped is not None:
        return SegmentResult(name=seg.name, expr=seg.expr, rows=rows, skipped=skipped)
    metrics, notes = _score(task, y, cand, mask)
    baseline_metrics = None
    if base is not None:
        baseline_metrics, base_notes = _score(task, y, base, mask)
        notes += [f"baseline: {n}" for n in base_notes]
    return SegmentResult(name=seg.name, expr=seg.expr, rows=rows, metrics=metrics,
                         baseline_metrics=baseline_metrics, notes=tuple(notes))


def evaluate(
    model: Any,
    data: Any,
    *,
    target: str,
    task: Literal["binary", "multiclass", "regression", "classification"] | None = None,
    segments: Mapping[str, str] | Iterable[Segment | Mapping[str, Any]] | None = (),
    baseline: Any = None,
    baseline_name: str = "production",
    latency_rows: int = 1000,
    latency_repeats: int = 5,
    model_size: int | None = None,
    min_segment_rows: int = DEFAULT_MIN_SEGMENT_ROWS,
) -> EvaluationResult:
    """Evaluate *model* (anything with ``predict(frame)``, optionally ``predict_proba`` and
    ``classes_``) on *data*, a pandas or polars frame holding the *target* column.

    *task* defaults to a guess: a model with ``classes_`` classifies, otherwise
    :func:`~mlcycle.evaluation.metrics.infer_task` reads the target. *segments* are named
    slices (``{"seniors": "age >= 65"}``, see :mod:`mlcycle.datasets.segments`). *baseline*, the
    current production model say, is scored on the same rows. *model_size* is the candidate's
    serialized size in bytes, recorded for the size gate. Latency is timed on up to
    *latency_rows* rows; ``latency_rows=0`` skips it.

    >>> result = evaluate(clf, holdout, target="label", segments={"eu": "region = 'EU'"},
    ...                   baseline=production_clf)                       # doctest: +SKIP
    >>> result.deltas["roc_auc"]                                         # doctest: +SKIP
    -0.012
    """
    if not callable(getattr(model, "predict", None)):
        raise InvalidInputError(
            f"model: expected an object with a predict(frame) method, got {type(model).__name__}",
            details={"field": "model"},
        )
    if baseline is not None and not callable(getattr(baseline, "predict", None)):
        raise InvalidInputError(
            f"baseline: expected an object with a predict(frame) method, got "
            f"{type(baseline).__name__}",
            details={"field": "baseline"},
        )
    if min_segment_rows < 1:
        raise InvalidInputError(f"min_segment_rows: expected at least 1, got {min_segment_rows}",
                                details={"field": "min_segment_rows"})
    if model_size is not None and (isinstance(model_size, bool) or model_size < 0):
        raise InvalidInputError(
            f"model_size: expected a size in bytes (a non-negative integer), got {model_size!r}",
            details={"field": "model_size"},
        )
    parsed_segments = parse_segments(segments)
    features, frame = _features(data, target)
    y = frame[target].to_numpy()
    n = frame.height
    resolved = _task(task, y, model)
    classify = resolved != "regression"

    cand = _predict(model, features, "model", n, classify)
    metrics, cand_notes = _score(resolved, y, cand)
    notes = list(cand_notes)
    curves = _curves(resolved, y, cand, notes)

    base = None
    baseline_metrics = None
    baseline_latency = None
    if baseline is not None:
        base = _predict(baseline, features, "baseline", n, classify)
        baseline_metrics, base_notes = _score(resolved, y, base)
        notes += [f"{baseline_name}: {note}" for note in base_notes]
        baseline_latency = _latency(baseline, features, latency_rows, latency_repeats)

    masks = [seg.mask(frame).to_numpy() for seg in parsed_segments]
    seg_results = tuple(
        _segment_result(seg, mask, resolved, y, cand, base, min_segment_rows)
        for seg, mask in zip(parsed_segments, masks, strict=True)
    )
    labels = None
    if classify:
        labels = tuple(curves["confusion_matrix"]["labels"])
    latency = _latency(model, features, latency_rows, latency_repeats)
    if latency is not None and not math.isfinite(latency):  # pragma: no cover - defensive
        latency = None
    return EvaluationResult(
        task=resolved,
        target=target,
        rows=n,
        metrics=metrics,
        labels=labels,
        segments=seg_results,
        baseline_name=baseline_name if baseline is not None else None,
        baseline_metrics=baseline_metrics,
        latency_ms_per_row=latency,
        baseline_latency_ms_per_row=baseline_latency,
        model_size_bytes=model_size,
        curves=curves,
        notes=tuple(notes),
    )
