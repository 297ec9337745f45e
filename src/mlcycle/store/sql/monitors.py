"""``SqlMonitorStore``: monitors, their results and alerts in SQLite or PostgreSQL.

A result is appended in the same transaction that sets its monitor's ``last_run_at`` and
``status``, so the scheduler and the next run's verdict-change check read one consistent row.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from mlcycle.entities import (
    Alert,
    Monitor,
    MonitorResult,
    check_alert,
    check_monitor,
    check_result,
    from_ms,
    now_ms,
    plain_json,
    to_ms,
)
from mlcycle.errors import InvalidInputError, MonitorAlreadyExists, MonitorNotFound, StoreError
from mlcycle.store.base import MonitorStore
from mlcycle.store.sql import tables as t
from mlcycle.store.sql.base import SqlStore

__all__ = ["SqlMonitorStore"]

_MAX_RESULTS = 10_000


class SqlMonitorStore(SqlStore, MonitorStore):
    """Monitors in the same database as the tracking store (one engine serves both)."""

    # --- monitors -------------------------------------------------------------------------
    def create_monitor(self, monitor: Monitor) -> Monitor:
        check_monitor(monitor)
        now = now_ms()
        row = {
            "name": monitor.name, "deployment": monitor.deployment,
            "checks": list(monitor.checks), "window_s": monitor.window_s,
            "interval_s": monitor.interval_s,
            "thresholds": plain_json(dict(monitor.thresholds), "thresholds"),
            "segments": dict(monitor.segments), "reference": monitor.reference,
            "task": monitor.task, "webhook_url": monitor.webhook_url,
            "enabled": monitor.enabled, "description": monitor.description,
            "created_at": now, "updated_at": now, "last_run_at": None, "status": None,
        }
        try:
            with self._write() as conn:
                conn.execute(insert(t.monitors).values(**row))
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise MonitorAlreadyExists(f"a monitor named {monitor.name!r} exists already",
                                           details={"monitor": monitor.name}) from None
            raise
        return _monitor(_Row(row))

    def get_monitor(self, name: str) -> Monitor:
        with self._read() as conn:
            row = conn.execute(select(t.monitors).where(t.monitors.c.name == name)).first()
        if row is None:
            raise _not_found(name)
        return _monitor(row)

    def list_monitors(self, *, deployment: str | None = None) -> list[Monitor]:
        q = select(t.monitors)
        if deployment is not None:
            q = q.where(t.monitors.c.deployment == deployment)
        with self._read() as conn:
            rows = conn.execute(q).all()
        # Sorted here, by code point: collations differ from one database to the next.
        return sorted((_monitor(r) for r in rows), key=lambda m: m.name)

    def set_monitor_enabled(self, name: str, enabled: bool) -> Monitor:
        if not isinstance(enabled, bool):
            raise InvalidInputError(f"enabled: expected true or false, got {enabled!r}",
                                    details={"field": "enabled"})
        m = t.monitors
        with self._write() as conn:
            done = conn.execute(update(m).where(m.c.name == name)
                                .values(enabled=enabled, updated_at=now_ms()))
            if done.rowcount == 0:
                raise _not_found(name)
            row = conn.execute(select(m).where(m.c.name == name)).one()
        return _monitor(row)

    def delete_monitor(self, name: str) -> None:
        with self._write() as conn:
            # Children first: SQLite only honours the declared cascade with foreign keys on.
            conn.execute(delete(t.monitor_results).where(t.monitor_results.c.monitor == name))
            conn.execute(delete(t.monitor_alerts).where(t.monitor_alerts.c.monitor == name))
            done = conn.execute(delete(t.monitors).where(t.monitors.c.name == name))
            if done.rowcount == 0:
                raise _not_found(name)

    # --- results --------------------------------------------------------------------------
    def log_result(self, result: MonitorResult) -> MonitorResult:
        check_result(result)
        row = {
            "monitor": result.monitor, "run_at": to_ms(result.run_at),
            "window_start": None if result.window_start is None else to_ms(result.window_start),
            "window_end": to_ms(result.window_end), "status": result.status,
            "metrics": {k: float(v) for k, v in result.metrics.items()},
            "details": plain_json(dict(result.details), "details"),
        }
        m = t.monitors
        with self._write() as conn:
            done = conn.execute(update(m).where(m.c.name == result.monitor).values(
                last_run_at=row["run_at"], status=result.status))
            if done.rowcount == 0:
                raise _not_found(result.monitor)
            result_id = conn.execute(insert(t.monitor_results).values(**row)
                                     .returning(t.monitor_results.c.result_id)).scalar_one()
        return _result(_Row({**row, "result_id": result_id}))

    def list_results(
        self,
        name: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        max_results: int = 100,
    ) -> list[MonitorResult]:
        _check_max(max_results)
        r = t.monitor_results
        q = select(r).where(r.c.monitor == name)
        if since is not None:
            q = q.where(r.c.run_at >= to_ms(since))
        if until is not None:
            q = q.where(r.c.run_at < to_ms(until))
        q = q.order_by(r.c.run_at.desc(), r.c.result_id.desc()).limit(max_results)
        with self._read() as conn:
            rows = conn.execute(q).all()
            if not rows:
                self._require(conn, name)
        return [_result(row) for row in rows]

    # --- alerts ---------------------------------------------------------------------------
    def log_alert(self, alert: Alert) -> Alert:
        check_alert(alert)
        row = {
            "monitor": alert.monitor, "at": to_ms(alert.time), "status": alert.status,
            "previous": alert.previous, "message": str(alert.message),
            "result_id": alert.result_id, "delivery": alert.delivery,
            "details": plain_json(dict(alert.details), "details"),
        }
        try:
            with self._write() as conn:
                alert_id = conn.execute(insert(t.monitor_alerts).values(**row)
                                        .returning(t.monitor_alerts.c.alert_id)).scalar_one()
        except StoreError as exc:  # the foreign key: no such monitor
            if isinstance(exc.__cause__, IntegrityError):
                raise _not_found(alert.monitor) from None
            raise
        return _alert(_Row({**row, "alert_id": alert_id}))

    def list_alerts(self, name: str, *, max_results: int = 100) -> list[Alert]:
        _check_max(max_results)
        a = t.monitor_alerts
        with self._read() as conn:
            rows = conn.execute(select(a).where(a.c.monitor == name)
                                .order_by(a.c.alert_id.desc()).limit(max_results)).all()
            if not rows:
                self._require(conn, name)
        return [_alert(row) for row in rows]

    @staticmethod
    def _require(conn: Any, name: str) -> None:
        if conn.execute(select(t.monitors.c.name).where(t.monitors.c.name == name)).first() \
                is None:
            raise _not_found(name)


def _check_max(max_results: Any) -> None:
    if isinstance(max_results, bool) or not isinstance(max_results, int) \
            or not 1 <= max_results <= _MAX_RESULTS:
        raise InvalidInputError(
            f"The 'max_results' parameter must be an int in [1, {_MAX_RESULTS}]. "
            f"Got {max_results!r} instead.", details={"field": "max_results"})


# --- rows ↔ entities ------------------------------------------------------------------------


class _Row:
    """A dict read like a result row, so a created record maps through the same code."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)


