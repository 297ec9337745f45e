"""Prediction and feedback logs: Parquet files written in batches, off the request path.

The request path only appends a record to a bounded in-memory queue (a lock and a deque
append); a background thread writes what queued every ``flush_interval`` seconds (sooner once
``flush_rows`` rows wait) as zstd Parquet files through fsspec, so any artifact store works::

    <uri>/predictions/deployment=<name>/date=YYYY-MM-DD/<worker>-<run>-<seq>.parquet
    <uri>/feedback/deployment=<name>/date=YYYY-MM-DD/<worker>-<run>-<seq>.parquet

When storage stalls and the queue holds ``max_rows``, new records are dropped and counted
(``on_drop``): the server never blocks on its log nor grows without bound. ``close()`` writes
what is left.

A prediction file has one row per input row: ``request_id``, ``row``, ``time`` (UTC),
``deployment``, ``model``, ``version``, ``role`` (stable, candidate, shadow), ``status``,
``latency_ms``, the inputs as ``input_<column>`` (or ``input``, a list, for a tensor model) and
the model's answer as ``output``. Read them all with DuckDB::

    SELECT * FROM read_parquet('<uri>/predictions/*/*/*.parquet', hive_partitioning=true,
                               union_by_name=true)
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import orjson

from mlcycle.serving.protocol import as_list

__all__ = ["FeedbackRecord", "ParquetLog", "PredictionRecord"]

logger = logging.getLogger("mlcycle.serving")


@dataclass(slots=True)
class PredictionRecord:
    """One answered request (``rows`` input rows); ``output`` is ``None`` when it failed."""

    request_id: str
    time: float  # seconds since the epoch
    deployment: str
    model: str
    version: str
    role: str
    inputs: Any  # a mapping of column lists, or an array
    output: Any
    latency_ms: float
    status: int
    rows: int

    def scalars(self) -> dict[str, Any]:
        """The values every row of this request shares."""
        return {"request_id": self.request_id, "time": self.time,
                "deployment": self.deployment, "model": self.model, "version": self.version,
                "role": self.role, "status": self.status, "latency_ms": self.latency_ms}

    def per_row(self) -> dict[str, list[Any]]:
        """The inputs (``input_<column>``, or ``input`` for an array) and ``output``, one value
        per row; a column of another length (a ragged request that failed) is left out."""
        n = self.rows
        out: dict[str, list[Any]] = {}
        if isinstance(self.inputs, Mapping):
            for name, values in self.inputs.items():
                column = as_list(values)
                if len(column) == n:
                    out[f"input_{name}"] = column
        elif isinstance(self.inputs, np.ndarray):
            out["input"] = self.inputs.reshape(n, -1).tolist()
        output = None if self.output is None else as_list(self.output)
        out["output"] = output if output is not None and len(output) == n else [None] * n
        return out


@dataclass(slots=True)
class FeedbackRecord:
    """Ground truth for row ``row`` of request ``request_id``."""

    request_id: str
    row: int
    label: Any
    time: float
    deployment: str
    rows: int = 1

    def scalars(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "row": self.row, "label": self.label,
                "time": self.time, "deployment": self.deployment}

    def per_row(self) -> dict[str, list[Any]]:
        return {}


Record = PredictionRecord | FeedbackRecord


class ParquetLog:
    """A bounded queue of *kind* records and the thread that writes them under *uri*.

    >>> log = ParquetLog("s3://bucket/logs", "predictions", worker_id="w1")  # doctest: +SKIP
    >>> log.start(); log.append(record); log.close()                        # doctest: +SKIP
    """

    def __init__(self, uri: str, kind: Literal["predictions", "feedback"], *, worker_id: str,
                 storage_options: Mapping[str, Any] | None = None, max_rows: int = 100_000,
                 flush_rows: int = 10_000, flush_interval: float = 1.0,
                 on_drop: Callable[[int, str], None] | None = None) -> None:
        self.uri = uri.rstrip("/")
        self.kind = kind
        self.worker_id = worker_id
        self.storage_options = dict(storage_options or {})
        self.max_rows = max_rows
        self.flush_rows = flush_rows
        self.flush_interval = flush_interval
        self._on_drop = on_drop
        self._lock = threading.Lock()
        self._queue: deque[Record] = deque()
        self._rows = 0
        self._seq = itertools.count()
        # A restarted worker with the same id (a pod name) must not overwrite its earlier files.
        self._run = secrets.token_hex(3)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.files: list[str] = []  # written by this log, newest last (bounded below)

    def append(self, record: Record) -> bool:
        """Queue *record*; ``False`` (and counted as dropped) when the queue is full or the log
        is closed."""
        full = wake = False
        with self._lock:
            if self._stop.is_set() or self._rows + record.rows > self.max_rows:
                self.dropped += record.rows
                full = True
            else:
                self._queue.append(record)
                self._rows += record.rows
                wake = self._rows >= self.flush_rows
        if full:
            if self._on_drop is not None:
                self._on_drop(record.rows, "queue_full")
            return False
        if wake:
            self._wake.set()
        return True

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=f"mlcycle-{self.kind}-log",
                                            daemon=True)
            self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread after it has written what is queued."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if not self._thread.is_alive():  # else it is still writing: never two writers
                self._thread = None
        else:
            self.flush()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            self.flush()
        self.flush()

    def flush(self) -> None:
        """Write everything queued now, one file per deployment and day."""
        with self._lock:
            records, self._queue = self._queue, deque()
            self._rows = 0
        groups: dict[tuple[str, str], list[Record]] = {}
        for record in records:
            day = datetime.fromtimestamp(record.time, UTC).strftime("%Y-%m-%d")
            groups.setdefault((record.deployment, day), []).append(record)
        for (deployment, day), group in groups.items():
            path = (f"{self.uri}/{self.kind}/deployment={deployment}/date={day}/"
                    f"{self.worker_id}-{self._run}-{next(self._seq):06d}.parquet")
            try:
                self._write(path, group)
            except Exception as exc:  # a log never takes the server down
                rows = sum(r.rows for r in group)
                logger.warning("%s log: writing %d rows to %s failed (%s: %s); dropped",
                               self.kind, rows, path, type(exc).__name__, exc)
                with self._lock:
                    self.dropped += rows
                if self._on_drop is not None:
                    self._on_drop(rows, "write_failed")

    def _write(self, path: str, records: list[Record]) -> None:
        import fsspec
        import pyarrow.parquet as pq
        from fsspec.implementations.local import LocalFileSystem

        table = _table(records)
        fs, local = fsspec.core.url_to_fs(path, **self.storage_options)
        folder, name = local.rsplit("/", 1)
        fs.makedirs(folder, exist_ok=True)
        # A reader (a monitor) must never see half a file. An object store publishes an
        # object whole when the upload completes; on a filesystem, write a name readers skip
        # (they read *.parquet) and rename it: atomic within a folder.
        atomic_put = not isinstance(fs, LocalFileSystem)
        target = local if atomic_put else f"{folder}/.{name}.tmp"
        with fs.open(target, "wb") as f:
            pq.write_table(table, f, compression="zstd")
        if not atomic_put:
            os.replace(target, local)
        self.files = [*self.files[-999:], path]


def _table(records: Sequence[Record]) -> Any:
    """The records as one Arrow table, built column by column in C where it can be: a value
    shared by a request's rows is converted once and repeated with ``take``; a request's
    per-row columns are chained and converted once per column (a column a request lacks is
    null in its rows)."""
    import pyarrow as pa

    counts = np.fromiter((r.rows for r in records), dtype=np.int64, count=len(records))
    owner = pa.array(np.repeat(np.arange(len(records)), counts))  # each row's record
    scalars = [r.scalars() for r in records]
    columns: dict[str, Any] = {}
    for name in scalars[0]:
        values = [s[name] for s in scalars]
        if name == "time":
            micros = np.round(np.asarray(values, dtype=np.float64) * 1e6).astype(np.int64)
            column = pa.array(micros).cast(pa.timestamp("us", tz="UTC"))
        else:
            column = _array(values)
        columns[name] = column.take(owner)
        if name == "request_id" and "row" not in scalars[0]:  # a request's rows: 0, 1, ...
            starts = np.repeat(np.cumsum(counts) - counts, counts)
            columns["row"] = pa.array(np.arange(int(counts.sum())) - starts)
    rows = [r.per_row() for r in records]
    names = list(dict.fromkeys(name for r in rows for name in r))
    for name in names:
        values = list(itertools.chain.from_iterable(
            r.get(name) or itertools.repeat(None, n) for r, n in zip(rows, counts, strict=True)))
        columns[name] = _array(values)
    return pa.table(columns)


def _array(values: list[Any]) -> Any:
    """A typed Arrow column, or JSON text when the values have no common type."""
    import pyarrow as pa

    try:
        return pa.array(values)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return pa.array([None if v is None else orjson.dumps(
            v, option=orjson.OPT_SERIALIZE_NUMPY, default=str).decode() for v in values],
            pa.string())
