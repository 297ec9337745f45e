"""Micro-batching: concurrent requests for one model version gathered into one vectorised call.

A :class:`MicroBatcher` queues each request's input (a mapping of column lists, or a numpy
array) and a single consumer task runs them through the model in a worker thread, so the event
loop stays free:

- ``max_wait_ms = 0`` (the default) batches opportunistically: a batch is whatever queued while
  the previous call ran, so a lone request waits for nothing; ``> 0`` waits up to that long for
  a batch to fill.
- A batch holds at most ``max_batch_size`` rows, and a request is never split: one bigger than
  that runs alone. Only requests of the same shape (the same columns, or the same array dtype and
  row shape) share a batch.
- ``max_queue`` bounds the rows waiting; beyond it :meth:`MicroBatcher.submit` raises
  :class:`QueueFull` (the server answers 429 with ``Retry-After``), never an unbounded queue.
- A batch that fails is retried one request at a time, so only the request to blame gets the
  error.

>>> batcher = MicroBatcher(model.predict, BatchSettings(max_batch_size=64))  # doctest: +SKIP
>>> await batcher.submit({"age": [30], "income": [52.0]})                    # doctest: +SKIP
array([1])
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["BatchSettings", "MicroBatcher", "QueueFull"]


@dataclass(frozen=True, slots=True)
class BatchSettings:
    """``max_batch_size``: rows per model call. ``max_wait_ms``: how long a batch may wait to
    fill (0: never wait). ``max_queue``: rows that may wait before requests are refused."""

    max_batch_size: int = 256
    max_wait_ms: float = 0.0
    max_queue: int = 4096

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "max_queue"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"The '{name}' parameter of BatchSettings must be an int >= 1. "
                                 f"Got {value!r} instead.")
        if not isinstance(self.max_wait_ms, int | float) or self.max_wait_ms < 0:
            raise ValueError("The 'max_wait_ms' parameter of BatchSettings must be a number "
                             f">= 0. Got {self.max_wait_ms!r} instead.")


class QueueFull(Exception):
    """More rows are waiting than ``max_queue`` allows; try again after ``retry_after`` s."""

    def __init__(self, waiting: int, limit: int, retry_after: int = 1) -> None:
        super().__init__(f"{waiting} rows are waiting for the model (at most {limit}); "
                         f"retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass(slots=True)
class _Pending:
    data: Any
    rows: int
    shape: Hashable | None  # requests of one shape may share a batch; None: runs alone
    future: asyncio.Future[Any]


class MicroBatcher:
    """Gathers concurrent calls of *predict* (see the module docstring). *on_batch* is told the
    rows of every model call it makes, in the event loop."""

    def __init__(self, predict: Callable[[Any], Any], settings: BatchSettings | None = None, *,
                 on_batch: Callable[[int], None] | None = None) -> None:
        self.predict = predict
        self.settings = settings or BatchSettings()
        self._on_batch = on_batch
        self._queue: deque[_Pending] = deque()
        self._waiting_rows = 0
        self._consumer: asyncio.Task[None] | None = None
        self._arrived: asyncio.Event | None = None

    @property
    def waiting_rows(self) -> int:
        return self._waiting_rows

    async def submit(self, data: Any) -> Any:
        """*predict*'s output for *data* alone (its rows of the batch it ran in); raises what
        *predict* raised on it, or :class:`QueueFull`."""
        rows, shape = _shape_of(data)
        limit = self.settings.max_queue
        if self._waiting_rows and self._waiting_rows + rows > limit:
            raise QueueFull(self._waiting_rows, limit)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(data, rows, shape, future))
        self._waiting_rows += rows
        if self._arrived is not None:
            self._arrived.set()
        # The consumer lives while there is work: no idle task outlives a swapped-out model.
        if self._consumer is None or self._consumer.done():
            self._consumer = asyncio.create_task(self._consume())
        return await future

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            if self.settings.max_wait_ms:
                await self._fill()
            batch = self._take()
            if not batch:
                continue
            try:
                results = await loop.run_in_executor(None, self._run, [p.data for p in batch])
            except BaseException as exc:  # the executor is gone (shutdown): nobody waits forever
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(exc if isinstance(exc, Exception)
                                                     else RuntimeError("batch cancelled"))
                raise
            rows = sum(p.rows for p in batch)
            if self._on_batch is not None:
                self._on_batch(rows)
            for pending, (ok, value) in zip(batch, results, strict=True):
                if pending.future.done():  # the client went away
                    continue
                if ok:
                    pending.future.set_result(value)
                else:
                    pending.future.set_exception(value)

    async def _fill(self) -> None:
        """Wait up to ``max_wait_ms`` for a full batch."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.max_wait_ms / 1000
        self._arrived = asyncio.Event()
        try:
            while self._waiting_rows < self.settings.max_batch_size:
                left = deadline - loop.time()
                if left <= 0:
                    return
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), left)
                except TimeoutError:
                    return
        finally:
            self._arrived = None

    def _take(self) -> list[_Pending]:
        """The next batch: the first waiting request and the later ones of its shape that fit."""
        batch: list[_Pending] = []
        kept: deque[_Pending] = deque()
        size = 0
        limit = self.settings.max_batch_size
        while self._queue:
            pending = self._queue.popleft()
            if pending.future.done():  # cancelled while waiting
                self._waiting_rows -= pending.rows
                continue
            first = batch[0] if batch else None
            if first is None or (first.shape is not None and pending.shape == first.shape
                                 and size + pending.rows <= limit):
                batch.append(pending)
                size += pending.rows
                self._waiting_rows -= pending.rows
                if first is None and (pending.shape is None or size >= limit):
                    break
            else:
                kept.append(pending)
        kept.extend(self._queue)
        self._queue = kept
        return batch

    def _run(self, inputs: list[Any]) -> list[tuple[bool, Any]]:
        """In a worker thread: one call for the whole batch, or one per request if it fails."""
        if len(inputs) > 1:
            try:
                output = self.predict(_merge(inputs))
                return [(True, part) for part in _split(output, [_shape_of(d)[0]
                                                                 for d in inputs])]
            except Exception:  # retried one by one below, to blame one request
                pass
        return [self._run_one(data) for data in inputs]

    def _run_one(self, data: Any) -> tuple[bool, Any]:
        try:
            return True, self.predict(data)
        except Exception as exc:  # handed to the request's own future
            return False, exc


