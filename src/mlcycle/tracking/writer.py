"""The background writer: metric points are queued by the caller and written in batches.

``log_metric`` appends a tuple to a deque and returns (a few microseconds); one daemon thread per
client drains the queue every ``interval`` seconds, or as soon as ``batch`` points wait, and writes
each run's points in one transaction. ``flush()`` writes everything queued so far before it
returns. A run's end flushes, and an ``atexit`` hook flushes at normal interpreter exit.

What a hard kill (SIGKILL, power cut of the process) can lose: the points queued since the last
write, i.e. at most ``interval`` seconds of logging (default 1 s) or ``batch`` points. Everything
written before stays readable: each batch is one committed transaction.
"""

from __future__ import annotations

import atexit
import contextlib
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
        self._queue: deque[tuple[str, Metric]] = deque()
        self._wake = threading.Condition()
        # Held while points are taken off the queue and written, by the background thread or by a
        # caller of flush(): whoever holds it writes everything queued so far, in order.
        self._drain_lock = threading.Lock()
        self._errors: dict[str, MlcycleError] = {}
        self._closed = False
        self._thread: threading.Thread | None = None
        _writers.add(self)

    # --- producer side -------------------------------------------------------------------
    def put(self, run_id: str, point: Metric) -> None:
        self._queue.append((run_id, point))
        if self._thread is None:
            self._start()
        if len(self._queue) == self._batch:
            with self._wake:
                self._wake.notify()

    def put_many(self, run_id: str, points: list[Metric]) -> None:
        self._queue.extend([(run_id, p) for p in points])
        if self._thread is None:
            self._start()
        if len(self._queue) >= self._batch:
            with self._wake:
                self._wake.notify()

    def flush(self, run_id: str | None = None) -> None:
        """Write every point queued so far, in the calling thread; then raise the write error
        of *run_id* (of any run when *run_id* is None), if one happened."""
        # Writing here rather than handing off to the background thread saves a thread switch
        # (up to the interpreter's 5 ms switch interval) on every run's end.
        with self._drain_lock:
            self._drain()
        if run_id is not None:
            error = self._errors.pop(run_id, None)
        else:
            error = self._errors.pop(next(iter(self._errors))) if self._errors else None
        if error is not None:
            raise error

    def close(self) -> None:
        try:
            self.flush()
        finally:
            with self._wake:
                self._closed = True
                self._wake.notify_all()

    @property
    def waiting(self) -> int:
        return len(self._queue)

    # --- consumer side -------------------------------------------------------------------
    def _start(self) -> None:
        with self._wake:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="mlcycle-metric-writer", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(
                    lambda: self._closed or len(self._queue) >= self._batch,
                    timeout=self._interval,
                )
                if self._closed:
                    return
            with self._drain_lock:
                self._drain()

    def _drain(self) -> None:
        while self._queue:
            taken: dict[str, list[Metric]] = defaultdict(list)
            n = 0
            while self._queue and n < self._batch:
                run_id, point = self._queue.popleft()
                taken[run_id].append(point)
                n += 1
            for run_id, points in taken.items():
                self._write(run_id, points)

    def _write(self, run_id: str, points: list[Metric]) -> None:
        for attempt in range(_RETRIES):
            try:
                self._store.log_batch(run_id, metrics=points)
                return
            except StoreError as exc:
                if not exc.retryable or attempt == _RETRIES - 1:
                    self._errors[run_id] = exc
                    return
                time.sleep(0.1 * (attempt + 1))
            except MlcycleError as exc:  # e.g. the run was deleted: retrying will not help
                self._errors[run_id] = exc
                return
            except Exception as exc:  # never let the thread die with points in hand
                self._errors[run_id] = StoreError(f"writing metrics failed: {exc!r}")
                return


_writers: weakref.WeakSet[MetricWriter] = weakref.WeakSet()


@atexit.register
def _flush_all_at_exit() -> None:
    for writer in list(_writers):
        with contextlib.suppress(Exception):  # nothing left to report to at exit
            writer.flush()

