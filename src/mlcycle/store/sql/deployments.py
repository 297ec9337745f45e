"""``SqlDeploymentStore``: deployment state, its events and serving workers' reports in SQLite or
PostgreSQL.

Every change is one transaction: ``UPDATE deployments … WHERE name = :name AND revision =
:expected`` and, when a row changed, the insert of its event. When no row changed, someone else
moved the revision first (``RevisionConflict``) or there is no such deployment. A worker's report
is one upsert (``INSERT … ON CONFLICT DO UPDATE``, which both databases speak).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from mlcycle.entities import (
    DEPLOYMENT_EVENT_KINDS,
    DEPLOYMENT_PHASES,
    DEPLOYMENT_STRATEGIES,
    Deployment,
    DeploymentEvent,
    WorkerReport,
    check_deployment_name,
    check_model_name,
    from_ms,
    now_ms,
    plain_json,
    to_ms,
)
from mlcycle.errors import (
    DeploymentAlreadyExists,
    DeploymentNotFound,
    InvalidInputError,
    RevisionConflict,
    StoreError,
)
from mlcycle.store.base import DeploymentStore
from mlcycle.store.sql import tables as t
from mlcycle.store.sql.base import SqlStore
from mlcycle.types import UNSET, JSONValue, Unset

__all__ = ["SqlDeploymentStore"]

_MAX_EVENTS = 10_000


class SqlDeploymentStore(SqlStore, DeploymentStore):
    """Deployments in the same database as the tracking store (one engine serves both)."""

    # --- deployments ----------------------------------------------------------------------
    def create_deployment(
        self,
        name: str,
        *,
        model: str,
        version: int,
        config: Mapping[str, JSONValue] | None = None,
        description: str = "",
        actor: str | None = None,
        reason: str = "",
    ) -> Deployment:
        check_deployment_name(name)
        check_model_name(model)
        _check_version(version, "version")
        now = now_ms()
        row = {
            "name": name, "model": model, "stable_version": version, "candidate_version": None,
            "previous_version": None, "strategy": "direct", "phase": "stable", "weight": 0.0,
            "step": 0, "rollout": 0, "config": _json(config or {}, "config"),
            "description": description, "revision": 1, "created_at": now, "updated_at": now,
        }
        try:
            with self._write() as conn:
                conn.execute(insert(t.deployments).values(**row))
                _insert_event(conn, name, "created", revision=1, actor=actor,
                              reason=reason or f"created, serving {model} version {version}",
                              details={"model": model, "stable_version": version})
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise DeploymentAlreadyExists(f"a deployment named {name!r} exists already",
                                              details={"deployment": name}) from None
            raise
        return _deployment(_Row(row))

    def get_deployment(self, name: str) -> Deployment:
        with self._read() as conn:
            row = conn.execute(select(t.deployments).where(t.deployments.c.name == name)).first()
        if row is None:
            raise _not_found(name)
        return _deployment(row)

    def list_deployments(self) -> list[Deployment]:
        with self._read() as conn:
            rows = conn.execute(select(t.deployments)).all()
        # Sorted here, by code point: collations differ from one database to the next.
        return sorted((_deployment(r) for r in rows), key=lambda d: d.name)

    def update_deployment(
        self,
        name: str,
        *,
        expected_revision: int,
        event: str,
        reason: str = "",
        details: Mapping[str, JSONValue] | None = None,
        actor: str | None = None,
        stable_version: int | Unset = UNSET,
        candidate_version: int | Unset | None = UNSET,
        previous_version: int | Unset | None = UNSET,
        strategy: str | Unset = UNSET,
        phase: str | Unset = UNSET,
        weight: float | Unset = UNSET,
        step: int | Unset = UNSET,
        rollout: int | Unset = UNSET,
        config: Mapping[str, JSONValue] | Unset = UNSET,
        description: str | Unset = UNSET,
    ) -> Deployment:
        _check_choice(event, DEPLOYMENT_EVENT_KINDS, "event")
        values = _changes(
            stable_version=stable_version, candidate_version=candidate_version,
            previous_version=previous_version, strategy=strategy, phase=phase, weight=weight,
            step=step, rollout=rollout, config=config, description=description)
        event_details = _json(details or {}, "details")
        d = t.deployments
        with self._write() as conn:
            if values:
                done = conn.execute(
                    update(d).where(d.c.name == name, d.c.revision == expected_revision)
                    .values(revision=expected_revision + 1, updated_at=now_ms(), **values))
                if done.rowcount == 0:
                    raise self._refused(conn, name, expected_revision)
                revision = expected_revision + 1
            else:  # a decision without a change: the revision stays, and must still match
                q = select(d.c.revision).where(d.c.name == name)
                if self.engine.dialect.name == "postgresql":
                    q = q.with_for_update()
                current = conn.execute(q).scalar()
                if current != expected_revision:
                    raise self._refused(conn, name, expected_revision)
                revision = expected_revision
            _insert_event(conn, name, event, revision=revision, actor=actor, reason=reason,
                          details=event_details)
            row = conn.execute(select(d).where(d.c.name == name)).one()
        return _deployment(row)

    @staticmethod
    def _refused(conn: Connection, name: str, expected: int) -> Exception:
        actual = conn.execute(select(t.deployments.c.revision)
                              .where(t.deployments.c.name == name)).scalar()
        if actual is None:
            return _not_found(name)
        return RevisionConflict(
            f"deployment {name!r} is at revision {actual}, not the expected {expected}: "
            "someone changed it first; read it again and decide again",
            details={"deployment": name, "expected": expected, "actual": int(actual)})

    def delete_deployment(self, name: str) -> None:
        with self._write() as conn:
            # Children first: the cascade is declared, but SQLite only honours it with
            # foreign keys switched on, which a database opened elsewhere may not have.
            conn.execute(delete(t.deployment_events)
                         .where(t.deployment_events.c.deployment == name))
            conn.execute(delete(t.deployment_workers)
                         .where(t.deployment_workers.c.deployment == name))
            done = conn.execute(delete(t.deployments).where(t.deployments.c.name == name))
            if done.rowcount == 0:
                raise _not_found(name)

    # --- events ---------------------------------------------------------------------------
    def list_deployment_events(
        self, name: str, *, max_results: int = 100
    ) -> list[DeploymentEvent]:
        if not isinstance(max_results, int) or not 1 <= max_results <= _MAX_EVENTS:
            raise InvalidInputError(
                f"The 'max_results' parameter must be an int in [1, {_MAX_EVENTS}]. "
                f"Got {max_results!r} instead.", details={"field": "max_results"})
        e = t.deployment_events
        with self._read() as conn:
            rows = conn.execute(select(e).where(e.c.deployment == name)
                                .order_by(e.c.event_id.desc()).limit(max_results)).all()
            if not rows and conn.execute(select(t.deployments.c.name)
                                         .where(t.deployments.c.name == name)).first() is None:
                raise _not_found(name)
        return [_event(r) for r in rows]

    # --- worker reports -------------------------------------------------------------------
    def report_worker(self, report: WorkerReport) -> None:
        if not report.worker_id or len(report.worker_id) > 256:
            raise InvalidInputError(
                f"worker_id: expected 1 to 256 characters, got {report.worker_id!r}",
                details={"field": "worker_id"})
        row = {
            "deployment": report.deployment,
            "worker_id": report.worker_id,
            "heartbeat_at": to_ms(report.heartbeat_at),
            "revision": report.revision,
            "rollout": report.rollout,
            "ready_versions": [int(v) for v in report.ready_versions],
            "stats": _json(report.stats, "stats"),
            "info": _json(report.info, "info"),
        }
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(t.deployment_workers).values(**row)
        stmt = stmt.on_conflict_do_update(
            index_elements=["deployment", "worker_id"],
            set_={k: stmt.excluded[k] for k in row if k not in ("deployment", "worker_id")})
        try:
            with self._write() as conn:
                conn.execute(stmt)
        except StoreError as exc:  # the foreign key: no such deployment
            if isinstance(exc.__cause__, IntegrityError):
                raise _not_found(report.deployment) from None
            raise

    def list_worker_reports(self, name: str) -> list[WorkerReport]:
        w = t.deployment_workers
        with self._read() as conn:
            rows = conn.execute(select(w).where(w.c.deployment == name)
                                .order_by(w.c.heartbeat_at.desc(), w.c.worker_id)).all()
            if not rows and conn.execute(select(t.deployments.c.name)
                                         .where(t.deployments.c.name == name)).first() is None:
                raise _not_found(name)
        return [_report(r) for r in rows]


# --- rows ↔ entities ------------------------------------------------------------------------


class _Row:
    """A dict read like a result row, so a created record maps through the same code."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)


