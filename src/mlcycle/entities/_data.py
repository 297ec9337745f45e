from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Dataset:
    """A named, versioned dataset. ``latest_version`` is ``None`` until the first version."""

    dataset_id: str
    name: str
    created_at: datetime
    description: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    latest_version: int | None = None
    segments: Mapping[str, str] = field(default_factory=dict)  # name -> expression


@dataclass(frozen=True, slots=True)
class ColumnSchema:
    name: str
    type: str  # the Arrow type, e.g. "int64", "string", "timestamp[us]"
    nullable: bool = True


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    """One immutable version of a dataset.

    ``kind`` is ``"table"`` (rows snapshotted to one Parquet object) or ``"files"`` (raw files
    kept as they are, listed by a manifest object). ``digest`` is the content hash: the BLAKE3 of
    the Parquet snapshot or of the manifest, so identical content gives an identical digest.
    ``fingerprint`` summarises the source cheaply (file sizes and modification times) and lets a
    re-ingest of an unchanged source return this version without reading it.
    """

    version_id: str
    dataset: str
    version: int
    kind: str
    digest: str
    created_at: datetime
    num_rows: int | None = None
    num_bytes: int = 0
    columns: Sequence[ColumnSchema] = ()
    source: Mapping[str, Any] = field(default_factory=dict)
    fingerprint: str | None = None
    profile_digest: str | None = None
    parents: Sequence[str] = ()  # refs "name@vN" of the versions this one was derived from
    code_hash: str | None = None
    role: str = "data"  # "data", "quarantine", "train", "validation", "test", …
    run_id: str | None = None
    description: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.dataset}@v{self.version}"


@dataclass(frozen=True, slots=True)
class ContractVersion:
    """A stored data contract: its YAML body, numbered per dataset."""

    dataset: str
    version: int
    body: str
    created_at: datetime
    source_version: str | None = None  # the dataset version it was inferred from

    @property
    def ref(self) -> str:
        return f"{self.dataset}@contract-v{self.version}"
