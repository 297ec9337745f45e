"""``MonitorService``: define monitors, run them over the prediction logs, keep their results as
time series and fire alerts when a verdict changes.

A run of a monitor reads its window of the deployment's logs (joined with feedback) once, then:

- **drift**: the logged inputs against the stored profile of the reference dataset version
  (by default the training data of the deployment's stable model version), through
  :func:`mlcycle.monitoring.drift.detect_drift`. Over the whole window only: a segment's rows
  against the whole training set would differ by construction.
- **performance**: quality from feedback, overall, per model version and per segment.
- **operations**: latency percentiles, throughput and error rate, overall and per segment.

Each check gets a status from the monitor's thresholds (``ok``, ``warning``, ``alert``, or
``no_data`` when the window held too little to judge); the run's status is the worst of them.
When it differs from the previous run's (ignoring ``ok`` ↔ ``no_data``), an :class:`Alert` is
logged, stored and POSTed to the webhook.

>>> service = client.monitors                                          # doctest: +SKIP
>>> service.create("churn-daily", "churn", {"window": "1d", "segments": {...}})  # doctest: +SKIP
>>> run = service.run("churn-daily"); run.result.status                # doctest: +SKIP
"""

from __future__ import annotations

import builtins
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import polars as pl

from mlcycle.entities import Alert, Monitor, MonitorResult
from mlcycle.errors import InvalidInputError, MlcycleError
from mlcycle.monitoring.alerts import WebhookNotifier
from mlcycle.monitoring.config import MonitorSpec, Thresholds
from mlcycle.monitoring.logs import LogWindow, PredictionLogs, input_columns
from mlcycle.monitoring.performance import PerformanceReport, Slice, measure
from mlcycle.store.base import MonitorStore
from mlcycle.types import JSONValue

if TYPE_CHECKING:
    from mlcycle.datasets.profile import DatasetProfile
    from mlcycle.datasets.service import DataService
    from mlcycle.deploy.service import DeploymentService
    from mlcycle.monitoring.drift import DriftReport

__all__ = ["MonitorRun", "MonitorService", "worst"]

logger = logging.getLogger("mlcycle.monitoring")

_ORDER = {"no_data": 0, "ok": 1, "warning": 2, "alert": 3}
_QUIET = {"ok", "no_data"}


def worst(statuses: builtins.list[str]) -> str:
    """The worst of *statuses*; ``no_data`` only when nothing else was judged."""
    return max(statuses, key=_ORDER.__getitem__, default="no_data")


@dataclass(frozen=True, slots=True)
class MonitorRun:
    """What one run found: the stored result, the alert it fired (if any), the reports."""

    result: MonitorResult
    alert: Alert | None
    performance: PerformanceReport
    drift: DriftReport | None


