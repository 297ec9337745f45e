"""The wire format shared by ``mlcycle server`` and the REST stores.

JSON has no NaN or infinities, yet a metric may be either, so non-finite floats travel as the
strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (the spelling of JavaScript and of
pydantic's ``ser_json_inf_nan="strings"``), in both directions. Times travel as integer
milliseconds since the Unix epoch, the unit the stores keep, so nothing is lost on the way.

The log-batch body is compact because it is the ingest hot path::

    {"metrics": [[key, value, step, timestamp_ms], ...], "params": {...}, "tags": {...}}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from mlcycle.entities import Artifact, Experiment, Metric, MetricHistory, Run, RunInput, from_ms
from mlcycle.types import NON_FINITE, RunStatus, encode_float

__all__ = [
    "NON_FINITE",
    "artifact_from_wire",
    "decode_float",
    "decode_floats",
    "encode_float",
    "encode_metrics",
    "experiment_from_wire",
    "history_from_wire",
    "run_from_wire",
]

def decode_float(value: Any) -> Any:
    """The float a wire value stands for; anything else comes back unchanged, so that the
    validation further on can name it in its error."""
    if value.__class__ is str:
        return NON_FINITE.get(value, value)
    return value


def decode_floats(values: Sequence[Any]) -> list[Any]:
    return [NON_FINITE.get(v, v) if v.__class__ is str else v for v in values]


def encode_metrics(points: Sequence[Metric]) -> list[list[Any]]:
    """Points as ``[key, value, step, timestamp]`` rows (``log-batch``'s ``metrics``)."""
    isfinite = math.isfinite
    return [
        [p.key, p.value if isfinite(p.value) else encode_float(p.value), p.step, p.timestamp]
        for p in points
    ]


# --- wire → entities (the server side builds the wire shapes in mlcycle.server.schemas) ----


def experiment_from_wire(data: Mapping[str, Any]) -> Experiment:
    return Experiment(
        experiment_id=data["experiment_id"],
        name=data["name"],
        created_at=from_ms(data["created_at"]),  # type: ignore[arg-type]
        description=data.get("description"),
        tags=dict(data.get("tags") or {}),
        lifecycle=data.get("lifecycle", "active"),
    )


def run_from_wire(data: Mapping[str, Any]) -> Run:
    return Run(
        run_id=data["run_id"],
        experiment_id=data["experiment_id"],
        name=data["name"],
        status=RunStatus(data["status"]),
        start_time=from_ms(data["start_time"]),  # type: ignore[arg-type]
        end_time=from_ms(data.get("end_time")),
        parent_run_id=data.get("parent_run_id"),
        lifecycle=data.get("lifecycle", "active"),
        params=dict(data.get("params") or {}),
        tags=dict(data.get("tags") or {}),
        metrics={k: decode_float(v) for k, v in (data.get("metrics") or {}).items()},
        inputs=tuple(
            RunInput(i["dataset"], i["version"], i.get("digest"), dict(i.get("context") or {}))
            for i in data.get("inputs") or ()
        ),
        results=dict(data.get("results") or {}),
    )


def history_from_wire(data: Mapping[str, Any]) -> MetricHistory:
    return MetricHistory(
        key=data["key"],
        steps=list(data["steps"]),
        values=decode_floats(data["values"]),
        timestamps=list(data["timestamps"]),
    )


def artifact_from_wire(data: Mapping[str, Any]) -> Artifact:
    return Artifact(data["path"], data["digest"], int(data["size"]))
