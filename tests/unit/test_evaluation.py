"""Evaluation: metrics equal scikit-learn's, curves fit the UI, segments and baselines are scored
on the same rows, and the result survives a JSON round trip."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from mlcycle.errors import InvalidInputError
from mlcycle.evaluation import EvaluationResult, evaluate
from mlcycle.evaluation.metrics import (
    METRICS,
    calibration_curve,
    classification_metrics,
    confusion_matrix,
    expected_calibration_error,
    infer_task,
    precision_recall_curve,
    regression_metrics,
    roc_curve,
)

# --------------------------------------------------------------------------- data and models


@pytest.fixture(scope="module")
def cancer() -> dict[str, Any]:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    frame = X.assign(target=y)
    train, test = train_test_split(frame, test_size=0.4, random_state=0, stratify=y)
    features = [c for c in frame.columns if c != "target"]
    good = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    good.fit(train[features], train["target"])
    stump = DecisionTreeClassifier(max_depth=1, random_state=0)
    stump.fit(train[features], train["target"])
    return {"test": test.reset_index(drop=True), "features": features, "good": good,
            "stump": stump}


@pytest.fixture(scope="module")
def diabetes() -> dict[str, Any]:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    frame = X.assign(progression=y)
    train, test = train_test_split(frame, test_size=0.4, random_state=0)
    features = [c for c in frame.columns if c != "progression"]
    model = LinearRegression().fit(train[features], train["progression"])
    return {"test": test.reset_index(drop=True), "features": features, "model": model}


class RowCounter:
    """A model wrapper that records how many rows each predict call saw."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.classes_ = model.classes_
        self.calls: list[int] = []

    def predict(self, frame: Any) -> Any:
        self.calls.append(len(frame))
        return self.model.predict(frame)

    def predict_proba(self, frame: Any) -> Any:
        return self.model.predict_proba(frame)


