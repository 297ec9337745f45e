"""Monitoring: is a deployed model still seeing the data it was trained on, and still right?

::

    report = detect_drift(data.profile("train@v3"), window)   # per-column and dataset verdicts
    domain_classifier_auc(train_frame, window).auc            # multivariate drift
    importance_drift(model, holdout, window_with_labels, target="label")
"""

from mlcycle.monitoring.config import MonitorSpec
from mlcycle.monitoring.drift import (
    ColumnDrift,
    DriftConfig,
    DriftReport,
    detect_drift,
    render_drift_table,
)
from mlcycle.monitoring.importance import (
    ImportanceDrift,
    importance_drift,
    permutation_importance,
)
from mlcycle.monitoring.logs import LogWindow, PredictionLogs
from mlcycle.monitoring.multivariate import DomainDrift, domain_classifier_auc
from mlcycle.monitoring.performance import PerformanceReport, measure
from mlcycle.monitoring.service import MonitorRun, MonitorService

__all__ = [
    "ColumnDrift",
    "DomainDrift",
    "DriftConfig",
    "DriftReport",
    "ImportanceDrift",
    "LogWindow",
    "MonitorRun",
    "MonitorService",
    "MonitorSpec",
    "PerformanceReport",
    "PredictionLogs",
    "detect_drift",
    "domain_classifier_auc",
    "importance_drift",
    "measure",
    "permutation_importance",
    "render_drift_table",
]
