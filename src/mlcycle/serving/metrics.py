"""Prometheus metrics of one serving app, in a registry of its own (never the global one, so
several apps in one process, as in tests, do not collide).

With several worker processes behind one port a scrape reaches any one of them, so
``mlcycle serve --workers N`` runs prometheus_client's multiprocess mode: it sets
``PROMETHEUS_MULTIPROC_DIR`` before the workers start, each worker writes its values there, and
``/metrics`` on any worker renders the sum over all of them (``multiprocess_dir``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "RequestMetrics", "ServingMetrics"]

_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
_REQUEST = ("model", "version", "role", "endpoint")


@dataclass(slots=True)
class RequestMetrics:
    """The metric children of one (model, version, role, endpoint), looked up once."""

    latency: Any
    in_flight: Any
    statuses: dict[int, Any]
    requests: Counter
    labels: tuple[str, str, str, str]

    def answered(self, status: int, seconds: float) -> None:
        child = self.statuses.get(status)
        if child is None:
            child = self.statuses[status] = self.requests.labels(*self.labels, str(status))
        child.inc()
        self.latency.observe(seconds)


@dataclass(slots=True)
class ServingMetrics:
    registry: CollectorRegistry
    requests: Counter
    errors: Counter
    latency: Histogram
    in_flight: Gauge
    batch_rows: Histogram
    rejected: Counter
    log_dropped: Counter
    feedback: Counter
    shadow_agreement: Counter
    model_load: Gauge
    revision: Gauge
    multiprocess_dir: str | None = None
    _children: dict[tuple[str, str, str, str], RequestMetrics] = field(default_factory=dict)

    @classmethod
    def create(cls, multiprocess_dir: str | None = None) -> ServingMetrics:
        registry = CollectorRegistry(auto_describe=True)
        return cls(
            registry=registry,
            requests=Counter("mlcycle_serving_requests", "Prediction requests answered.",
                             (*_REQUEST, "status"), registry=registry),
            errors=Counter("mlcycle_serving_errors", "Prediction requests that failed.",
                           (*_REQUEST, "kind"), registry=registry),
            latency=Histogram("mlcycle_serving_request_duration_seconds",
                              "Time from request to response, in seconds.", _REQUEST,
                              buckets=_BUCKETS, registry=registry),
            in_flight=Gauge("mlcycle_serving_in_flight", "Prediction requests being answered.",
                            ("model", "version"), registry=registry,
                            multiprocess_mode="livesum"),
            batch_rows=Histogram("mlcycle_serving_batch_rows",
                                 "Rows per model call (micro-batches).", ("model", "version"),
                                 buckets=_BATCH_BUCKETS, registry=registry),
            rejected=Counter("mlcycle_serving_rejected",
                             "Requests refused with 429: the batch queue was full.",
                             ("model", "version"), registry=registry),
            log_dropped=Counter("mlcycle_serving_log_dropped",
                                "Prediction or feedback log rows dropped (queue full, or "
                                "storage failed).", ("log", "reason"), registry=registry),
            feedback=Counter("mlcycle_serving_feedback",
                             "Feedback labels received; matched: counted live for a version.",
                             ("deployment", "matched"), registry=registry),
            shadow_agreement=Counter(
                "mlcycle_serving_shadow_answers",
                "Shadow answers, by whether they equal the answer returned.",
                ("model", "version", "agreement"), registry=registry),
            model_load=Gauge("mlcycle_serving_model_load_seconds",
                             "Seconds to load and warm up a model version.",
                             ("model", "version"), registry=registry,
                             multiprocess_mode="livemax"),
            revision=Gauge("mlcycle_serving_deployment_revision",
                           "The deployment revision applied (the lowest over workers).",
                           ("deployment",), registry=registry, multiprocess_mode="livemin"),
            multiprocess_dir=multiprocess_dir,
        )

    def request(self, model: str, version: str, role: str, endpoint: str) -> RequestMetrics:
        key = (model, version, role, endpoint)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = RequestMetrics(
                latency=self.latency.labels(*key), in_flight=self.in_flight.labels(model, version),
                statuses={}, requests=self.requests, labels=key)
        return found

    def render(self) -> bytes:
        if self.multiprocess_dir:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
            return generate_latest(registry)
        return generate_latest(self.registry)

    def close(self) -> None:
        """Forget this process's live gauges (multiprocess mode)."""
        if self.multiprocess_dir:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)
