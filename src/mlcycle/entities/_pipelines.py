from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mlcycle.types import JSONValue

#: A pipeline run's statuses. ``running`` until every step is settled; then ``finished`` or
#: ``failed`` (at least one step failed; the others that could run did).
PIPELINE_STATUSES = ("running", "finished", "failed")

#: A step run's statuses. ``retrying``: an attempt failed and another is due; ``skipped``: an
#: upstream step failed, so this one never ran. A cache hit is ``finished`` with ``cache_hit``.
STEP_STATUSES = ("pending", "running", "retrying", "finished", "failed", "skipped")


@dataclass(frozen=True, slots=True)
class StepOutput:
    """One output of a step, as stored: ``digest`` addresses its bytes in the artifact store;
    ``format`` says how to read them back (``pickle``, ``parquet/pandas``, ``parquet/polars``,
    ``parquet/arrow``, ``file``)."""

    name: str
    digest: str
    format: str
    size: int


@dataclass(frozen=True, slots=True)
class StepRun:
    """One node of a pipeline run: what it was given, what it made, and how it went.

    ``node`` names the call within the pipeline (the step's name, ``#2`` added for its second
    call). ``inputs`` maps argument paths (``data``, ``parts[1]``) to the digests of upstream
    outputs; ``params`` holds the JSON arguments. ``cache_key`` is what a later run looks up;
    on a cache hit (or a step reused by ``resume``) ``reused_from`` is the step run whose
    outputs were taken, and ``run_id`` is the tracking run that made them. ``started_at`` and
    ``ended_at`` are the function's own start and end (the last attempt's), measured where it
    ran; ``attempts`` counts the attempts made.
    """

    step_run_id: str
    pipeline_run_id: str
    node: str
    step: str
    status: str
    created_at: datetime
    cache_key: str | None = None
    code_hash: str | None = None
    cache_hit: bool = False
    reused_from: str | None = None
    params: Mapping[str, JSONValue] = field(default_factory=dict)
    inputs: Mapping[str, str] = field(default_factory=dict)
    outputs: Sequence[StepOutput] = ()
    upstream: Sequence[str] = ()
    attempts: int = 0
    run_id: str | None = None
    error: Mapping[str, Any] | None = None
    logs: str = ""
    started_at: datetime | None = None
    ended_at: datetime | None = None

    @property
    def duration(self) -> float | None:
        """Seconds the last attempt ran (``None`` until it ended; 0 for a cache hit)."""
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    def output(self, name: str = "return") -> StepOutput:
        """The output called *name* (``KeyError`` naming the ones there are)."""
        for out in self.outputs:
            if out.name == name:
                return out
        raise KeyError(f"step {self.node!r} has no output {name!r}; it has "
                       f"{[o.name for o in self.outputs]}")


@dataclass(frozen=True, slots=True)
class PipelineRun:
    """One run of a pipeline. ``target`` is the ``module:function`` it was defined by;
    ``params`` the pipeline function's arguments (JSON); ``spec_digest`` the stored object
    ``resume`` rebuilds it from; ``run_id`` the tracking run every step run is nested in."""

    pipeline_run_id: str
    pipeline: str
    status: str
    created_at: datetime
    target: str | None = None
    executor: str = "local"
    params: Mapping[str, JSONValue] = field(default_factory=dict)
    cache: bool = True
    spec_digest: str | None = None
    run_id: str | None = None
    resumed_from: str | None = None
    error: Mapping[str, Any] | None = None
    ended_at: datetime | None = None

    @property
    def duration(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.created_at).total_seconds()
