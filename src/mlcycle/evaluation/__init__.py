"""Evaluation: task-aware metrics, per-segment and baseline comparison, and the gates a candidate
model must pass before it is promoted.

::

    result = evaluate(model, holdout, target="label", segments={"eu": "region = 'EU'"},
                      baseline=production_model, model_size=size_in_bytes)
    report = GateSet.from_yaml(Path("gates.yaml").read_text()).check(result)
    report.raise_for_failure()          # GateFailed naming each failed gate and its numbers

``result.to_dict()`` and ``report.to_dict()`` are what gets stored on a model version.
"""

from mlcycle.evaluation.evaluate import EvaluationResult, SegmentResult, evaluate
from mlcycle.evaluation.gates import Gate, GateCheck, GateReport, GateSet
from mlcycle.evaluation.metrics import (
    classification_metrics,
    confusion_matrix,
    infer_task,
    precision_recall_curve,
    regression_metrics,
    roc_curve,
)

__all__ = [
    "EvaluationResult",
    "Gate",
    "GateCheck",
    "GateReport",
    "GateSet",
    "SegmentResult",
    "classification_metrics",
    "confusion_matrix",
    "evaluate",
    "infer_task",
    "precision_recall_curve",
    "regression_metrics",
    "roc_curve",
]