def _deployment(row: Any) -> Deployment:
    return Deployment(
        name=row.name,
        model=row.model,
        stable_version=row.stable_version,
        revision=int(row.revision),
        created_at=from_ms(row.created_at),  # type: ignore[arg-type]
        updated_at=from_ms(row.updated_at),  # type: ignore[arg-type]
        candidate_version=row.candidate_version,
        previous_version=row.previous_version,
        strategy=row.strategy,
        phase=row.phase,
        weight=float(row.weight),
        step=row.step,
        rollout=row.rollout,
        config=dict(row.config or {}),
        description=row.description or "",
    )


def _event(row: Any) -> DeploymentEvent:
    return DeploymentEvent(
        event_id=int(row.event_id),
        deployment=row.deployment,
        kind=row.kind,
        time=from_ms(row.at),  # type: ignore[arg-type]
        revision=int(row.revision),
        reason=row.reason or "",
        actor=row.actor,
        details=dict(row.details or {}),
    )


def _report(row: Any) -> WorkerReport:
    return WorkerReport(
        deployment=row.deployment,
        worker_id=row.worker_id,
        heartbeat_at=from_ms(row.heartbeat_at),  # type: ignore[arg-type]
        revision=int(row.revision),
        rollout=row.rollout,
        ready_versions=tuple(row.ready_versions or ()),
        stats=dict(row.stats or {}),
        info=dict(row.info or {}),
    )


