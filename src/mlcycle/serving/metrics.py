"""Prometheus metrics of one serving app, in a registry of its own (never the global one, so
several apps in one process, as in tests, do not collide)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "ServingMetrics"]

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(slots=True)
class ServingMetrics:
    registry: CollectorRegistry
    requests: Counter
    errors: Counter
    latency: Histogram
    in_flight: Gauge

    @classmethod
    def create(cls) -> ServingMetrics:
        registry = CollectorRegistry(auto_describe=True)
        labels = ("model", "version", "endpoint")
        return cls(
            registry=registry,
            requests=Counter("mlcycle_serving_requests", "Prediction requests answered.",
                             (*labels, "status"), registry=registry),
            errors=Counter("mlcycle_serving_errors", "Prediction requests that failed.",
                           (*labels, "kind"), registry=registry),
            latency=Histogram("mlcycle_serving_request_duration_seconds",
                              "Time from request to response, in seconds.", labels,
                              buckets=_BUCKETS, registry=registry),
            in_flight=Gauge("mlcycle_serving_in_flight", "Prediction requests being answered.",
                            ("model", "version"), registry=registry),
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
