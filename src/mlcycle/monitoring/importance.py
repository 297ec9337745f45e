"""Feature-importance drift: does the model still rely on the features it relied on in training?

The inputs can look unchanged while what predicts the label moves (a feature that carried the
signal turns into noise). Permutation importance measures that from labelled rows: how much the
model's score drops when one feature's values are shuffled. Computed on a recent labelled window
and compared with the same measure at training time, both as fractions of the *training-time*
total (not each of its own total: when the model loses all skill every importance is noise, and
renormalising noise would make some feature look as important as ever):

::

    at_training = permutation_importance(model, holdout, target="label")   # store it
    result = importance_drift(model, at_training, labelled_window, target="label")
    result.drifted, result.change                                           # share changes

The default verdict is drift when a feature's importance moves by 0.1 or more of the training
total (it gained or lost a tenth of what the model relied on). The Spearman correlation of the
two rankings is reported too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from mlcycle.errors import InvalidInputError
from mlcycle.monitoring._drift_sources import FrameSource

__all__ = ["ImportanceDrift", "importance_drift", "permutation_importance"]

Metric = Callable[[NDArray[Any], NDArray[Any]], float]


@dataclass(frozen=True, slots=True)
class ImportanceDrift:
    """Importances at training time (``reference``, summing to one) and now (``current``), both
    as fractions of the training-time total, each feature's ``change`` (now minus then), the
    Spearman ``rank_correlation`` of the two, and the verdict: ``drifted`` when
    ``max_change >= threshold``. Negative importances (shuffling helped) count as zero."""

    reference: dict[str, float]
    current: dict[str, float]
    change: dict[str, float]
    rank_correlation: float
    max_change: float
    threshold: float
    drifted: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": dict(self.reference),
            "current": dict(self.current),
            "change": dict(self.change),
            "rank_correlation": self.rank_correlation,
            "max_change": self.max_change,
            "threshold": self.threshold,
            "drifted": self.drifted,
        }


def _accuracy(y: NDArray[Any], p: NDArray[Any]) -> float:
    return float(np.mean(y == p))


def _r2(y: NDArray[Any], p: NDArray[Any]) -> float:
    y = y.astype(np.float64)
    total = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((y - p.astype(np.float64)) ** 2)) / total if total else 0.0


def _default_metric(y: NDArray[Any]) -> Metric:
    from mlcycle.evaluation.metrics import infer_task

    return _r2 if infer_task(y) == "regression" else _accuracy


def permutation_importance(
    model: Any,
    labelled: Any,
    *,
    target: str,
    columns: Iterable[str] | None = None,
    metric: Metric | None = None,
    n_repeats: int = 5,
    max_rows: int = 5000,
    seed: int = 0,
) -> dict[str, float]:
    """Each feature's mean drop in *metric* (higher is better; default accuracy for classes,
    R² for numbers) when its column is shuffled, over *n_repeats* shuffles of at most
    *max_rows* rows of *labelled* (pandas, polars or pyarrow). ``model.predict`` gets a pandas
    DataFrame of the feature columns (default: every column but *target*).
    """
    for name, value, low in (("n_repeats", n_repeats, 1), ("max_rows", max_rows, 10)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InvalidInputError(
                f"{name} must be an int of at least {low}, got {value!r}",
                details={"field": name},
            )
    table = FrameSource(labelled, "labelled").whole()
    if target not in table.schema.names:
        raise InvalidInputError(
            f"target column {target!r} is not in the labelled data (columns: "
            f"{table.schema.names})",
            details={"field": "target"},
        )
    features = (
        [n for n in table.schema.names if n != target] if columns is None else list(columns)
    )
    for name in features:
        if name not in table.schema.names or name == target:
            raise InvalidInputError(
                f"feature column {name!r} is not in the labelled data", details={"field": name}
            )
    rng = np.random.default_rng(seed)
    if table.num_rows > max_rows:
        table = table.take(np.sort(rng.choice(table.num_rows, size=max_rows, replace=False)))
    frame = table.select(features).to_pandas()
    y = table.column(target).to_numpy()
    score = metric if metric is not None else _default_metric(y)
    baseline = score(y, np.asarray(model.predict(frame)))
    importance: dict[str, float] = {}
    for name in features:
        original = frame[name].copy()
        drops = []
        for _ in range(n_repeats):
            frame[name] = original.to_numpy()[rng.permutation(len(frame))]
            drops.append(baseline - score(y, np.asarray(model.predict(frame))))
        frame[name] = original
        importance[name] = float(np.mean(drops))
    return importance


def _clipped(importance: Mapping[str, float], names: list[str]) -> NDArray[np.float64]:
    return np.array([max(float(importance.get(n, 0.0)), 0.0) for n in names])


def importance_drift(
    model: Any,
    reference: Any,
    current_labelled: Any,
    *,
    target: str,
    columns: Iterable[str] | None = None,
    metric: Metric | None = None,
    threshold: float = 0.1,
    n_repeats: int = 5,
    max_rows: int = 5000,
    seed: int = 0,
) -> ImportanceDrift:
    """Permutation importance of *model* on *current_labelled* against *reference*: a labelled
    frame from training time (the holdout), or the importances computed then (a mapping from
    feature to importance, as ``permutation_importance`` returns).
    """
    if not isinstance(threshold, int | float) or not 0.0 < threshold <= 1.0:
        raise InvalidInputError(
            f"threshold must be a number in (0, 1], got {threshold!r}",
            details={"field": "threshold"},
        )
    options: dict[str, Any] = {
        "target": target, "columns": columns, "metric": metric, "n_repeats": n_repeats,
        "max_rows": max_rows, "seed": seed,
    }
    now = permutation_importance(model, current_labelled, **options)
    then = (
        dict(reference) if isinstance(reference, Mapping)
        else permutation_importance(model, reference, **options)
    )
    names = list(now)
    before, after = _clipped(then, names), _clipped(now, names)
    total = before.sum()
    if total > 0:  # else the model had no skill to lose; compare raw metric drops
        before, after = before / total, after / total
    change = after - before
    if np.ptp(before) > 0 and np.ptp(after) > 0:
        correlation = float(stats.spearmanr(before, after).statistic)
    else:
        correlation = float("nan")
    max_change = float(np.abs(change).max()) if names else 0.0
    return ImportanceDrift(
        reference=dict(zip(names, before.tolist(), strict=True)),
        current=dict(zip(names, after.tolist(), strict=True)),
        change=dict(zip(names, change.tolist(), strict=True)),
        rank_correlation=correlation,
        max_change=max_change,
        threshold=float(threshold),
        drifted=max_change >= threshold,
    )
