"""Frozen records of the domain. No I/O here; database rows and API shapes are other classes."""

from mlcycle.entities._data import ColumnSchema, ContractVersion, Dataset, DatasetVersion
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
    "ColumnSchema",
    "ContractVersion",
    "Dataset",
    "DatasetVersion",
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
