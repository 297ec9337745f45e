"""The wire shapes of ``/api/v1/deployments``: ``XCreate`` / ``XUpdate`` come in, ``XOut`` goes
out.

Times are integer milliseconds since the Unix epoch, as everywhere in the API. Every write
carries the ``actor`` recorded on its event. The REST store turns these shapes back into
entities (:mod:`mlcycle.store.rest.deployments`). String lengths follow the columns of
``mlcycle.store.sql.tables``, so an oversized value is a 400 naming its field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, field_validator

from mlcycle.entities import Deployment, DeploymentEvent, WorkerReport, from_ms, to_ms
from mlcycle.server.schemas import Millis, _In, _not_null, _Out, _Patch

__all__ = [
    "DeploymentCreate",
    "DeploymentEventList",
    "DeploymentEventOut",
    "DeploymentList",
    "DeploymentOut",
    "DeploymentUpdate",
    "WorkerReportIn",
    "WorkerReportList",
    "WorkerReportOut",
]

Actor = Annotated[str | None, Field(default=None, max_length=256,
                                    description="Who makes the change (recorded on its event).")]
Version = Annotated[int, Field(ge=1, description="A version number of the deployment's model.")]
Percent = Annotated[float, Field(ge=0, le=100)]


class DeploymentCreate(_In):
    """A new deployment serving *model* version *version*, stable, at revision 1."""

    name: str = Field(max_length=128, examples=["churn"])
    model: str = Field(max_length=256, examples=["churn-classifier"])
    version: Version
    config: dict[str, Any] = Field(default_factory=dict)
    description: str = ""
    actor: Actor = None
    reason: str = ""


class DeploymentUpdate(_Patch):
    """A compare-and-set: applied only when the deployment is at ``expected_revision`` (409
    ``revision_conflict`` otherwise), together with its event. Fields left out stay; ``null``
    clears ``candidate_version`` or ``previous_version``."""

    expected_revision: int = Field(ge=1)
    event: str = Field(max_length=32, examples=["promoted"])
    reason: str = ""
    details: dict[str, Any] = Field(default_factory=dict)
    actor: Actor = None
    stable_version: Version | None = None
    candidate_version: Version | None = None
    previous_version: Version | None = None
    strategy: str | None = Field(default=None, max_length=16)
    phase: str | None = Field(default=None, max_length=16)
    weight: Percent | None = None
    step: int | None = Field(default=None, ge=0)
    rollout: int | None = Field(default=None, ge=0)
    config: dict[str, Any] | None = None
    description: str | None = None

    @field_validator("stable_version", "strategy", "phase", "weight", "step", "rollout",
                     "config", "description")
    @classmethod
    def _required_not_null(cls, value: Any) -> Any:
        return _not_null(value)

    def store_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``DeploymentStore.update_deployment``."""
        changes = self.changes()
        for name in ("expected_revision", "event", "reason", "details", "actor"):
            changes[name] = getattr(self, name)
        return changes


class DeploymentOut(_Out):
    name: str
    model: str
    stable_version: int
    candidate_version: int | None
    previous_version: int | None
    strategy: str
    phase: str
    weight: float
    step: int
    rollout: int
    config: dict[str, Any]
    description: str
    revision: int
    created_at: Millis
    updated_at: Millis

    @classmethod
    def from_entity(cls, d: Deployment) -> DeploymentOut:
        return cls(
            name=d.name, model=d.model, stable_version=d.stable_version,
            candidate_version=d.candidate_version, previous_version=d.previous_version,
            strategy=d.strategy, phase=d.phase, weight=d.weight, step=d.step,
            rollout=d.rollout, config=dict(d.config), description=d.description,
            revision=d.revision, created_at=to_ms(d.created_at), updated_at=to_ms(d.updated_at))


class DeploymentList(_Out):
    deployments: list[DeploymentOut] = Field(description="By name.")


class DeploymentEventOut(_Out):
    event_id: int
    deployment: str
    kind: str
    time: Millis
    revision: int
    reason: str
    actor: str | None
    details: dict[str, Any]

    @classmethod
    def from_entity(cls, e: DeploymentEvent) -> DeploymentEventOut:
        return cls(event_id=e.event_id, deployment=e.deployment, kind=e.kind,
                   time=to_ms(e.time), revision=e.revision, reason=e.reason, actor=e.actor,
                   details=dict(e.details))


class DeploymentEventList(_Out):
    events: list[DeploymentEventOut] = Field(description="Newest first.")


class WorkerReportIn(_In):
    """What one serving worker says about the deployment (replaces its previous report)."""

    heartbeat_at: Millis
    revision: int = Field(ge=0)
    rollout: int = Field(ge=0)
    ready_versions: list[int] = Field(default_factory=list)
    stats: dict[str, Any] = Field(default_factory=dict)
    info: dict[str, Any] = Field(default_factory=dict)

    def to_entity(self, deployment: str, worker_id: str) -> WorkerReport:
        return WorkerReport(deployment=deployment, worker_id=worker_id,
                            heartbeat_at=_time(self.heartbeat_at), revision=self.revision,
                            rollout=self.rollout, ready_versions=tuple(self.ready_versions),
                            stats=self.stats, info=self.info)


class WorkerReportOut(_Out):
    deployment: str
    worker_id: str
    heartbeat_at: Millis
    revision: int
    rollout: int
    ready_versions: list[int]
    stats: dict[str, Any]
    info: dict[str, Any]

    @classmethod
    def from_entity(cls, r: WorkerReport) -> WorkerReportOut:
        return cls(deployment=r.deployment, worker_id=r.worker_id,
                   heartbeat_at=to_ms(r.heartbeat_at), revision=r.revision, rollout=r.rollout,
                   ready_versions=list(r.ready_versions), stats=dict(r.stats),
                   info=dict(r.info))


class WorkerReportList(_Out):
    workers: list[WorkerReportOut] = Field(description="Newest heartbeat first.")


def _time(ms: int) -> datetime:
    out = from_ms(ms)
    assert out is not None
    return out