def _insert_event(conn: Connection, name: str, kind: str, *, revision: int, actor: str | None,
                  reason: str, details: Mapping[str, Any]) -> None:
    conn.execute(insert(t.deployment_events).values(
        deployment=name, kind=kind, at=now_ms(), revision=revision, reason=reason,
        actor=actor, details=dict(details)))


# --- checks ---------------------------------------------------------------------------------


def _changes(**given: Any) -> dict[str, Any]:
    """The columns to set, each checked; fields left ``UNSET`` are not among them."""
    values = {k: v for k, v in given.items() if v is not UNSET}
    for field in ("stable_version", "candidate_version", "previous_version"):
        if values.get(field) is not None:
            _check_version(values[field], field)
    if values.get("stable_version", 0) is None:
        raise InvalidInputError("stable_version: a deployment always has a stable version",
                                details={"field": "stable_version"})
    if "strategy" in values:
        _check_choice(values["strategy"], DEPLOYMENT_STRATEGIES, "strategy")
    if "phase" in values:
        _check_choice(values["phase"], DEPLOYMENT_PHASES, "phase")
    if "weight" in values:
        weight = values["weight"]
        if isinstance(weight, bool) or not isinstance(weight, int | float) \
                or not 0 <= weight <= 100:
            raise InvalidInputError(
                f"The 'weight' parameter must be a percent in [0, 100]. Got {weight!r} instead.",
                details={"field": "weight"})
        values["weight"] = float(weight)
    for field in ("step", "rollout"):
        if field in values and (isinstance(values[field], bool)
                                or not isinstance(values[field], int) or values[field] < 0):
            raise InvalidInputError(
                f"The '{field}' parameter must be an int >= 0. Got {values[field]!r} instead.",
                details={"field": field})
    if "config" in values:
        values["config"] = _json(values["config"], "config")
    if "description" in values and not isinstance(values["description"], str):
        raise InvalidInputError("description: expected a string", details={"field": "description"})
    return values


def _check_version(version: Any, field: str) -> None:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidInputError(
            f"The '{field}' parameter must be a model version number (an int >= 1). "
            f"Got {version!r} instead.", details={"field": field})


def _check_choice(value: Any, allowed: Sequence[str], field: str) -> None:
    if value not in allowed:
        raise InvalidInputError(
            f"The '{field}' parameter must be one of {', '.join(map(repr, allowed))}. "
            f"Got {value!r} instead.", details={"field": field})


def _json(value: Mapping[str, Any], field: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"{field}: expected a JSON object, got {type(value).__name__}",
                                details={"field": field})
    out: dict[str, Any] = plain_json(dict(value), field)
    return out


def _not_found(name: str) -> DeploymentNotFound:
    return DeploymentNotFound(f"no deployment named {name!r}", details={"deployment": name})
