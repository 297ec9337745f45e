"""Monitor results as Prometheus gauges, read from the store at each scrape.

``mlcycle server`` serves them on ``/metrics`` from a registry of their own (nothing else of
the process is mixed in). Each gauge holds the newest result of every monitor:

=================================================  =============================================
``mlcycle_monitor_status``                          0 ok, 1 warning, 2 alert, -1 no data
``mlcycle_monitor_last_run_timestamp_seconds``      when the newest result was computed
``mlcycle_monitor_drift_share``                     share of drifted input columns
``mlcycle_monitor_drift_score{feature}``            a column's drift effect size
``mlcycle_monitor_quality{metric, segment}``        accuracy, f1, roc_auc, rmse, mae, labelled
``mlcycle_monitor_operations{metric, segment}``     latency percentiles, throughput, error rate
=================================================  =============================================

Every gauge has the labels ``monitor`` and ``deployment``; ``segment`` is ``all`` for the
whole window. The Grafana dashboard in ``deploy/grafana/mlcycle-monitoring.json`` draws them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Final

from mlcycle.store.base import MonitorStore

__all__ = ["METRIC_NAMES", "MonitorCollector", "monitor_registry"]

STATUS_CODES: Final = {"ok": 0, "warning": 1, "alert": 2, "no_data": -1}

#: Every metric name this module exports.
METRIC_NAMES: Final = (
    "mlcycle_monitor_status",
    "mlcycle_monitor_last_run_timestamp_seconds",
    "mlcycle_monitor_drift_share",
    "mlcycle_monitor_drift_score",
    "mlcycle_monitor_quality",
    "mlcycle_monitor_operations",
)

_SLICED = re.compile(r"^(performance|operations)\.([a-z0-9_]+)(?:\[(.+)\])?$")


class MonitorCollector:
    """A ``prometheus_client`` collector of the newest result of every monitor in *store*."""

    def __init__(self, store: MonitorStore) -> None:
        self.store = store

    def describe(self) -> list[Any]:
        return []  # registering must not read the store

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        base = ["monitor", "deployment"]
        status = GaugeMetricFamily("mlcycle_monitor_status", "Newest status: 0 ok, 1 warning, "
                                   "2 alert, -1 no data.", labels=base)
        last_run = GaugeMetricFamily("mlcycle_monitor_last_run_timestamp_seconds",
                                     "When the newest result was computed.", labels=base)
        share = GaugeMetricFamily("mlcycle_monitor_drift_share",
                                  "Share of drifted input columns.", labels=base)
        score = GaugeMetricFamily("mlcycle_monitor_drift_score",
                                  "Drift effect size of an input column.",
                                  labels=[*base, "feature"])
        quality = GaugeMetricFamily("mlcycle_monitor_quality",
                                    "Model quality from feedback.",
                                    labels=[*base, "metric", "segment"])
        operations = GaugeMetricFamily("mlcycle_monitor_operations",
                                       "Latency, throughput and errors.",
                                       labels=[*base, "metric", "segment"])
        for monitor in self.store.list_monitors():
            latest = self.store.list_results(monitor.name, max_results=1)
            if not latest:
                continue
            result, labels = latest[0], [monitor.name, monitor.deployment]
            status.add_metric(labels, STATUS_CODES[result.status])
            last_run.add_metric(labels, result.run_at.timestamp())
            for key, value in result.metrics.items():
                if key == "drift.share":
                    share.add_metric(labels, value)
                elif key.startswith("drift.score."):
                    score.add_metric([*labels, key.removeprefix("drift.score.")], value)
                elif m := _SLICED.match(key):
                    family = quality if m.group(1) == "performance" else operations
                    family.add_metric([*labels, m.group(2), m.group(3) or "all"], value)
        yield from (status, last_run, share, score, quality, operations)


def monitor_registry(store: MonitorStore) -> Any:
    """A ``CollectorRegistry`` holding only the monitor gauges of *store*."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(MonitorCollector(store))
    return registry
