"""Gates: each kind passes and fails with its numbers in the message, missing numbers fail unless
skipped, YAML typos are reported with line and field, reports round-trip through JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from mlcycle.errors import GateFailed, InvalidInputError
from mlcycle.evaluation import (
    EvaluationResult,
    Gate,
    GateReport,
    GateSet,
    SegmentResult,
    evaluate,
)


def result(**changes: Any) -> EvaluationResult:
    """A binary evaluation with round numbers, so messages can be asserted exactly."""
    base: dict[str, Any] = {
        "task": "binary",
        "target": "churned",
        "rows": 1000,
        "labels": (0, 1),
        "metrics": {"accuracy": 0.91, "roc_auc": 0.928, "f1": 0.872, "log_loss": 0.31,
                    "recall": 0.83, "ece": 0.02},
        "baseline_name": "production",
        "baseline_metrics": {"accuracy": 0.9, "roc_auc": 0.951, "f1": 0.9, "log_loss": 0.3,
                             "recall": 0.8, "ece": 0.02},
        "segments": (
            SegmentResult("eu", "region = 'EU'", 120, {"recall": 0.79}),
            SegmentResult("seniors", "age >= 65", 41, {"recall": 0.712}),
            SegmentResult("us", "region = 'US'", 300, {"recall": 0.85}),
            SegmentResult("tiny", "age < 18", 12,
                          skipped="12 rows, fewer than the 20 needed for stable metrics"),
        ),
        "latency_ms_per_row": 0.82,
        "model_size_bytes": 61_200_000,
    }
    base.update(changes)
    return EvaluationResult(**base)


def check_one(gate: Gate, res: EvaluationResult | None = None) -> Any:
    (check,) = GateSet([gate]).check(res or result()).checks
    return check


# --------------------------------------------------------------------------- each kind


def test_min_and_max() -> None:
    ok = check_one(Gate.min("accuracy", 0.9))
    assert ok.passed and ok.observed == 0.91
    bad = check_one(Gate.min("accuracy", 0.95))
    assert not bad.passed and bad.threshold == 0.95
    assert bad.message == "accuracy 0.910 is below the floor 0.950 (short by 0.040)"
    ceiling = check_one(Gate.max("log_loss", 0.25))
    assert not ceiling.passed
    assert ceiling.message == "log_loss 0.310 is above the ceiling 0.250 (over by 0.060)"
    assert check_one(Gate.max("log_loss", 0.35)).passed


def test_max_regression_absolute_names_both_values() -> None:
    bad = check_one(Gate.max_regression("roc_auc", 0.01))
    assert not bad.passed
    assert bad.message == ("roc_auc dropped 0.023 vs production (0.951 → 0.928); "
                           "allowed 0.010")
    assert (bad.observed, bad.baseline) == (0.928, 0.951)
    assert check_one(Gate.max_regression("roc_auc", 0.03)).passed
    improved = check_one(Gate.max_regression("accuracy", 0.0))
    assert improved.passed and "improved by 0.010" in improved.message


def test_max_regression_relative_and_lower_is_better() -> None:
    bad = check_one(Gate.max_regression("f1", 0.02, relative=True))
    assert not bad.passed  # (0.9 - 0.872) / 0.9 = 3.1 %
    assert bad.message == "f1 dropped 3.1% vs production (0.900 → 0.872); allowed 2.0%"
    assert check_one(Gate.max_regression("f1", 0.05, relative=True)).passed
    # log_loss is better when lower: 0.30 → 0.31 is a worsening of 0.01 ("rose").
    loss = check_one(Gate.max_regression("log_loss", 0.005))
    assert not loss.passed and loss.message.startswith("log_loss rose 0.010")


def test_a_drop_equal_to_the_allowance_passes_despite_float_rounding() -> None:
    res = result(metrics={"roc_auc": 0.94}, baseline_metrics={"roc_auc": 0.95})
    assert 0.95 - 0.94 > 0.01  # the float subtraction overshoots
    assert check_one(Gate.max_regression("roc_auc", 0.01), res).passed


def test_segment_min_over_all_segments_lists_each_failure() -> None:
    bad = check_one(Gate.segment_min("recall", 0.8))
    assert not bad.passed
    assert "recall below the floor 0.800 in 2 of 4 segments: eu 0.790 (120 rows), " \
           "seniors 0.712 (41 rows)" in bad.message
    assert "tiny (12 rows, fewer than the 20" in bad.message  # missing counts by default
    assert bad.observed == {"eu": 0.79, "seniors": 0.712, "us": 0.85}


def test_segment_min_on_named_segments_and_skipping_missing_ones() -> None:
    assert check_one(Gate.segment_min("recall", 0.8, segments=["us"])).passed
    lenient = check_one(Gate.segment_min("recall", 0.7, when_missing="skip"))
    assert lenient.passed and not lenient.skipped
    assert "worst: seniors 0.712" in lenient.message and "skipped tiny" in lenient.message
    strict = check_one(Gate.segment_min("recall", 0.7))
    assert not strict.passed  # same numbers, but 'tiny' could not be checked
    typo = check_one(Gate.segment_min("recall", 0.7, segments=["seniros"]))
    assert not typo.passed and "did you mean 'seniors'" in typo.message
    ceiling = check_one(Gate.segment_max("recall", 0.8, segments=["us", "eu"]))
    assert not ceiling.passed and "above the ceiling 0.800 in 1 of 2 segments: us 0.850" \
        in ceiling.message


def test_latency_and_model_size() -> None:
    slow = check_one(Gate.max_latency_ms_per_row(0.5))
    assert not slow.passed
    assert slow.message == "latency 0.820 ms/row is above the ceiling 0.500 ms/row"
    assert check_one(Gate.max_latency_ms_per_row(1.0)).passed
    big = check_one(Gate.max_model_size_mb(50))
    assert not big.passed and big.observed == pytest.approx(61.2)
    assert big.message == ("model size 61.200 MB (61,200,000 bytes) is above the ceiling "
                           "50.000 MB")
    assert check_one(Gate.max_model_size_mb(100)).passed


def test_missing_numbers_fail_by_default_and_skip_on_request() -> None:
    no_baseline = result(baseline_metrics=None, baseline_name=None, latency_ms_per_row=None,
                         model_size_bytes=None,
                         notes=("no probabilities: roc_auc, log_loss, ece and the curves are "
                                "not computed",))
    gates = GateSet([
        Gate.max_regression("accuracy", 0.01),
        Gate.max_latency_ms_per_row(1.0),
        Gate.max_model_size_mb(10),
        Gate.min("pr_auc", 0.5),
        Gate.max_regression("accuracy", 0.01, when_missing="skip"),
    ])
    report = gates.check(no_baseline)
    regression, latency, size, missing_metric, skipped = report.checks
    assert not regression.passed and "no baseline to compare accuracy" in regression.message
    assert not latency.passed and "latency_rows=0" in latency.message
    assert not size.passed and "model_size=" in size.message
    assert not missing_metric.passed and "has no pr_auc" in missing_metric.message
    assert skipped.passed and skipped.skipped and skipped.message.startswith("skipped:")
    assert len(report.failed) == 4 and report.skipped == (skipped,)


def test_a_missing_probability_metric_explains_why() -> None:
    res = result(metrics={"accuracy": 0.9},
                 notes=("no probabilities: roc_auc, log_loss, ece and the curves are not "
                        "computed",))
    check = check_one(Gate.min("roc_auc", 0.8), res)
    assert not check.passed and "no probabilities" in check.message


# --------------------------------------------------------------------------- the report


def test_report_summary_and_raise_for_failure() -> None:
    gates = GateSet([Gate.min("accuracy", 0.9), Gate.max_regression("roc_auc", 0.01),
                     Gate.max_latency_ms_per_row(0.5)], task="binary")
    report = gates.check(result())

    assert not report.passed
    assert [c.gate.kind for c in report.failed] == ["max_regression", "max_latency_ms_per_row"]
    lines = report.summary().splitlines()
    assert lines[0] == "gates FAILED (2 of 3 failed)"
    assert lines[1].startswith("  FAIL  roc_auc regression <= 0.01: roc_auc dropped 0.023")
    assert lines[-1].startswith("  ok    accuracy >= 0.9")

    with pytest.raises(GateFailed) as err:
        report.raise_for_failure()
    assert err.value.message.startswith("2 of 3 gates failed: roc_auc regression <= 0.01")
    assert [f["label"] for f in err.value.details["failed"]] == [
        "roc_auc regression <= 0.01", "latency <= 0.5 ms/row"]
    assert err.value.details["failed"][0]["baseline"] == 0.951

    GateSet([Gate.min("accuracy", 0.9)]).check(result()).raise_for_failure()  # no raise


def test_report_and_gate_set_round_trip() -> None:
    gates = GateSet([
        Gate.min("accuracy", 0.9, name="floor"),
        Gate.max_regression("f1", 0.015, relative=True),
        Gate.segment_min("recall", 0.7, segments=["eu", "us"], when_missing="skip"),
        Gate.max_latency_ms_per_row(0.5),
        Gate.max_model_size_mb(75),
    ], task="binary")
    report = gates.check(result())

    assert GateReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report
    assert json.loads(json.dumps(report.to_dict()))["passed"] is False
    assert GateSet.from_yaml(gates.to_yaml()) == gates
    assert GateSet.from_dict(json.loads(json.dumps(gates.to_dict()))) == gates
    assert "max_regression: 1.5%" in gates.to_yaml()


def test_task_mismatch_is_an_input_error() -> None:
    with pytest.raises(InvalidInputError) as err:
        GateSet([Gate.min("r2", 0.3)], task="regression").check(result())
    assert err.value.details["field"] == "task" and "binary model" in err.value.message
    # "classification" covers binary and multiclass results.
    assert GateSet([Gate.min("accuracy", 0.5)], task="classification").check(result()).passed


# --------------------------------------------------------------------------- YAML


GOOD = """\
task: binary
gates:
  - metric: accuracy
    min: 0.90
  - metric: roc_auc
    max_regression: 0.01
  - metric: f1
    max_regression: 2%
    when_missing: skip
  - metric: recall
    segment_min: 0.80
    segments: [seniors]
  - max_latency_ms_per_row: 0.5
  - max_model_size_mb: 50
    name: fits the edge box
