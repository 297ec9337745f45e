"""``SqlModelRegistryStore``: registered models, versions, aliases and events in SQLite or
PostgreSQL.

Every write runs in one transaction that also inserts its event, so a change and the record of
it are kept together or not at all. Writes to one model are serialised: SQLite's write
transactions are ``BEGIN IMMEDIATE`` (one writer at a time), and on PostgreSQL each write first
locks the model's row (``SELECT … FOR UPDATE``). That is what makes version numbers consecutive
and an alias move atomic under concurrent writers.

A write refused for a reason of mlcycle's own (unknown version or alias, archived target,
malformed input) is rolled back, then recorded as a ``rejected`` event in a transaction of its
own; a database failure is not recorded (there is nowhere to record it).
"""

from __future__ import annotations

import contextlib
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from mlcycle.entities import (
    ACTIVE,
    ARCHIVED,
    EVENT_KINDS,
    MODEL_STATUSES,
    ModelEvent,
    ModelVersion,
    RegisteredModel,
    RunInput,
    check_alias,
    check_model_name,
    from_ms,
    now_ms,
    plain_json,
)
from mlcycle.errors import (
    InvalidInputError,
    InvalidStateError,
    MlcycleError,
    ModelAliasNotFound,
    ModelAlreadyExists,
    ModelNotFound,
    ModelVersionNotFound,
    StoreError,
)
from mlcycle.store.base import ModelRegistryStore
from mlcycle.store.sql import tables as t
from mlcycle.store.sql.base import SqlStore
from mlcycle.types import UNSET, JSONValue, Unset

__all__ = ["SqlModelRegistryStore"]

_MAX_EVENTS = 10_000
_ALIAS_COLUMN = 64  # the length of model_events.alias


