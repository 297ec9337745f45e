"""Monitors: what is watched on a deployment, what each look found, and the alerts it fired.

A :class:`Monitor` belongs to one deployment and says which checks run (``drift`` of the logged
inputs against a reference dataset profile, ``performance`` from ground-truth feedback,
``operations``: latency, throughput, errors), over which window of prediction logs, how often,
with which thresholds and per which segments. Every run stores a :class:`MonitorResult`: a flat
mapping of metric values (the time series that plots and Prometheus read) plus the full details.
When a run's status differs from the previous one the monitor fires an :class:`Alert`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from mlcycle.entities._deploy import check_deployment_name
from mlcycle.errors import InvalidInputError
from mlcycle.types import JSONValue

__all__ = [
    "MONITOR_CHECKS",
    "MONITOR_STATUSES",
    "Alert",
    "Monitor",
    "MonitorResult",
    "check_alert",
    "check_monitor",
    "check_monitor_name",
    "check_result",
]

#: The checks a monitor may run.
MONITOR_CHECKS: Final = ("drift", "performance", "operations")

#: A run's verdict, worst last but one: ``no_data`` when the window held too little to judge.
MONITOR_STATUSES: Final = ("ok", "warning", "alert", "no_data")

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


def check_monitor_name(name: str) -> str:
    """*name* if it is a valid monitor name (letters, digits, ``_ . -``; at most 128)."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InvalidInputError(
            f"monitor name {name!r}: use letters, digits, '_', '.', '-' (start with a letter "
            "or digit, at most 128 characters)", details={"field": "name"})
    return name


@dataclass(frozen=True, slots=True)
class Monitor:
    """A monitor of deployment *deployment*.

    ``window_s``: how far back each run reads the prediction logs. ``interval_s``: how often the
    server's scheduler runs it. ``thresholds``: limits by metric name (``{"accuracy": {"warning":
    0.85, "alert": 0.8}}``; see :mod:`mlcycle.monitoring.config`). ``segments``: name to a SQL
    expression over the model's input columns. ``reference``: the dataset version drift compares
    against (``"name@v3"``; ``None``: the training data of the deployment's stable version).
    ``task``: ``classification`` or ``regression`` (``None``: inferred from the labels).
    ``last_run_at`` and ``status`` are those of the newest stored result.
    """

    name: str
    deployment: str
    created_at: datetime
    updated_at: datetime
    checks: Sequence[str] = MONITOR_CHECKS
    window_s: int = 86_400
    interval_s: int = 3_600
    thresholds: Mapping[str, JSONValue] = field(default_factory=dict)
    segments: Mapping[str, str] = field(default_factory=dict)
    reference: str | None = None
    task: str | None = None
    webhook_url: str | None = None
    enabled: bool = True
    description: str = ""
    last_run_at: datetime | None = None
    status: str | None = None


@dataclass(frozen=True, slots=True)
class MonitorResult:
    """One run of a monitor over the logs between ``window_start`` and ``window_end``.

    ``metrics``: flat metric values, the time series (``drift.score.age``,
    ``performance.accuracy``, ``performance.accuracy[eu]``, ``operations.latency_p95_ms``).
    ``details``: everything the run found (per-column drift verdicts, per-bucket series,
    which thresholds were crossed) as JSON.
    """

    result_id: int
    monitor: str
    run_at: datetime
    window_start: datetime | None
    window_end: datetime
    status: str
    metrics: Mapping[str, float] = field(default_factory=dict)
    details: Mapping[str, JSONValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Alert:
    """A monitor's status changed from ``previous`` to ``status`` at ``time``.

    ``delivery``: what became of the webhook POST (``"sent"``, ``"failed: ..."``) or ``None``
    when the monitor has no webhook.
    """

    alert_id: int
    monitor: str
    time: datetime
    status: str
    previous: str | None
    message: str
    result_id: int | None = None
    delivery: str | None = None
    details: Mapping[str, JSONValue] = field(default_factory=dict)


# --- checks (every store runs them, so all refuse the same input with the same words) -------


def check_monitor(monitor: Monitor) -> None:
    """Raise ``InvalidInputError`` naming the field of *monitor* that no store would keep."""
    check_monitor_name(monitor.name)
    try:
        check_deployment_name(monitor.deployment)
    except InvalidInputError as exc:
        raise InvalidInputError(exc.message, details={"field": "deployment"}) from None
    checks = list(monitor.checks)
    if not checks or any(c not in MONITOR_CHECKS for c in checks) \
            or len(set(checks)) < len(checks):
        raise InvalidInputError(
            f"checks: expected distinct values among {', '.join(MONITOR_CHECKS)}, got {checks!r}",
            details={"field": "checks"})
    for name in ("window_s", "interval_s"):
        value = getattr(monitor, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(
                f"The '{name}' parameter must be a number of seconds (an int >= 1). "
                f"Got {value!r} instead.", details={"field": name})
    if not isinstance(monitor.segments, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in monitor.segments.items()):
        raise InvalidInputError("segments: expected a mapping of name to SQL expression",
                                details={"field": "segments"})
    if not isinstance(monitor.thresholds, Mapping):
        raise InvalidInputError("thresholds: expected a mapping", details={"field": "thresholds"})
    if monitor.task not in (None, "classification", "regression"):
        raise InvalidInputError(
            f"The 'task' parameter must be 'classification', 'regression' or null. "
            f"Got {monitor.task!r} instead.", details={"field": "task"})
    for name, limit in (("reference", 256), ("webhook_url", 4096)):
        value = getattr(monitor, name)
        if value is not None and (not isinstance(value, str) or not 0 < len(value) <= limit):
            raise InvalidInputError(f"{name}: expected 1 to {limit} characters, got {value!r}",
                                    details={"field": name})
    if monitor.webhook_url is not None and \
            not monitor.webhook_url.startswith(("http://", "https://")):
        raise InvalidInputError(
            f"webhook_url: expected an http:// or https:// URL, got {monitor.webhook_url!r}",
            details={"field": "webhook_url"})


def check_result(result: MonitorResult) -> None:
    """Raise ``InvalidInputError`` naming the field of *result* that no store would keep."""
    _check_status(result.status, "status")
    for key, value in result.metrics.items():
        if not isinstance(key, str) or isinstance(value, bool) \
                or not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidInputError(
                f"metrics: {key!r} must map to a finite number, got {value!r}",
                details={"field": f"metrics.{key}"})


def _check_status(value: Any, field: str) -> None:
    if value not in MONITOR_STATUSES:
        raise InvalidInputError(
            f"The '{field}' parameter must be one of {', '.join(map(repr, MONITOR_STATUSES))}. "
            f"Got {value!r} instead.", details={"field": field})


def check_alert(alert: Alert) -> None:
    """Raise ``InvalidInputError`` naming the field of *alert* that no store would keep."""
    _check_status(alert.status, "status")
    if alert.previous is not None:
        _check_status(alert.previous, "previous")
