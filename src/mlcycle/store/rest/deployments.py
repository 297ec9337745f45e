"""``RestDeploymentStore``: the deployments of a remote ``mlcycle server``, over its REST API.

Serving workers that follow a deployment on a server poll ``get_deployment`` and send
``report_worker`` through here; a compare-and-set the server refuses comes back as the same
``RevisionConflict`` the SQL store raises. Times are integer milliseconds on the wire; the
shapes are those of ``mlcycle.server.deployment_schemas``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from mlcycle.entities import (
    Deployment,
    DeploymentEvent,
    WorkerReport,
    from_ms,
    plain_json,
    to_ms,
)
from mlcycle.errors import DeploymentNotFound, InvalidInputError
from mlcycle.store.base import DeploymentStore
from mlcycle.store.rest._http import API, call, segment
from mlcycle.types import UNSET, JSONValue, Unset

__all__ = [
    "RestDeploymentStore",
    "deployment_event_from_wire",
    "deployment_from_wire",
    "worker_report_from_wire",
]


class RestDeploymentStore(DeploymentStore):
    """``RestDeploymentStore(http_client("http://host:8080", token=...))``.

    The client is usually the tracking store's (``open_deployment_store``), so it stays open on
    ``close()``: whoever made it closes it.
    """

    def __init__(self, client: httpx.Client) -> None:
        self.http = client

    def _call(self, method: str, path: str = "", **kwargs: Any) -> Any:
        return call(self.http, method, f"{API}/deployments{path}", **kwargs)

    @staticmethod
    def _path(name: str) -> str:
        # An empty name cannot be a path segment: the server would answer "no such endpoint".
        if not name:
            raise DeploymentNotFound(f"no deployment named {name!r}",
                                     details={"deployment": name})
        return f"/{segment(name)}"

    def create_deployment(
        self,
        name: str,
        *,
        model: str,
        version: int,
        config: Mapping[str, JSONValue] | None = None,
        description: str = "",
        actor: str | None = None,
        reason: str = "",
    ) -> Deployment:
        # JSON as the SQL store keeps it (non-finite floats spelled out): orjson would send null.
        body = {"name": name, "model": model, "version": version,
                "config": plain_json(dict(config or {}), "config"),
                "description": description, "actor": actor, "reason": reason}
        return deployment_from_wire(self._call("POST", body=body))

    def get_deployment(self, name: str) -> Deployment:
        return deployment_from_wire(self._call("GET", self._path(name)))

    def list_deployments(self) -> list[Deployment]:
        return [deployment_from_wire(d) for d in self._call("GET")["deployments"]]

    def update_deployment(
        self,
        name: str,
        *,
        expected_revision: int,
        event: str,
        reason: str = "",
        details: Mapping[str, JSONValue] | None = None,
        actor: str | None = None,
        stable_version: int | Unset = UNSET,
        candidate_version: int | Unset | None = UNSET,
        previous_version: int | Unset | None = UNSET,
        strategy: str | Unset = UNSET,
        phase: str | Unset = UNSET,
        weight: float | Unset = UNSET,
        step: int | Unset = UNSET,
        rollout: int | Unset = UNSET,
        config: Mapping[str, JSONValue] | Unset = UNSET,
        description: str | Unset = UNSET,
    ) -> Deployment:
        given = {
            "stable_version": stable_version, "candidate_version": candidate_version,
            "previous_version": previous_version, "strategy": strategy, "phase": phase,
            "weight": weight, "step": step, "rollout": rollout,
            "config": plain_json(dict(config), "config") if isinstance(config, Mapping)
            else config,
            "description": description,
        }
        body = {name: value for name, value in given.items() if value is not UNSET}
        body.update(expected_revision=expected_revision, event=event, reason=reason,
                    details=plain_json(dict(details or {}), "details"), actor=actor)
        return deployment_from_wire(self._call("PATCH", self._path(name), body=body))

    def delete_deployment(self, name: str) -> None:
        self._call("DELETE", self._path(name))

    def list_deployment_events(
        self, name: str, *, max_results: int = 100
    ) -> list[DeploymentEvent]:
        data = self._call("GET", f"{self._path(name)}/events",
                          params={"max_results": max_results})
        return [deployment_event_from_wire(e) for e in data["events"]]

    def report_worker(self, report: WorkerReport) -> None:
        if not report.worker_id:  # as the SQL store answers it, not as a missing route
            raise InvalidInputError(f"worker_id: expected 1 to 256 characters, got "
                                    f"{report.worker_id!r}", details={"field": "worker_id"})
        body = {"heartbeat_at": to_ms(report.heartbeat_at), "revision": report.revision,
                "rollout": report.rollout, "ready_versions": list(report.ready_versions),
                "stats": plain_json(dict(report.stats), "stats"),
                "info": plain_json(dict(report.info), "info")}
        self._call("PUT", f"{self._path(report.deployment)}/workers/{segment(report.worker_id)}",
                   body=body)

    def list_worker_reports(self, name: str) -> list[WorkerReport]:
        data = self._call("GET", f"{self._path(name)}/workers")
        return [worker_report_from_wire(r) for r in data["workers"]]


# --- wire → entities ------------------------------------------------------------------------


def deployment_from_wire(data: Mapping[str, Any]) -> Deployment:
    return Deployment(
        name=data["name"],
        model=data["model"],
        stable_version=data["stable_version"],
        revision=data["revision"],
        created_at=from_ms(data["created_at"]),  # type: ignore[arg-type]
        updated_at=from_ms(data["updated_at"]),  # type: ignore[arg-type]
        candidate_version=data.get("candidate_version"),
        previous_version=data.get("previous_version"),
        strategy=data.get("strategy", "direct"),
        phase=data.get("phase", "stable"),
        weight=float(data.get("weight", 0.0)),
        step=data.get("step", 0),
        rollout=data.get("rollout", 0),
        config=dict(data.get("config") or {}),
        description=data.get("description") or "",
    )


def deployment_event_from_wire(data: Mapping[str, Any]) -> DeploymentEvent:
    return DeploymentEvent(
        event_id=data["event_id"],
        deployment=data["deployment"],
        kind=data["kind"],
        time=from_ms(data["time"]),  # type: ignore[arg-type]
        revision=data["revision"],
        reason=data.get("reason") or "",
        actor=data.get("actor"),
        details=dict(data.get("details") or {}),
    )


def worker_report_from_wire(data: Mapping[str, Any]) -> WorkerReport:
    return WorkerReport(
        deployment=data["deployment"],
        worker_id=data["worker_id"],
        heartbeat_at=from_ms(data["heartbeat_at"]),  # type: ignore[arg-type]
        revision=data["revision"],
        rollout=data["rollout"],
        ready_versions=tuple(data.get("ready_versions") or ()),
        stats=dict(data.get("stats") or {}),
        info=dict(data.get("info") or {}),
    )
