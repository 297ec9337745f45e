"""Monitoring: is a deployed model still seeing the data it was trained on, and still right?

::

    report = detect_drift(data.profile("train@v3"), window)   # per-column and dataset verdicts
    domain_classifier_auc(train_frame, window).auc            # multivariate drift
    importance_drift(model, holdout, window_with_labels, target="label")
"""

from mlcycle.monitoring.drift import (
    ColumnDrift,
    DriftConfig,
    DriftReport,
    detect_drift,
    render_drift_table,
)

__all__ = [
    "ColumnDrift",
    "DriftConfig",
    "DriftReport",
    "detect_drift",
    "render_drift_table",
]
