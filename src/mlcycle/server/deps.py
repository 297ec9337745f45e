"""What the routes depend on: the tracking service, the dataset, registry and pipeline stores,
the access check, a fast JSON body.

These run on the event loop (``async def``, no I/O beyond reading the request) so that the
route itself is the one hop into the thread pool, where the synchronous stores run.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Depends, Request

from mlcycle.errors import InvalidInputError, InvalidStateError
from mlcycle.server.auth import TokenPolicy
from mlcycle.store.base import (
    DatasetStore,
    DeploymentStore,
    ModelRegistryStore,
    MonitorStore,
    PipelineStore,
    TriggerStore,
)
from mlcycle.tracking.service import TrackingService

__all__ = [
    "READ_ONLY",
    "Datasets",
    "Deployments",
    "Monitors",
    "Pipelines",
    "RawJSON",
    "Registry",
    "Service",
    "Triggers",
    "authorize",
]

#: ``openapi_extra`` of a POST route that only reads (a search, whose body is too big for a
#: query string), so that read-only tokens may call it. Every method other than GET and HEAD
#: counts as a write otherwise: a route added later is protected unless it says so itself.
READ_ONLY: dict[str, Any] = {"x-read-only": True}


async def get_service(request: Request) -> TrackingService:
    service: TrackingService = request.app.state.service
    return service


Service = Annotated[TrackingService, Depends(get_service)]


async def get_datasets(request: Request) -> DatasetStore:
    store: DatasetStore | None = request.app.state.datasets
    if store is None:
        raise InvalidStateError("this server keeps no datasets: its tracking store is not a SQL "
                                "store and no dataset store was handed to create_app")
    return store


Datasets = Annotated[DatasetStore, Depends(get_datasets)]


async def get_registry(request: Request) -> ModelRegistryStore:
    store: ModelRegistryStore | None = request.app.state.registry
    if store is None:
        raise InvalidStateError("this server keeps no model registry: its tracking store is not "
                                "a SQL store and no registry store was handed to create_app")
    return store


Registry = Annotated[ModelRegistryStore, Depends(get_registry)]


async def get_pipelines(request: Request) -> PipelineStore:
    store: PipelineStore | None = request.app.state.pipelines
    if store is None:
        raise InvalidStateError("this server keeps no pipeline records: its tracking store is "
                                "not a SQL store and no pipeline store was handed to create_app")
    return store


Pipelines = Annotated[PipelineStore, Depends(get_pipelines)]


async def get_deployments(request: Request) -> DeploymentStore:
    store: DeploymentStore | None = request.app.state.deployments
    if store is None:
        raise InvalidStateError("this server keeps no deployments: its tracking store is not a "
                                "SQL store and no deployment store was handed to create_app")
    return store


Deployments = Annotated[DeploymentStore, Depends(get_deployments)]


async def get_monitors(request: Request) -> MonitorStore:
    store: MonitorStore | None = request.app.state.monitors
    if store is None:
        raise InvalidStateError("this server keeps no monitors: its tracking store is not a "
                                "SQL store and no monitor store was handed to create_app")
    return store


Monitors = Annotated[MonitorStore, Depends(get_monitors)]


async def get_triggers(request: Request) -> TriggerStore:
    store: TriggerStore | None = request.app.state.triggers
    if store is None:
        raise InvalidStateError("this server keeps no triggers: its tracking store is not a "
                                "SQL store and no trigger store was handed to create_app")
    return store


Triggers = Annotated[TriggerStore, Depends(get_triggers)]


async def authorize(request: Request) -> None:
    """Raise ``AuthError`` / ``PermissionDenied`` unless the request's token allows it."""
    policy: TokenPolicy = request.app.state.tokens
    if not policy.enabled:
        return
    extra = getattr(request.scope.get("route"), "openapi_extra", None) or {}
    write = request.method not in ("GET", "HEAD") and not extra.get("x-read-only", False)
    policy.authorize(request.headers.get("authorization"), write=write)


async def json_body(request: Request) -> Any:
    """The request body decoded with orjson, without a pydantic model in between (the
    log-batch hot path checks its own shape)."""
    body = await request.body()
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"body: not valid JSON ({exc})",
                                details={"field": "body", "position": exc.pos}) from None


RawJSON = Annotated[Any, Depends(json_body)]
