"""The wire shapes of ``/api/v1/datasets``: ``XCreate`` comes in, ``XOut`` goes out.

Only metadata travels here; the bytes of snapshots, manifests and profiles go through the
artifact endpoints, addressed by the digests these shapes carry. Times are integer milliseconds
since the Unix epoch, as everywhere in the API. The REST store turns these shapes back into
entities (:mod:`mlcycle.store.rest.datasets`).

String lengths follow the columns of ``mlcycle.store.sql.tables``, so that an oversized value is
a 400 naming its field rather than a database error.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from mlcycle.entities import ColumnSchema, ContractVersion, Dataset, DatasetVersion, to_ms
from mlcycle.server.schemas import Digest, Millis, _In, _Out

__all__ = [
    "ColumnIn",
    "ColumnOut",
    "ContractCreate",
    "ContractList",
    "ContractOut",
    "DatasetCreate",
    "DatasetList",
    "DatasetOut",
    "DatasetVersionCreate",
    "DatasetVersionList",
    "DatasetVersionOut",
    "SegmentsUpdate",
    "VersionCreated",
]

Hash = Annotated[str, Field(max_length=64)]

# --- datasets -------------------------------------------------------------------------------


class DatasetCreate(_In):
    name: str = Field(description="Letters, digits, '_', '.' or '-'; at most 200.",
                      examples=["churn-events"])
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class SegmentsUpdate(_In):
    """Named row filters of a dataset: an expression adds or replaces one, ``null`` removes it;
    segments left out stay as they are."""

    segments: dict[str, str | None] = Field(examples=[{"eu": "region == 'eu'", "old": None}])


class DatasetOut(_Out):
    dataset_id: str
    name: str
    description: str | None
    tags: dict[str, str]
    latest_version: int | None = Field(description="None until the first version.")
    segments: dict[str, str]
    created_at: Millis

    @classmethod
    def from_entity(cls, d: Dataset) -> DatasetOut:
        return cls(
            dataset_id=d.dataset_id,
            name=d.name,
            description=d.description,
            tags=dict(d.tags),
            latest_version=d.latest_version,
            segments=dict(d.segments),
            created_at=to_ms(d.created_at),
        )


class DatasetList(_Out):
    datasets: list[DatasetOut]


# --- versions -------------------------------------------------------------------------------


class ColumnIn(_In):
    name: str
    type: str = Field(description="The Arrow type, e.g. `int64`, `timestamp[us]`.")
    nullable: bool = True

    def to_entity(self) -> ColumnSchema:
        return ColumnSchema(self.name, self.type, self.nullable)


class ColumnOut(_Out):
    name: str
    type: str
    nullable: bool

    @classmethod
    def from_entity(cls, c: ColumnSchema) -> ColumnOut:
        return cls(name=c.name, type=c.type, nullable=c.nullable)


class DatasetVersionCreate(_In):
    """A version whose bytes were uploaded already (``PUT /api/v1/artifacts/objects/...``).
    The dataset is created on its first version."""

    kind: str = Field(max_length=16, description="`table` (a Parquet snapshot) or `files`.")
    digest: Digest
    num_rows: int | None = Field(default=None, ge=0)
    num_bytes: int = Field(ge=0)
    columns: list[ColumnIn] = Field(default_factory=list)
    source: dict[str, Any] = Field(default_factory=dict)
    fingerprint: Hash | None = None
    profile_digest: Digest | None = None
    parents: list[str] = Field(default_factory=list, examples=[["raw-events@v3"]])
    code_hash: Hash | None = None
    role: str = Field(default="data", max_length=32)
    run_id: str | None = Field(default=None, max_length=32)
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    def store_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``DatasetStore.create_version``."""
        fields = self.model_dump(exclude={"columns"})
        return {**fields, "columns": [c.to_entity() for c in self.columns]}


class DatasetVersionOut(_Out):
    version_id: str
    dataset: str
    version: int
    kind: str
    digest: str
    created_at: Millis
    num_rows: int | None
    num_bytes: int
    columns: list[ColumnOut]
    source: dict[str, Any]
    fingerprint: str | None
    profile_digest: str | None
    parents: list[str]
    code_hash: str | None
    role: str
    run_id: str | None
    description: str | None
    tags: dict[str, str]

    @classmethod
    def from_entity(cls, v: DatasetVersion) -> DatasetVersionOut:
        return cls(
            version_id=v.version_id,
            dataset=v.dataset,
            version=v.version,
            kind=v.kind,
            digest=v.digest,
            created_at=to_ms(v.created_at),
            num_rows=v.num_rows,
            num_bytes=v.num_bytes,
            columns=[ColumnOut.from_entity(c) for c in v.columns],
            source=dict(v.source),
            fingerprint=v.fingerprint,
            profile_digest=v.profile_digest,
            parents=list(v.parents),
            code_hash=v.code_hash,
            role=v.role,
            run_id=v.run_id,
            description=v.description,
            tags=dict(v.tags),
        )


class VersionCreated(_Out):
    """The answer to a new version: ``created`` is false when the dataset held this digest
    already, and ``version`` is then that earlier version."""

    version: DatasetVersionOut
    created: bool


class DatasetVersionList(_Out):
    versions: list[DatasetVersionOut] = Field(description="Newest first.")


# --- contracts ------------------------------------------------------------------------------


class ContractCreate(_In):
    body: str = Field(description="The contract, as YAML.")
    source_version: str | None = Field(
        default=None, max_length=300, description="The version it was inferred from: `name@vN`."
    )


class ContractOut(_Out):
    dataset: str
    version: int
    body: str
    source_version: str | None
    created_at: Millis

    @classmethod
    def from_entity(cls, c: ContractVersion) -> ContractOut:
        return cls(
            dataset=c.dataset,
            version=c.version,
            body=c.body,
            source_version=c.source_version,
            created_at=to_ms(c.created_at),
        )


class ContractList(_Out):
    contracts: list[ContractOut] = Field(description="Newest first.")
