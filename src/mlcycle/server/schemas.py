"""The shapes of the REST API: ``XCreate`` / ``XUpdate`` come in, ``XOut`` goes out.

Entities stay apart from these: ``XOut.from_entity`` makes the wire shape of an entity, and the
REST stores turn it back (:mod:`mlcycle.store.rest.wire`). On the wire, times are integer
milliseconds since the Unix epoch and non-finite metric values are the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from mlcycle.entities import Artifact, Experiment, MetricHistory, Run, RunInput, to_ms
from mlcycle.errors import InvalidInputError
from mlcycle.store.rest.wire import decode_float
from mlcycle.tracking.compare import RunComparison
from mlcycle.types import RunStatus

__all__ = [
    "ArtifactIn",
    "ArtifactList",
    "ArtifactOut",
    "ArtifactsRecord",
    "ExperimentCreate",
    "ExperimentList",
    "ExperimentOut",
    "ExperimentUpdate",
    "Health",
    "LogBatch",
    "LogInputs",
    "MetricHistoryOut",
    "ObjectOut",
    "ParsedBatch",
    "ResultIn",
    "RunComparisonOut",
    "RunCreate",
    "RunInputOut",
    "RunOut",
    "RunPage",
    "RunUpdate",
    "SearchRequest",
    "parse_log_batch",
]

_NON_FINITE_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "number"}, {"enum": ["NaN", "Infinity", "-Infinity"]}]
}
#: A float that may be NaN or infinite: a JSON number, or one of the three strings.
WireFloat = Annotated[float, WithJsonSchema(_NON_FINITE_SCHEMA)]
Millis = Annotated[int, Field(description="Milliseconds since the Unix epoch (UTC).")]
Digest = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="BLAKE3, 64 hex digits.")]
ParamValue = str | int | float | bool | None


class _In(BaseModel):
    # Unknown fields are refused so that a typo ("tag" for "tags") is an error, not a no-op.
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(ser_json_inf_nan="strings")


def _not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("must not be null; leave the field out to keep its value")
    return value


class _Patch(_In):
    """A partial update: the fields a request leaves out stay as they are."""

    def changes(self) -> dict[str, Any]:
        """The fields the request gave (``null`` included: it clears a field that may be empty)."""
        return {name: getattr(self, name) for name in self.model_fields_set}


# --- experiments ----------------------------------------------------------------------------


class ExperimentCreate(_In):
    name: str
    description: str | None = None
    tags: dict[str, ParamValue] = Field(default_factory=dict)


class ExperimentUpdate(_Patch):
    """Fields left out stay as they are; ``"description": null`` clears the description."""

    name: str | None = None
    description: str | None = None

    @field_validator("name")
    @classmethod
    def _name_not_null(cls, value: Any) -> Any:
        return _not_null(value)


class ExperimentOut(_Out):
    experiment_id: str
    name: str
    description: str | None
    tags: dict[str, str]
    lifecycle: str
    created_at: Millis

    @classmethod
    def from_entity(cls, e: Experiment) -> ExperimentOut:
        return cls(
            experiment_id=e.experiment_id,
            name=e.name,
            description=e.description,
            tags=dict(e.tags),
            lifecycle=e.lifecycle,
            created_at=to_ms(e.created_at),
        )


class ExperimentList(_Out):
    experiments: list[ExperimentOut]


# --- runs -----------------------------------------------------------------------------------


class RunCreate(_In):
    experiment_id: str
    name: str | None = Field(default=None, description="Default: a generated name.")
    parent_run_id: str | None = None
    start_time: Millis | None = Field(default=None, description="Default: now.")
    params: dict[str, ParamValue] = Field(default_factory=dict)
    tags: dict[str, ParamValue] = Field(default_factory=dict)


class RunUpdate(_Patch):
    """Fields left out stay as they are; ``"end_time": null`` clears the end time."""

    name: str | None = None
    status: RunStatus | None = None
    end_time: Millis | None = None

    @field_validator("name", "status")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        return _not_null(value)


class RunInputIn(_In):
    dataset: str
    version: str
    digest: str | None = None
    context: dict[str, Any] = Field(default_factory=dict)

    def to_entity(self) -> RunInput:
        return RunInput(self.dataset, self.version, self.digest, self.context)


class RunInputOut(_Out):
    dataset: str
    version: str
    digest: str | None
    context: dict[str, Any]

    @classmethod
    def from_entity(cls, i: RunInput) -> RunInputOut:
        return cls(dataset=i.dataset, version=i.version, digest=i.digest, context=dict(i.context))


class LogInputs(_In):
    inputs: list[RunInputIn]


class ResultIn(_In):
    value: Any = Field(description="Any JSON value.")


class RunOut(_Out):
    run_id: str
    experiment_id: str
    name: str
    status: RunStatus
    start_time: Millis
    end_time: Millis | None
    parent_run_id: str | None
    lifecycle: str
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, WireFloat] = Field(description="The latest value of each metric.")
    inputs: list[RunInputOut]
    results: dict[str, Any]

    @classmethod
    def from_entity(cls, r: Run) -> RunOut:
        return cls(
            run_id=r.run_id,
            experiment_id=r.experiment_id,
            name=r.name,
            status=r.status,
            start_time=to_ms(r.start_time),
            end_time=None if r.end_time is None else to_ms(r.end_time),
            parent_run_id=r.parent_run_id,
            lifecycle=r.lifecycle,
            params=dict(r.params),
            tags=dict(r.tags),
            metrics=dict(r.metrics),
            inputs=[RunInputOut.from_entity(i) for i in r.inputs],
            results=dict(r.results),
        )


class SearchRequest(_In):
    experiment_ids: list[str] | None = Field(default=None, description="None: every experiment.")
    filter: str = Field(default="", examples=["metrics.rmse < 0.5 and params.model = 'rf'"])
    order_by: list[str] = Field(default_factory=list, examples=[["metrics.rmse DESC"]])
    max_results: int = 100
    page_token: str | None = None
    include_deleted: bool = False


class RunPage(_Out):
    runs: list[RunOut]
    next_page_token: str | None


class MetricHistoryOut(_Out):
    """A metric's points in step order, column by column."""

    key: str
    steps: list[int]
    values: list[WireFloat]
    timestamps: list[Millis]

    @classmethod
    def from_entity(cls, h: MetricHistory) -> MetricHistoryOut:
        # Not validated again: the columns come typed from the store, and checking every point
        # of a long history (3 x 50,000 values) would cost more than serialising it.
        return cls.model_construct(key=h.key, steps=list(h.steps), values=list(h.values),
                                   timestamps=list(h.timestamps))


