"""Frozen records of the domain. No I/O here; database rows and API shapes are other classes."""

from mlcycle.entities._tracking import (
    Artifact,
    Experiment,
    Metric,
    MetricHistory,
    Page,
    Run,
    RunInput,
    from_ms,
    now_ms,
    to_ms,
)

__all__ = [
    "Artifact",
    "Experiment",
    "Metric",
    "MetricHistory",
    "Page",
    "Run",
    "RunInput",
    "from_ms",
    "now_ms",
    "to_ms",
]