class SqlModelRegistryStore(SqlStore, ModelRegistryStore):
    """The registry in the same database as the tracking store (one engine can serve both)."""



    # --- plumbing -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _refusals(self, operation: str, name: str, *, actor: str | None,
                  version: int | None = None, alias: str | None = None,
                  request: Mapping[str, Any] | None = None) -> Iterator[None]:
        """Record a write refused inside the block as a ``rejected`` event, then re-raise."""
        try:
            yield
        except MlcycleError as exc:
            if isinstance(exc, StoreError):
                raise
            try:
                asked = plain_json(dict(request or {}), "request")
            except InvalidInputError:  # what was asked cannot be stored; the refusal can
                asked = {}
            details: dict[str, JSONValue] = {
                "operation": operation, "error": exc.code, "message": exc.message, **asked}
            fits = isinstance(alias, str) and len(alias) <= _ALIAS_COLUMN
            if alias is not None and not fits:  # a malformed alias: kept in the details
                details["alias"] = str(alias)[:300]
            # The refusal is the news; failing to record it must not hide it.
            with contextlib.suppress(StoreError, DBAPIError):
                with self._write() as conn:
                    self._insert_event(conn, name, "rejected", actor=actor, version=version,
                                       alias=alias if fits else None,
                                       details=details)
            raise

    def _model_row(self, conn: Connection, name: str, *, lock: bool = False) -> Any:
        q = select(t.registered_models).where(t.registered_models.c.name == name)
        if lock and self.engine.dialect.name == "postgresql":
            q = q.with_for_update()  # one writer per model at a time
        return conn.execute(q).first()

    def _require(self, conn: Connection, name: str, *, lock: bool = False) -> Any:
        row = self._model_row(conn, name, lock=lock)
        if row is None:
            raise ModelNotFound(f"no model named {name!r}", details={"model": name})
        return row

    def _version_row(self, conn: Connection, model: Any, version: int) -> Any:
        v = t.model_versions
        row = conn.execute(
            select(v).where(v.c.model_id == model.model_id, v.c.version == version)
        ).first()
        if row is None:
            raise ModelVersionNotFound(
                f"model {model.name!r} has no version {version}"
                + (f" (versions are 1 to {model.latest_version})" if model.latest_version
                   else " (it has no versions yet)"),
                details={"model": model.name, "version": version},
            )
        return row

    @staticmethod
    def _aliases(conn: Connection, model_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """``{model_id: {alias: version}}`` for *model_ids*."""
        a = t.model_aliases
        out: dict[str, dict[str, int]] = defaultdict(dict)
        if model_ids:
            rows = conn.execute(
                select(a.c.model_id, a.c.alias, a.c.version)
                .where(a.c.model_id.in_(list(model_ids))).order_by(a.c.alias)
            ).all()
            for model_id, alias, version in rows:
                out[model_id][alias] = version
        return out

    @staticmethod
    def _model(row: Any, aliases: Mapping[str, int]) -> RegisteredModel:
        return RegisteredModel(
            name=row.name,
            created_at=from_ms(row.created_at),  # type: ignore[arg-type]
            updated_at=from_ms(row.updated_at),  # type: ignore[arg-type]
            created_by=row.created_by,
            description=row.description,
            tags=dict(row.tags or {}),
            aliases=dict(aliases),
            latest_version=row.latest_version,
        )

    @staticmethod
    def _version(row: Any, name: str, aliases: Mapping[str, int]) -> ModelVersion:
        return ModelVersion(
            name=name,
            version=row.version,
            source=row.source,
            created_at=from_ms(row.created_at),  # type: ignore[arg-type]
            created_by=row.created_by,
            run_id=row.run_id,
            manifest_digest=row.manifest_digest,
            flavor=row.flavor,
            signature=dict(row.signature or {}),
            status=row.status,
            aliases=tuple(sorted(a for a, v in aliases.items() if v == row.version)),
            description=row.description,
            tags=dict(row.tags or {}),
            code_commit=row.code_commit,
            datasets=tuple(
                RunInput(d["dataset"], d["version"], d.get("digest"), dict(d.get("context") or {}))
                for d in row.datasets or ()
            ),
            contract=row.contract,
            evaluation=dict(row.evaluation or {}),
        )

    def _insert_event(self, conn: Connection, name: str, kind: str, *, actor: str | None,
                      version: int | None = None, alias: str | None = None,
                      details: Mapping[str, JSONValue] | None = None) -> ModelEvent:
        row = {"model": name, "kind": kind, "version": version, "alias": alias,
               "actor": actor, "at": now_ms(), "details": dict(details or {})}
        key = conn.execute(t.model_events.insert(), row).inserted_primary_key
        assert key is not None  # an INSERT of one row always has one
        return self._event(_Row({**row, "event_id": key[0]}))

    @staticmethod
    def _event(row: Any) -> ModelEvent:
        return ModelEvent(
            event_id=int(row.event_id),
            kind=row.kind,
            model=row.model,
            at=from_ms(row.at),  # type: ignore[arg-type]
            actor=row.actor,
            version=row.version,
            alias=row.alias,
            details=dict(row.details or {}),
        )

    def _touch(self, conn: Connection, model_id: str, **values: Any) -> None:
        conn.execute(update(t.registered_models)
                     .where(t.registered_models.c.model_id == model_id)
                     .values(updated_at=now_ms(), **values))

    # --- models ---------------------------------------------------------------------------
    def _insert_model(self, conn: Connection, name: str, description: str | None,
                      tags: Mapping[str, str] | None, actor: str | None) -> None:
        now = now_ms()
        conn.execute(t.registered_models.insert(), {
            "model_id": uuid.uuid4().hex, "name": name, "description": description,
            "tags": _tags(tags), "latest_version": None, "created_at": now,
            "created_by": actor, "updated_at": now,
        })
        self._insert_event(conn, name, "model_created", actor=actor)

    def create_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        actor: str | None = None,
    ) -> RegisteredModel:
        check_model_name(name)
        with self._refusals("create_model", name, actor=actor):
            try:
                with self._write() as conn:
                    self._insert_model(conn, name, description, tags, actor)
                    row = self._require(conn, name)
            except StoreError as exc:
                if isinstance(exc.__cause__, IntegrityError):
                    raise ModelAlreadyExists(f"a model named {name!r} exists already",
                                             details={"model": name}) from None
                raise
        return self._model(row, {})

    def find_model(self, name: str) -> RegisteredModel | None:
        with self._read() as conn:
            row = self._model_row(conn, name)
            if row is None:
                return None
            aliases = self._aliases(conn, [row.model_id])
        return self._model(row, aliases[row.model_id])

    def list_models(self, *, name_contains: str | None = None) -> list[RegisteredModel]:
        m = t.registered_models
        q = select(m)
        if name_contains:
            q = q.where(func.lower(m.c.name).contains(name_contains.lower(), autoescape=True))
        with self._read() as conn:
            rows = conn.execute(q).all()
            aliases = self._aliases(conn, [r.model_id for r in rows])
        # Sorted here, by code point: a database's collation would order names differently
        # from one server to the next.
        return sorted((self._model(r, aliases[r.model_id]) for r in rows), key=lambda x: x.name)

    def update_model(
        self,
        name: str,
        *,
        description: str | Unset | None = UNSET,
        tags: Mapping[str, str | None] | None = None,
        actor: str | None = None,
    ) -> RegisteredModel:
        request = {"description": None if description is UNSET else description,
                   "tags": dict(tags or {})}
        with self._refusals("update_model", name, actor=actor, request=request):
            with self._write() as conn:
                row = self._require(conn, name, lock=True)
                values: dict[str, Any] = {}
                if description is not UNSET and description != row.description:
                    values["description"] = description
                merged = _merge_tags(row.tags, tags)
                if merged != dict(row.tags or {}):
                    values["tags"] = merged
                if values:
                    self._touch(conn, row.model_id, **values)
                    self._insert_event(conn, name, "model_updated", actor=actor,
                                       details={"fields": [*sorted(values)]})
                    row = self._require(conn, name)
                aliases = self._aliases(conn, [row.model_id])
        return self._model(row, aliases[row.model_id])

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
        check_model_name(name)
        with self._refusals("create_version", name, actor=actor,
                            request={"source": source, "run_id": run_id}):
            if not isinstance(source, str) or not source.strip():
                raise InvalidInputError("source: expected the URI of the model's files, e.g. "
                                        f"runs:/<run id>/model, got {source!r}",
                                        details={"field": "source"})
            fields = {
                "source": source,
                "run_id": run_id,
                "manifest_digest": manifest_digest,
                "flavor": flavor,
                "signature": plain_json(dict(signature or {}), "signature"),
                "status": ACTIVE,
                "description": description,
                "tags": _tags(tags),
                "code_commit": code_commit,
                "datasets": [{"dataset": d.dataset, "version": d.version, "digest": d.digest,
                              "context": plain_json(dict(d.context), "datasets.context")}
                             for d in datasets],
                "contract": contract,
                "evaluation": plain_json(dict(evaluation or {}), "evaluation"),
                "created_by": actor,
            }
            for attempt in range(2):
                try:
                    with self._write() as conn:
                        model = self._model_row(conn, name, lock=True)
                        if model is None:
                            self._insert_model(conn, name, None, None, actor)
                            model = self._require(conn, name, lock=True)
                        number = (model.latest_version or 0) + 1
                        row = {**fields, "model_id": model.model_id, "version": number,
                               "created_at": now_ms()}
                        conn.execute(t.model_versions.insert(), row)
                        self._touch(conn, model.model_id, latest_version=number)
                        self._insert_event(conn, name, "version_created", actor=actor,
                                           version=number,
                                           details={"source": source, "run_id": run_id})
                    return self._version(_Row(row), name, {})
                except StoreError as exc:
                    # Two first versions of a new model raced on its name: the loser retries
                    # once and then numbers after the winner.
                    if attempt == 0 and isinstance(exc.__cause__, IntegrityError):
                        continue
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def get_version(self, name: str, version: int) -> ModelVersion:
        with self._read() as conn:
            model = self._require(conn, name)
            row = self._version_row(conn, model, version)
            aliases = self._aliases(conn, [model.model_id])
        return self._version(row, name, aliases[model.model_id])

    def list_versions(self, name: str, *, include_archived: bool = True) -> list[ModelVersion]:
        v = t.model_versions
        with self._read() as conn:
            model = self._require(conn, name)
            q = select(v).where(v.c.model_id == model.model_id)
            if not include_archived:
                q = q.where(v.c.status == ACTIVE)
            rows = conn.execute(q.order_by(v.c.version.desc())).all()
            aliases = self._aliases(conn, [model.model_id])
        return [self._version(r, name, aliases[model.model_id]) for r in rows]

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
        v = t.model_versions
        request = {"description": None if description is UNSET else description,
                   "tags": dict(tags or {}), "evaluation": sorted(evaluation or {})}
        with self._refusals("update_version", name, actor=actor, version=version,
                            request=request):
            new_results = plain_json(dict(evaluation or {}), "evaluation")
            with self._write() as conn:
                model = self._require(conn, name, lock=True)
                row = self._version_row(conn, model, version)
                values: dict[str, Any] = {}
                if description is not UNSET and description != row.description:
                    values["description"] = description
                merged = _merge_tags(row.tags, tags)
                if merged != dict(row.tags or {}):
                    values["tags"] = merged
                results = {**dict(row.evaluation or {}), **new_results}
                if results != dict(row.evaluation or {}):
                    values["evaluation"] = results
                if values:
                    conn.execute(update(v).where(v.c.model_id == model.model_id,
                                                 v.c.version == version).values(**values))
                    self._touch(conn, model.model_id)
                    self._insert_event(conn, name, "version_updated", actor=actor,
                                       version=version, details={"fields": [*sorted(values)]})
                    row = self._version_row(conn, model, version)
                aliases = self._aliases(conn, [model.model_id])
        return self._version(row, name, aliases[model.model_id])

    def set_version_status(
        self, name: str, version: int, status: str, *, actor: str | None = None
    ) -> ModelVersion:
        v = t.model_versions
        with self._refusals("set_version_status", name, actor=actor, version=version,
                            request={"status": status}):
            if status not in MODEL_STATUSES:
                raise InvalidInputError(
                    f"status: expected one of {', '.join(MODEL_STATUSES)}, got {status!r}",
                    details={"field": "status"})
            with self._write() as conn:
                model = self._require(conn, name, lock=True)
                row = self._version_row(conn, model, version)
                aliases = self._aliases(conn, [model.model_id])[model.model_id]
                if row.status != status:
                    held = sorted(a for a, n in aliases.items() if n == version)
                    if status == ARCHIVED and held:
                        raise InvalidStateError(
                            f"version {version} of {name!r} is what {_listing(held, 'alias')} "
                            f"point{'s' if len(held) == 1 else ''} at: move or delete "
                            f"{'it' if len(held) == 1 else 'them'} first",
                            details={"model": name, "version": version, "aliases": held})
                    conn.execute(update(v).where(v.c.model_id == model.model_id,
                                                 v.c.version == version).values(status=status))
                    self._touch(conn, model.model_id)
                    kind = "version_archived" if status == ARCHIVED else "version_restored"
                    self._insert_event(conn, name, kind, actor=actor, version=version)
                    row = self._version_row(conn, model, version)
        return self._version(row, name, aliases)

    # --- aliases --------------------------------------------------------------------------
    def set_alias(
        self, name: str, alias: str, version: int, *, actor: str | None = None
    ) -> ModelVersion:
        a = t.model_aliases
        with self._refusals("set_alias", name, actor=actor, version=version, alias=alias):
            check_alias(alias)
            with self._write() as conn:
                model = self._require(conn, name, lock=True)
                row = self._version_row(conn, model, version)
                if row.status == ARCHIVED:
                    raise InvalidStateError(
                        f"version {version} of {name!r} is archived: restore it before "
                        f"pointing {alias!r} at it",
                        details={"model": name, "version": version, "alias": alias})
                aliases = self._aliases(conn, [model.model_id])[model.model_id]
                previous = aliases.get(alias)
                if previous != version:
                    if previous is None:
                        conn.execute(a.insert(), {"model_id": model.model_id, "alias": alias,
                                                  "version": version, "updated_at": now_ms()})
                    else:
                        conn.execute(update(a).where(a.c.model_id == model.model_id,
                                                     a.c.alias == alias)
                                     .values(version=version, updated_at=now_ms()))
                    self._touch(conn, model.model_id)
                    self._insert_event(conn, name, "alias_set", actor=actor, version=version,
                                       alias=alias, details={"previous": previous})
                    aliases[alias] = version
        return self._version(row, name, aliases)

    def delete_alias(self, name: str, alias: str, *, actor: str | None = None) -> int:
        a = t.model_aliases
        with self._refusals("delete_alias", name, actor=actor, alias=alias):
            with self._write() as conn:
                model = self._require(conn, name, lock=True)
                aliases = self._aliases(conn, [model.model_id])[model.model_id]
                if alias not in aliases:
                    raise _no_alias(name, alias, aliases)
                previous = aliases[alias]
                conn.execute(delete(a).where(a.c.model_id == model.model_id, a.c.alias == alias))
                self._touch(conn, model.model_id)
                self._insert_event(conn, name, "alias_deleted", actor=actor, version=previous,
                                   alias=alias)
        return previous

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        with self._read() as conn:
            model = self._require(conn, name)
            aliases = self._aliases(conn, [model.model_id])[model.model_id]
            if alias not in aliases:
                raise _no_alias(name, alias, aliases)
            row = self._version_row(conn, model, aliases[alias])
        return self._version(row, name, aliases)

    # --- events ---------------------------------------------------------------------------
    def list_events(
        self, name: str, *, version: int | None = None, max_results: int = 100
    ) -> list[ModelEvent]:
        e = t.model_events
        limit = max(1, min(int(max_results), _MAX_EVENTS))
        q = select(e).where(e.c.model == name)
        if version is not None:
            q = q.where(e.c.version == version)
        with self._read() as conn:
            rows = conn.execute(q.order_by(e.c.event_id.desc()).limit(limit)).all()
        return [self._event(r) for r in rows]

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
        check_model_name(name)
        if kind not in EVENT_KINDS:
            raise InvalidInputError(f"kind: expected one of {', '.join(EVENT_KINDS)}, "
                                    f"got {kind!r}", details={"field": "kind"})
        plain = plain_json(dict(details or {}), "details")
        with self._write() as conn:
            return self._insert_event(conn, name, kind, actor=actor, version=version,
                                      alias=alias, details=plain)

    def close(self) -> None:
        self.engine.dispose()


# --- helpers of this module -------------------------------------------------------------------


def _no_alias(name: str, alias: str, aliases: Mapping[str, int]) -> ModelAliasNotFound:
    known = sorted(aliases)
    there = (f"its aliases are {', '.join(known)}" if known else "it has no aliases")
    return ModelAliasNotFound(f"model {name!r} has no alias {alias!r}: {there}",
                              details={"model": name, "alias": alias, "aliases": known})


def _listing(items: Sequence[str], noun: str) -> str:
    label = noun if len(items) == 1 else noun + "es"
    return f"{label} {', '.join(items)}"


def _tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (tags or {}).items()}


def _merge_tags(stored: Mapping[str, str] | None, changes: Mapping[str, str | None] | None
                ) -> dict[str, str]:
    merged = dict(stored or {})
    for key, value in (changes or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[str(key)] = str(value)
    return merged


class _Row:
    """Attribute access over a dict, so freshly inserted rows map like fetched ones."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.__dict__.update(data)
