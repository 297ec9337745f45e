"""``RestTriggerStore``: the triggers of a remote ``mlcycle server``, over its REST API.

The guards run on the server, in its database: a run started here is ``running`` or
``skipped`` exactly as it would be locally. Input is checked as the SQL store checks it before
anything is sent, so both refuse the same trigger with the same message. Times are integer
milliseconds on the wire; the shapes are those of ``mlcycle.server.trigger_schemas``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from mlcycle.entities import (
    Trigger,
    TriggerRun,
    check_trigger,
    check_trigger_run,
    from_ms,
    plain_json,
    to_ms,
)
from mlcycle.errors import TriggerNotFound
from mlcycle.store.base import TriggerStore
from mlcycle.store.rest._http import API, call, segment
from mlcycle.types import UNSET, JSONValue, Unset

__all__ = ["RestTriggerStore", "run_from_wire", "trigger_from_wire"]


class RestTriggerStore(TriggerStore):
    """``RestTriggerStore(http_client("http://host:8080", token=...))``; the client belongs to
    whoever made it (usually the tracking store), so ``close()`` leaves it open."""

    def __init__(self, client: httpx.Client) -> None:
        self.http = client

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return call(self.http, method, f"{API}{path}", **kwargs)

    @staticmethod
    def _path(name: str) -> str:
        if not name:  # an empty segment would be "no such endpoint", not "no such trigger"
            raise TriggerNotFound(f"no trigger named {name!r}", details={"trigger": name})
        return f"/triggers/{segment(name)}"

    def create_trigger(self, trigger: Trigger) -> Trigger:
        check_trigger(trigger)
        body = {
            "name": trigger.name, "deployment": trigger.deployment,
            "kinds": list(trigger.kinds), "pipeline": trigger.pipeline,
            "dataset": trigger.dataset, "target": trigger.target,
            "schedule": trigger.schedule, "monitor": trigger.monitor,
            "evaluation_data": trigger.evaluation_data,
            "gates": plain_json(dict(trigger.gates), "gates"),
            "params": plain_json(dict(trigger.params), "params"),
            "canary": plain_json(dict(trigger.canary), "canary"),
            "cooldown_s": trigger.cooldown_s, "enabled": trigger.enabled,
            "description": trigger.description, "seen_version": trigger.seen_version,
        }
        return trigger_from_wire(self._call("POST", "/triggers", body=body))

    def get_trigger(self, name: str) -> Trigger:
        return trigger_from_wire(self._call("GET", self._path(name)))

    def list_triggers(self, *, deployment: str | None = None) -> list[Trigger]:
        params = {} if deployment is None else {"deployment": deployment}
        return [trigger_from_wire(tr)
                for tr in self._call("GET", "/triggers", params=params)["triggers"]]

    def update_trigger(self, name: str, *, enabled: bool | Unset = UNSET,
                       seen_version: int | Unset | None = UNSET) -> Trigger:
        body = {k: v for k, v in (("enabled", enabled), ("seen_version", seen_version))
                if not isinstance(v, Unset)}
        return trigger_from_wire(self._call("PATCH", self._path(name), body=body))

    def delete_trigger(self, name: str) -> None:
        self._call("DELETE", self._path(name))

    def start_run(self, run: TriggerRun, *, cooldown_s: int) -> TriggerRun:
        check_trigger_run(run)
        body = {"started_at": to_ms(run.started_at), "cooldown_s": cooldown_s,
                "cause": plain_json(dict(run.cause), "cause")}
        return run_from_wire(self._call("POST", f"{self._path(run.trigger)}/runs", body=body))

    def update_run(
        self,
        run_id: int,
        *,
        status: str | Unset = UNSET,
        ended_at: datetime | Unset | None = UNSET,
        reason: str | Unset = UNSET,
        data: Mapping[str, JSONValue] | Unset = UNSET,
        pipeline_run_id: str | Unset | None = UNSET,
        training_run_id: str | Unset | None = UNSET,
        model: str | Unset | None = UNSET,
        model_version: int | Unset | None = UNSET,
        gates: Mapping[str, JSONValue] | Unset = UNSET,
        rollout: int | Unset | None = UNSET,
    ) -> TriggerRun:
        given: dict[str, Any] = {
            "status": status, "reason": reason, "pipeline_run_id": pipeline_run_id,
            "training_run_id": training_run_id, "model": model, "model_version": model_version,
            "rollout": rollout}
        body = {k: v for k, v in given.items() if not isinstance(v, Unset)}
        if not isinstance(ended_at, Unset):
            body["ended_at"] = None if ended_at is None else to_ms(ended_at)
        for name, value in (("data", data), ("gates", gates)):
            if not isinstance(value, Unset):
                body[name] = plain_json(dict(value), name)
        return run_from_wire(self._call("PATCH", f"/trigger-runs/{int(run_id)}", body=body))

    def get_run(self, run_id: int) -> TriggerRun:
        return run_from_wire(self._call("GET", f"/trigger-runs/{int(run_id)}"))

    def list_runs(self, trigger: str | None = None, *, deployment: str | None = None,
                  max_results: int = 100) -> list[TriggerRun]:
        params: dict[str, Any] = {"max_results": max_results}
        if trigger is not None:
            runs = self._call("GET", f"{self._path(trigger)}/runs", params=params)["runs"]
            return [run_from_wire(r) for r in runs
                    if deployment is None or r["deployment"] == deployment]
        if deployment is not None:
            params["deployment"] = deployment
        return [run_from_wire(r) for r in self._call("GET", "/trigger-runs",
                                                     params=params)["runs"]]


# --- wire → entities ------------------------------------------------------------------------


def trigger_from_wire(data: Mapping[str, Any]) -> Trigger:
    return Trigger(
        name=data["name"],
        deployment=data["deployment"],
        kinds=tuple(data["kinds"]),
        pipeline=data["pipeline"],
        dataset=data["dataset"],
        created_at=from_ms(data["created_at"]),  # type: ignore[arg-type]
        updated_at=from_ms(data["updated_at"]),  # type: ignore[arg-type]
        target=data.get("target") or "target",
        schedule=data.get("schedule"),
        monitor=data.get("monitor"),
        evaluation_data=data.get("evaluation_data"),
        gates=dict(data.get("gates") or {}),
        params=dict(data.get("params") or {}),
        canary=dict(data.get("canary") or {}),
        cooldown_s=data["cooldown_s"],
        enabled=data.get("enabled", True),
        description=data.get("description") or "",
        seen_version=data.get("seen_version"),
    )


def run_from_wire(data: Mapping[str, Any]) -> TriggerRun:
    return TriggerRun(
        run_id=data["run_id"],
        trigger=data["trigger"],
        deployment=data["deployment"],
        status=data["status"],
        started_at=from_ms(data["started_at"]),  # type: ignore[arg-type]
        cause=dict(data.get("cause") or {}),
        ended_at=from_ms(data.get("ended_at")),
        reason=data.get("reason") or "",
        data=dict(data.get("data") or {}),
        pipeline_run_id=data.get("pipeline_run_id"),
        training_run_id=data.get("training_run_id"),
        model=data.get("model"),
        model_version=data.get("model_version"),
        gates=dict(data.get("gates") or {}),
        rollout=data.get("rollout"),
    )
