"""The wire shapes of ``/api/v1/models``: ``XCreate`` / ``XUpdate`` come in, ``XOut`` goes out.

Times are integer milliseconds since the Unix epoch, as everywhere in the API. Every write body
carries the ``actor`` recorded on its event (the client's user). The REST store turns these
shapes back into entities (:mod:`mlcycle.store.rest.registry`).

String lengths follow the columns of ``mlcycle.store.sql.tables``, so that an oversized value is
a 400 naming its field rather than a database error.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from mlcycle.entities import ModelEvent, ModelVersion, RegisteredModel, to_ms
from mlcycle.server.schemas import Millis, RunInputIn, RunInputOut, _In, _Out, _Patch

__all__ = [
    "AliasDeleted",
    "AliasSet",
    "EventCreate",
    "EventList",
    "EventOut",
    "ModelCreate",
    "ModelList",
    "ModelOut",
    "ModelUpdate",
    "ModelVersionCreate",
    "ModelVersionList",
    "ModelVersionOut",
    "ModelVersionUpdate",
    "StatusUpdate",
]

Actor = Annotated[str | None, Field(default=None, max_length=256,
                                    description="Who makes the change (recorded on its event).")]

# --- models ---------------------------------------------------------------------------------


class ModelCreate(_In):
    name: str = Field(description="Letters, digits, '_', '.' or '-'; at most 200.",
                      examples=["churn-classifier"])
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    actor: Actor = None


class ModelUpdate(_Patch):
    """``description`` left out stays; ``null`` clears it. A tag set to ``null`` is removed."""

    description: str | None = None
    tags: dict[str, str | None] = Field(default_factory=dict)
    actor: Actor = None


class ModelOut(_Out):
    name: str
    description: str | None
    tags: dict[str, str]
    aliases: dict[str, int] = Field(description="Each alias and the version it points at.")
    latest_version: int | None = Field(description="The highest number given; None before "
                                                   "the first version.")
    created_at: Millis
    updated_at: Millis
    created_by: str | None

    @classmethod
    def from_entity(cls, m: RegisteredModel) -> ModelOut:
        return cls(
            name=m.name,
            description=m.description,
            tags=dict(m.tags),
            aliases=dict(m.aliases),
            latest_version=m.latest_version,
            created_at=to_ms(m.created_at),
            updated_at=to_ms(m.updated_at),
            created_by=m.created_by,
        )


class ModelList(_Out):
    models: list[ModelOut]


# --- versions -------------------------------------------------------------------------------


class ModelVersionCreate(_In):
    """The next version of the model (created with its first version)."""

    source: str = Field(max_length=1024, examples=["runs:/4f2a…/model"])
    run_id: str | None = Field(default=None, max_length=32)
    manifest_digest: str | None = Field(default=None, max_length=64)
    flavor: str | None = Field(default=None, max_length=64, examples=["sklearn"])
    signature: dict[str, Any] = Field(default_factory=dict)
    code_commit: str | None = Field(default=None, max_length=64)
    datasets: list[RunInputIn] = Field(default_factory=list)
    contract: str | None = Field(default=None, max_length=300, examples=["churn@contract-v2"])
    evaluation: dict[str, Any] = Field(default_factory=dict)
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    actor: Actor = None

    def store_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``ModelRegistryStore.create_version``."""
        fields = self.model_dump(exclude={"datasets"})
        return {**fields, "datasets": [d.to_entity() for d in self.datasets]}


class ModelVersionUpdate(_Patch):
    """``description`` left out stays, ``null`` clears it; a tag set to ``null`` is removed;
    ``evaluation`` adds (or replaces) result keys."""

    description: str | None = None
    tags: dict[str, str | None] = Field(default_factory=dict)
    evaluation: dict[str, Any] = Field(default_factory=dict)
    actor: Actor = None


class StatusUpdate(_In):
    status: str = Field(description="`active` or `archived`.", max_length=16)
    actor: Actor = None


class ModelVersionOut(_Out):
    name: str
    version: int
    source: str
    created_at: Millis
    created_by: str | None
    run_id: str | None
    manifest_digest: str | None
    flavor: str | None
    signature: dict[str, Any]
    status: str
    aliases: list[str]
    description: str | None
    tags: dict[str, str]
    code_commit: str | None
    datasets: list[RunInputOut]
    contract: str | None
    evaluation: dict[str, Any]

    @classmethod
    def from_entity(cls, v: ModelVersion) -> ModelVersionOut:
        return cls(
            name=v.name,
            version=v.version,
            source=v.source,
            created_at=to_ms(v.created_at),
            created_by=v.created_by,
            run_id=v.run_id,
            manifest_digest=v.manifest_digest,
            flavor=v.flavor,
            signature=dict(v.signature),
            status=v.status,
            aliases=list(v.aliases),
            description=v.description,
            tags=dict(v.tags),
            code_commit=v.code_commit,
            datasets=[RunInputOut.from_entity(d) for d in v.datasets],
            contract=v.contract,
            evaluation=dict(v.evaluation),
        )


class ModelVersionList(_Out):
    versions: list[ModelVersionOut] = Field(description="Newest first.")


# --- aliases --------------------------------------------------------------------------------


class AliasSet(_In):
    version: int = Field(ge=1)
    actor: Actor = None


class AliasDeleted(_Out):
    alias: str
    version: int = Field(description="The version the alias pointed at.")


# --- events ---------------------------------------------------------------------------------


class EventCreate(_In):
    """An event no other write made: a client's refused write (``kind: rejected``)."""

    kind: str = Field(max_length=32, examples=["rejected"])
    version: int | None = None
    alias: str | None = Field(default=None, max_length=64)
    details: dict[str, Any] = Field(default_factory=dict)
    actor: Actor = None


class EventOut(_Out):
    event_id: int
    kind: str
    model: str
    at: Millis
    actor: str | None
    version: int | None
    alias: str | None
    details: dict[str, Any]

    @classmethod
    def from_entity(cls, e: ModelEvent) -> EventOut:
        return cls(event_id=e.event_id, kind=e.kind, model=e.model, at=to_ms(e.at),
                   actor=e.actor, version=e.version, alias=e.alias, details=dict(e.details))


class EventList(_Out):
    events: list[EventOut] = Field(description="Newest first.")
