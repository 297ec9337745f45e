"""``SqlTriggerStore``: retraining triggers and their runs in SQLite or PostgreSQL.

The one-at-a-time guard is the database's: a partial unique index allows one ``running`` row
per deployment, so of two concurrent inserts the second fails whoever made it (another worker,
another host). :meth:`start_run` tries that insert inside a savepoint and, when it fails or the
trigger is cooling down, stores the run as ``skipped`` with the reason in the same transaction.
The trigger's row is locked first (``FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE``
already serialises writers), so the cool-down check and the insert see the same last run.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from mlcycle.entities import (
    Trigger,
    TriggerRun,
    check_run_status,
    check_trigger,
    check_trigger_run,
    from_ms,
    now_ms,
    plain_json,
    to_ms,
)
from mlcycle.errors import (
    InvalidInputError,
    InvalidStateError,
    StoreError,
    TriggerAlreadyExists,
    TriggerNotFound,
    TriggerRunNotFound,
)
from mlcycle.store.base import TriggerStore
from mlcycle.store.sql import tables as t
from mlcycle.store.sql.base import SqlStore
from mlcycle.types import UNSET, JSONValue, Unset

__all__ = ["SqlTriggerStore"]

_MAX_RESULTS = 10_000
#: Seconds after which a retraining still marked ``running`` is taken as abandoned.
STALE_RUN_S = 6 * 3600


class SqlTriggerStore(SqlStore, TriggerStore):
    """Triggers in the same database as the tracking store (one engine serves both)."""

    # --- triggers -------------------------------------------------------------------------
    def create_trigger(self, trigger: Trigger) -> Trigger:
        check_trigger(trigger)
        now = now_ms()
        row = {
            "name": trigger.name, "deployment": trigger.deployment,
            "kinds": list(trigger.kinds), "pipeline": trigger.pipeline,
            "dataset": trigger.dataset, "target": trigger.target,
            "schedule": trigger.schedule, "monitor": trigger.monitor,
            "evaluation_data": trigger.evaluation_data,
            "gates": plain_json(dict(trigger.gates), "gates"),
            "params": plain_json(dict(trigger.params), "params"),
            "canary": plain_json(dict(trigger.canary), "canary"),
            "cooldown_s": trigger.cooldown_s, "enabled": trigger.enabled,
            "description": trigger.description, "seen_version": trigger.seen_version,
            "created_at": now, "updated_at": now,
        }
        try:
            with self._write() as conn:
                conn.execute(insert(t.triggers).values(**row))
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise TriggerAlreadyExists(f"a trigger named {trigger.name!r} exists already",
                                           details={"trigger": trigger.name}) from None
            raise
        return _trigger(_Row(row))

    def get_trigger(self, name: str) -> Trigger:
        with self._read() as conn:
            row = conn.execute(select(t.triggers).where(t.triggers.c.name == name)).first()
        if row is None:
            raise _not_found(name)
        return _trigger(row)

    def list_triggers(self, *, deployment: str | None = None) -> list[Trigger]:
        q = select(t.triggers)
        if deployment is not None:
            q = q.where(t.triggers.c.deployment == deployment)
        with self._read() as conn:
            rows = conn.execute(q).all()
        # Sorted here, by code point: collations differ from one database to the next.
        return sorted((_trigger(r) for r in rows), key=lambda tr: tr.name)

    def update_trigger(self, name: str, *, enabled: bool | Unset = UNSET,
                       seen_version: int | Unset | None = UNSET) -> Trigger:
        values: dict[str, Any] = {"updated_at": now_ms()}
        if not isinstance(enabled, Unset):
            if not isinstance(enabled, bool):
                raise InvalidInputError(f"enabled: expected true or false, got {enabled!r}",
                                        details={"field": "enabled"})
            values["enabled"] = enabled
        if not isinstance(seen_version, Unset):
            if seen_version is not None and (isinstance(seen_version, bool)
                                             or not isinstance(seen_version, int)
                                             or seen_version < 0):
                raise InvalidInputError(
                    f"seen_version: expected an int >= 0 or null, got {seen_version!r}",
                    details={"field": "seen_version"})
            values["seen_version"] = seen_version
        tr = t.triggers
        with self._write() as conn:
            if conn.execute(update(tr).where(tr.c.name == name).values(**values)).rowcount == 0:
                raise _not_found(name)
            row = conn.execute(select(tr).where(tr.c.name == name)).one()
        return _trigger(row)

    def delete_trigger(self, name: str) -> None:
        r = t.trigger_runs
        with self._write() as conn:
            running = conn.execute(select(r.c.run_id).where(
                r.c.trigger == name, r.c.status == "running")).first()
            if running is not None:
                raise InvalidStateError(
                    f"trigger {name!r} is retraining (run {running.run_id}); delete it when "
                    "the run has ended", details={"trigger": name, "run_id": running.run_id})
            # Children first: SQLite only honours the declared cascade with foreign keys on.
            conn.execute(delete(r).where(r.c.trigger == name))
            if conn.execute(delete(t.triggers).where(t.triggers.c.name == name)).rowcount == 0:
                raise _not_found(name)

    # --- runs -----------------------------------------------------------------------------
    def start_run(self, run: TriggerRun, *, cooldown_s: int) -> TriggerRun:
        check_trigger_run(run)
        if isinstance(cooldown_s, bool) or not isinstance(cooldown_s, int) or cooldown_s < 0:
            raise InvalidInputError(
                f"The 'cooldown_s' parameter must be an int >= 0. Got {cooldown_s!r} instead.",
                details={"field": "cooldown_s"})
        r, tr = t.trigger_runs, t.triggers
        started = to_ms(run.started_at)
        with self._write() as conn:
            trigger = conn.execute(select(tr.c.name, tr.c.deployment)
                                   .where(tr.c.name == run.trigger).with_for_update()).first()
            if trigger is None:
                raise _not_found(run.trigger)
            row = _run_row(run) | {"deployment": trigger.deployment, "started_at": started}
            self._abandon_stale(conn, trigger.deployment, started)
            reason = self._cooling(conn, run.trigger, run.started_at, cooldown_s)
            if reason is None:
                try:
                    with conn.begin_nested():
                        run_id = conn.execute(insert(r).values(**row, status="running")
                                              .returning(r.c.run_id)).scalar_one()
                    return _run(_Row({**row, "status": "running", "run_id": run_id}))
                except IntegrityError:
                    reason = self._busy(conn, trigger.deployment)
            skipped = {**row, "status": "skipped", "reason": reason, "ended_at": started}
            run_id = conn.execute(insert(r).values(**skipped).returning(r.c.run_id)).scalar_one()
        return _run(_Row({**skipped, "run_id": run_id}))

    @staticmethod
    def _abandon_stale(conn: Any, deployment: str, now_ms: int) -> None:
        """A run still ``running`` after :data:`STALE_RUN_S` was abandoned (its process died
        mid-retraining): mark it ``failed`` so that it stops blocking the deployment."""
        r = t.trigger_runs
        conn.execute(update(r).where(
            r.c.deployment == deployment, r.c.status == "running",
            r.c.started_at < now_ms - STALE_RUN_S * 1000,
        ).values(status="failed", ended_at=now_ms,
                 reason=f"abandoned: still running after {STALE_RUN_S // 3600} h (its process "
                        "stopped mid-retraining)"))

    @staticmethod
    def _cooling(conn: Any, trigger: str, at: datetime, cooldown_s: int) -> str | None:
        """Why *trigger* may not start at *at*, or ``None``: its last run that ran started
        less than *cooldown_s* seconds before."""
        r = t.trigger_runs
        last = conn.execute(select(r.c.run_id, r.c.started_at)
                            .where(r.c.trigger == trigger, r.c.status != "skipped")
                            .order_by(r.c.started_at.desc(), r.c.run_id.desc()).limit(1)).first()
        if last is None:
            return None
        last_at = from_ms(last.started_at)
        assert last_at is not None
        free_at = last_at + timedelta(seconds=cooldown_s)
        if at >= free_at:
            return None
        return (f"cool-down: run {last.run_id} started at {last_at.isoformat()}; the trigger "
                f"may run again from {free_at.isoformat()} (cooldown_s={cooldown_s})")

    @staticmethod
    def _busy(conn: Any, deployment: str) -> str:
        r = t.trigger_runs
        other = conn.execute(select(r.c.run_id, r.c.trigger).where(
            r.c.deployment == deployment, r.c.status == "running")).first()
        if other is None:  # it ended between the failed insert and this read
            return f"another retraining of deployment {deployment!r} was running"
        return (f"one at a time: run {other.run_id} of trigger {other.trigger!r} is still "
                f"retraining deployment {deployment!r}")

    def update_run(
        self,
        run_id: int,
        *,
        status: str | Unset = UNSET,
        ended_at: datetime | Unset | None = UNSET,
        reason: str | Unset = UNSET,
        data: Mapping[str, JSONValue] | Unset = UNSET,
        pipeline_run_id: str | Unset | None = UNSET,
        training_run_id: str | Unset | None = UNSET,
        model: str | Unset | None = UNSET,
        model_version: int | Unset | None = UNSET,
        gates: Mapping[str, JSONValue] | Unset = UNSET,
        rollout: int | Unset | None = UNSET,
    ) -> TriggerRun:
        values = _run_changes(status=status, ended_at=ended_at, reason=reason, data=data,
                              pipeline_run_id=pipeline_run_id, training_run_id=training_run_id,
                              model=model, model_version=model_version, gates=gates,
                              rollout=rollout)
        r = t.trigger_runs
        with self._write() as conn:
            if values:
                done = conn.execute(update(r).where(r.c.run_id == run_id,
                                                    r.c.status == "running").values(**values))
            row = conn.execute(select(r).where(r.c.run_id == run_id)).first()
            if row is None:
                raise _run_not_found(run_id)
            if values and done.rowcount == 0:
                raise InvalidStateError(
                    f"trigger run {run_id} has ended ({row.status}); its record is final",
                    details={"run_id": run_id, "status": row.status})
        return _run(row)

    def get_run(self, run_id: int) -> TriggerRun:
        with self._read() as conn:
            row = conn.execute(select(t.trigger_runs)
                               .where(t.trigger_runs.c.run_id == run_id)).first()
        if row is None:
            raise _run_not_found(run_id)
        return _run(row)

    def list_runs(self, trigger: str | None = None, *, deployment: str | None = None,
                  max_results: int = 100) -> list[TriggerRun]:
        if isinstance(max_results, bool) or not isinstance(max_results, int) \
                or not 1 <= max_results <= _MAX_RESULTS:
            raise InvalidInputError(
                f"The 'max_results' parameter must be an int in [1, {_MAX_RESULTS}]. "
                f"Got {max_results!r} instead.", details={"field": "max_results"})
        r = t.trigger_runs
        q = select(r)
        if trigger is not None:
            q = q.where(r.c.trigger == trigger)
        if deployment is not None:
            q = q.where(r.c.deployment == deployment)
        with self._read() as conn:
            rows = conn.execute(q.order_by(r.c.run_id.desc()).limit(max_results)).all()
            if trigger is not None and not rows and conn.execute(
                    select(t.triggers.c.name).where(t.triggers.c.name == trigger)).first() is None:
                raise _not_found(trigger)
        return [_run(row) for row in rows]


# --- rows ↔ entities ------------------------------------------------------------------------


class _Row:
    """A dict read like a result row, so a created record maps through the same code."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)


