"""The wire shapes of ``/api/v1/monitors``: ``XCreate`` / ``XIn`` come in, ``XOut`` goes out.

Times are integer milliseconds since the Unix epoch, as everywhere in the API. The REST store
turns these shapes back into entities (:mod:`mlcycle.store.rest.monitors`). String lengths follow
the columns of ``mlcycle.store.sql.tables``, so an oversized value is a 400 naming its field.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from mlcycle.entities import MONITOR_CHECKS, Alert, Monitor, MonitorResult, from_ms, to_ms
from mlcycle.server.schemas import Millis, _In, _Out

__all__ = [
    "AlertIn",
    "AlertList",
    "AlertOut",
    "MonitorCreate",
    "MonitorEnabled",
    "MonitorList",
    "MonitorOut",
    "MonitorResultIn",
    "MonitorResultList",
    "MonitorResultOut",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class MonitorCreate(_In):
    """A new monitor of deployment *deployment* (see ``mlcycle.entities.Monitor``)."""

    name: str = Field(max_length=128, examples=["churn-daily"])
    deployment: str = Field(max_length=128, examples=["churn"])
    checks: list[str] = Field(default_factory=lambda: list(MONITOR_CHECKS))
    window_s: int = Field(default=86_400, ge=1)
    interval_s: int = Field(default=3_600, ge=1)
    thresholds: dict[str, Any] = Field(default_factory=dict)
    segments: dict[str, str] = Field(default_factory=dict)
    reference: str | None = Field(default=None, max_length=256)
    task: str | None = Field(default=None, max_length=32)
    webhook_url: str | None = Field(default=None, max_length=4096)
    enabled: bool = True
    description: str = ""

    def to_entity(self) -> Monitor:
        # The store sets the times; these placeholders never reach a row.
        return Monitor(created_at=_EPOCH, updated_at=_EPOCH, **self.model_dump())


class MonitorEnabled(_In):
    """Pause (``false``) or resume the scheduled runs."""

    enabled: bool


class MonitorOut(_Out):
    name: str
    deployment: str
    checks: list[str]
    window_s: int
    interval_s: int
    thresholds: dict[str, Any]
    segments: dict[str, str]
    reference: str | None
    task: str | None
    webhook_url: str | None
    enabled: bool
    description: str
    created_at: Millis
    updated_at: Millis
    last_run_at: Millis | None
    status: str | None

    @classmethod
    def from_entity(cls, m: Monitor) -> MonitorOut:
        return cls(
            name=m.name, deployment=m.deployment, checks=list(m.checks), window_s=m.window_s,
            interval_s=m.interval_s, thresholds=dict(m.thresholds), segments=dict(m.segments),
            reference=m.reference, task=m.task, webhook_url=m.webhook_url, enabled=m.enabled,
            description=m.description, created_at=to_ms(m.created_at),
            updated_at=to_ms(m.updated_at),
            last_run_at=None if m.last_run_at is None else to_ms(m.last_run_at), status=m.status)


class MonitorList(_Out):
    monitors: list[MonitorOut] = Field(description="By name.")


class MonitorResultIn(_In):
    """One run of the monitor, computed by whoever ran it (``mlcycle monitor run``)."""

    run_at: Millis
    window_start: Millis | None = None
    window_end: Millis
    status: str = Field(max_length=16)
    metrics: dict[str, float] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)

    def to_entity(self, monitor: str) -> MonitorResult:
        return MonitorResult(result_id=0, monitor=monitor, run_at=_time(self.run_at),
                             window_start=from_ms(self.window_start),
                             window_end=_time(self.window_end), status=self.status,
                             metrics=self.metrics, details=self.details)


class MonitorResultOut(_Out):
    result_id: int
    monitor: str
    run_at: Millis
    window_start: Millis | None
    window_end: Millis
    status: str
    metrics: dict[str, float]
    details: dict[str, Any]

    @classmethod
    def from_entity(cls, r: MonitorResult) -> MonitorResultOut:
        return cls(result_id=r.result_id, monitor=r.monitor, run_at=to_ms(r.run_at),
                   window_start=None if r.window_start is None else to_ms(r.window_start),
                   window_end=to_ms(r.window_end), status=r.status, metrics=dict(r.metrics),
                   details=dict(r.details))


class MonitorResultList(_Out):
    results: list[MonitorResultOut] = Field(description="Newest first.")


class AlertIn(_In):
    time: Millis
    status: str = Field(max_length=16)
    previous: str | None = Field(default=None, max_length=16)
    message: str
    result_id: int | None = None
    delivery: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    def to_entity(self, monitor: str) -> Alert:
        return Alert(alert_id=0, monitor=monitor, time=_time(self.time), status=self.status,
                     previous=self.previous, message=self.message, result_id=self.result_id,
                     delivery=self.delivery, details=self.details)


class AlertOut(_Out):
    alert_id: int
    monitor: str
    time: Millis
    status: str
    previous: str | None
    message: str
    result_id: int | None
    delivery: str | None
    details: dict[str, Any]

    @classmethod
    def from_entity(cls, a: Alert) -> AlertOut:
        return cls(alert_id=a.alert_id, monitor=a.monitor, time=to_ms(a.time), status=a.status,
                   previous=a.previous, message=a.message, result_id=a.result_id,
                   delivery=a.delivery, details=dict(a.details))


class AlertList(_Out):
    alerts: list[AlertOut] = Field(description="Newest first.")


def _time(ms: int) -> datetime:
    out = from_ms(ms)
    assert out is not None
    return out