class AlignedHistory(_Out):
    steps: list[int]
    values: list[list[WireFloat | None]] = Field(description="Per run, aligned to `steps`.")


class RunComparisonOut(_Out):
    run_ids: list[str]
    names: list[str]
    params: dict[str, list[str | None]]
    metrics: dict[str, list[WireFloat | None]]
    histories: dict[str, AlignedHistory]

    @classmethod
    def from_entity(cls, c: RunComparison) -> RunComparisonOut:
        return cls(
            run_ids=c.run_ids,
            names=c.names,
            params=c.params,
            metrics=c.metrics,
            histories={k: AlignedHistory(steps=s, values=v) for k, (s, v) in c.histories.items()},
        )


# --- log-batch: parsed by hand for speed, described by a model for the docs ------------------


class LogBatch(_In):
    """The body of ``POST /api/v1/runs/{run_id}/log-batch``. Every part is optional.

    ``metrics`` rows are ``[key, value, step, timestamp_ms]`` (the timestamp may be left out:
    the server's clock is used). Params are set once; tags may be overwritten.
    """

    metrics: list[tuple[str, WireFloat, int, Millis] | tuple[str, WireFloat, int]] = Field(
        default_factory=list, examples=[[["loss", 0.25, 10, 1_700_000_000_000]]]
    )
    params: dict[str, ParamValue] = Field(default_factory=dict)
    tags: dict[str, ParamValue] = Field(default_factory=dict)


class ParsedBatch(NamedTuple):
    metrics: list[Any]
    params: Mapping[str, Any] | None
    tags: Mapping[str, Any] | None


_BATCH_KEYS = frozenset(LogBatch.model_fields)


def parse_log_batch(body: Any) -> ParsedBatch:
    """Check the shape of a decoded log-batch body and decode its non-finite values.

    Only the shape is checked here; the tracking service validates every point, param and tag
    (and names the offending one), so doing it twice through pydantic would only cost time.
    """
    if not isinstance(body, dict):
        raise _bad_batch("body", f"expected a JSON object, got {type(body).__name__}")
    unknown = body.keys() - _BATCH_KEYS
    if unknown:
        raise _bad_batch(sorted(unknown)[0], f"unknown field; expected {sorted(_BATCH_KEYS)}")
    metrics = body.get("metrics")
    if metrics is None:
        metrics = []
    elif not isinstance(metrics, list):
        raise _bad_batch("metrics", "expected a list of [key, value, step, timestamp] rows")
    points: list[Any] = metrics
    for i, row in enumerate(metrics):
        if not isinstance(row, list) or not 3 <= len(row) <= 4:
            raise _bad_batch(f"metrics[{i}]",
                             f"expected [key, value, step, timestamp], got {row!r}")
        if row[1].__class__ is str:
            if points is metrics:
                points = list(metrics)  # copy on the first string only: most batches have none
            points[i] = [row[0], decode_float(row[1]), *row[2:]]
    for name in ("params", "tags"):
        value = body.get(name)
        if value is not None and not isinstance(value, dict):
            raise _bad_batch(name, f"expected a JSON object, got {type(value).__name__}")
    return ParsedBatch(points, body.get("params"), body.get("tags"))


def _bad_batch(field: str, message: str) -> InvalidInputError:
    return InvalidInputError(f"{field}: {message}", details={"field": field})


# --- artifacts ------------------------------------------------------------------------------


class ArtifactIn(_In):
    path: str = Field(description="A relative POSIX path inside the run, e.g. `model/model.pkl`.")
    digest: Digest
    size: int = Field(ge=0)

    def to_entity(self) -> Artifact:
        return Artifact(self.path, self.digest, self.size)


class ArtifactsRecord(_In):
    """Manifest entries for objects uploaded already (``PUT /api/v1/artifacts/objects/...``)."""

    artifacts: list[ArtifactIn]


class ArtifactOut(_Out):
    path: str
    digest: str
    size: int

    @classmethod
    def from_entity(cls, a: Artifact) -> ArtifactOut:
        return cls(path=a.path, digest=a.digest, size=a.size)


class ArtifactList(_Out):
    artifacts: list[ArtifactOut]


class ObjectOut(_Out):
    digest: str
    size: int


class Health(_Out):
    status: Literal["ok"]
    version: str