def _run_row(run: TriggerRun) -> dict[str, Any]:
    return {
        "trigger": run.trigger, "cause": plain_json(dict(run.cause), "cause"),
        "ended_at": None, "reason": run.reason, "data": plain_json(dict(run.data), "data"),
        "pipeline_run_id": run.pipeline_run_id, "training_run_id": run.training_run_id,
        "model": run.model, "model_version": run.model_version,
        "gates": plain_json(dict(run.gates), "gates"), "rollout": run.rollout,
    }


def _run_changes(**given: Any) -> dict[str, Any]:
    """The columns to set from the given (not ``UNSET``) fields, checked."""
    values = {k: v for k, v in given.items() if not isinstance(v, Unset)}
    if "status" in values:
        check_run_status(values["status"])
    if "ended_at" in values:
        values["ended_at"] = None if values["ended_at"] is None else to_ms(values["ended_at"])
    for name in ("data", "gates"):
        if name in values:
            values[name] = plain_json(dict(values[name]), name)
    for name in ("model_version", "rollout"):
        value = values.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidInputError(f"{name}: expected an int or null, got {value!r}",
                                    details={"field": name})
    return values


def _trigger(row: Any) -> Trigger:
    return Trigger(
        name=row.name,
        deployment=row.deployment,
        kinds=tuple(row.kinds),
        pipeline=row.pipeline,
        dataset=row.dataset,
        created_at=from_ms(row.created_at),  # type: ignore[arg-type]
        updated_at=from_ms(row.updated_at),  # type: ignore[arg-type]
        target=row.target,
        schedule=row.schedule,
        monitor=row.monitor,
        evaluation_data=row.evaluation_data,
        gates=dict(row.gates or {}),
        params=dict(row.params or {}),
        canary=dict(row.canary or {}),
        cooldown_s=int(row.cooldown_s),
        enabled=bool(row.enabled),
        description=row.description or "",
        seen_version=None if row.seen_version is None else int(row.seen_version),
    )


def _run(row: Any) -> TriggerRun:
    return TriggerRun(
        run_id=int(row.run_id),
        trigger=row.trigger,
        deployment=row.deployment,
        status=row.status,
        started_at=from_ms(row.started_at),  # type: ignore[arg-type]
        cause=dict(row.cause or {}),
        ended_at=from_ms(row.ended_at),
        reason=row.reason or "",
        data=dict(row.data or {}),
        pipeline_run_id=row.pipeline_run_id,
        training_run_id=row.training_run_id,
        model=row.model,
        model_version=None if row.model_version is None else int(row.model_version),
        gates=dict(row.gates or {}),
        rollout=None if row.rollout is None else int(row.rollout),
    )


def _not_found(name: str) -> TriggerNotFound:
    return TriggerNotFound(f"no trigger named {name!r}", details={"trigger": name})


def _run_not_found(run_id: int) -> TriggerRunNotFound:
    return TriggerRunNotFound(f"no trigger run {run_id}", details={"run_id": run_id})
