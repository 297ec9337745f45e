"""The background writer: metric points are queued by the caller and written in batches.

``log_metric`` appends a tuple to a deque and returns (a few microseconds); one daemon thread per
store drains the queue every ``interval`` seconds, or as soon as ``batch`` points wait, and writes
each run's points in one transaction. ``flush()`` blocks until everything queued before it is
stored. A run's end flushes, and an ``atexit`` hook flushes at normal interpreter exit.

What a hard kill (SIGKILL, power cut of the process) can lose: the points queued since the last
write, i.e. at most ``interval`` seconds of logging (default 1 s) or ``batch`` points. Everything
written before stays readable: each batch is one committed transaction.
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections import defaultdict, deque

from mlcycle.entities import Metric
from mlcycle.errors import MlcycleError, StoreError
from mlcycle.store.base import TrackingStore

__all__ = ["MetricWriter"]

_RETRIES = 3


class MetricWriter:
    def __init__(self, store: TrackingStore, *, interval: float = 1.0, batch: int = 5000) -> None:
        self._store = store
        self._interval = interval
        self._batch = batch
        # Points, and flush markers: a marker is set once every point queued before it is written.
        self._queue: deque[tuple[str, Metric] | threading.Event] = deque()
        self._cond = threading.Condition()
        self._errors: dict[str, MlcycleError] = {}
        self._closed = False
        self._flush_requested = False
        self._thread: threading.Thread | None = None
        _writers.add(self)

    # --- producer side -------------------------------------------------------------------
    def put(self, run_id: str, point: Metric) -> None:
        self._queue.append((run_id, point))
        if self._thread is None:
            self._start()
        if len(self._queue) == self._batch:
            with self._cond:
                self._cond.notify()

    def put_many(self, run_id: str, points: list[Metric]) -> None:
        self._queue.extend([(run_id, p) for p in points])
        if self._thread is None:
            self._start()
        if len(self._queue) >= self._batch:
            with self._cond:
                self._cond.notify()

    def flush(self, run_id: str | None = None, timeout: float | None = None) -> None:
        """Block until every point queued so far is written; raise a write error of *run_id*
        (of any run when *run_id* is None)."""
        if self._thread is not None and self._thread.is_alive():
            done = threading.Event()
            self._queue.append(done)
            with self._cond:
                self._flush_requested = True
                self._cond.notify()
            if not done.wait(timeout):
                raise StoreError(f"queued metrics were not written within {timeout} s")
        if run_id is not None:
            error = self._errors.pop(run_id, None)
        else:
            error = self._errors.pop(next(iter(self._errors))) if self._errors else None
        if error is not None:
            raise error

    def close(self) -> None:
        try:
            self.flush(timeout=60)
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()

    @property
    def waiting(self) -> int:
        return len(self._queue)

    # --- consumer side -------------------------------------------------------------------
    def _start(self) -> None:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="mlcycle-metric-writer", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: self._closed or self._flush_requested
                    or len(self._queue) >= self._batch,
                    timeout=self._interval,
                )
                self._flush_requested = False
                if self._closed and not self._queue:
                    return
            self._drain()

    def _drain(self) -> None:
        taken: dict[str, list[Metric]] = defaultdict(list)
        n = 0
        while self._queue:
            item = self._queue.popleft()
            if isinstance(item, threading.Event):
                self._write_all(taken)
                taken.clear()
                n = 0
                item.set()
                continue
            taken[item[0]].append(item[1])
            n += 1
            if n >= self._batch:
                self._write_all(taken)
                taken.clear()
                n = 0
        self._write_all(taken)

    def _write_all(self, taken: dict[str, list[Metric]]) -> None:
        for run_id, points in taken.items():
            self._write(run_id, points)

    def _write(self, run_id: str, points: list[Metric]) -> None:
        for attempt in range(_RETRIES):
            try:
                self._store.log_batch(run_id, metrics=points)
                return
            except StoreError as exc:  # e.g. a database busy beyond its timeout: retry
                if attempt == _RETRIES - 1:
                    self._errors[run_id] = exc
                else:
                    time.sleep(0.1 * (attempt + 1))
            except MlcycleError as exc:  # e.g. the run was deleted: retrying will not help
                self._errors[run_id] = exc
                return
            except Exception as exc:  # never let the thread die and stall flush()
                self._errors[run_id] = StoreError(f"writing metrics failed: {exc!r}")
                return


_writers: weakref.WeakSet[MetricWriter] = weakref.WeakSet()


@atexit.register
def _flush_all_at_exit() -> None:
    for writer in list(_writers):
        try:
            writer.flush(timeout=30)
        except Exception:  # noqa: S110 - nothing left to report to at exit
            pass

