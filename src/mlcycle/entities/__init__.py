"""Frozen records of the domain. No I/O here; database rows and API shapes are other classes."""

from mlcycle.entities._data import ColumnSchema, ContractVersion, Dataset, DatasetVersion
from mlcycle.entities._registry import (
    ACTIVE,
    ARCHIVED,
    EVENT_KINDS,
    MODEL_STATUSES,
    ModelEvent,
    ModelVersion,
    RegisteredModel,
    check_alias,
    check_model_name,
    plain_json,
)
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
    "ACTIVE",
    "ARCHIVED",
    "EVENT_KINDS",
    "MODEL_STATUSES",
    "Artifact",
    "ColumnSchema",
    "ContractVersion",
    "Dataset",
    "DatasetVersion",
    "Experiment",
    "Metric",
    "MetricHistory",
    "ModelEvent",
    "ModelVersion",
    "Page",
    "RegisteredModel",
    "Run",
    "RunInput",
    "check_alias",
    "check_model_name",
    "from_ms",
    "now_ms",
    "plain_json",
    "to_ms",
]