def _shape_of(data: Any) -> tuple[int, Hashable | None]:
    """(rows, shape key) of one request's input; the key is ``None`` when it cannot be merged
    with others (ragged columns, a scalar, an unknown type)."""
    if isinstance(data, dict):
        lengths = {len(v) if isinstance(v, list) else -1 for v in data.values()}
        if len(lengths) == 1 and -1 not in lengths:
            return lengths.pop(), ("columns", tuple(data))
        return 1, None
    if isinstance(data, np.ndarray) and data.ndim >= 1:
        return len(data), ("array", data.dtype.str, data.shape[1:])
    return 1, None


def _merge(inputs: list[Any]) -> Any:
    first = inputs[0]
    if isinstance(first, dict):
        return {name: list(itertools.chain.from_iterable(d[name] for d in inputs))
                for name in first}
    return np.concatenate(inputs)


def _split(output: Any, sizes: Sequence[int]) -> list[Any]:
    """*output* of a merged batch cut back into each request's rows."""
    if isinstance(output, tuple):
        parts = [_split(o, sizes) for o in output]
        return [tuple(p[i] for p in parts) for i in range(len(sizes))]
    if len(output) != sum(sizes):
        raise ValueError(f"the model returned {len(output)} rows for {sum(sizes)}")
    rows = output.iloc if hasattr(output, "iloc") else output  # pandas slices by position
    bounds = list(itertools.accumulate(sizes, initial=0))
    return [rows[start:stop] for start, stop in itertools.pairwise(bounds)]
