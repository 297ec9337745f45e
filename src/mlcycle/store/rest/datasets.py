"""``RestDatasetStore``: the dataset metadata of a remote ``mlcycle server``, over its REST API.

Only metadata goes through here. The bytes of snapshots, manifests and profiles travel through
the artifact endpoints (``RestArtifactStore``) on the same client, before the version that names
their digests is recorded. Times are integer milliseconds on the wire; the shapes are those of
``mlcycle.server.dataset_schemas``, turned back into entities by the ``*_from_wire`` functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from mlcycle.entities import ColumnSchema, ContractVersion, Dataset, DatasetVersion, from_ms
from mlcycle.errors import DatasetNotFound, DatasetVersionNotFound
from mlcycle.store.base import DatasetStore
from mlcycle.store.rest._http import API, call, segment

__all__ = [
    "RestDatasetStore",
    "contract_from_wire",
    "dataset_from_wire",
    "version_from_wire",
]


class RestDatasetStore(DatasetStore):
    """``RestDatasetStore(http_client("http://host:8080", token=...))``.

    The client is usually the tracking store's (``open_dataset_store``), so it stays open on
    ``close()``: whoever made it closes it.
    """

    def __init__(self, client: httpx.Client) -> None:
        self.http = client

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return call(self.http, method, f"{API}/datasets/{path}", **kwargs)

    @staticmethod
    def _name(name: str) -> str:
        # An empty name or one with "/" cannot be one path segment, so the server could only
        # answer "no such endpoint"; no dataset can have such a name anyway.
        if not name or "/" in name:
            raise DatasetNotFound(f"no dataset named {name!r}", details={"dataset": name})
        return segment(name)

    # --- datasets -------------------------------------------------------------------------
    def create_dataset(
        self, name: str, *, description: str | None = None, tags: Mapping[str, str] | None = None
    ) -> Dataset:
        body = {"name": name, "description": description, "tags": dict(tags or {})}
        return dataset_from_wire(call(self.http, "POST", f"{API}/datasets", body=body))

    def find_dataset(self, name: str) -> Dataset | None:
        try:
            return self.get_dataset(name)
        except DatasetNotFound:
            return None

    def get_dataset(self, name: str) -> Dataset:
        return dataset_from_wire(self._call("GET", self._name(name)))

    def list_datasets(self) -> list[Dataset]:
        data = call(self.http, "GET", f"{API}/datasets")
        return [dataset_from_wire(d) for d in data["datasets"]]

    def set_segments(self, name: str, segments: Mapping[str, str | None]) -> Dataset:
        data = self._call("PATCH", f"{self._name(name)}/segments",
                          body={"segments": dict(segments)})
        return dataset_from_wire(data)

    # --- versions -------------------------------------------------------------------------
    def create_version(
        self,
        dataset: str,
        *,
        kind: str,
        digest: str,
        num_rows: int | None,
        num_bytes: int,
        columns: Sequence[ColumnSchema] = (),
        source: Mapping[str, Any] | None = None,
        fingerprint: str | None = None,
        profile_digest: str | None = None,
        parents: Sequence[str] = (),
        code_hash: str | None = None,
        role: str = "data",
        run_id: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> tuple[DatasetVersion, bool]:
        body = {
            "kind": kind,
            "digest": digest,
            "num_rows": num_rows,
            "num_bytes": num_bytes,
            "columns": [{"name": c.name, "type": c.type, "nullable": c.nullable}
                        for c in columns],
            "source": dict(source or {}),
            "fingerprint": fingerprint,
            "profile_digest": profile_digest,
            "parents": list(parents),
            "code_hash": code_hash,
            "role": role,
            "run_id": run_id,
            "description": description,
            "tags": dict(tags or {}),
        }
        data = self._call("POST", f"{self._name(dataset)}/versions", body=body)
        return version_from_wire(data["version"]), bool(data["created"])

    def get_version(self, dataset: str, version: int) -> DatasetVersion:
        if version < 0:  # the route matches digits only; no version is negative
            raise DatasetVersionNotFound(f"dataset {dataset!r} has no version {version}",
                                         details={"dataset": dataset, "version": version})
        return version_from_wire(self._call("GET", f"{self._name(dataset)}/versions/{version}"))

    def find_version_by_digest(self, dataset: str, digest: str) -> DatasetVersion | None:
        if not digest or "/" in digest:
            return None
        try:
            data = self._call(
                "GET", f"{self._name(dataset)}/versions/by-digest/{segment(digest)}")
        except (DatasetNotFound, DatasetVersionNotFound):
            return None
        return version_from_wire(data)

    def list_versions(self, dataset: str) -> list[DatasetVersion]:
        data = self._call("GET", f"{self._name(dataset)}/versions")
        return [version_from_wire(v) for v in data["versions"]]

    # --- contracts ------------------------------------------------------------------------
    def create_contract(
        self, dataset: str, body: str, *, source_version: str | None = None
    ) -> ContractVersion:
        data = self._call("POST", f"{self._name(dataset)}/contracts",
                          body={"body": body, "source_version": source_version})
        return contract_from_wire(data)

    def get_contract(self, dataset: str, version: int | None = None) -> ContractVersion:
        which = "latest" if version is None else str(int(version))
        return contract_from_wire(self._call("GET", f"{self._name(dataset)}/contracts/{which}"))

    def list_contracts(self, dataset: str) -> list[ContractVersion]:
        data = self._call("GET", f"{self._name(dataset)}/contracts")
        return [contract_from_wire(c) for c in data["contracts"]]


# --- wire → entities ------------------------------------------------------------------------


def dataset_from_wire(data: Mapping[str, Any]) -> Dataset:
    return Dataset(
        dataset_id=data["dataset_id"],
        name=data["name"],
        created_at=from_ms(data["created_at"]),  # type: ignore[arg-type]
        description=data.get("description"),
        tags=dict(data.get("tags") or {}),
        latest_version=data.get("latest_version"),
        segments=dict(data.get("segments") or {}),
    )


def version_from_wire(data: Mapping[str, Any]) -> DatasetVersion:
    return DatasetVersion(
        version_id=data["version_id"],
        dataset=data["dataset"],
        version=data["version"],
        kind=data["kind"],
        digest=data["digest"],
        created_at=from_ms(data["created_at"]),  # type: ignore[arg-type]
        num_rows=data.get("num_rows"),
        num_bytes=data.get("num_bytes", 0),
        columns=tuple(ColumnSchema(c["name"], c["type"], c.get("nullable", True))
                      for c in data.get("columns") or ()),
        source=dict(data.get("source") or {}),
        fingerprint=data.get("fingerprint"),
        profile_digest=data.get("profile_digest"),
        parents=tuple(data.get("parents") or ()),
        code_hash=data.get("code_hash"),
        role=data.get("role", "data"),
        run_id=data.get("run_id"),
        description=data.get("description"),
        tags=dict(data.get("tags") or {}),
    )


def contract_from_wire(data: Mapping[str, Any]) -> ContractVersion:
    return ContractVersion(
        dataset=data["dataset"],
        version=data["version"],
        body=data["body"],
        created_at=from_ms(data["created_at"]),  # type: ignore[arg-type]
        source_version=data.get("source_version"),
    )
