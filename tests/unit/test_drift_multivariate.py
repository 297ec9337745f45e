"""Multivariate drift (a domain classifier) and feature-importance drift, on seeded data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
from sklearn.tree import DecisionTreeClassifier

from mlcycle.datasets.profile import profile_table
from mlcycle.errors import InvalidInputError
from mlcycle.monitoring import detect_drift
from mlcycle.monitoring.importance import importance_drift, permutation_importance
from mlcycle.monitoring.multivariate import domain_classifier_auc


def _correlated(n: int, rho: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = rho * a + np.sqrt(1 - rho**2) * rng.normal(size=n)
    return pd.DataFrame({"a": a, "b": b, "plan": rng.choice(["s", "m", "l"], size=n)})


def test_a_broken_correlation_is_found_that_per_column_tests_miss() -> None:
    ref, cur = _correlated(20_000, 0.9, seed=1), _correlated(20_000, -0.9, seed=2)
    assert detect_drift(ref, cur).drifted == []  # each column alone looks the same
    result = domain_classifier_auc(ref, cur, max_rows=1500)
    assert result.auc > 0.8 and result.drifted
    assert (result.reference_rows, result.current_rows) == (1500, 1500)
    assert result.columns == ("a", "b", "plan")


def test_the_same_distribution_is_not_told_apart() -> None:
    ref, cur = _correlated(3000, 0.9, seed=3), _correlated(3000, 0.9, seed=4)
    result = domain_classifier_auc(pl.from_pandas(ref), cur, max_rows=3000)
    assert result.auc < 0.55 and not result.drifted
    assert set(result.to_dict()) >= {"auc", "auc_std", "threshold", "drifted"}


def test_many_categories_and_missing_values_are_taken() -> None:
    rng = np.random.default_rng(5)
    n = 1000
    ids = np.array([f"id{i}" for i in range(600)])
    ref = pd.DataFrame({"id": rng.choice(ids, size=n), "x": rng.normal(size=n)})
    cur = pd.DataFrame({"id": rng.choice(ids[:300], size=n), "x": rng.normal(size=n)})
    ref.loc[::7, "x"] = np.nan
    cur.loc[::5, "id"] = None
    assert domain_classifier_auc(ref, cur).drifted


def test_a_profile_cannot_train_a_domain_classifier() -> None:
    ref = _correlated(500, 0.5, seed=6)
    with pytest.raises(InvalidInputError, match="needs raw reference rows") as info:
        domain_classifier_auc(profile_table(ref), ref)
    assert info.value.details["field"] == "reference_frame"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"columns": ["nope"]}, "nope"), ({"max_rows": 0}, "max_rows"), ({"folds": 1}, "folds"),
     ({"threshold": 0.4}, "threshold")],
)
def test_domain_classifier_errors_name_the_field(kwargs: dict, field: str) -> None:
    ref = _correlated(200, 0.5, seed=7)
    with pytest.raises(InvalidInputError) as info:
        domain_classifier_auc(ref, ref, **kwargs)
    assert info.value.details["field"] == field


def _labelled(n: int, signal: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(4)})
    frame["label"] = (frame[signal] > 0).astype(int)
    return frame


@pytest.fixture(scope="module")
def model() -> DecisionTreeClassifier:
    train = _labelled(4000, "x0", seed=10)
    features = train.drop(columns="label")
    return DecisionTreeClassifier(max_depth=3, random_state=0).fit(features, train.label)


def test_importance_moves_when_the_signal_moves(model: DecisionTreeClassifier) -> None:
    holdout = _labelled(2000, "x0", seed=11)
    moved = _labelled(2000, "x1", seed=12)  # the label now follows x1, which the model ignores
    result = importance_drift(model, holdout, moved, target="label", n_repeats=3)
    assert result.reference["x0"] > 0.9
    assert result.change["x0"] < -0.5 and result.drifted
    assert result.max_change == pytest.approx(abs(result.change["x0"]))


def test_importance_holds_when_nothing_moved(model: DecisionTreeClassifier) -> None:
    at_training = permutation_importance(
        model, _labelled(2000, "x0", seed=13), target="label", n_repeats=3
    )
    assert max(at_training, key=at_training.__getitem__) == "x0"
    result = importance_drift(
        model, at_training, _labelled(2000, "x0", seed=14), target="label", n_repeats=3
    )
    assert not result.drifted and result.max_change < 0.1
    assert result.to_dict()["threshold"] == 0.1


def test_permutation_importance_errors_name_the_field(model: DecisionTreeClassifier) -> None:
    frame = _labelled(100, "x0", seed=15)
    with pytest.raises(InvalidInputError, match="target column 'y'") as info:
        permutation_importance(model, frame, target="y")
    assert info.value.details["field"] == "target"
    with pytest.raises(InvalidInputError) as info:
        permutation_importance(model, frame, target="label", n_repeats=0)
    assert info.value.details["field"] == "n_repeats"
