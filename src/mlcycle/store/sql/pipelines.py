"""``SqlPipelineStore``: pipeline runs and step runs in SQLite or PostgreSQL."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import insert, select, update

from mlcycle.entities import (
    PIPELINE_STATUSES,
    STEP_STATUSES,
    Page,
    PipelineRun,
    StepOutput,
    StepRun,
    from_ms,
    now_ms,
)
from mlcycle.errors import InvalidInputError, PipelineRunNotFound, StoreError
from mlcycle.store.base import PipelineStore
from mlcycle.store.sql import tables as t
from mlcycle.store.sql.base import SqlStore
from mlcycle.types import UNSET, JSONValue, Unset

__all__ = ["SqlPipelineStore"]

#: How much of a step's captured output is kept in its row (the whole log is an artifact of
#: its tracking run).
LOG_TAIL_CHARS = 8_000


def _check_status(status: str, allowed: Sequence[str], field: str) -> None:
    if status not in allowed:
        raise InvalidInputError(
            f"The '{field}' parameter must be one of {', '.join(map(repr, allowed))}. "
            f"Got {status!r} instead.",
            details={"field": field},
        )


class SqlPipelineStore(SqlStore, PipelineStore):
    """Pipeline records in the same database as the tracking store (one engine serves both)."""



    # --- plumbing -------------------------------------------------------------------------

    @staticmethod
    def _pipeline_run(row: Any) -> PipelineRun:
        return PipelineRun(
            pipeline_run_id=row.pipeline_run_id,
            pipeline=row.pipeline,
            status=row.status,
            created_at=from_ms(row.created_at),  # type: ignore[arg-type]
            target=row.target,
            executor=row.executor,
            params=dict(row.params or {}),
            cache=bool(row.cache),
            spec_digest=row.spec_digest,
            run_id=row.run_id,
            resumed_from=row.resumed_from,
            error=row.error,
            ended_at=from_ms(row.ended_at),
        )

    @staticmethod
    def _step_run(row: Any) -> StepRun:
        return StepRun(
            step_run_id=row.step_run_id,
            pipeline_run_id=row.pipeline_run_id,
            node=row.node,
            step=row.step,
            status=row.status,
            created_at=from_ms(row.created_at),  # type: ignore[arg-type]
            cache_key=row.cache_key,
            code_hash=row.code_hash,
            cache_hit=bool(row.cache_hit),
            reused_from=row.reused_from,
            params=dict(row.params or {}),
            inputs=dict(row.inputs or {}),
            outputs=tuple(StepOutput(**o) for o in row.outputs or ()),
            upstream=tuple(row.upstream or ()),
            attempts=row.attempts,
            run_id=row.run_id,
            error=row.error,
            logs=row.logs or "",
            started_at=from_ms(row.started_at),
            ended_at=from_ms(row.ended_at),
        )

    # --- pipeline runs --------------------------------------------------------------------
    def create_pipeline_run(
        self,
        pipeline: str,
        *,
        target: str | None,
        executor: str,
        params: Mapping[str, JSONValue],
        cache: bool,
        created_at: int,
        spec_digest: str | None = None,
        run_id: str | None = None,
        resumed_from: str | None = None,
    ) -> PipelineRun:
        row = {
            "pipeline_run_id": uuid.uuid4().hex,
            "pipeline": pipeline,
            "target": target,
            "status": "running",
            "executor": executor,
            "params": dict(params),
            "cache": cache,
            "spec_digest": spec_digest,
            "run_id": run_id,
            "resumed_from": resumed_from,
            "error": None,
            "created_at": created_at,
            "ended_at": None,
        }
        with self._write() as conn:
            conn.execute(insert(t.pipeline_runs).values(**row))
        return self._pipeline_run(_Row(row))

    def update_pipeline_run(
        self,
        pipeline_run_id: str,
        *,
        status: str | Unset = UNSET,
        ended_at: int | Unset | None = UNSET,
        error: Mapping[str, Any] | Unset | None = UNSET,
    ) -> None:
        values: dict[str, Any] = {}
        if status is not UNSET:
            _check_status(status, PIPELINE_STATUSES, "status")
            values["status"] = status
        if ended_at is not UNSET:
            values["ended_at"] = ended_at
        if error is not UNSET:
            values["error"] = dict(error) if error is not None else None
        if not values:
            return
        with self._write() as conn:
            done = conn.execute(update(t.pipeline_runs)
                                .where(t.pipeline_runs.c.pipeline_run_id == pipeline_run_id)
                                .values(**values))
            if done.rowcount == 0:
                raise _not_found(pipeline_run_id)

    def get_pipeline_run(self, pipeline_run_id: str) -> PipelineRun:
        with self._read() as conn:
            row = conn.execute(select(t.pipeline_runs).where(
                t.pipeline_runs.c.pipeline_run_id == pipeline_run_id)).first()
        if row is None:
            raise _not_found(pipeline_run_id)
        return self._pipeline_run(row)

    def list_pipeline_runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> Page[PipelineRun]:
        if not 1 <= max_results <= 10_000:
            raise InvalidInputError(
                f"The 'max_results' parameter must be an int in [1, 10000]. "
                f"Got {max_results!r} instead.", details={"field": "max_results"})
        offset = _decode_token(page_token)
        c = t.pipeline_runs.c
        q = select(t.pipeline_runs)
        if pipeline is not None:
            q = q.where(c.pipeline == pipeline)
        if status is not None:
            _check_status(status, PIPELINE_STATUSES, "status")
            q = q.where(c.status == status)
        q = (q.order_by(c.created_at.desc(), c.pipeline_run_id.desc())
             .offset(offset).limit(max_results + 1))
        with self._read() as conn:
            rows = conn.execute(q).all()
        token = _encode_token(offset + max_results) if len(rows) > max_results else None
        return Page([self._pipeline_run(r) for r in rows[:max_results]], token)

    # --- step runs ------------------------------------------------------------------------
    def create_step_runs(
        self, pipeline_run_id: str, nodes: Sequence[tuple[str, str, Sequence[str]]]
    ) -> list[StepRun]:
        created = now_ms()
        rows: list[dict[str, Any]] = [
            {
                "step_run_id": uuid.uuid4().hex,
                "pipeline_run_id": pipeline_run_id,
                "seq": seq,
                "node": node,
                "step": step,
                "status": "pending",
                "cache_key": None,
                "code_hash": None,
                "cache_hit": False,
                "reused_from": None,
                "params": {},
                "inputs": {},
                "outputs": [],
                "upstream": list(upstream),
                "attempts": 0,
                "run_id": None,
                "error": None,
                "logs": "",
                "created_at": created,
                "started_at": None,
                "ended_at": None,
            }
            for seq, (node, step, upstream) in enumerate(nodes)
        ]
        if rows:
            with self._write() as conn:
                if conn.execute(select(t.pipeline_runs.c.pipeline_run_id).where(
                        t.pipeline_runs.c.pipeline_run_id == pipeline_run_id)).first() is None:
                    raise _not_found(pipeline_run_id)
                conn.execute(insert(t.step_runs), rows)
        return [self._step_run(_Row(r)) for r in rows]

    def update_step_run(
        self,
        step_run_id: str,
        *,
        status: str | Unset = UNSET,
        cache_key: str | Unset | None = UNSET,
        code_hash: str | Unset | None = UNSET,
        cache_hit: bool | Unset = UNSET,
        reused_from: str | Unset | None = UNSET,
        params: Mapping[str, JSONValue] | Unset = UNSET,
        inputs: Mapping[str, str] | Unset = UNSET,
        outputs: Sequence[StepOutput] | Unset = UNSET,
        attempts: int | Unset = UNSET,
        run_id: str | Unset | None = UNSET,
        error: Mapping[str, Any] | Unset | None = UNSET,
        logs: str | Unset = UNSET,
        started_at: int | Unset | None = UNSET,
        ended_at: int | Unset | None = UNSET,
    ) -> None:
        given: dict[str, Any] = {
            "status": status, "cache_key": cache_key, "code_hash": code_hash,
            "cache_hit": cache_hit, "reused_from": reused_from, "attempts": attempts,
            "run_id": run_id, "started_at": started_at, "ended_at": ended_at,
        }
        values = {k: v for k, v in given.items() if v is not UNSET}
        if status is not UNSET:
            _check_status(status, STEP_STATUSES, "status")
        if params is not UNSET:
            values["params"] = dict(params)
        if inputs is not UNSET:
            values["inputs"] = dict(inputs)
        if outputs is not UNSET:
            values["outputs"] = [
                {"name": o.name, "digest": o.digest, "format": o.format, "size": o.size}
                for o in outputs
            ]
        if error is not UNSET:
            values["error"] = dict(error) if error is not None else None
        if logs is not UNSET:
            values["logs"] = logs[-LOG_TAIL_CHARS:]
        if not values:
            return
        with self._write() as conn:
            done = conn.execute(update(t.step_runs)
                                .where(t.step_runs.c.step_run_id == step_run_id)
                                .values(**values))
            if done.rowcount == 0:
                raise StoreError(f"no step run with id {step_run_id!r}",
                                 details={"step_run_id": step_run_id})

    def list_step_runs(self, pipeline_run_id: str) -> list[StepRun]:
        c = t.step_runs.c
        with self._read() as conn:
            rows = conn.execute(select(t.step_runs).where(c.pipeline_run_id == pipeline_run_id)
                                .order_by(c.seq)).all()
            if not rows and conn.execute(select(t.pipeline_runs.c.pipeline_run_id).where(
                    t.pipeline_runs.c.pipeline_run_id == pipeline_run_id)).first() is None:
                raise _not_found(pipeline_run_id)
        return [self._step_run(r) for r in rows]

    def find_cached_step_run(self, cache_key: str) -> StepRun | None:
        c = t.step_runs.c
        with self._read() as conn:
            row = conn.execute(
                select(t.step_runs)
                .where(c.cache_key == cache_key, c.status == "finished")
                .order_by(c.ended_at.desc()).limit(1)
            ).first()
        return self._step_run(row) if row is not None else None


class _Row:
    """A dict read like a result row, so a created record maps through the same code."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)


def _not_found(pipeline_run_id: str) -> PipelineRunNotFound:
    return PipelineRunNotFound(f"no pipeline run with id {pipeline_run_id!r}",
                               details={"pipeline_run_id": pipeline_run_id})


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode()


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = int(base64.urlsafe_b64decode(token.encode()).decode())
    except (ValueError, UnicodeDecodeError):
        offset = -1
    if offset < 0:
        raise InvalidInputError(f"page_token: not a token this listing gave, got {token!r}",
                                details={"field": "page_token"})
    return offset