def _monitor(row: Any) -> Monitor:
    return Monitor(
        name=row.name,
        deployment=row.deployment,
        created_at=from_ms(row.created_at),  # type: ignore[arg-type]
        updated_at=from_ms(row.updated_at),  # type: ignore[arg-type]
        checks=tuple(row.checks),
        window_s=int(row.window_s),
        interval_s=int(row.interval_s),
        thresholds=dict(row.thresholds or {}),
        segments=dict(row.segments or {}),
        reference=row.reference,
        task=row.task,
        webhook_url=row.webhook_url,
        enabled=bool(row.enabled),
        description=row.description or "",
        last_run_at=from_ms(row.last_run_at),
        status=row.status,
    )


def _result(row: Any) -> MonitorResult:
    return MonitorResult(
        result_id=int(row.result_id),
        monitor=row.monitor,
        run_at=from_ms(row.run_at),  # type: ignore[arg-type]
        window_start=from_ms(row.window_start),
        window_end=from_ms(row.window_end),  # type: ignore[arg-type]
        status=row.status,
        metrics={k: float(v) for k, v in (row.metrics or {}).items()},
        details=dict(row.details or {}),
    )


def _alert(row: Any) -> Alert:
    return Alert(
        alert_id=int(row.alert_id),
        monitor=row.monitor,
        time=from_ms(row.at),  # type: ignore[arg-type]
        status=row.status,
        previous=row.previous,
        message=row.message,
        result_id=None if row.result_id is None else int(row.result_id),
        delivery=row.delivery,
        details=dict(row.details or {}),
    )


def _not_found(name: str) -> MonitorNotFound:
    return MonitorNotFound(f"no monitor named {name!r}", details={"monitor": name})
