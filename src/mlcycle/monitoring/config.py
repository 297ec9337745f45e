"""A monitor's spec, from a mapping or a YAML file, checked with errors that name the key and
its line.

::

    checks: [drift, performance, operations]   # default: all three
    window: 1d            # how far back each run reads (s, m, h, d; or seconds)
    interval: 1h          # how often the server's scheduler runs it
    task: classification  # or regression; default: inferred from the labels
    reference: train@v3   # default: the training data of the deployment's stable version
    segments:
      eu: "region = 'EU'"
      seniors: "age >= 65"
    thresholds:           # {warning: x, alert: y}, either may be left out; a number is the alert
      accuracy: {warning: 0.9, alert: 0.85}    # accuracy, f1, roc_auc: below is worse
      latency_p95_ms: {warning: 200, alert: 500}  # rmse, mae, error_rate, latency_*: above
      drift_share: {warning: 0.1, alert: 0.2}  # share of drifted columns
      min_labelled: 30    # fewer labelled rows in a slice: its quality is not judged
      drift: {numeric_wasserstein: 0.1}        # settings of mlcycle.monitoring.drift.DriftConfig
    webhook: https://hooks.example.com/mlcycle
    enabled: true
    description: churn model, daily look
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import yaml

from mlcycle.entities import MONITOR_CHECKS
from mlcycle.errors import InvalidInputError
from mlcycle.specs import describe, did_you_mean, index_lines

__all__ = [
    "HIGHER_IS_WORSE",
    "LOWER_IS_WORSE",
    "MonitorSpec",
    "Thresholds",
    "parse_duration",
]

#: Quality metrics where a drop is bad, and metrics where a rise is bad.
LOWER_IS_WORSE: Final = ("accuracy", "f1", "roc_auc")
HIGHER_IS_WORSE: Final = ("rmse", "mae", "error_rate", "latency_p50_ms", "latency_p95_ms",
                          "latency_p99_ms", "drift_share")
_SETTINGS: Final = ("min_labelled", "drift")
_SEGMENT_KEY: Final = re.compile(r"\[[^\[\]]+\]$")
_KEYS: Final = ("deployment", "checks", "window", "interval", "task", "reference", "segments",
                "thresholds", "webhook", "enabled", "description")
_DURATION_RE = re.compile(r"^(\d{1,9})\s*(s|m|h|d)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any, field: str) -> int:
    """``"1d"``, ``"6h"``, ``"30m"``, ``"45s"`` or a number of seconds, as seconds (>= 1)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    m = _DURATION_RE.match(value.strip()) if isinstance(value, str) else None
    if m and int(m.group(1)) >= 1:
        return int(m.group(1)) * _UNIT_S[m.group(2)]
    raise InvalidInputError(
        f"{field}: expected a duration such as 1d, 6h, 30m, 45s or a number of seconds, "
        f"got {describe(value)}", details={"field": field})


