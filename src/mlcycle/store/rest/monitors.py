"""``RestMonitorStore``: the monitors of a remote ``mlcycle server``, over its REST API.

``mlcycle monitor run`` against a server reads the prediction logs where it runs and stores the
result there through here. Input is checked as the SQL store checks it before anything is sent,
so both refuse the same monitor with the same message. Times are integer milliseconds on the
wire; the shapes are those of ``mlcycle.server.monitor_schemas``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from mlcycle.entities import (
    Alert,
    Monitor,
    MonitorResult,
    check_alert,
    check_monitor,
    check_result,
    from_ms,
    plain_json,
    to_ms,
)
from mlcycle.errors import MonitorNotFound
from mlcycle.store.base import MonitorStore
from mlcycle.store.rest._http import API, call, segment

__all__ = ["RestMonitorStore", "alert_from_wire", "monitor_from_wire", "result_from_wire"]


class RestMonitorStore(MonitorStore):
    """``RestMonitorStore(http_client("http://host:8080", token=...))``; the client belongs to
    whoever made it (usually the tracking store), so ``close()`` leaves it open."""

    def __init__(self, client: httpx.Client) -> None:
        self.http = client

    def _call(self, method: str, path: str = "", **kwargs: Any) -> Any:
        return call(self.http, method, f"{API}/monitors{path}", **kwargs)

    @staticmethod
    def _path(name: str) -> str:
        if not name:  # an empty segment would be "no such endpoint", not "no such monitor"
            raise MonitorNotFound(f"no monitor named {name!r}", details={"monitor": name})
        return f"/{segment(name)}"

    def create_monitor(self, monitor: Monitor) -> Monitor:
        check_monitor(monitor)
        body = {
            "name": monitor.name, "deployment": monitor.deployment,
            "checks": list(monitor.checks), "window_s": monitor.window_s,
            "interval_s": monitor.interval_s,
            "thresholds": plain_json(dict(monitor.thresholds), "thresholds"),
            "segments": dict(monitor.segments), "reference": monitor.reference,
            "task": monitor.task, "webhook_url": monitor.webhook_url,
            "enabled": monitor.enabled, "description": monitor.description,
        }
        return monitor_from_wire(self._call("POST", body=body))

    def get_monitor(self, name: str) -> Monitor:
        return monitor_from_wire(self._call("GET", self._path(name)))

    def list_monitors(self, *, deployment: str | None = None) -> list[Monitor]:
        params = {} if deployment is None else {"deployment": deployment}
        return [monitor_from_wire(m) for m in self._call("GET", params=params)["monitors"]]

    def set_monitor_enabled(self, name: str, enabled: bool) -> Monitor:
        return monitor_from_wire(self._call("PUT", f"{self._path(name)}/enabled",
                                            body={"enabled": enabled}))

    def delete_monitor(self, name: str) -> None:
        self._call("DELETE", self._path(name))

    def log_result(self, result: MonitorResult) -> MonitorResult:
        check_result(result)
        body = {
            "run_at": to_ms(result.run_at),
            "window_start": None if result.window_start is None else to_ms(result.window_start),
            "window_end": to_ms(result.window_end), "status": result.status,
            "metrics": {k: float(v) for k, v in result.metrics.items()},
            "details": plain_json(dict(result.details), "details"),
        }
        return result_from_wire(self._call("POST", f"{self._path(result.monitor)}/results",
                                           body=body))

    def list_results(
        self,
        name: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        max_results: int = 100,
    ) -> list[MonitorResult]:
        params: dict[str, Any] = {"max_results": max_results}
        if since is not None:
            params["since"] = to_ms(since)
        if until is not None:
            params["until"] = to_ms(until)
        data = self._call("GET", f"{self._path(name)}/results", params=params)
        return [result_from_wire(r) for r in data["results"]]

    def log_alert(self, alert: Alert) -> Alert:
        check_alert(alert)
        body = {"time": to_ms(alert.time), "status": alert.status, "previous": alert.previous,
                "message": alert.message, "result_id": alert.result_id,
                "delivery": alert.delivery,
                "details": plain_json(dict(alert.details), "details")}
        return alert_from_wire(self._call("POST", f"{self._path(alert.monitor)}/alerts",
                                          body=body))

    def list_alerts(self, name: str, *, max_results: int = 100) -> list[Alert]:
        data = self._call("GET", f"{self._path(name)}/alerts",
                          params={"max_results": max_results})
        return [alert_from_wire(a) for a in data["alerts"]]


# --- wire → entities ------------------------------------------------------------------------


def monitor_from_wire(data: Mapping[str, Any]) -> Monitor:
    return Monitor(
        name=data["name"],
        deployment=data["deployment"],
        created_at=from_ms(data["created_at"]),  # type: ignore[arg-type]
        updated_at=from_ms(data["updated_at"]),  # type: ignore[arg-type]
        checks=tuple(data["checks"]),
        window_s=data["window_s"],
        interval_s=data["interval_s"],
        thresholds=dict(data.get("thresholds") or {}),
        segments=dict(data.get("segments") or {}),
        reference=data.get("reference"),
        task=data.get("task"),
        webhook_url=data.get("webhook_url"),
        enabled=data.get("enabled", True),
        description=data.get("description") or "",
        last_run_at=from_ms(data.get("last_run_at")),
        status=data.get("status"),
    )


def result_from_wire(data: Mapping[str, Any]) -> MonitorResult:
    return MonitorResult(
        result_id=data["result_id"],
        monitor=data["monitor"],
        run_at=from_ms(data["run_at"]),  # type: ignore[arg-type]
        window_start=from_ms(data.get("window_start")),
        window_end=from_ms(data["window_end"]),  # type: ignore[arg-type]
        status=data["status"],
        metrics={k: float(v) for k, v in (data.get("metrics") or {}).items()},
        details=dict(data.get("details") or {}),
    )


def alert_from_wire(data: Mapping[str, Any]) -> Alert:
    return Alert(
        alert_id=data["alert_id"],
        monitor=data["monitor"],
        time=from_ms(data["time"]),  # type: ignore[arg-type]
        status=data["status"],
        previous=data.get("previous"),
        message=data.get("message") or "",
        result_id=data.get("result_id"),
        delivery=data.get("delivery"),
        details=dict(data.get("details") or {}),
    )
