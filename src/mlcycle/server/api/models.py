"""``/api/v1/models``: registered models, their versions, aliases and events.

The routes hand each request to the registry store, which checks names and aliases, numbers
versions and writes every change with its event in one transaction (and records a refused
write as a ``rejected`` event). Who made a change is the ``actor`` of the request body.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from mlcycle.server.deps import Registry
from mlcycle.server.registry_schemas import (
    AliasDeleted,
    AliasSet,
    EventCreate,
    EventList,
    EventOut,
    ModelCreate,
    ModelList,
    ModelOut,
    ModelUpdate,
    ModelVersionCreate,
    ModelVersionList,
    ModelVersionOut,
    ModelVersionUpdate,
    StatusUpdate,
)
from mlcycle.types import UNSET

router = APIRouter(prefix="/models", tags=["models"])


@router.get("")
def list_models(store: Registry, name_contains: str | None = None) -> ModelList:
    """Models by name; ``name_contains`` keeps those whose name holds it (case ignored)."""
    found = store.list_models(name_contains=name_contains)
    return ModelList(models=[ModelOut.from_entity(m) for m in found])


@router.post("", status_code=201)
def create_model(body: ModelCreate, store: Registry) -> ModelOut:
    model = store.create_model(body.name, description=body.description, tags=body.tags,
                               actor=body.actor)
    return ModelOut.from_entity(model)


@router.get("/{name}")
def get_model(name: str, store: Registry) -> ModelOut:
    return ModelOut.from_entity(store.get_model(name))


@router.patch("/{name}")
def update_model(name: str, body: ModelUpdate, store: Registry) -> ModelOut:
    changes = body.changes()
    model = store.update_model(name, description=changes.get("description", UNSET),
                               tags=body.tags, actor=body.actor)
    return ModelOut.from_entity(model)


# --- versions -------------------------------------------------------------------------------


@router.post("/{name}/versions", status_code=201)
def create_version(name: str, body: ModelVersionCreate, store: Registry) -> ModelVersionOut:
    """Register the next version (the model is created with its first)."""
    return ModelVersionOut.from_entity(store.create_version(name, **body.store_kwargs()))


@router.get("/{name}/versions")
def list_versions(name: str, store: Registry, include_archived: bool = True
                  ) -> ModelVersionList:
    """The versions, newest first."""
    versions = store.list_versions(name, include_archived=include_archived)
    return ModelVersionList(versions=[ModelVersionOut.from_entity(v) for v in versions])


@router.get("/{name}/versions/{version:int}")
def get_version(name: str, version: int, store: Registry) -> ModelVersionOut:
    return ModelVersionOut.from_entity(store.get_version(name, version))


@router.patch("/{name}/versions/{version:int}")
def update_version(name: str, version: int, body: ModelVersionUpdate, store: Registry
                   ) -> ModelVersionOut:
    """Change the description or tags, or add evaluation results."""
    changes = body.changes()
    updated = store.update_version(name, version,
                                   description=changes.get("description", UNSET),
                                   tags=body.tags, evaluation=body.evaluation, actor=body.actor)
    return ModelVersionOut.from_entity(updated)


@router.put("/{name}/versions/{version:int}/status")
def set_version_status(name: str, version: int, body: StatusUpdate, store: Registry
                       ) -> ModelVersionOut:
    """Archive or restore a version (archiving one an alias points at is refused)."""
    updated = store.set_version_status(name, version, body.status, actor=body.actor)
    return ModelVersionOut.from_entity(updated)


# --- aliases --------------------------------------------------------------------------------


@router.get("/{name}/aliases/{alias}")
def get_version_by_alias(name: str, alias: str, store: Registry) -> ModelVersionOut:
    return ModelVersionOut.from_entity(store.get_version_by_alias(name, alias))


@router.put("/{name}/aliases/{alias}")
def set_alias(name: str, alias: str, body: AliasSet, store: Registry) -> ModelVersionOut:
    """Point the alias at a version, moving it if it pointed elsewhere."""
    version = store.set_alias(name, alias, body.version, actor=body.actor)
    return ModelVersionOut.from_entity(version)


@router.delete("/{name}/aliases/{alias}")
def delete_alias(name: str, alias: str, store: Registry,
                 actor: Annotated[str | None, Query(max_length=256)] = None) -> AliasDeleted:
    return AliasDeleted(alias=alias, version=store.delete_alias(name, alias, actor=actor))


# --- events ---------------------------------------------------------------------------------


@router.get("/{name}/events")
def list_events(name: str, store: Registry, version: int | None = None,
                max_results: Annotated[int, Query(ge=1, le=10_000)] = 100) -> EventList:
    """The model's history, newest first (refused writes included)."""
    events = store.list_events(name, version=version, max_results=max_results)
    return EventList(events=[EventOut.from_entity(e) for e in events])


@router.post("/{name}/events", status_code=201)
def log_event(name: str, body: EventCreate, store: Registry) -> EventOut:
    """Record a write a client refused before sending it (``kind: rejected``)."""
    event = store.log_event(name, body.kind, version=body.version, alias=body.alias,
                            details=body.details, actor=body.actor)
    return EventOut.from_entity(event)