class MonitorService:
    """Monitors over a ``MonitorStore``; logs are read from *log_uri*.

    *clock* (seconds since the epoch) is the one source of time, so tests set it by hand;
    *notifier* delivers webhooks.
    """

    def __init__(self, store: MonitorStore, *, deployments: DeploymentService,
                 data: DataService, log_uri: str,
                 storage_options: Mapping[str, Any] | None = None,
                 clock: Callable[[], float] = time.time,
                 notifier: WebhookNotifier | None = None) -> None:
        self.store = store
        self.deployments = deployments
        self.data = data
        self.logs = PredictionLogs(log_uri, storage_options=storage_options)
        self.clock = clock
        self.notifier = notifier or WebhookNotifier()

    # --- definitions ----------------------------------------------------------------------
    def create(self, name: str, deployment: str,
               spec: Mapping[str, Any] | MonitorSpec | None = None) -> Monitor:
        """A new monitor of *deployment* from *spec* (see :mod:`mlcycle.monitoring.config`)."""
        checked = spec if isinstance(spec, MonitorSpec) else MonitorSpec.from_mapping(spec)
        fields = dict(checked.fields)
        given = fields.pop("deployment", deployment)
        if given != deployment:
            raise InvalidInputError(
                f"deployment: the spec names {given!r} but the monitor is created for "
                f"{deployment!r}", details={"field": "deployment"})
        self.deployments.get(deployment)  # DeploymentNotFound before anything is stored
        now = self._now()
        return self.store.create_monitor(Monitor(name=name, deployment=deployment,
                                                 created_at=now, updated_at=now, **fields))

    def get(self, name: str) -> Monitor:
        return self.store.get_monitor(name)

    def list(self, deployment: str | None = None) -> builtins.list[Monitor]:
        return self.store.list_monitors(deployment=deployment)

    def delete(self, name: str) -> None:
        self.store.delete_monitor(name)

    def pause(self, name: str) -> Monitor:
        return self.store.set_monitor_enabled(name, False)

    def resume(self, name: str) -> Monitor:
        return self.store.set_monitor_enabled(name, True)

    def results(self, name: str, *, since: datetime | None = None,
                until: datetime | None = None, max_results: int = 100
                ) -> builtins.list[MonitorResult]:
        """Stored results, newest first."""
        return self.store.list_results(name, since=since, until=until, max_results=max_results)

    def alerts(self, name: str, max_results: int = 100) -> builtins.list[Alert]:
        return self.store.list_alerts(name, max_results=max_results)

    def due(self, now: datetime | None = None) -> builtins.list[Monitor]:
        """The enabled monitors whose interval has passed since their last run (or that never
        ran), the longest overdue first."""
        now = now or self._now()
        out = [m for m in self.store.list_monitors() if m.enabled and (
            m.last_run_at is None or (now - m.last_run_at).total_seconds() >= m.interval_s)]
        return sorted(out, key=lambda m: m.last_run_at or datetime.min.replace(tzinfo=UTC))

    # --- running --------------------------------------------------------------------------
    def read_window(self, monitor: Monitor, window: LogWindow) -> pl.DataFrame:
        """The monitor's deployment's logged predictions in *window*, joined with feedback."""
        return self.logs.read(monitor.deployment, window)

    def reference_of(self, monitor: Monitor) -> str | None:
        """The dataset version(s) drift compares against: the monitor's, or what the stable
        model version learned from: its training data (``context.role == "train"``, else its
        first input) and the production rows a retraining added (``role == "feedback"``),
        joined with ``" + "``."""
        if monitor.reference:
            return monitor.reference
        deployment = self.deployments.get(monitor.deployment)
        version = self.deployments.registry.get_version(deployment.model,
                                                        deployment.stable_version)
        inputs = list(version.datasets)

        def role(name: str) -> builtins.list[Any]:
            return [i for i in inputs if (i.context or {}).get("role") == name]

        learned = [*(role("train") or inputs[:1]), *role("feedback")]
        return " + ".join(f"{i.dataset}@{i.version}" for i in learned) or None

    def reference_profile(self, monitor: Monitor) -> tuple[str | None, DatasetProfile | None]:
        """The reference's stored profile; several versions' profiles merged (their sketches
        add up, no rows read). A version whose columns cannot merge is left out, with a
        warning, and the reference says what was used."""
        ref = self.reference_of(monitor)
        if ref is None:
            return None, None
        first, *rest = ref.split(" + ")
        used, profile = [first], self.data.profile(first)
        for part in rest:
            try:
                profile = profile.merge(self.data.profile(part))
            except MlcycleError as exc:
                logger.warning("monitor %s: reference %s left out (%s)", monitor.name, part,
                               exc.message)
                continue
            used.append(part)
        return " + ".join(used), profile

    def evaluate(self, monitor: Monitor, window: LogWindow, *,
                 bucket: str | None = None) -> tuple[MonitorResult, PerformanceReport,
                                                     DriftReport | None]:
        """Run *monitor*'s checks over *window* without storing anything."""
        frame = self.read_window(monitor, window)
        thresholds = Thresholds(monitor.thresholds)
        performance = measure(frame, task=monitor.task, segments=monitor.segments,
                              bucket=bucket, since=window.since, until=window.until)
        metrics: dict[str, float] = {}
        details: dict[str, Any] = {"rows": frame.height, "checks": {}}
        statuses: dict[str, str] = {}
        drift: DriftReport | None = None
        if "drift" in monitor.checks:
            statuses["drift"], drift = self._drift(monitor, frame, thresholds, metrics, details)
        if "performance" in monitor.checks:
            statuses["performance"] = self._performance(performance, thresholds, metrics,
                                                        details)
        if "operations" in monitor.checks:
            statuses["operations"] = self._operations(performance, thresholds, metrics,
                                                      details)
        for check, status in statuses.items():
            details["checks"].setdefault(check, {})["status"] = status
        details["performance"] = performance.to_dict()
        status = worst(builtins.list(statuses.values()))
        result = MonitorResult(result_id=0, monitor=monitor.name, run_at=self._now(),
                               window_start=window.since,
                               window_end=window.until or self._now(), status=status,
                               metrics=metrics, details=details)
        return result, performance, drift

    def run(self, name: str | Monitor, *, window: LogWindow | None = None) -> MonitorRun:
        """Run the monitor now over its window (or *window*), store the result, and fire an
        alert when the status changed."""
        monitor = name if isinstance(name, Monitor) else self.store.get_monitor(name)
        previous = self.store.get_monitor(monitor.name).status
        window = window or LogWindow.ending(self._now(), monitor.window_s)
        result, performance, drift = self.evaluate(monitor, window)
        stored = self.store.log_result(result)
        alert = self._alert(monitor, previous, stored)
        return MonitorRun(stored, alert, performance, drift)

    def run_due(self, now: datetime | None = None) -> builtins.list[MonitorRun]:
        """Run every due monitor, one at a time; a monitor that fails is logged and skipped."""
        runs = []
        for monitor in self.due(now):
            try:
                runs.append(self.run(monitor))
            except Exception:
                logger.exception("monitor %s: the run failed", monitor.name)
        return runs

    # --- checks ---------------------------------------------------------------------------
    def _drift(self, monitor: Monitor, frame: pl.DataFrame, thresholds: Thresholds,
               metrics: dict[str, float], details: dict[str, Any]
               ) -> tuple[str, DriftReport | None]:
        from mlcycle.monitoring.drift import DriftConfig, detect_drift

        out = details["checks"].setdefault("drift", {})
        try:
            ref, profile = self.reference_profile(monitor)
        except MlcycleError as exc:
            out["error"] = f"{exc.headline}: {exc.message}"
            return "no_data", None
        out["reference"] = ref
        if profile is None:
            out["error"] = ("no reference: the stable model version has no training dataset "
                            "recorded; give the monitor a reference")
            return "no_data", None
        current = frame.select(pl.col(c).alias(c.removeprefix("input_"))
                               for c in input_columns(frame))
        columns = [c for c in current.columns if c in profile.columns]
        if not columns or not current.height:
            out["error"] = "no logged input column in the window is in the reference"
            return "no_data", None
        report = detect_drift(profile, current.select(columns), columns=columns,
                              config=DriftConfig.from_dict(thresholds.drift))
        details["drift"] = report.to_dict()
        if report.verdict == "not enough data":
            return "no_data", report
        metrics["drift.share"] = report.drifted_share
        for column in report.columns.values():
            if column.score is not None and _finite(column.score):
                metrics[f"drift.score.{column.name}"] = float(column.score)
        if "drift_share" in thresholds.limits:
            level = thresholds.level("drift_share", report.drifted_share)
        else:
            level = "alert" if report.verdict == "drift" else (
                "warning" if report.drifted else "ok")
        if level != "ok":
            out["reasons"] = [f"drift in {', '.join(report.drifted)} ({report.reason})"]
        return level, report

    def _performance(self, report: PerformanceReport, thresholds: Thresholds,
                     metrics: dict[str, float], details: dict[str, Any]) -> str:
        out = details["checks"].setdefault("performance", {})
        slices = {"": report.overall, **report.by_segment}
        levels, reasons = [], []
        for segment, piece in slices.items():
            quality = piece.quality
            if quality is None:
                continue
            suffix = f"[{segment}]" if segment else ""
            for metric, value in quality.metrics.items():
                metrics[f"performance.{metric}{suffix}"] = value
            metrics[f"performance.labelled{suffix}"] = float(quality.labelled)
            if quality.labelled < thresholds.min_labelled:
                continue
            levels.append("ok")
            for metric, value in quality.metrics.items():
                level = thresholds.level(metric, value, segment)
                levels.append(level)
                if level != "ok":
                    reasons.append(f"{metric}{suffix} {value:.4g} ({level})")
        if reasons:
            out["reasons"] = reasons
        return worst(levels)

    def _operations(self, report: PerformanceReport, thresholds: Thresholds,
                    metrics: dict[str, float], details: dict[str, Any]) -> str:
        out = details["checks"].setdefault("operations", {})
        levels, reasons = [], []
        for segment, piece in {"": report.overall, **report.by_segment}.items():
            suffix = f"[{segment}]" if segment else ""
            values = _operation_values(piece)
            for metric, value in values.items():
                metrics[f"operations.{metric}{suffix}"] = value
            if not piece.operations.requests:
                continue
            levels.append("ok")
            for metric, value in values.items():
                level = thresholds.level(metric, value, segment)
                levels.append(level)
                if level != "ok":
                    reasons.append(f"{metric}{suffix} {value:.4g} ({level})")
        if reasons:
            out["reasons"] = reasons
        return worst(levels)

    # --- alerts ---------------------------------------------------------------------------
    def _alert(self, monitor: Monitor, previous: str | None, result: MonitorResult
               ) -> Alert | None:
        status = result.status
        if status == previous or (status in _QUIET and (previous is None or previous in _QUIET)):
            return None
        checks: Mapping[str, Any] = result.details.get("checks") or {}  # type: ignore[assignment]
        reasons = [str(reason) for check in checks.values() for reason in check.get("reasons", [])]
        message = (f"monitor {monitor.name} ({monitor.deployment}): {previous or 'new'} → "
                   f"{status}" + (f": {'; '.join(reasons)}" if reasons else ""))
        log = logger.warning if status in ("warning", "alert") else logger.info
        log("%s", message)
        delivery = None
        if monitor.webhook_url:
            delivery = self.notifier.notify(monitor.webhook_url, {
                "monitor": monitor.name, "deployment": monitor.deployment, "status": status,
                "previous": previous, "message": message, "time": result.run_at.isoformat(),
                "result_id": result.result_id, "reasons": reasons,
                "metrics": dict(result.metrics)})
        return self.store.log_alert(Alert(
            alert_id=0, monitor=monitor.name, time=result.run_at, status=status,
            previous=previous, message=message, result_id=result.result_id,
            delivery=delivery, details={"reasons": list[JSONValue](reasons)}))

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)


def _operation_values(piece: Slice) -> dict[str, float]:
    ops = piece.operations
    values = {"requests": ops.requests, "error_rate": ops.error_rate,
              "latency_p50_ms": ops.latency_p50_ms, "latency_p95_ms": ops.latency_p95_ms,
              "latency_p99_ms": ops.latency_p99_ms, "throughput_rps": ops.throughput_rps}
    return {k: float(v) for k, v in values.items() if v is not None and _finite(float(v))}


def _finite(value: float) -> bool:
    return value == value and value not in (float("inf"), float("-inf"))
