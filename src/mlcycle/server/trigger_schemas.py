"""The wire shapes of ``/api/v1/triggers``: ``XCreate`` / ``XIn`` come in, ``XOut`` goes out.

Times are integer milliseconds since the Unix epoch, as everywhere in the API. The REST store
turns these shapes back into entities (:mod:`mlcycle.store.rest.triggers`). String lengths follow
the columns of ``mlcycle.store.sql.tables``, so an oversized value is a 400 naming its field.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from mlcycle.entities import Trigger, TriggerRun, from_ms, to_ms
from mlcycle.server.schemas import Millis, _In, _Out
from mlcycle.types import UNSET

__all__ = [
    "TriggerCreate",
    "TriggerList",
    "TriggerOut",
    "TriggerRunIn",
    "TriggerRunList",
    "TriggerRunOut",
    "TriggerRunUpdate",
    "TriggerUpdate",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class TriggerCreate(_In):
    """A new trigger of deployment *deployment* (see ``mlcycle.entities.Trigger``)."""

    name: str = Field(max_length=128, examples=["churn-retrain"])
    deployment: str = Field(max_length=128, examples=["churn"])
    kinds: list[str]
    pipeline: str = Field(max_length=512, examples=["flows.retrain:train"])
    dataset: str = Field(max_length=256)
    target: str = Field(default="target", max_length=256)
    schedule: str | None = Field(default=None, max_length=128)
    monitor: str | None = Field(default=None, max_length=128)
    evaluation_data: str | None = Field(default=None, max_length=256)
    gates: dict[str, Any] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    canary: dict[str, Any] = Field(default_factory=dict)
    cooldown_s: int = Field(default=3_600, ge=0)
    enabled: bool = True
    description: str = ""
    seen_version: int | None = None

    def to_entity(self) -> Trigger:
        # The store sets the times; these placeholders never reach a row.
        return Trigger(created_at=_EPOCH, updated_at=_EPOCH, **self.model_dump())


class TriggerUpdate(_In):
    """Fields left out stay as they are."""

    enabled: bool | None = None
    seen_version: int | None = None

    def changes(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.model_fields_set}


class TriggerOut(_Out):
    name: str
    deployment: str
    kinds: list[str]
    pipeline: str
    dataset: str
    target: str
    schedule: str | None
    monitor: str | None
    evaluation_data: str | None
    gates: dict[str, Any]
    params: dict[str, Any]
    canary: dict[str, Any]
    cooldown_s: int
    enabled: bool
    description: str
    seen_version: int | None
    created_at: Millis
    updated_at: Millis

    @classmethod
    def from_entity(cls, tr: Trigger) -> TriggerOut:
        return cls(
            name=tr.name, deployment=tr.deployment, kinds=list(tr.kinds), pipeline=tr.pipeline,
            dataset=tr.dataset, target=tr.target, schedule=tr.schedule, monitor=tr.monitor,
            evaluation_data=tr.evaluation_data, gates=dict(tr.gates), params=dict(tr.params),
            canary=dict(tr.canary), cooldown_s=tr.cooldown_s, enabled=tr.enabled,
            description=tr.description, seen_version=tr.seen_version,
            created_at=to_ms(tr.created_at), updated_at=to_ms(tr.updated_at))


class TriggerList(_Out):
    triggers: list[TriggerOut] = Field(description="By name.")


class TriggerRunIn(_In):
    """Start a run: stored ``running``, or ``skipped`` with the reason (cool-down, another
    retraining of the deployment running)."""

    started_at: Millis
    cooldown_s: int = Field(ge=0)
    cause: dict[str, Any]

    def to_entity(self, trigger: str) -> TriggerRun:
        started = from_ms(self.started_at)
        assert started is not None
        return TriggerRun(run_id=0, trigger=trigger, deployment="", status="running",
                          started_at=started, cause=self.cause)


class TriggerRunUpdate(_In):
    """Progress or outcome of a running run; fields left out stay as they are."""

    status: str | None = Field(default=None, max_length=16)
    ended_at: Millis | None = None
    reason: str | None = None
    data: dict[str, Any] | None = None
    pipeline_run_id: str | None = Field(default=None, max_length=32)
    training_run_id: str | None = Field(default=None, max_length=32)
    model: str | None = Field(default=None, max_length=256)
    model_version: int | None = None
    gates: dict[str, Any] | None = None
    rollout: int | None = None

    def changes(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: getattr(self, k) for k in self.model_fields_set}
        if "ended_at" in out:
            out["ended_at"] = from_ms(out["ended_at"])
        for name in ("status", "reason", "data", "gates"):  # not nullable: null leaves alone
            if out.get(name, UNSET) is None:
                del out[name]
        return out


class TriggerRunOut(_Out):
    run_id: int
    trigger: str
    deployment: str
    status: str
    started_at: Millis
    cause: dict[str, Any]
    ended_at: Millis | None
    reason: str
    data: dict[str, Any]
    pipeline_run_id: str | None
    training_run_id: str | None
    model: str | None
    model_version: int | None
    gates: dict[str, Any]
    rollout: int | None

    @classmethod
    def from_entity(cls, r: TriggerRun) -> TriggerRunOut:
        return cls(
            run_id=r.run_id, trigger=r.trigger, deployment=r.deployment, status=r.status,
            started_at=to_ms(r.started_at), cause=dict(r.cause),
            ended_at=None if r.ended_at is None else to_ms(r.ended_at), reason=r.reason,
            data=dict(r.data), pipeline_run_id=r.pipeline_run_id,
            training_run_id=r.training_run_id, model=r.model, model_version=r.model_version,
            gates=dict(r.gates), rollout=r.rollout)


class TriggerRunList(_Out):
    runs: list[TriggerRunOut] = Field(description="Newest first.")
