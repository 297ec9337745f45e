"""``RestModelRegistryStore``: the model registry of a remote ``mlcycle server``, over its REST
API (``/api/v1/models``).

The server's store checks names and aliases, numbers versions and records every change (and
every refused write) as an event, so this client only translates: entities to the shapes of
``mlcycle.server.registry_schemas`` and back (the ``*_from_wire`` functions), errors through
``mlcycle.store.rest._http``. Times are integer milliseconds on the wire.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from mlcycle.entities import (
    ModelEvent,
    ModelVersion,
    RegisteredModel,
    RunInput,
    check_alias,
    from_ms,
    plain_json,
)
from mlcycle.errors import ModelAliasNotFound, ModelNotFound, ModelVersionNotFound
from mlcycle.store.base import ModelRegistryStore
from mlcycle.store.rest._http import API, call, segment
from mlcycle.types import UNSET, JSONValue, Unset

__all__ = [
    "RestModelRegistryStore",
    "event_from_wire",
    "model_from_wire",
    "model_version_from_wire",
]


class RestModelRegistryStore(ModelRegistryStore):
    """``RestModelRegistryStore(http_client("http://host:8080", token=...))``.

    The client is usually the tracking store's (``open_registry_store``), so it stays open on
    ``close()``: whoever made it closes it.
    """

    def __init__(self, client: httpx.Client) -> None:
        self.http = client

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return call(self.http, method, f"{API}/models/{path}", **kwargs)

    @staticmethod
    def _name(name: str) -> str:
        # An empty name or one with "/" cannot be one path segment, so the server could only
        # answer "no such endpoint"; no model can have such a name anyway.
        if not name or "/" in name:
            raise ModelNotFound(f"no model named {name!r}", details={"model": name})
        return segment(name)

    @staticmethod
    def _alias(name: str, alias: str) -> str:
        if not alias or "/" in alias:
            raise ModelAliasNotFound(f"model {name!r} has no alias {alias!r}",
                                     details={"model": name, "alias": alias})
        return segment(alias)

    # --- models ---------------------------------------------------------------------------
    def create_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        actor: str | None = None,
    ) -> RegisteredModel:
        body = {"name": name, "description": description, "tags": dict(tags or {}),
                "actor": actor}
        return model_from_wire(call(self.http, "POST", f"{API}/models", body=body))

    def find_model(self, name: str) -> RegisteredModel | None:
        try:
            return self.get_model(name)
        except ModelNotFound:
            return None

    def get_model(self, name: str) -> RegisteredModel:
        return model_from_wire(self._call("GET", self._name(name)))

    def list_models(self, *, name_contains: str | None = None) -> list[RegisteredModel]:
        params = {"name_contains": name_contains} if name_contains else None
        data = call(self.http, "GET", f"{API}/models", params=params)
        return [model_from_wire(m) for m in data["models"]]

    def update_model(
        self,
        name: str,
        *,
        description: str | Unset | None = UNSET,
        tags: Mapping[str, str | None] | None = None,
        actor: str | None = None,
    ) -> RegisteredModel:
        body: dict[str, Any] = {"tags": dict(tags or {}), "actor": actor}
        if description is not UNSET:
            body["description"] = description
        return model_from_wire(self._call("PATCH", self._name(name), body=body))

    # --- versions -------------------------------------------------------------------------
    def create_version(
        self,
        name: str,
        *,
        source: str,
        run_id: str | None = None,
        manifest_digest: str | None = None,
        flavor: str | None = None,
        signature: Mapping[str, Any] | None = None,
        code_commit: str | None = None,
        datasets: Sequence[RunInput] = (),
        contract: str | None = None,
        evaluation: Mapping[str, JSONValue] | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        actor: str | None = None,
    ) -> ModelVersion:
        body = {
            "source": source,
            "run_id": run_id,
            "manifest_digest": manifest_digest,
            "flavor": flavor,
            "signature": plain_json(dict(signature or {}), "signature"),
            "code_commit": code_commit,
            "datasets": [{"dataset": d.dataset, "version": d.version, "digest": d.digest,
                          "context": plain_json(dict(d.context), "datasets.context")}
                         for d in datasets],
            "contract": contract,
            "evaluation": plain_json(dict(evaluation or {}), "evaluation"),
            "description": description,
            "tags": dict(tags or {}),
            "actor": actor,
        }
        return model_version_from_wire(
            self._call("POST", f"{self._name(name)}/versions", body=body))

    def get_version(self, name: str, version: int) -> ModelVersion:
        if version < 0:  # the route matches digits only; no version is negative
            raise ModelVersionNotFound(f"model {name!r} has no version {version}",
                                       details={"model": name, "version": version})
        return model_version_from_wire(
            self._call("GET", f"{self._name(name)}/versions/{int(version)}"))

    def list_versions(self, name: str, *, include_archived: bool = True) -> list[ModelVersion]:
        data = self._call("GET", f"{self._name(name)}/versions",
                          params={"include_archived": str(include_archived).lower()})
        return [model_version_from_wire(v) for v in data["versions"]]

    def update_version(
        self,
        name: str,
        version: int,
        *,
        description: str | Unset | None = UNSET,
        tags: Mapping[str, str | None] | None = None,
        evaluation: Mapping[str, JSONValue] | None = None,
        actor: str | None = None,
    ) -> ModelVersion:
        body: dict[str, Any] = {"tags": dict(tags or {}), "actor": actor,
                                "evaluation": plain_json(dict(evaluation or {}), "evaluation")}
        if description is not UNSET:
            body["description"] = description
        return model_version_from_wire(
            self._call("PATCH", f"{self._name(name)}/versions/{int(version)}", body=body))

    def set_version_status(
        self, name: str, version: int, status: str, *, actor: str | None = None
    ) -> ModelVersion:
        return model_version_from_wire(self._call(
            "PUT", f"{self._name(name)}/versions/{int(version)}/status",
            body={"status": status, "actor": actor}))

    # --- aliases --------------------------------------------------------------------------
    def set_alias(
        self, name: str, alias: str, version: int, *, actor: str | None = None
    ) -> ModelVersion:
        if not alias or "/" in alias:  # no route would match; the rule says why it is wrong
            check_alias(alias)
        return model_version_from_wire(self._call(
            "PUT", f"{self._name(name)}/aliases/{segment(alias)}",
            body={"version": version, "actor": actor}))

    def delete_alias(self, name: str, alias: str, *, actor: str | None = None) -> int:
        params = {"actor": actor} if actor else None
        data = self._call("DELETE", f"{self._name(name)}/aliases/{self._alias(name, alias)}",
                          params=params)
        return int(data["version"])

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return model_version_from_wire(
            self._call("GET", f"{self._name(name)}/aliases/{self._alias(name, alias)}"))

    # --- events ---------------------------------------------------------------------------
    def list_events(
        self, name: str, *, version: int | None = None, max_results: int = 100
    ) -> list[ModelEvent]:
        params: dict[str, Any] = {"max_results": max(1, min(int(max_results), 10_000))}
        if version is not None:
            params["version"] = version
        data = self._call("GET", f"{self._name(name)}/events", params=params)
        return [event_from_wire(e) for e in data["events"]]

    def log_event(
        self,
        name: str,
        kind: str,
        *,
        version: int | None = None,
        alias: str | None = None,
        details: Mapping[str, JSONValue] | None = None,
        actor: str | None = None,
    ) -> ModelEvent:
        body = {"kind": kind, "version": version, "alias": alias,
                "details": plain_json(dict(details or {}), "details"), "actor": actor}
        return event_from_wire(self._call("POST", f"{self._name(name)}/events", body=body))


# --- wire → entities ------------------------------------------------------------------------


def model_from_wire(data: Mapping[str, Any]) -> RegisteredModel:
    return RegisteredModel(
        name=data["name"],
        created_at=from_ms(data["created_at"]),  # type: ignore[arg-type]
        updated_at=from_ms(data["updated_at"]),  # type: ignore[arg-type]
        created_by=data.get("created_by"),
        description=data.get("description"),
        tags=dict(data.get("tags") or {}),
        aliases={str(k): int(v) for k, v in (data.get("aliases") or {}).items()},
        latest_version=data.get("latest_version"),
    )


def model_version_from_wire(data: Mapping[str, Any]) -> ModelVersion:
    return ModelVersion(
        name=data["name"],
        version=data["version"],
        source=data["source"],
        created_at=from_ms(data["created_at"]),  # type: ignore[arg-type]
        created_by=data.get("created_by"),
        run_id=data.get("run_id"),
        manifest_digest=data.get("manifest_digest"),
        flavor=data.get("flavor"),
        signature=dict(data.get("signature") or {}),
        status=data.get("status", "active"),
        aliases=tuple(data.get("aliases") or ()),
        description=data.get("description"),
        tags=dict(data.get("tags") or {}),
        code_commit=data.get("code_commit"),
        datasets=tuple(RunInput(d["dataset"], d["version"], d.get("digest"),
                                dict(d.get("context") or {}))
                       for d in data.get("datasets") or ()),
        contract=data.get("contract"),
        evaluation=dict(data.get("evaluation") or {}),
    )


def event_from_wire(data: Mapping[str, Any]) -> ModelEvent:
    return ModelEvent(
        event_id=int(data["event_id"]),
        kind=data["kind"],
        model=data["model"],
        at=from_ms(data["at"]),  # type: ignore[arg-type]
        actor=data.get("actor"),
        version=data.get("version"),
        alias=data.get("alias"),
        details=dict(data.get("details") or {}),
    )