"""


def test_yaml_parses_every_kind() -> None:
    gates = GateSet.from_yaml(GOOD)
    assert gates.task == "binary"
    assert gates.gates == (
        Gate.min("accuracy", 0.9),
        Gate.max_regression("roc_auc", 0.01),
        Gate.max_regression("f1", 0.02, relative=True, when_missing="skip"),
        Gate.segment_min("recall", 0.8, segments=["seniors"]),
        Gate.max_latency_ms_per_row(0.5),
        Gate.max_model_size_mb(50, name="fits the edge box"),
    )
    assert [c.gate.label for c in gates.check(result()).failed][-1] == "fits the edge box"


def _yaml_error(text: str) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as err:
        GateSet.from_yaml(text, source="ci/gates.yaml")
    return err.value


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "words"),
    [
        ("  - metric: roc_auc\n", "  - metrc: roc_auc\n", 5, "gates[1].metrc",
         "unknown key (did you mean 'metric'?)"),
        ("metric: roc_auc", "metric: roc_acu", 5, "gates[1].metric",
         "unknown metric 'roc_acu' for task binary (did you mean 'roc_auc'?)"),
        ("min: 0.90", "min: high", 4, "gates[0].min", "expected a number, got 'high'"),
        ("max_regression: 2%", "max_regression: two percent", 8, "gates[2].max_regression",
         "or a percentage such as '2%'"),
        ("metric: accuracy", "metric: rmse", 3, "gates[0].metric",
         "'rmse' is a regression metric, not one of task binary's"),
        ("when_missing: skip", "when_missing: ignore", 9, "gates[2].when_missing",
         "expected fail or skip, got 'ignore'"),
        ("max_regresion", "max_regresion", 0, "", ""),  # placeholder replaced below
        ("  - max_latency_ms_per_row: 0.5\n",
         "  - max_latency_ms_per_row: 0.5\n    metric: f1\n", 14, "gates[4].metric",
         "a max_latency_ms_per_row gate takes no metric"),
        ("    segments: [seniors]\n", "    segments: [seniors]\n    min: 0.5\n", 13,
         "gates[3].min", "one gate per item: this one has both segment_min and min"),
        ("task: binary", "task: binery", 1, "task",
         "expected one of binary, multiclass, classification, regression, got 'binery' "
         "(did you mean 'binary'?)"),
    ],
)
def test_yaml_errors_name_line_and_field(old: str, new: str, line: int, field: str,
                                         words: str) -> None:
    if old == "max_regresion":  # a typo in the kind itself
        old, new, line, field = "max_regression: 0.01", "max_regresion: 0.01", 6, \
            "gates[1].max_regresion"
        words = "unknown key (did you mean 'max_regression'?)"
    assert old in GOOD
    err = _yaml_error(GOOD.replace(old, new, 1))
    assert err.details == {"field": field, "line": line}
    assert err.message.startswith(f"ci/gates.yaml line {line}: {field}: ")
    assert words in err.message


def test_yaml_structure_errors() -> None:
    missing_kind = _yaml_error("gates:\n  - metric: accuracy\n")
    assert missing_kind.message.startswith("ci/gates.yaml line 2: gates[0]: missing the gate kind")
    dup = _yaml_error("gates:\n  - metric: accuracy\n    min: 0.9\n    min: 0.8\n")
    assert dup.details == {"field": "gates[0].min", "line": 4} and "duplicate key" in dup.message
    broken = _yaml_error("gates:\n  - metric: [accuracy\n")
    assert "not valid YAML" in broken.message and broken.details["line"] is not None
    no_metric = _yaml_error("gates:\n  - min: 0.9\n")
    assert no_metric.details == {"field": "gates[0].metric", "line": 2}
    assert "a min gate needs a metric" in no_metric.message
    assert "empty" in _yaml_error("").message
    assert _yaml_error("- min: 0.9\n").details["field"] is None  # a list, not a mapping
    negative = _yaml_error("gates:\n  - max_model_size_mb: -1\n")
    assert negative.details == {"field": "gates[0].max_model_size_mb", "line": 2}


def test_python_declaration_errors_suggest_the_metric() -> None:
    with pytest.raises(InvalidInputError) as err:
        Gate.min("acuracy", 0.9)
    assert err.value.details["field"] == "metric"
    assert "did you mean 'accuracy'?" in err.value.message
    with pytest.raises(InvalidInputError) as err:
        GateSet([Gate.min("accuracy", 0.9), Gate.max("rmse", 10)], task="binary")
    assert err.value.details["field"] == "gates[1].metric"
    with pytest.raises(InvalidInputError) as err:
        Gate("min", 0.9, metric="accuracy", segments=("eu",))
    assert err.value.details["field"] == "segments"


# --------------------------------------------------------------------------- end to end


def test_real_models_through_yaml_gates() -> None:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    frame = X.assign(target=y)
    train, test = train_test_split(frame, test_size=0.4, random_state=0, stratify=y)
    features = [c for c in frame.columns if c != "target"]
    production = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    production.fit(train[features], train["target"])
    candidate = DecisionTreeClassifier(max_depth=1, random_state=0)
    candidate.fit(train[features], train["target"])

    evaluation = evaluate(candidate, test, target="target", baseline=production,
                          segments={"large": "`mean radius` > 15"}, model_size=4_000)
    stored = EvaluationResult.from_dict(json.loads(json.dumps(evaluation.to_dict())))
    report = GateSet.from_yaml(GOOD.replace("[seniors]", "[large]")).check(stored)

    by_metric = {c.gate.metric: c for c in report.checks if c.gate.kind == "max_regression"}
    auc = by_metric["roc_auc"]
    assert not auc.passed  # a stump ranks far worse than the logistic regression
    drop = evaluation.baseline_metrics["roc_auc"] - evaluation.metrics["roc_auc"]  # type: ignore[index]
    assert f"dropped {drop:.3f} vs production" in auc.message
    size = next(c for c in report.checks if c.gate.kind == "max_model_size_mb")
    assert size.passed
    assert not report.passed