class LabelsOnly:
    """A classifier without predict_proba or classes_: rounds a linear score."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, frame: Any) -> Any:
        return self.model.predict(frame)


# --------------------------------------------------------------------------- metrics


def test_binary_metrics_equal_sklearn(cancer: dict[str, Any]) -> None:
    test, model = cancer["test"], cancer["good"]
    X, y = test[cancer["features"]], test["target"].to_numpy()
    pred, proba = model.predict(X), model.predict_proba(X)

    got = classification_metrics(y, pred, proba, labels=model.classes_)

    assert set(got) == set(METRICS["binary"])
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert got["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba[:, 1]))
    assert got["pr_auc"] == pytest.approx(skm.average_precision_score(y, proba[:, 1]))
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, proba))
    assert got["brier"] == pytest.approx(skm.brier_score_loss(y, proba[:, 1]))
    # A 1-D P(positive) gives the same numbers as the two-column matrix.
    assert classification_metrics(y, pred, proba[:, 1]) == pytest.approx(got)


def test_multiclass_metrics_equal_sklearn() -> None:
    X, y = load_iris(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, random_state=1,
                                                        stratify=y)
    model = LogisticRegression(max_iter=50, C=0.05).fit(X_train, y_train)
    pred, proba = model.predict(X_test), model.predict_proba(X_test)

    got = classification_metrics(y_test, pred, proba)

    assert set(got) == set(METRICS["multiclass"])
    for average in ("macro", "weighted"):
        assert got[f"precision_{average}"] == pytest.approx(
            skm.precision_score(y_test, pred, average=average))
        assert got[f"recall_{average}"] == pytest.approx(
            skm.recall_score(y_test, pred, average=average))
        assert got[f"f1_{average}"] == pytest.approx(skm.f1_score(y_test, pred, average=average))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y_test, proba, multi_class="ovr"))
    assert got["log_loss"] == pytest.approx(skm.log_loss(y_test, proba))
    assert got["accuracy"] < 1.0  # a weak model, so the numbers above are not all trivially 1


def test_string_labels_take_the_later_label_as_positive() -> None:
    y = np.array(["benign", "malignant", "malignant", "benign", "malignant"])
    pred = np.array(["benign", "malignant", "benign", "benign", "malignant"])
    got = classification_metrics(y, pred)
    assert got["recall"] == pytest.approx(2 / 3)  # of "malignant"
    flipped = classification_metrics(y, pred, pos_label="benign")
    assert flipped["recall"] == pytest.approx(1.0)
    assert "roc_auc" not in got  # no probabilities, no invented AUC


def test_single_class_leaves_auc_out_instead_of_nan() -> None:
    got = classification_metrics([1, 1, 1], [1, 0, 1], [0.9, 0.4, 0.8], labels=[0, 1])
    assert "roc_auc" not in got and "pr_auc" not in got
    assert got["accuracy"] == pytest.approx(2 / 3)
    assert all(np.isfinite(v) for v in got.values())


def test_ece_of_a_calibrated_model_is_near_zero_and_of_an_overconfident_one_is_not() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(size=200_000)
    y = (rng.uniform(size=p.size) < p).astype(int)  # P(y=1 | p) = p: calibrated by construction

    assert expected_calibration_error(y, p) < 0.01
    overconfident = np.clip((p - 0.5) * 3 + 0.5, 0, 1)
    assert expected_calibration_error(y, overconfident) > 0.1


def test_ece_by_hand_and_multiclass_top_label() -> None:
    # One row per bin: |0.1-0| + |0.9-1| + |0.8-1| + |0.3-0| over 4 rows.
    assert expected_calibration_error([0, 1, 1, 0], [0.1, 0.9, 0.8, 0.3]) == pytest.approx(0.175)
    # Uniform 1/3 over 3 balanced classes: confidence 1/3, top-label accuracy 1/3.
    y = np.repeat([0, 1, 2], 100)
    assert expected_calibration_error(y, np.full((300, 3), 1 / 3)) == pytest.approx(0.0)
    curve = calibration_curve(y, np.full((300, 3), 1 / 3))
    assert curve["counts"] == [300]
    assert curve["y"] == pytest.approx([1 / 3])


def test_regression_metrics_equal_sklearn(diabetes: dict[str, Any]) -> None:
    test, model = diabetes["test"], diabetes["model"]
    y, pred = test["progression"].to_numpy(), model.predict(test[diabetes["features"]])
    got = regression_metrics(y, pred)
    assert got["rmse"] == pytest.approx(skm.root_mean_squared_error(y, pred))
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert got["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, pred))
    assert got["r2"] == pytest.approx(skm.r2_score(y, pred))
    assert got["mape_excluded_rows"] == 0


def test_mape_ignores_zero_targets_and_says_how_many() -> None:
    got = regression_metrics([0.0, 2.0, 4.0], [1.0, 1.0, 5.0])
    assert got["mape"] == pytest.approx((0.5 + 0.25) / 2)  # the zero-target row is left out
    assert got["mape_excluded_rows"] == 1
    all_zero = regression_metrics([0.0, 0.0], [1.0, 0.0])
    assert "mape" not in all_zero and all_zero["mape_excluded_rows"] == 2


def test_infer_task() -> None:
    assert infer_task(load_breast_cancer().target) == "binary"
    assert infer_task(load_iris().target) == "multiclass"
    assert infer_task(load_diabetes().target) == "regression"  # integer-valued, many values
    assert infer_task(["a", "b", "c"]) == "multiclass"
    assert infer_task([True, False]) == "binary"
    assert infer_task([0.5, 1.5, 2.25]) == "regression"
    with pytest.raises(InvalidInputError):
        infer_task([])


def test_confusion_matrix_rows_are_truth() -> None:
    cm = confusion_matrix(["a", "a", "b", "c"], ["a", "b", "b", "a"])
    assert cm["labels"] == ["a", "b", "c"]
    assert cm["matrix"] == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    assert cm["normalized"][0] == [0.5, 0.5, 0.0]
    json.dumps(cm)  # plain Python types, not numpy


def test_curves_are_downsampled_json_and_agree_with_auc() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, size=5000)
    score = np.clip(y * 0.3 + rng.normal(0.35, 0.2, size=y.size), 0, 1)

    roc = roc_curve(y, score)
    pr = precision_recall_curve(y, score)

    (curve,) = roc["curves"]
    assert len(curve["x"]) <= 200 and len(curve["x"]) == len(curve["thresholds"])
    assert (curve["x"][0], curve["y"][0]) == (0.0, 0.0)
    assert (curve["x"][-1], curve["y"][-1]) == (1.0, 1.0)
    assert curve["auc"] == pytest.approx(skm.roc_auc_score(y, score))
    (pr_curve,) = pr["curves"]
    assert len(pr_curve["x"]) <= 200 and pr_curve["x"][-1] == 0.0  # recall falls to 0
    assert pr_curve["average_precision"] == pytest.approx(skm.average_precision_score(y, score))
    json.dumps([roc, pr], allow_nan=False)  # infinite thresholds became None

    X, yi = load_iris(return_X_y=True)
    proba = LogisticRegression(max_iter=1000).fit(X, yi).predict_proba(X)
    assert [c["label"] for c in roc_curve(yi, proba)["curves"]] == [0, 1, 2]


def test_probability_shape_mismatch_names_the_field() -> None:
    with pytest.raises(InvalidInputError) as err:
        classification_metrics([0, 1, 2], [0, 1, 2], np.ones((3, 2)))
    assert err.value.details["field"] == "y_proba"
    assert "one column per label (3" in err.value.message


# --------------------------------------------------------------------------- evaluate


def test_evaluate_overall_metrics_curves_and_json_round_trip(cancer: dict[str, Any]) -> None:
    test, model = cancer["test"], cancer["good"]
    X = test[cancer["features"]]

    result = evaluate(model, test, target="target", model_size=2_500_000)

    expected = classification_metrics(test["target"], model.predict(X), model.predict_proba(X))
    assert result.task == "binary" and result.rows == len(test)
    assert result.metrics == pytest.approx(expected)
    assert result.labels == (0, 1)
    assert result.model_size_bytes == 2_500_000
    assert {"confusion_matrix", "roc", "precision_recall", "calibration"} <= set(result.curves)
    assert sum(map(sum, result.curves["confusion_matrix"]["matrix"])) == len(test)

    text = json.dumps(result.to_dict(), allow_nan=False)
    assert EvaluationResult.from_dict(json.loads(text)) == result


def test_per_segment_metrics_and_small_or_single_class_segments(cancer: dict[str, Any]) -> None:
    test, model = cancer["test"], cancer["good"]
    segments = {
        "large": "`mean radius` > 15",
        "rare": "`mean radius` > 24",          # a handful of rows
        "benign_only": "target = 1",           # one class by construction
    }

    result = evaluate(model, pl.from_pandas(test), target="target", segments=segments)

    large = result.find_segment("large")
    assert large is not None and large.skipped is None
    mask = (test["mean radius"] > 15).to_numpy()
    assert large.rows == int(mask.sum()) >= 20
    sub = test[mask]
    assert large.metrics["accuracy"] == pytest.approx(
        skm.accuracy_score(sub["target"], model.predict(sub[cancer["features"]])))
    assert large.metrics["accuracy"] != pytest.approx(result.metrics["accuracy"])

    rare = result.find_segment("rare")
    assert rare is not None and 0 < rare.rows < 20
    assert rare.metrics == {} and rare.skipped is not None and "fewer than the 20" in rare.skipped
    only = result.find_segment("benign_only")
    assert only is not None and only.metrics == {}
    assert only.skipped is not None and "only class 1" in only.skipped
    assert EvaluationResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


def test_baseline_scored_on_the_same_rows_with_deltas(cancer: dict[str, Any]) -> None:
    test = cancer["test"]
    segments = {"large": "`mean radius` > 15"}

    result = evaluate(cancer["stump"], test, target="target", baseline=cancer["good"],
                      segments=segments)
    alone = evaluate(cancer["good"], test, target="target", segments=segments, latency_rows=0)

    assert result.baseline_name == "production"
    assert result.baseline_metrics == pytest.approx(alone.metrics)
    assert result.deltas["roc_auc"] == pytest.approx(
        result.metrics["roc_auc"] - alone.metrics["roc_auc"])
    assert result.deltas["roc_auc"] < 0  # a one-split stump ranks worse than the pipeline
    assert "mape_excluded_rows" not in result.deltas
    large = result.find_segment("large")
    alone_large = alone.find_segment("large")
    assert large is not None and alone_large is not None
    assert large.baseline_metrics == pytest.approx(alone_large.metrics)
    assert result.baseline_latency_ms_per_row is not None
    assert result.to_dict()["deltas"] == pytest.approx(result.deltas)


def test_latency_is_timed_on_at_most_latency_rows(cancer: dict[str, Any]) -> None:
    model = RowCounter(cancer["good"])
    result = evaluate(model, cancer["test"], target="target", latency_rows=50,
                      latency_repeats=3)
    assert result.latency_ms_per_row is not None and result.latency_ms_per_row > 0
    # One full predict for the metrics, then a warm-up and three timed calls on 50 rows.
    assert model.calls == [len(cancer["test"]), 50, 50, 50, 50]

    skipped = evaluate(cancer["good"], cancer["test"], target="target", latency_rows=0)
    assert skipped.latency_ms_per_row is None


def test_regression_on_a_polars_frame(diabetes: dict[str, Any]) -> None:
    test, model = diabetes["test"], diabetes["model"]
    result = evaluate(model, pl.from_pandas(test), target="progression",
                      segments={"older": "age > 0.03"})
    assert result.task == "regression" and result.labels is None
    expected = regression_metrics(test["progression"], model.predict(test[diabetes["features"]]))
    assert result.metrics == pytest.approx(expected)
    assert sum(result.curves["residuals"]["counts"]) == len(test)
    older = result.find_segment("older")
    assert older is not None and older.rows == int((test["age"] > 0.03).sum())
    assert older.metrics["rmse"] != pytest.approx(result.metrics["rmse"])


def test_model_without_probabilities_says_so(cancer: dict[str, Any]) -> None:
    result = evaluate(LabelsOnly(cancer["good"]), cancer["test"], target="target")
    assert result.task == "binary"  # inferred from the target
    assert "accuracy" in result.metrics and "roc_auc" not in result.metrics
    assert any("no probabilities" in note for note in result.notes)
    assert "roc" not in result.curves and "confusion_matrix" in result.curves


def test_a_holdout_class_the_model_never_saw_counts_as_errors() -> None:
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0] * 10, "y": ["a", "b", "a", "c"] * 10})
    model = DummyClassifier(strategy="most_frequent").fit(frame[["x"]].iloc[:2], ["a", "b"])
    result = evaluate(model, frame, target="y", latency_rows=0)
    assert result.metrics["accuracy"] == pytest.approx(0.5)
    assert "log_loss" not in result.metrics
    assert result.labels == ("a", "b", "c")
    assert any("not among the model's classes" in note for note in result.notes)


@pytest.mark.parametrize(
    ("call", "field", "words"),
    [
        (lambda m, d: evaluate(m, d, target="tagret"), "target", "did you mean 'target'"),
        (lambda m, d: evaluate(object(), d, target="target"), "model", "predict(frame)"),
        (lambda m, d: evaluate(m, d, target="target", baseline=DummyClassifier()), "baseline",
         "predict failed"),
        (lambda m, d: evaluate(m, d, target="target",
                               task="clasification"),  # type: ignore[arg-type]
         "task", "expected one of"),
        (lambda m, d: evaluate(m, d.assign(target=d["target"].astype(float).where(
            d.index > 2)), target="target"), "target", "3 of"),
        (lambda m, d: evaluate(m, d, target="target", segments={"x": "nope > 1"}), "segments.x",
         "unknown column"),
    ],
)
def test_bad_input_names_the_field(cancer: dict[str, Any], call: Any, field: str,
                                   words: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        call(cancer["good"], cancer["test"])
    assert err.value.details["field"] == field
    assert words in err.value.message
