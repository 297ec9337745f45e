"""The wire shapes of ``/api/v1/pipelines``: ``XCreate`` / ``XUpdate`` come in, ``XOut`` goes out.

Only the records travel here; a step's outputs go through the artifact endpoints, addressed by
the digests these shapes carry. Times are integer milliseconds since the Unix epoch, as
everywhere in the API. The REST store turns these shapes back into entities
(:mod:`mlcycle.store.rest.pipelines`).

String lengths follow the columns of ``mlcycle.store.sql.tables``, so that an oversized value is
a 400 naming its field rather than a database error.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator

from mlcycle.entities import PipelineRun, StepOutput, StepRun, to_ms
from mlcycle.server.schemas import Digest, Millis, _In, _not_null, _Out, _Patch

__all__ = [
    "CachedStepRun",
    "PipelineRunCreate",
    "PipelineRunOut",
    "PipelineRunPage",
    "PipelineRunUpdate",
    "StepNodeIn",
    "StepOutputIn",
    "StepOutputOut",
    "StepRunList",
    "StepRunOut",
    "StepRunUpdate",
    "StepRunsCreate",
]

Id = Annotated[str, Field(max_length=32)]
Hash = Annotated[str, Field(max_length=64)]
Status = Annotated[str, Field(max_length=16)]
Name = Annotated[str, Field(max_length=256)]

# --- pipeline runs --------------------------------------------------------------------------


class PipelineRunCreate(_In):
    """A new pipeline run, ``running``; ``created_at`` is the driver's clock."""

    pipeline: Name
    target: str | None = Field(default=None, max_length=512, examples=["flows.train:train"])
    executor: str = Field(max_length=64, examples=["local"])
    params: dict[str, Any] = Field(default_factory=dict)
    cache: bool = True
    created_at: Millis
    spec_digest: Hash | None = None
    run_id: Id | None = None
    resumed_from: Id | None = None


class PipelineRunUpdate(_Patch):
    """Fields left out stay as they are; ``null`` clears ``ended_at`` or ``error``."""

    status: Status | None = Field(default=None, description="`running`, `finished`, `failed`.")
    ended_at: Millis | None = None
    error: dict[str, Any] | None = None

    @field_validator("status")
    @classmethod
    def _status_not_null(cls, value: Any) -> Any:
        return _not_null(value)


class PipelineRunOut(_Out):
    pipeline_run_id: str
    pipeline: str
    status: str
    created_at: Millis
    target: str | None
    executor: str
    params: dict[str, Any]
    cache: bool
    spec_digest: str | None
    run_id: str | None
    resumed_from: str | None
    error: dict[str, Any] | None
    ended_at: Millis | None

    @classmethod
    def from_entity(cls, r: PipelineRun) -> PipelineRunOut:
        return cls(
            pipeline_run_id=r.pipeline_run_id,
            pipeline=r.pipeline,
            status=r.status,
            created_at=to_ms(r.created_at),
            target=r.target,
            executor=r.executor,
            params=dict(r.params),
            cache=r.cache,
            spec_digest=r.spec_digest,
            run_id=r.run_id,
            resumed_from=r.resumed_from,
            error=dict(r.error) if r.error is not None else None,
            ended_at=to_ms(r.ended_at) if r.ended_at is not None else None,
        )


class PipelineRunPage(_Out):
    pipeline_runs: list[PipelineRunOut] = Field(description="Newest first.")
    next_page_token: str | None


# --- step runs ------------------------------------------------------------------------------


class StepNodeIn(_In):
    node: Name
    step: Name
    upstream: list[str] = Field(default_factory=list)


class StepRunsCreate(_In):
    """One ``pending`` step run per node, in the order the pipeline calls them."""

    nodes: list[StepNodeIn]


class StepOutputIn(_In):
    name: str
    digest: Digest
    format: str = Field(examples=["pickle", "parquet/pandas", "file/model.bin"])
    size: int = Field(ge=0)

    def to_entity(self) -> StepOutput:
        return StepOutput(self.name, self.digest, self.format, self.size)


class StepOutputOut(_Out):
    name: str
    digest: str
    format: str
    size: int

    @classmethod
    def from_entity(cls, o: StepOutput) -> StepOutputOut:
        return cls(name=o.name, digest=o.digest, format=o.format, size=o.size)


class StepRunUpdate(_Patch):
    """Fields left out stay as they are; ``null`` clears the ones that may be empty
    (``cache_key``, ``code_hash``, ``reused_from``, ``run_id``, ``error``, the times)."""

    status: Status | None = None
    cache_key: Hash | None = None
    code_hash: Hash | None = None
    cache_hit: bool | None = None
    reused_from: Id | None = None
    params: dict[str, Any] | None = None
    inputs: dict[str, str] | None = None
    outputs: list[StepOutputIn] | None = None
    attempts: int | None = Field(default=None, ge=0)
    run_id: Id | None = None
    error: dict[str, Any] | None = None
    logs: str | None = None
    started_at: Millis | None = None
    ended_at: Millis | None = None

    @field_validator("status", "cache_hit", "params", "inputs", "outputs", "attempts", "logs")
    @classmethod
    def _required_not_null(cls, value: Any) -> Any:
        return _not_null(value)

    def store_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``PipelineStore.update_step_run`` (the fields given)."""
        changes = self.changes()
        if self.outputs is not None:
            changes["outputs"] = [o.to_entity() for o in self.outputs]
        return changes


class StepRunOut(_Out):
    step_run_id: str
    pipeline_run_id: str
    node: str
    step: str
    status: str
    created_at: Millis
    cache_key: str | None
    code_hash: str | None
    cache_hit: bool
    reused_from: str | None
    params: dict[str, Any]
    inputs: dict[str, str]
    outputs: list[StepOutputOut]
    upstream: list[str]
    attempts: int
    run_id: str | None
    error: dict[str, Any] | None
    logs: str
    started_at: Millis | None
    ended_at: Millis | None

    @classmethod
    def from_entity(cls, s: StepRun) -> StepRunOut:
        return cls(
            step_run_id=s.step_run_id,
            pipeline_run_id=s.pipeline_run_id,
            node=s.node,
            step=s.step,
            status=s.status,
            created_at=to_ms(s.created_at),
            cache_key=s.cache_key,
            code_hash=s.code_hash,
            cache_hit=s.cache_hit,
            reused_from=s.reused_from,
            params=dict(s.params),
            inputs=dict(s.inputs),
            outputs=[StepOutputOut.from_entity(o) for o in s.outputs],
            upstream=list(s.upstream),
            attempts=s.attempts,
            run_id=s.run_id,
            error=dict(s.error) if s.error is not None else None,
            logs=s.logs,
            started_at=to_ms(s.started_at) if s.started_at is not None else None,
            ended_at=to_ms(s.ended_at) if s.ended_at is not None else None,
        )


class StepRunList(_Out):
    step_runs: list[StepRunOut] = Field(description="In the order the pipeline called them.")


class CachedStepRun(_Out):
    """The answer to a cache lookup: ``step_run`` is ``null`` on a miss (the common case for a
    new step, so not an error)."""

    step_run: StepRunOut | None
