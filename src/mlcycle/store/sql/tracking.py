"""``SqlTrackingStore``: experiments and runs in SQLite or PostgreSQL."""

from __future__ import annotations

import base64
import json
import math
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Table, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from mlcycle.entities import (
    Artifact,
    Experiment,
    Metric,
    MetricHistory,
    Page,
    Run,
    RunInput,
    from_ms,
    now_ms,
)
from mlcycle.errors import (
    ExperimentAlreadyExists,
    ExperimentNotFound,
    InvalidInputError,
    InvalidStateError,
    RunNotFound,
    StoreError,
)
from mlcycle.store.base import TrackingStore
from mlcycle.store.filter import parse_filter, parse_order_by
from mlcycle.store.sql import tables as t
from mlcycle.store.sql.base import SqlStore
from mlcycle.store.sql.chunks import history_from_chunks, pack
from mlcycle.store.sql.search import apply_order, compile_filter
from mlcycle.types import UNSET, JSONValue, RunStatus, Unset

__all__ = ["SqlTrackingStore"]

_MAX_PAGE = 50_000


def _new_id() -> str:
    return uuid.uuid4().hex


def _nan_to_null(value: float) -> float | None:
    return None if math.isnan(value) else value


class SqlTrackingStore(SqlStore, TrackingStore):
    """Tracking metadata in any SQLAlchemy database (tested: SQLite, PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        dialect = engine.dialect.name
        if dialect == "sqlite":
            self._insert: Any = sqlite.insert
        elif dialect == "postgresql":
            self._insert = postgresql.insert
        else:
            raise StoreError(f"unsupported database {dialect!r}: use SQLite or PostgreSQL")
        mark = self._mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._json_object_agg = (
            "json_group_object(key, value)" if dialect == "sqlite"
            else "json_object_agg(key, value)"
        )
        self._insert_chunk_sql = (
            'INSERT INTO metric_chunks (run_id, key, count, steps, "values", timestamps) '
            f"VALUES ({', '.join([mark] * 6)})"
        )
        # Statements on every run's path, built once (building a construct costs more than
        # executing it on SQLite).
        self._run_state_q = select(t.runs.c.status, t.runs.c.lifecycle).where(
            t.runs.c.run_id == bindparam("run_id")
        )
        latest = self._insert(t.latest_metrics)
        newer = (latest.excluded.step > t.latest_metrics.c.step) | (
            (latest.excluded.step == t.latest_metrics.c.step)
            & (latest.excluded.timestamp >= t.latest_metrics.c.timestamp)
        )
        self._upsert_latest = latest.on_conflict_do_update(
            index_elements=["run_id", "key"],
            set_={"step": latest.excluded.step, "timestamp": latest.excluded.timestamp,
                  "value": latest.excluded.value},
            where=newer,
        )
        self._upserts: dict[tuple[str, tuple[str, ...]], Any] = {}
        self._history_sql = (
            'SELECT steps, "values", timestamps FROM metric_chunks '
            f"WHERE run_id = {mark} AND key = {mark} ORDER BY id"
        )


    def close(self) -> None:
        self.engine.dispose()

    # --- plumbing -------------------------------------------------------------------------
    def _upsert(
        self, conn: Connection, table: Table, rows: list[dict[str, Any]], keys: list[str]
    ) -> None:
        if not rows:
            return
        cache_key = (table.name, tuple(keys))
        upsert = self._upserts.get(cache_key)
        if upsert is None:
            stmt = self._insert(table)
            updates = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
            upsert = self._upserts[cache_key] = stmt.on_conflict_do_update(
                index_elements=keys, set_=updates
            )
        conn.execute(upsert, rows)

    def _run_state(self, conn: Connection, run_id: str) -> tuple[str, str]:
        row = conn.execute(self._run_state_q, {"run_id": run_id}).first()
        if row is None:
            raise RunNotFound(f"no run with id {run_id!r}", details={"run_id": run_id})
        return row[0], row[1]

    def _require_active(self, conn: Connection, run_id: str) -> None:
        _, lifecycle = self._run_state(conn, run_id)
        if lifecycle != "active":
            raise InvalidStateError(
                f"run {run_id!r} is deleted; restore it before logging to it",
                details={"run_id": run_id},
            )

    # --- experiments ----------------------------------------------------------------------
    @staticmethod
    def _experiment(row: Any) -> Experiment:
        return Experiment(
            experiment_id=row.experiment_id,
            name=row.name,
            created_at=from_ms(row.created_at),  # type: ignore[arg-type]
            description=row.description,
            tags=dict(row.tags or {}),
            lifecycle=row.lifecycle,
        )

    def create_experiment(
        self, name: str, *, description: str | None = None, tags: Mapping[str, str] | None = None
    ) -> Experiment:
        row = {
            "experiment_id": _new_id(),
            "name": name,
            "description": description,
            "tags": dict(tags or {}),
            "lifecycle": "active",
            "created_at": now_ms(),
        }
        try:
            with self._write() as conn:
                conn.execute(t.experiments.insert(), row)
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise ExperimentAlreadyExists(
                    f"an experiment named {name!r} exists already", details={"name": name}
                ) from None
            raise
        return self._experiment(_Row(row))

    def get_experiment(self, experiment_id: str) -> Experiment:
        with self._read() as conn:
            row = conn.execute(
                select(t.experiments).where(t.experiments.c.experiment_id == experiment_id)
            ).first()
        if row is None:
            raise ExperimentNotFound(
                f"no experiment with id {experiment_id!r}",
                details={"experiment_id": experiment_id},
            )
        return self._experiment(row)

    def find_experiment(self, name: str) -> Experiment | None:
        with self._read() as conn:
            row = conn.execute(
                select(t.experiments).where(t.experiments.c.name == name)
            ).first()
        return None if row is None else self._experiment(row)

    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]:
        query = select(t.experiments).order_by(t.experiments.c.created_at, t.experiments.c.name)
        if not include_deleted:
            query = query.where(t.experiments.c.lifecycle == "active")
        with self._read() as conn:
            return [self._experiment(r) for r in conn.execute(query)]

    def update_experiment(
        self,
        experiment_id: str,
        *,
        name: str | Unset = UNSET,
        description: str | Unset | None = UNSET,
        lifecycle: str | Unset = UNSET,
    ) -> Experiment:
        values = {
            k: v
            for k, v in {"name": name, "description": description, "lifecycle": lifecycle}.items()
            if v is not UNSET
        }
        if values:
            try:
                with self._write() as conn:
                    done = conn.execute(
                        update(t.experiments)
                        .where(t.experiments.c.experiment_id == experiment_id)
                        .values(**values)
                    )
                    if done.rowcount == 0:
                        raise ExperimentNotFound(
                            f"no experiment with id {experiment_id!r}",
                            details={"experiment_id": experiment_id},
                        )
            except StoreError as exc:
                if isinstance(exc.__cause__, IntegrityError):
                    raise ExperimentAlreadyExists(
                        f"an experiment named {name!r} exists already", details={"name": name}
                    ) from None
                raise
        return self.get_experiment(experiment_id)

    # --- runs -----------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        *,
        name: str,
        start_time: int,
        parent_run_id: str | None = None,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Run:
        run_id = _new_id()
        params = dict(params or {})
        tags = dict(tags or {})
        with self._write() as conn:
            exists = conn.execute(
                select(t.experiments.c.lifecycle).where(
                    t.experiments.c.experiment_id == experiment_id
                )
            ).first()
            if exists is None:
                raise ExperimentNotFound(
                    f"no experiment with id {experiment_id!r}",
                    details={"experiment_id": experiment_id},
                )
            if parent_run_id is not None:
                self._run_state(conn, parent_run_id)
            conn.execute(
                t.runs.insert(),
                {
                    "run_id": run_id,
                    "experiment_id": experiment_id,
                    "name": name,
                    "status": RunStatus.RUNNING.value,
                    "start_time": start_time,
                    "end_time": None,
                    "parent_run_id": parent_run_id,
                    "lifecycle": "active",
                },
            )
            if params:
                conn.execute(
                    t.params.insert(),
                    [{"run_id": run_id, "key": k, "value": v} for k, v in params.items()],
                )
            if tags:
                conn.execute(
                    t.tags.insert(),
                    [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()],
                )
        return Run(
            run_id=run_id,
            experiment_id=experiment_id,
            name=name,
            status=RunStatus.RUNNING,
            start_time=from_ms(start_time),  # type: ignore[arg-type]
            parent_run_id=parent_run_id,
            params=params,
            tags=tags,
        )

    def get_run(self, run_id: str) -> Run:
        with self._read() as conn:
            row = conn.execute(select(t.runs).where(t.runs.c.run_id == run_id)).first()
            if row is None:
                raise RunNotFound(f"no run with id {run_id!r}", details={"run_id": run_id})
            return self._load_runs(conn, [row])[0]

    def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus | Unset = UNSET,
        end_time: int | Unset | None = UNSET,
        name: str | Unset = UNSET,
        lifecycle: str | Unset = UNSET,
    ) -> None:
        values: dict[str, Any] = {}
        if status is not UNSET:
            values["status"] = RunStatus(status).value
        if end_time is not UNSET:
            values["end_time"] = end_time
        if name is not UNSET:
            values["name"] = name
        if lifecycle is not UNSET:
            values["lifecycle"] = lifecycle
        with self._write() as conn:
            if values:
                done = conn.execute(
                    update(t.runs).where(t.runs.c.run_id == run_id).values(**values)
                )
                if done.rowcount == 0:
                    raise RunNotFound(f"no run with id {run_id!r}", details={"run_id": run_id})
            else:
                self._run_state(conn, run_id)

    def delete_run(self, run_id: str, *, hard: bool = False) -> None:
        with self._write() as conn:
            self._run_state(conn, run_id)
            if hard:
                for table in (
                    t.metric_chunks, t.latest_metrics, t.params, t.tags,
                    t.run_inputs, t.run_results, t.artifacts,
                ):
                    conn.execute(delete(table).where(table.c.run_id == run_id))
                conn.execute(delete(t.runs).where(t.runs.c.run_id == run_id))
            else:
                conn.execute(
                    update(t.runs).where(t.runs.c.run_id == run_id).values(lifecycle="deleted")
                )

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        if not metrics and not params and not tags:
            return
        with self._write() as conn:
            self._require_active(conn, run_id)
            if params:
                self._add_params(conn, run_id, params)
            if tags:
                self._upsert(
                    conn,
                    t.tags,
                    [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()],
                    ["run_id", "key"],
                )
            if metrics:
                self._add_metrics(conn, run_id, metrics)

    def _add_params(self, conn: Connection, run_id: str, params: Mapping[str, str]) -> None:
        existing = dict(
            conn.execute(
                select(t.params.c.key, t.params.c.value).where(
                    t.params.c.run_id == run_id, t.params.c.key.in_(list(params))
                )
            ).all()
        )
        for key, value in params.items():
            if key in existing and existing[key] != value:
                raise InvalidInputError(
                    f"param {key!r} of run {run_id!r} is {existing[key]!r} already; "
                    f"params are set once, got {value!r}. Log it under another key or use a tag.",
                    details={"field": f"params.{key}", "run_id": run_id},
                )
        new = [{"run_id": run_id, "key": k, "value": v} for k, v in params.items()
               if k not in existing]
        if new:
            conn.execute(t.params.insert(), new)

    def _add_metrics(self, conn: Connection, run_id: str, points: Sequence[Metric]) -> None:
        latest: dict[str, Metric] = {}
        for m in points:
            prev = latest.get(m.key)
            if prev is None or (m.step, m.timestamp) >= (prev.step, prev.timestamp):
                latest[m.key] = m
        # The hot path of ingest: one packed chunk per key (see chunks.py), inserted by the
        # driver directly. The statement is a constant; values travel as parameters.
        conn.exec_driver_sql(
            self._insert_chunk_sql,
            [(run_id, key, *chunk) for key, chunk in pack(points).items()],
        )
        conn.execute(
            self._upsert_latest,
            [
                {"run_id": run_id, "key": m.key, "step": m.step, "timestamp": m.timestamp,
                 "value": _nan_to_null(m.value)}
                for m in latest.values()
            ],
        )

    def delete_tag(self, run_id: str, key: str) -> None:
        with self._write() as conn:
            self._require_active(conn, run_id)
            conn.execute(delete(t.tags).where(t.tags.c.run_id == run_id, t.tags.c.key == key))

    def get_metric_history(self, run_id: str, key: str) -> MetricHistory:
        with self._read() as conn:
            self._run_state(conn, run_id)
            chunks = conn.exec_driver_sql(self._history_sql, (run_id, key)).all()
        return history_from_chunks(key, [(bytes(s), bytes(v), bytes(t)) for s, v, t in chunks])

    def log_inputs(self, run_id: str, inputs: Sequence[RunInput]) -> None:
        with self._write() as conn:
            self._require_active(conn, run_id)
            self._upsert(
                conn,
                t.run_inputs,
                [
                    {"run_id": run_id, "dataset": i.dataset, "version": i.version,
                     "digest": i.digest, "context": dict(i.context)}
                    for i in inputs
                ],
                ["run_id", "dataset", "version"],
            )

    def log_result(self, run_id: str, key: str, value: JSONValue) -> None:
        with self._write() as conn:
            self._require_active(conn, run_id)
            self._upsert(
                conn, t.run_results, [{"run_id": run_id, "key": key, "value": value}],
                ["run_id", "key"],
            )

    # --- search ---------------------------------------------------------------------------
    def search_runs(
        self,
        experiment_ids: Sequence[str] | None = None,
        *,
        filter: str = "",
        order_by: Sequence[str] = (),
        max_results: int = 100,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> Page[Run]:
        if not 1 <= max_results <= _MAX_PAGE:
            raise InvalidInputError(
                f"max_results must be between 1 and {_MAX_PAGE}, got {max_results}",
                details={"field": "max_results"},
            )
        expr = parse_filter(filter)
        order = parse_order_by(list(order_by))
        offset = _decode_token(page_token)
        query = select(t.runs)
        if experiment_ids is not None:
            query = query.where(t.runs.c.experiment_id.in_(list(experiment_ids)))
        if not include_deleted:
            query = query.where(t.runs.c.lifecycle == "active")
        if expr is not None:
            query = query.where(compile_filter(expr))
        query = apply_order(query, order).limit(max_results + 1).offset(offset)
        with self._read() as conn:
            rows = conn.execute(query).all()
            more = len(rows) > max_results
            items = self._load_runs(conn, rows[:max_results])
        token = _encode_token(offset + max_results) if more else None
        return Page(items, token)

    def _load_runs(self, conn: Connection, rows: Sequence[Any]) -> list[Run]:
        """Runs with their params, tags, latest metrics, inputs and results: five queries.

        These run on every search and every ``get_run``; plain driver-level statements with
        ``fetchall`` cost a fraction of Core's per-row processing. Their text is constant
        (placeholders only); the ids travel as parameters.
        """
        if not rows:
            return []
        ids = [r[0] for r in rows]
        params: dict[str, dict[str, str]] = defaultdict(dict)
        tags: dict[str, dict[str, str]] = defaultdict(dict)
        latest: dict[str, dict[str, float]] = defaultdict(dict)
        inputs: dict[str, list[RunInput]] = defaultdict(list)
        results: dict[str, dict[str, JSONValue]] = defaultdict(dict)
        json_text = self.engine.dialect.name == "sqlite"  # PostgreSQL's driver decodes JSON
        for chunk in _chunks(ids, 500):
            marks = ", ".join([self._mark] * len(chunk))
            fetch = conn.exec_driver_sql
            # One row per run, its params (then tags) as a JSON object built by the database:
            # half the cost of a row per param.
            for rid, obj in fetch(
                f"SELECT run_id, {self._json_object_agg} FROM params "
                f"WHERE run_id IN ({marks}) GROUP BY run_id",
                tuple(chunk),
            ).all():
                params[rid] = orjson.loads(obj) if json_text else obj
            for rid, obj in fetch(
                f"SELECT run_id, {self._json_object_agg} FROM tags "
                f"WHERE run_id IN ({marks}) GROUP BY run_id",
                tuple(chunk),
            ).all():
                tags[rid] = orjson.loads(obj) if json_text else obj
            for rid, k, v in fetch(
                f"SELECT run_id, key, value FROM latest_metrics WHERE run_id IN ({marks})",
                tuple(chunk),
            ).all():
                latest[rid][k] = math.nan if v is None else v
            for rid, dataset, version, digest, context in fetch(
                "SELECT run_id, dataset, version, digest, context FROM run_inputs "
                f"WHERE run_id IN ({marks}) ORDER BY dataset, version",
                tuple(chunk),
            ).all():
                ctx = json.loads(context) if json_text and context is not None else context
                inputs[rid].append(RunInput(dataset, version, digest, ctx or {}))
            for rid, k, v in fetch(
                f"SELECT run_id, key, value FROM run_results WHERE run_id IN ({marks})",
                tuple(chunk),
            ).all():
                results[rid][k] = json.loads(v) if json_text and v is not None else v
        # Rows unpack as tuples (in the column order of the runs table): attribute access on
        # a Row costs several times more, on every run of every page.
        return [
            Run(
                run_id=run_id,
                experiment_id=experiment_id,
                name=name,
                status=RunStatus(status),
                start_time=from_ms(start_time),  # type: ignore[arg-type]
                end_time=from_ms(end_time),
                parent_run_id=parent_run_id,
                lifecycle=lifecycle,
                params=params.get(run_id, {}),
                tags=tags.get(run_id, {}),
                metrics=latest.get(run_id, {}),
                inputs=tuple(inputs.get(run_id, ())),
                results=results.get(run_id, {}),
            )
            for (run_id, experiment_id, name, status, start_time, end_time, parent_run_id,
                 lifecycle) in rows
        ]

    # --- artifact manifest ----------------------------------------------------------------
    def record_artifacts(self, run_id: str, artifacts: Sequence[Artifact]) -> None:
        if not artifacts:
            return
        with self._write() as conn:
            self._require_active(conn, run_id)
            self._upsert(
                conn,
                t.artifacts,
                [{"run_id": run_id, "path": a.path, "digest": a.digest, "size": a.size}
                 for a in artifacts],
                ["run_id", "path"],
            )

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[Artifact]:
        a = t.artifacts.c
        query = select(a.path, a.digest, a.size).where(a.run_id == run_id).order_by(a.path)
        if prefix:
            escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(a.path.like(escaped.rstrip("/") + "/%", escape="\\")
                                | (a.path == prefix))
        with self._read() as conn:
            self._run_state(conn, run_id)
            return [Artifact(p, d, s) for p, d, s in conn.execute(query)]


class _Row:
    """Attribute access over a dict, to share ``_experiment`` between rows and fresh values."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"offset": offset})).decode()


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = orjson.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
        if not isinstance(offset, int) or offset < 0:
            raise ValueError
    except Exception:
        raise InvalidInputError(
            f"page_token {token!r} is not a token returned by a previous search",
            details={"field": "page_token"},
        ) from None
    return offset