class Thresholds:
    """The limits of a monitor's ``thresholds`` mapping, checked: ``level(metric, value)``
    says ``"ok"``, ``"warning"`` or ``"alert"``. A key ``metric[segment]`` (``"accuracy[origin
    EWR]"``) sets that segment's own limits; other segments use the metric's."""

    def __init__(self, data: Mapping[str, Any] | None) -> None:
        data = dict(data or {})
        self.limits: dict[str, tuple[float | None, float | None]] = {}
        known = (*LOWER_IS_WORSE, *HIGHER_IS_WORSE, *_SETTINGS)
        for key, value in data.items():
            field = f"thresholds.{key}"
            metric = _SEGMENT_KEY.sub("", key) if isinstance(key, str) else key
            if metric not in known or (metric != key and metric in _SETTINGS):
                raise InvalidInputError(
                    f"{field}: unknown metric{did_you_mean(str(key), known)}; known: "
                    f"{', '.join(known)}", details={"field": field})
            if key in _SETTINGS:
                continue
            if _is_number(value):
                self.limits[key] = (None, float(value))
                continue
            if not isinstance(value, Mapping) or not value or set(value) - {"warning", "alert"}:
                raise InvalidInputError(
                    f"{field}: expected {{warning: x, alert: y}} (either may be left out) or a "
                    f"number, got {describe(value)}", details={"field": field})
            for level, limit in value.items():
                if not _is_number(limit):
                    raise InvalidInputError(f"{field}.{level}: expected a number, got "
                                            f"{describe(limit)}",
                                            details={"field": f"{field}.{level}"})
            warning, alert = value.get("warning"), value.get("alert")
            if warning is not None and alert is not None and (
                    (metric in LOWER_IS_WORSE and warning < alert)
                    or (metric in HIGHER_IS_WORSE and warning > alert)):
                side = "above" if metric in LOWER_IS_WORSE else "below"
                raise InvalidInputError(
                    f"{field}: the warning level must be {side} the alert level for "
                    f"{metric}, got warning {warning} and alert {alert}",
                    details={"field": f"{field}.warning"})
            self.limits[key] = (None if warning is None else float(warning),
                                None if alert is None else float(alert))
        self.min_labelled = data.get("min_labelled", 30)
        if isinstance(self.min_labelled, bool) or not isinstance(self.min_labelled, int) \
                or self.min_labelled < 1:
            raise InvalidInputError(
                f"thresholds.min_labelled: expected an int >= 1, got "
                f"{describe(self.min_labelled)}", details={"field": "thresholds.min_labelled"})
        self.drift = data.get("drift") or {}
        if not isinstance(self.drift, Mapping):
            raise InvalidInputError(
                f"thresholds.drift: expected a mapping of DriftConfig settings, got "
                f"{describe(self.drift)}", details={"field": "thresholds.drift"})
        from mlcycle.monitoring.drift import DriftConfig

        try:
            DriftConfig.from_dict(self.drift)
        except InvalidInputError as exc:
            key = exc.details.get("field", "")
            raise InvalidInputError(f"thresholds.drift: {exc.message}", details={
                "field": f"thresholds.drift.{key}" if key else "thresholds.drift"}) from None

    def level(self, metric: str, value: float | None, segment: str = "") -> str:
        """``"alert"``, ``"warning"`` or ``"ok"`` for *value* of *metric* in *segment* (its
        own limits, else the metric's; ``ok`` without limits or a value)."""
        limits = self.limits.get(f"{metric}[{segment}]") if segment else None
        limits = limits or self.limits.get(metric)
        if limits is None or value is None:
            return "ok"
        warning, alert = limits
        worse = (lambda v, lim: v < lim) if metric in LOWER_IS_WORSE else \
            (lambda v, lim: v > lim)
        if alert is not None and worse(value, alert):
            return "alert"
        if warning is not None and worse(value, warning):
            return "warning"
        return "ok"


