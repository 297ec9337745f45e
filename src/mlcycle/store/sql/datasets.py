"""``SqlDatasetStore``: datasets, versions, contracts and segments in SQLite or PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, func, select, update
from sqlalchemy.exc import IntegrityError

from mlcycle.entities import (
    ColumnSchema,
    ContractVersion,
    Dataset,
    DatasetVersion,
    from_ms,
    now_ms,
)
from mlcycle.errors import (
    ContractNotFound,
    DatasetAlreadyExists,
    DatasetNotFound,
    DatasetVersionNotFound,
    StoreError,
)
from mlcycle.store.base import DatasetStore
from mlcycle.store.sql import tables as t
from mlcycle.store.sql.base import SqlStore

__all__ = ["SqlDatasetStore"]


class SqlDatasetStore(SqlStore, DatasetStore):
    """Dataset metadata in the same database as the tracking store (one engine can serve both)."""



    # --- plumbing -------------------------------------------------------------------------

    def _dataset_row(self, conn: Connection, name: str, *, lock: bool = False) -> Any:
        q = select(t.datasets).where(t.datasets.c.name == name)
        if lock and self.engine.dialect.name == "postgresql":
            q = q.with_for_update()  # numbering versions: one writer per dataset at a time
        return conn.execute(q).first()

    def _require(self, conn: Connection, name: str, *, lock: bool = False) -> Any:
        row = self._dataset_row(conn, name, lock=lock)
        if row is None:
            raise DatasetNotFound(f"no dataset named {name!r}", details={"dataset": name})
        return row

    @staticmethod
    def _dataset(row: Any) -> Dataset:
        return Dataset(
            dataset_id=row.dataset_id,
            name=row.name,
            created_at=from_ms(row.created_at),  # type: ignore[arg-type]
            description=row.description,
            tags=dict(row.tags or {}),
            latest_version=row.latest_version,
            segments=dict(row.segments or {}),
        )

    @staticmethod
    def _version(row: Any, name: str) -> DatasetVersion:
        return DatasetVersion(
            version_id=row.version_id,
            dataset=name,
            version=row.version,
            kind=row.kind,
            digest=row.digest,
            created_at=from_ms(row.created_at),  # type: ignore[arg-type]
            num_rows=row.num_rows,
            num_bytes=row.num_bytes,
            columns=tuple(ColumnSchema(**c) for c in row.columns or ()),
            source=dict(row.source or {}),
            fingerprint=row.fingerprint,
            profile_digest=row.profile_digest,
            parents=tuple(row.parents or ()),
            code_hash=row.code_hash,
            role=row.role,
            run_id=row.run_id,
            description=row.description,
            tags=dict(row.tags or {}),
        )

    # --- datasets -------------------------------------------------------------------------
    def _insert_dataset(self, conn: Connection, name: str, description: str | None,
                        tags: Mapping[str, str] | None) -> dict[str, Any]:
        row = {
            "dataset_id": uuid.uuid4().hex,
            "name": name,
            "description": description,
            "tags": dict(tags or {}),
            "segments": {},
            "latest_version": None,
            "created_at": now_ms(),
        }
        conn.execute(t.datasets.insert(), row)
        return row

    def create_dataset(
        self, name: str, *, description: str | None = None, tags: Mapping[str, str] | None = None
    ) -> Dataset:
        try:
            with self._write() as conn:
                row = self._insert_dataset(conn, name, description, tags)
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise DatasetAlreadyExists(
                    f"a dataset named {name!r} exists already", details={"dataset": name}
                ) from None
            raise
        return self._dataset(_Row(row))

    def find_dataset(self, name: str) -> Dataset | None:
        with self._read() as conn:
            row = self._dataset_row(conn, name)
        return None if row is None else self._dataset(row)

    def list_datasets(self) -> list[Dataset]:
        with self._read() as conn:
            rows = conn.execute(select(t.datasets).order_by(t.datasets.c.name)).all()
        return [self._dataset(r) for r in rows]

    def set_segments(self, name: str, segments: Mapping[str, str | None]) -> Dataset:
        with self._write() as conn:
            row = self._require(conn, name, lock=True)
            merged = dict(row.segments or {})
            for key, expr in segments.items():
                if expr is None:
                    merged.pop(key, None)
                else:
                    merged[key] = expr
            conn.execute(
                update(t.datasets).where(t.datasets.c.dataset_id == row.dataset_id)
                .values(segments=merged)
            )
            row = self._require(conn, name)
        return self._dataset(row)

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
        v = t.dataset_versions
        for attempt in range(2):
            try:
                with self._write() as conn:
                    ds = self._dataset_row(conn, dataset, lock=True)
                    if ds is None:
                        self._insert_dataset(conn, dataset, None, None)
                        ds = self._require(conn, dataset, lock=True)
                    existing = conn.execute(
                        select(v).where(v.c.dataset_id == ds.dataset_id, v.c.digest == digest)
                    ).first()
                    if existing is not None:
                        # Same content again: keep the old version, but remember the newest
                        # fingerprint so the next unchanged re-ingest can skip reading.
                        if fingerprint and existing.fingerprint != fingerprint:
                            conn.execute(update(v).where(v.c.version_id == existing.version_id)
                                         .values(fingerprint=fingerprint))
                            existing = conn.execute(
                                select(v).where(v.c.version_id == existing.version_id)).first()
                        return self._version(existing, dataset), False
                    number = (ds.latest_version or 0) + 1
                    row = {
                        "version_id": uuid.uuid4().hex,
                        "dataset_id": ds.dataset_id,
                        "version": number,
                        "kind": kind,
                        "digest": digest,
                        "num_rows": num_rows,
                        "num_bytes": num_bytes,
                        "columns": [
                            {"name": c.name, "type": c.type, "nullable": c.nullable}
                            for c in columns
                        ],
                        "source": dict(source or {}),
                        "fingerprint": fingerprint,
                        "profile_digest": profile_digest,
                        "parents": list(parents),
                        "code_hash": code_hash,
                        "role": role,
                        "run_id": run_id,
                        "description": description,
                        "tags": dict(tags or {}),
                        "created_at": now_ms(),
                    }
                    conn.execute(v.insert(), row)
                    conn.execute(update(t.datasets).where(t.datasets.c.dataset_id == ds.dataset_id)
                                 .values(latest_version=number))
                return self._version(_Row(row), dataset), True
            except StoreError as exc:
                # Two first versions of a new dataset raced on its name or number: the loser
                # retries once and then sees the winner's rows.
                if attempt == 0 and isinstance(exc.__cause__, IntegrityError):
                    continue
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def get_version(self, dataset: str, version: int) -> DatasetVersion:
        v = t.dataset_versions
        with self._read() as conn:
            ds = self._require(conn, dataset)
            row = conn.execute(
                select(v).where(v.c.dataset_id == ds.dataset_id, v.c.version == version)
            ).first()
        if row is None:
            raise DatasetVersionNotFound(
                f"dataset {dataset!r} has no version {version}"
                + (f" (latest is v{ds.latest_version})" if ds.latest_version else ""),
                details={"dataset": dataset, "version": version},
            )
        return self._version(row, dataset)

    def find_version_by_digest(self, dataset: str, digest: str) -> DatasetVersion | None:
        v = t.dataset_versions
        if not digest:  # an empty prefix would match every version
            return None
        with self._read() as conn:
            ds = self._dataset_row(conn, dataset)
            if ds is None:
                return None
            # A prefix of the digest is enough, as with git commits.
            q = select(v).where(v.c.dataset_id == ds.dataset_id)
            q = q.where(v.c.digest == digest) if len(digest) == 64 else q.where(
                func.substr(v.c.digest, 1, len(digest)) == digest)
            rows = conn.execute(q.limit(2)).all()
        if len(rows) != 1:
            return None
        return self._version(rows[0], dataset)

    def list_versions(self, dataset: str) -> list[DatasetVersion]:
        v = t.dataset_versions
        with self._read() as conn:
            ds = self._require(conn, dataset)
            rows = conn.execute(
                select(v).where(v.c.dataset_id == ds.dataset_id).order_by(v.c.version.desc())
            ).all()
        return [self._version(r, dataset) for r in rows]

    # --- contracts ------------------------------------------------------------------------
    def create_contract(
        self, dataset: str, body: str, *, source_version: str | None = None
    ) -> ContractVersion:
        c = t.dataset_contracts
        for attempt in range(2):
            try:
                with self._write() as conn:
                    ds = self._dataset_row(conn, dataset, lock=True)
                    if ds is None:
                        self._insert_dataset(conn, dataset, None, None)
                        ds = self._require(conn, dataset, lock=True)
                    latest = conn.execute(
                        select(func.max(c.c.version)).where(c.c.dataset_id == ds.dataset_id)
                    ).scalar()
                    row = {
                        "dataset_id": ds.dataset_id,
                        "version": (latest or 0) + 1,
                        "body": body,
                        "source_version": source_version,
                        "created_at": now_ms(),
                    }
                    conn.execute(c.insert(), row)
                return self._contract(_Row(row), dataset)
            except StoreError as exc:
                # As in create_version: first contracts of a new dataset raced on its name.
                if attempt == 0 and isinstance(exc.__cause__, IntegrityError):
                    continue
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _contract(row: Any, name: str) -> ContractVersion:
        return ContractVersion(
            dataset=name,
            version=row.version,
            body=row.body,
            created_at=from_ms(row.created_at),  # type: ignore[arg-type]
            source_version=row.source_version,
        )

    def get_contract(self, dataset: str, version: int | None = None) -> ContractVersion:
        c = t.dataset_contracts
        with self._read() as conn:
            ds = self._require(conn, dataset)
            q = select(c).where(c.c.dataset_id == ds.dataset_id)
            q = (q.order_by(c.c.version.desc()) if version is None
                 else q.where(c.c.version == version))
            row = conn.execute(q.limit(1)).first()
        if row is None:
            which = "any contract" if version is None else f"contract version {version}"
            raise ContractNotFound(f"dataset {dataset!r} has no {which}",
                                details={"dataset": dataset, "contract": version})
        return self._contract(row, dataset)

    def list_contracts(self, dataset: str) -> list[ContractVersion]:
        c = t.dataset_contracts
        with self._read() as conn:
            ds = self._require(conn, dataset)
            rows = conn.execute(
                select(c).where(c.c.dataset_id == ds.dataset_id).order_by(c.c.version.desc())
            ).all()
        return [self._contract(r, dataset) for r in rows]

    def close(self) -> None:
        self.engine.dispose()


class _Row:
    """Attribute access over a dict, so freshly inserted rows map like fetched ones."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.__dict__.update(data)
