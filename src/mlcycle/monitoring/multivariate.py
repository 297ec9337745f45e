"""Multivariate drift: can a classifier tell current rows from reference rows?

Per-column tests miss a change in how columns move together (two features that used to rise
together and now move apart). A *domain classifier* sees whole rows: a gradient-boosted model
is trained to tell reference rows (label 0) from current rows (label 1), and its cross-validated
ROC AUC is the score. 0.5 means indistinguishable; the default verdict is drift at AUC >= 0.55,
a classifier right about one pair in ten more often than a coin.

::

    result = domain_classifier_auc(training_frame, window, max_rows=20_000)
    result.auc, result.drifted

It needs raw reference rows: a stored profile keeps one sketch per column, which has lost the
joint distribution the classifier looks at (rows drawn from the sketches would be independent
columns, and the classifier would "detect" the correlations the real data has).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from mlcycle.datasets.profile import DatasetProfile
from mlcycle.errors import InvalidInputError
from mlcycle.monitoring._drift_sources import FrameSource, Kind

__all__ = ["DomainDrift", "domain_classifier_auc"]

#: HistGradientBoosting bins a categorical feature into at most 255 codes (one for missing);
#: rarer categories share the last one.
_MAX_CODES = 254


@dataclass(frozen=True, slots=True)
class DomainDrift:
    """A domain classifier's verdict: mean and standard deviation over the cross-validation
    folds of its ROC AUC, the threshold it was judged by, and what it was trained on."""

    auc: float
    auc_std: float
    threshold: float
    drifted: bool
    reference_rows: int
    current_rows: int
    columns: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "auc": self.auc,
            "auc_std": self.auc_std,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "columns": list(self.columns),
        }


def domain_classifier_auc(
    reference_frame: Any,
    current_frame: Any,
    *,
    columns: Iterable[str] | None = None,
    max_rows: int = 20_000,
    folds: int = 5,
    threshold: float = 0.55,
    seed: int = 0,
) -> DomainDrift:
    """Cross-validated ROC AUC of a ``HistGradientBoostingClassifier`` telling *current_frame*
    rows from *reference_frame* rows (pandas, polars or pyarrow).

    At most *max_rows* rows of each side, drawn without replacement with *seed*, so the cost is
    bounded whatever the frames' size. ``columns`` defaults to every numeric, string and boolean
    column of both. Needs scikit-learn (``pip install 'mlcycle[sklearn]'``).
    """
    if isinstance(reference_frame, DatasetProfile):
        raise InvalidInputError(
            "a domain classifier needs raw reference rows; a profile keeps one sketch per "
            "column and has lost how columns vary together",
            details={"field": "reference_frame"},
        )
    _check(max_rows, "max_rows", low=10)
    _check(folds, "folds", low=2)
    if not isinstance(threshold, int | float) or not 0.5 <= threshold < 1.0:
        raise InvalidInputError(
            f"threshold must be a number in [0.5, 1), got {threshold!r}",
            details={"field": "threshold"},
        )
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.model_selection import StratifiedKFold, cross_val_score
    except ImportError as exc:  # pragma: no cover - the sklearn extra is installed in dev
        raise InvalidInputError(
            "the domain classifier needs scikit-learn: pip install 'mlcycle[sklearn]'",
            details={"field": "sklearn"},
        ) from exc

    ref = FrameSource(reference_frame, "reference")
    cur = FrameSource(current_frame, "current")
    names = _columns(ref, cur, columns)
    rng = np.random.default_rng(seed)
    ref_rows = _sample(ref.whole(), max_rows, rng)
    cur_rows = _sample(cur.whole(), max_rows, rng)
    if min(ref_rows.num_rows, cur_rows.num_rows) < folds:
        raise InvalidInputError(
            f"each side needs at least folds={folds} rows; got {ref_rows.num_rows} reference "
            f"and {cur_rows.num_rows} current rows",
            details={"field": "reference_frame" if ref_rows.num_rows < folds else "current_frame"},
        )
    features, categorical = _features(ref_rows, cur_rows, names)
    labels = np.r_[np.zeros(ref_rows.num_rows), np.ones(cur_rows.num_rows)]
    # Early stopping on a held-out tenth: with no drift there is nothing to learn, and the
    # model stops after a handful of trees instead of fitting noise for a hundred.
    model = HistGradientBoostingClassifier(
        max_iter=100, early_stopping=True, n_iter_no_change=5, validation_fraction=0.1,
        categorical_features=categorical, random_state=seed,
    )
    splits = StratifiedKFold(folds, shuffle=True, random_state=seed)
    scores = cross_val_score(model, features, labels, cv=splits, scoring="roc_auc")
    auc = float(np.mean(scores))
    return DomainDrift(
        auc=auc,
        auc_std=float(np.std(scores)),
        threshold=float(threshold),
        drifted=auc >= threshold,
        reference_rows=ref_rows.num_rows,
        current_rows=cur_rows.num_rows,
        columns=tuple(name for name, _ in names),
    )


def _check(value: Any, name: str, *, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidInputError(
            f"{name} must be an int of at least {low}, got {value!r}", details={"field": name}
        )


def _columns(
    ref: FrameSource, cur: FrameSource, columns: Iterable[str] | None
) -> list[tuple[str, Kind]]:
    if columns is None:
        wanted = [n for n in ref.names if n in set(cur.names) and ref.kind(n) is not None]
    else:
        wanted = [columns] if isinstance(columns, str) else list(columns)
    chosen: list[tuple[str, Kind]] = []
    for name in wanted:
        for source in (ref, cur):
            if name not in source.names:
                raise InvalidInputError(
                    f"column {name!r} is not in the {source.role} data", details={"field": name}
                )
        kind, other = ref.kind(name), cur.kind(name)
        if kind is None or kind != other:
            raise InvalidInputError(
                f"column {name!r} is {ref.type_name(name)} in the reference and "
                f"{cur.type_name(name)} in the current data; the classifier takes numeric, "
                "string and boolean columns of one kind on both sides",
                details={"field": name},
            )
        chosen.append((name, kind))
    if not chosen:
        raise InvalidInputError(
            "no numeric, string or boolean column is in both frames", details={"field": "columns"}
        )
    return chosen


def _sample(table: pa.Table, max_rows: int, rng: np.random.Generator) -> pa.Table:
    if table.num_rows <= max_rows:
        return table
    return table.take(np.sort(rng.choice(table.num_rows, size=max_rows, replace=False)))


def _features(
    ref: pa.Table, cur: pa.Table, names: list[tuple[str, Kind]]
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """One float matrix of both sides' rows: numbers as they are (NaN for missing), categories
    as codes in order of joint frequency, the rarest sharing the last code."""
    matrix = np.empty((ref.num_rows + cur.num_rows, len(names)))
    for j, (name, kind) in enumerate(names):
        if kind == "numeric":
            parts = [t.column(name).cast(pa.float64()).to_numpy() for t in (ref, cur)]
            matrix[:, j] = np.concatenate(parts)
            continue
        text = [t.column(name).cast(pa.large_string()).combine_chunks() for t in (ref, cur)]
        encoded = pc.dictionary_encode(pa.concat_arrays(text))
        codes = encoded.indices.to_numpy(zero_copy_only=False)  # floats, NaN for nulls
        valid = ~np.isnan(codes)
        seen = codes[valid].astype(np.int64)
        counts = np.bincount(seen, minlength=len(encoded.dictionary))
        rank = np.empty(counts.size)
        rank[np.argsort(-counts, kind="stable")] = np.arange(counts.size)
        matrix[:, j] = np.nan
        matrix[valid, j] = np.minimum(rank[seen], _MAX_CODES)
    categorical = np.array([kind == "categorical" for _, kind in names])
    return matrix, categorical