class MonitorSpec:
    """The checked fields of a monitor spec, as ``Monitor`` keyword arguments (``fields``)."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> MonitorSpec:
        """Check *data* (the keys of the module docstring). Raises ``InvalidInputError`` whose
        ``details["field"]`` is the key path (``thresholds.accuracy.alert``)."""
        from mlcycle.datasets.segments import parse_segments

        data = dict(data or {})
        for key in data:
            if key not in _KEYS:
                raise InvalidInputError(
                    f"{key}: unknown key{did_you_mean(str(key), _KEYS)}; known: "
                    f"{', '.join(_KEYS)}", details={"field": str(key)})
        out: dict[str, Any] = {}
        if "deployment" in data:
            out["deployment"] = data["deployment"]
        checks = data.get("checks", list(MONITOR_CHECKS))
        if isinstance(checks, str):
            checks = [checks]
        if not isinstance(checks, list) or not checks:
            raise InvalidInputError(f"checks: expected a list among {', '.join(MONITOR_CHECKS)}"
                                    f", got {describe(checks)}", details={"field": "checks"})
        for i, check in enumerate(checks):
            if check not in MONITOR_CHECKS:
                raise InvalidInputError(
                    f"checks[{i}]: unknown check {describe(check)}"
                    f"{did_you_mean(str(check), MONITOR_CHECKS)}; known: "
                    f"{', '.join(MONITOR_CHECKS)}", details={"field": f"checks[{i}]"})
        out["checks"] = tuple(dict.fromkeys(checks))
        if "window" in data:
            out["window_s"] = parse_duration(data["window"], "window")
        if "interval" in data:
            out["interval_s"] = parse_duration(data["interval"], "interval")
        task = data.get("task")
        if task not in (None, "classification", "regression"):
            raise InvalidInputError(
                f"task: expected classification or regression, got {describe(task)}"
                f"{did_you_mean(str(task), ('classification', 'regression'))}",
                details={"field": "task"})
        out["task"] = task
        segments = data.get("segments") or {}
        if not isinstance(segments, Mapping):
            raise InvalidInputError(f"segments: expected a mapping of name to expression, got "
                                    f"{describe(segments)}", details={"field": "segments"})
        for name, expr in segments.items():
            if not isinstance(expr, str):
                raise InvalidInputError(f"segments.{name}: expected a SQL expression, got "
                                        f"{describe(expr)}", details={"field": f"segments.{name}"})
        try:
            parse_segments({str(k): v for k, v in segments.items()})
        except InvalidInputError as exc:
            segment = exc.details.get("segment")
            raise InvalidInputError(exc.message, details={
                "field": f"segments.{segment}" if segment else "segments"}) from None
        out["segments"] = {str(k): v for k, v in segments.items()}
        thresholds = data.get("thresholds") or {}
        if not isinstance(thresholds, Mapping):
            raise InvalidInputError(f"thresholds: expected a mapping, got {describe(thresholds)}",
                                    details={"field": "thresholds"})
        Thresholds(thresholds)
        out["thresholds"] = dict(thresholds)
        for key, field in (("reference", "reference"), ("webhook", "webhook_url"),
                           ("description", "description")):
            value = data.get(key)
            if value is not None and not isinstance(value, str):
                raise InvalidInputError(f"{key}: expected a string, got {describe(value)}",
                                        details={"field": key})
            if value is not None:
                out[field] = value
        webhook = out.get("webhook_url")
        if webhook is not None and not webhook.startswith(("http://", "https://")):
            raise InvalidInputError(f"webhook: expected an http:// or https:// URL, got "
                                    f"{webhook!r}", details={"field": "webhook"})
        if "enabled" in data:
            if not isinstance(data["enabled"], bool):
                raise InvalidInputError(f"enabled: expected true or false, got "
                                        f"{describe(data['enabled'])}",
                                        details={"field": "enabled"})
            out["enabled"] = data["enabled"]
        return cls(out)

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "monitor.yaml") -> MonitorSpec:
        """The spec a YAML document holds; errors say ``<source> line N: <key>: ...``."""
        try:
            node = yaml.compose(text)
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            where = f" line {line}" if line else ""
            raise InvalidInputError(f"{source}{where}: not valid YAML: {exc}",
                                    details={"field": "yaml", "line": line}) from None
        lines: dict[str, int] = {}
        if node is not None:
            index_lines(node, "", lines, source)
        if data is not None and not isinstance(data, Mapping):
            raise InvalidInputError(f"{source} line 1: expected a mapping of settings, got "
                                    f"{describe(data)}", details={"field": "", "line": 1})
        try:
            return cls.from_mapping(data)
        except InvalidInputError as exc:
            field = str(exc.details.get("field", ""))
            line = _line_of(field, lines)
            if line is None:
                raise
            raise InvalidInputError(f"{source} line {line}: {exc.message}",
                                    details={**exc.details, "line": line}) from None


def _line_of(field: str, lines: Mapping[str, int]) -> int | None:
    """The line of *field*, or of its nearest parent key that has one."""
    while field:
        if field in lines:
            return lines[field]
        field = field.rsplit(".", 1)[0] if "." in field else ""
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
