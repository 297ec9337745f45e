"""Task-aware metrics as plain dicts of floats, and curves as JSON-ready dicts for the UI.

Every number comes from scikit-learn's metric functions, so a value here equals the value a
data scientist gets in a notebook; this module only decides which metrics a task gets, what they
are called, and what happens when one is undefined. The one metric scikit-learn does not ship,
the expected calibration error, is computed here from 10 equal-width bins.

A metric that is undefined on the given data (ROC AUC when ``y_true`` holds one class, MAPE when
every target is zero) is left out of the dict instead of being NaN: NaN is not JSON, and a gate
comparing against NaN would pass or fail for no reason. The private ``_classification`` and
``_regression`` return the reason next to the dict, which :func:`mlcycle.evaluation.evaluate`
records as a note.

Metric names by task (:data:`METRICS`)::

    binary       accuracy balanced_accuracy precision recall f1 f1_macro
                 roc_auc pr_auc log_loss brier ece        (the last five need probabilities)
    multiclass   accuracy balanced_accuracy precision_macro recall_macro f1_macro
                 precision_weighted recall_weighted f1_weighted roc_auc log_loss ece
    regression   rmse mae mape r2

In the binary case the positive class is the last of ``labels`` (scikit-learn's ``classes_[1]``:
1 over 0, True over False, the later string) unless ``pos_label`` says otherwise.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, Final, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn import metrics as skm
from sklearn.utils.multiclass import type_of_target

from mlcycle.errors import InvalidInputError

__all__ = [
    "LOWER_IS_BETTER",
    "METRICS",
    "Task",
    "calibration_curve",
    "classification_metrics",
    "confusion_matrix",
    "expected_calibration_error",
    "infer_task",
    "precision_recall_curve",
    "regression_metrics",
    "residual_histogram",
    "roc_curve",
]

Task = Literal["binary", "multiclass", "regression"]

METRICS: Final[dict[str, tuple[str, ...]]] = {
    "binary": (
        "accuracy", "balanced_accuracy", "precision", "recall", "f1", "f1_macro",
        "roc_auc", "pr_auc", "log_loss", "brier", "ece",
    ),
    "multiclass": (
        "accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro",
        "precision_weighted", "recall_weighted", "f1_weighted", "roc_auc", "log_loss", "ece",
    ),
    "regression": ("rmse", "mae", "mape", "r2"),
}
"""The metrics each task produces; gates check their metric names against these."""

LOWER_IS_BETTER: Final = frozenset({"log_loss", "brier", "ece", "rmse", "mae", "mape"})
"""Metrics where a smaller value is better; every other metric is better when larger."""

MAX_CURVE_POINTS: Final = 200
CALIBRATION_BINS: Final = 10

# An integer-valued target with more distinct values than this is taken as a quantity to
# regress (diabetes progression scores 25..346), not as class labels.
_MAX_INFERRED_CLASSES: Final = 20


# --------------------------------------------------------------------------- tasks and labels


def infer_task(y: ArrayLike) -> Task:
    """The task a target implies: ``binary``, ``multiclass`` or ``regression``.

    Strings, booleans and categories are classes. Numbers with a fractional part are a
    regression target. Integer-valued numbers are classes up to 20 distinct values and a
    regression target beyond, which is a guess: pass ``task=`` to :func:`evaluate` when a
    count-valued target with few values (ratings 1..5 to regress) says otherwise.

    >>> infer_task([0, 1, 1, 0])
    'binary'
    >>> infer_task([0.5, 1.25, 3.0])
    'regression'
    """
    arr = _as_1d(y, "y")
    if arr.size == 0:
        raise InvalidInputError("cannot infer the task of an empty target", details={"field": "y"})
    kind = type_of_target(arr)
    if kind == "continuous":
        return "regression"
    if kind == "binary":
        return "binary"
    if kind == "multiclass":
        if arr.dtype.kind in "iuf" and np.unique(arr).size > _MAX_INFERRED_CLASSES:
            return "regression"
        return "multiclass"
    raise InvalidInputError(
        f"cannot infer the task of a target of kind {kind!r}; expected one label or one number "
        "per row",
        details={"field": "y", "kind": kind},
    )


def _as_1d(values: ArrayLike, field: str) -> NDArray[Any]:
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise InvalidInputError(
            f"{field}: expected one value per row, got an array of shape {arr.shape}",
            details={"field": field},
        )
    return arr


def _same_length(field: str, values: NDArray[Any], n: int) -> None:
    if values.shape[0] != n:
        raise InvalidInputError(
            f"{field}: expected {n} rows (as many as y_true), got {values.shape[0]}",
            details={"field": field},
        )


def _json_scalar(value: Any) -> Any:
    """A numpy scalar as the Python value json understands (np.int64 → int, np.str_ → str)."""
    return value.item() if isinstance(value, np.generic) else value


def _finite_or_none(values: NDArray[Any]) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in values.tolist()]


def _resolve_labels(
    y_true: NDArray[Any], y_pred: NDArray[Any] | None, labels: Sequence[Any] | None
) -> NDArray[Any]:
    if labels is not None:
        out = np.asarray(list(labels))
        if out.size == 0 or np.unique(out).size != out.size:
            raise InvalidInputError(
                f"labels: expected distinct class labels, got {list(labels)!r}",
                details={"field": "labels"},
            )
        return out
    parts = [y_true] if y_pred is None else [y_true, y_pred]
    try:
        return np.unique(np.concatenate(parts))
    except TypeError as exc:  # mixed types that do not sort: 1 and "1"
        raise InvalidInputError(
            f"y_true and y_pred mix label types that cannot be ordered: {exc}; pass labels=",
            details={"field": "labels"},
        ) from exc


def _positive_label(labels: NDArray[Any], pos_label: Any) -> Any:
    if pos_label is None:
        return labels[-1]
    if pos_label not in labels.tolist():
        raise InvalidInputError(
            f"pos_label: {pos_label!r} is not one of the labels {labels.tolist()!r}",
            details={"field": "pos_label"},
        )
    return pos_label


def _proba_matrix(y_proba: ArrayLike, labels: NDArray[Any], n: int) -> NDArray[np.float64]:
    """Probabilities as an (n, len(labels)) matrix; a binary 1-D array is P(labels[-1])."""
    proba = np.asarray(y_proba, dtype=np.float64)
    if proba.ndim == 1:
        if labels.size != 2:
            raise InvalidInputError(
                f"y_proba: a 1-D array of probabilities needs exactly two labels, got "
                f"{labels.size}; pass one column per class",
                details={"field": "y_proba"},
            )
        proba = np.column_stack([1.0 - proba, proba])
    if proba.ndim != 2 or proba.shape[1] != labels.size:
        raise InvalidInputError(
            f"y_proba: expected one column per label ({labels.size}: {labels.tolist()!r}), "
            f"got shape {proba.shape}",
            details={"field": "y_proba"},
        )
    _same_length("y_proba", proba, n)
    if not np.isfinite(proba).all():
        raise InvalidInputError(
            "y_proba: expected finite probabilities, got NaN or infinity",
            details={"field": "y_proba"},
        )
    return proba


# --------------------------------------------------------------------------- classification


def _calibration_bins(
    correct: NDArray[Any], confidence: NDArray[np.float64], bins: int
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """Per equal-width bin over [0, 1]: row count, mean confidence, share of hits.

    Binned as :func:`sklearn.calibration.calibration_curve` bins (a probability on an inner edge
    goes to the upper bin, 1.0 to the last), so the two agree.
    """
    edges = np.linspace(0.0, 1.0, bins + 1)
    ids = np.searchsorted(edges[1:-1], confidence, side="right")
    counts = np.bincount(ids, minlength=bins)
    conf_sum = np.bincount(ids, weights=confidence, minlength=bins)
    hit_sum = np.bincount(ids, weights=correct.astype(np.float64), minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts, conf_sum / counts, hit_sum / counts


def _ece_inputs(
    y_true: NDArray[Any], proba: NDArray[np.float64], labels: NDArray[Any], pos: Any
) -> tuple[NDArray[Any], NDArray[np.float64]]:
    if labels.size == 2:
        # Binary: how well P(positive) matches the positive rate, as a reliability diagram.
        col = int(np.flatnonzero(labels == pos)[0])
        return y_true == pos, proba[:, col]
    # Multiclass: top-label calibration (the confidence of the predicted class).
    top = proba.argmax(axis=1)
    return labels[top] == y_true, proba[np.arange(proba.shape[0]), top]


def expected_calibration_error(
    y_true: ArrayLike,
    y_proba: ArrayLike,
    *,
    labels: Sequence[Any] | None = None,
    pos_label: Any = None,
    bins: int = CALIBRATION_BINS,
) -> float:
    """The expected calibration error: the row-weighted mean gap between confidence and hit
    rate over *bins* equal-width bins. 0 is perfectly calibrated.

    Binary: the probability of the positive class against the positive rate. Multiclass: the
    top-label confidence against accuracy. scikit-learn has the reliability curve
    (``calibration_curve``) but no ECE, hence this function.
    """
    truth = _as_1d(y_true, "y_true")
    classes = _resolve_labels(truth, None, labels)
    proba = _proba_matrix(y_proba, classes, truth.shape[0])
    correct, confidence = _ece_inputs(truth, proba, classes, _positive_label(classes, pos_label))
    counts, conf, hits = _calibration_bins(correct, confidence, bins)
    used = counts > 0
    return float(np.sum(counts[used] * np.abs(conf[used] - hits[used])) / truth.shape[0])


def _classification(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    y_proba: ArrayLike | None,
    labels: Sequence[Any] | None,
    pos_label: Any,
) -> tuple[dict[str, float], list[str]]:
    truth = _as_1d(y_true, "y_true")
    pred = _as_1d(y_pred, "y_pred")
    _same_length("y_pred", pred, truth.shape[0])
    if truth.size == 0:
        raise InvalidInputError("y_true: expected at least one row, got none",
                                details={"field": "y_true"})
    classes = _resolve_labels(truth, pred, labels)
    notes: list[str] = []
    unknown = sorted({*truth.tolist(), *pred.tolist()} - set(classes.tolist()), key=str)
    if unknown:
        # A holdout class the model never saw: the label metrics count it (as errors), but the
        # probability columns cannot cover it.
        notes.append(f"labels {unknown!r} are not among the model's classes "
                     f"{classes.tolist()!r}: probability metrics are not computed")
        proba_classes: NDArray[Any] | None = None
        classes = np.asarray([*classes.tolist(), *unknown])
    else:
        proba_classes = classes
    binary = classes.size == 2
    out: dict[str, float] = {
        "accuracy": skm.accuracy_score(truth, pred),
    }
    with warnings.catch_warnings():
        # A class absent from y_true makes balanced accuracy warn; the value is still defined.
        warnings.simplefilter("ignore")
        out["balanced_accuracy"] = skm.balanced_accuracy_score(truth, pred)
    pos = _positive_label(classes, pos_label) if binary else None
    if binary:
        p, r, f, _ = skm.precision_recall_fscore_support(
            truth, pred, labels=classes, pos_label=pos, average="binary", zero_division=0.0
        )
        out.update(precision=p, recall=r, f1=f)
        out["f1_macro"] = skm.f1_score(truth, pred, labels=classes, average="macro",
                                       zero_division=0.0)
    else:
        for average in ("macro", "weighted"):
            p, r, f, _ = skm.precision_recall_fscore_support(
                truth, pred, labels=classes, average=average, zero_division=0.0
            )
            out.update({f"precision_{average}": p, f"recall_{average}": r, f"f1_{average}": f})
    if y_proba is None:
        notes.append("no probabilities: roc_auc, log_loss, ece and the curves are not computed")
        return _finite(out, notes), notes
    if proba_classes is None:
        return _finite(out, notes), notes
    proba = _proba_matrix(y_proba, classes, truth.shape[0])
    present = np.unique(truth)
    if binary:
        col = int(np.flatnonzero(classes == pos)[0])
        if present.size < 2:
            notes.append(f"only class {_json_scalar(present[0])!r} in y_true: roc_auc and "
                         "pr_auc are undefined")
        else:
            out["roc_auc"] = skm.roc_auc_score(truth == pos, proba[:, col])
            out["pr_auc"] = skm.average_precision_score(truth == pos, proba[:, col])
        out["brier"] = skm.brier_score_loss(truth == pos, proba[:, col])
    elif present.size < classes.size:
        missing = [_json_scalar(c) for c in classes if c not in set(present.tolist())]
        notes.append(f"classes {missing!r} absent from y_true: one-vs-rest roc_auc is undefined")
    else:
        out["roc_auc"] = skm.roc_auc_score(truth, proba, multi_class="ovr", average="macro",
                                           labels=classes)
    out["log_loss"] = skm.log_loss(truth, proba, labels=classes)
    out["ece"] = expected_calibration_error(truth, proba, labels=classes.tolist(),
                                            pos_label=pos)
    return _finite(out, notes), notes


def _finite(values: dict[str, Any], notes: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in values.items():
        number = float(value)
        if math.isfinite(number):
            out[key] = number
        else:
            notes.append(f"{key} is undefined on these rows ({number}) and left out")
    return out


def classification_metrics(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    y_proba: ArrayLike | None = None,
    *,
    labels: Sequence[Any] | None = None,
    pos_label: Any = None,
) -> dict[str, float]:
    """Accuracy, precision/recall/F1 (binary: of the positive class, plus macro F1; multiclass:
    macro and weighted), and with *y_proba* ROC AUC (multiclass: one-vs-rest, macro), PR AUC and
    Brier score (binary), log loss and the expected calibration error (10 bins).

    *labels* orders the columns of *y_proba* (a model's ``classes_``); by default the sorted
    labels seen in *y_true* and *y_pred*. A binary *y_proba* may be 1-D: P(positive).
    Undefined metrics are left out (see the module docstring).

    >>> classification_metrics([0, 1, 1, 0], [0, 1, 0, 0])["accuracy"]
    0.75
    """
    return _classification(y_true, y_pred, y_proba, labels, pos_label)[0]


def confusion_matrix(
    y_true: ArrayLike, y_pred: ArrayLike, *, labels: Sequence[Any] | None = None
) -> dict[str, Any]:
    """``{"labels", "matrix", "normalized"}``: rows are true classes, columns predicted ones;
    ``normalized`` divides each row by its total (the diagonal is per-class recall; a class
    absent from *y_true* gets a row of zeros)."""
    truth = _as_1d(y_true, "y_true")
    pred = _as_1d(y_pred, "y_pred")
    _same_length("y_pred", pred, truth.shape[0])
    classes = _resolve_labels(truth, pred, labels)
    matrix = skm.confusion_matrix(truth, pred, labels=classes)
    totals = matrix.sum(axis=1, keepdims=True)
    normalized = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    return {
        "labels": [_json_scalar(c) for c in classes],
        "matrix": matrix.tolist(),
        "normalized": normalized.tolist(),
    }


def _downsample(n: int, max_points: int) -> NDArray[np.intp]:
    """Indices of at most *max_points* evenly spread points of *n*, first and last kept."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.intp))


def _one_vs_rest(
    y_true: ArrayLike, y_proba: ArrayLike, labels: Sequence[Any] | None, pos_label: Any
) -> list[tuple[Any, NDArray[np.bool_], NDArray[np.float64]]]:
    """(label, is-that-label, score) per curve: the positive class if binary, else each class."""
    truth = _as_1d(y_true, "y_true")
    classes = _resolve_labels(truth, None, labels)
    proba = _proba_matrix(y_proba, classes, truth.shape[0])
    if classes.size == 2:
        pos = _positive_label(classes, pos_label)
        col = int(np.flatnonzero(classes == pos)[0])
        return [(pos, truth == pos, proba[:, col])]
    return [(label, truth == label, proba[:, i]) for i, label in enumerate(classes)]


def roc_curve(
    y_true: ArrayLike,
    y_proba: ArrayLike,
    *,
    labels: Sequence[Any] | None = None,
    pos_label: Any = None,
    max_points: int = MAX_CURVE_POINTS,
) -> dict[str, Any]:
    """ROC curves for the UI: ``{"kind": "roc", "curves": [{"label", "x" (FPR), "y" (TPR),
    "thresholds", "auc"}]}``, one curve for the positive class (binary) or one per class
    (multiclass, one-vs-rest), each at most *max_points* points. A class absent from *y_true*
    has no curve: its TPR is undefined. Infinite thresholds are ``None``.
    """
    curves = []
    for label, hit, score in _one_vs_rest(y_true, y_proba, labels, pos_label):
        if hit.all() or not hit.any():
            continue
        fpr, tpr, thresholds = skm.roc_curve(hit, score)
        keep = _downsample(fpr.size, max_points)
        curves.append({
            "label": _json_scalar(label),
            "x": fpr[keep].tolist(),
            "y": tpr[keep].tolist(),
            "thresholds": _finite_or_none(thresholds[keep]),
            "auc": float(skm.auc(fpr, tpr)),
        })
    return {"kind": "roc", "x_label": "false positive rate", "y_label": "true positive rate",
            "curves": curves}


def precision_recall_curve(
    y_true: ArrayLike,
    y_proba: ArrayLike,
    *,
    labels: Sequence[Any] | None = None,
    pos_label: Any = None,
    max_points: int = MAX_CURVE_POINTS,
) -> dict[str, Any]:
    """Precision-recall curves for the UI, shaped as :func:`roc_curve` (``x`` recall, ``y``
    precision, ``average_precision``). The last point (recall 0, precision 1) has no threshold.
    """
    curves = []
    for label, hit, score in _one_vs_rest(y_true, y_proba, labels, pos_label):
        if not hit.any():
            continue
        precision, recall, thresholds = skm.precision_recall_curve(hit, score)
        keep = _downsample(precision.size, max_points)
        padded = np.append(thresholds, np.inf)  # sklearn gives one threshold fewer than points
        curves.append({
            "label": _json_scalar(label),
            "x": recall[keep].tolist(),
            "y": precision[keep].tolist(),
            "thresholds": _finite_or_none(padded[keep]),
            "average_precision": float(skm.average_precision_score(hit, score)),
        })
    return {"kind": "precision_recall", "x_label": "recall", "y_label": "precision",
            "curves": curves}


def calibration_curve(
    y_true: ArrayLike,
    y_proba: ArrayLike,
    *,
    labels: Sequence[Any] | None = None,
    pos_label: Any = None,
    bins: int = CALIBRATION_BINS,
) -> dict[str, Any]:
    """The reliability diagram behind the ECE: per non-empty bin, mean confidence (``x``), hit
    rate (``y``) and row count, plus ``ece``; the same bins as
    :func:`expected_calibration_error`."""
    truth = _as_1d(y_true, "y_true")
    classes = _resolve_labels(truth, None, labels)
    proba = _proba_matrix(y_proba, classes, truth.shape[0])
    pos = _positive_label(classes, pos_label)
    correct, confidence = _ece_inputs(truth, proba, classes, pos)
    counts, conf, hits = _calibration_bins(correct, confidence, bins)
    used = counts > 0
    return {
        "kind": "calibration",
        "x_label": "mean predicted probability" if classes.size == 2 else "mean confidence",
        "y_label": "fraction positive" if classes.size == 2 else "accuracy",
        "x": conf[used].tolist(),
        "y": hits[used].tolist(),
        "counts": counts[used].tolist(),
        "ece": float(np.sum(counts[used] * np.abs(conf[used] - hits[used])) / truth.shape[0]),
    }


# --------------------------------------------------------------------------- regression


def _regression(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[dict[str, float], list[str]]:
    try:
        truth = _as_1d(y_true, "y_true").astype(np.float64)
        pred = _as_1d(y_pred, "y_pred").astype(np.float64)
    except ValueError as exc:
        raise InvalidInputError(f"regression needs numeric targets and predictions: {exc}",
                                details={"field": "y_true"}) from exc
    _same_length("y_pred", pred, truth.shape[0])
    if truth.size == 0:
        raise InvalidInputError("y_true: expected at least one row, got none",
                                details={"field": "y_true"})
    if not (np.isfinite(truth).all() and np.isfinite(pred).all()):
        raise InvalidInputError("regression targets and predictions must be finite numbers",
                                details={"field": "y_pred" if np.isfinite(truth).all()
                                         else "y_true"})
    notes: list[str] = []
    out: dict[str, float] = {
        "rmse": skm.root_mean_squared_error(truth, pred),
        "mae": skm.mean_absolute_error(truth, pred),
    }
    # scikit-learn divides by max(|y|, eps), so one zero target turns MAPE into ~1e15; rows with
    # a zero target are left out instead, and the count says how many.
    nonzero = truth != 0
    excluded = int(truth.size - nonzero.sum())
    if nonzero.any():
        out["mape"] = skm.mean_absolute_percentage_error(truth[nonzero], pred[nonzero])
    if excluded:
        notes.append(f"mape ignores {excluded} of {truth.size} rows whose target is 0"
                     + ("" if nonzero.any() else "; with no other rows it is left out"))
    if truth.size >= 2:
        out["r2"] = skm.r2_score(truth, pred)
    else:
        notes.append("r2 needs at least two rows")
    result = _finite(out, notes)
    result["mape_excluded_rows"] = float(excluded)
    return result, notes


def regression_metrics(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float]:
    """RMSE, MAE, MAPE (a fraction: 0.12 is 12 %) and R².

    MAPE leaves out rows whose target is 0 (a percentage of zero is undefined) and reports how
    many it left out as ``mape_excluded_rows``; with every target 0 there is no ``mape``.

    >>> regression_metrics([1.0, 2.0, 4.0], [1.0, 2.0, 3.0])["mae"]
    0.3333333333333333
    """
    return _regression(y_true, y_pred)[0]


def residual_histogram(
    y_true: ArrayLike, y_pred: ArrayLike, *, bins: int = 30
) -> dict[str, Any]:
    """The distribution of ``y_pred - y_true`` for the UI: bin ``edges`` and ``counts``."""
    truth = _as_1d(y_true, "y_true").astype(np.float64)
    pred = _as_1d(y_pred, "y_pred").astype(np.float64)
    _same_length("y_pred", pred, truth.shape[0])
    counts, edges = np.histogram(pred - truth, bins=bins)
    return {"kind": "residuals", "x_label": "prediction - target", "y_label": "rows",
            "edges": edges.tolist(), "counts": counts.tolist()}
