"""MicroBatcher: concurrent requests share one model call, a request is never split, a bad
request fails alone, and a full queue refuses instead of growing."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlcycle.serving.batching import BatchSettings, MicroBatcher, QueueFull


class _Model:
    """Doubles column ``x``; raises on a negative value; can be held to let requests queue."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.gate = threading.Event()
        self.gate.set()

    def predict(self, data: Any) -> Any:
        assert self.gate.wait(10), "the test never released the model"
        x = np.asarray(data["x"], dtype=float)
        self.calls.append(len(x))
        if (x < 0).any():
            raise ValueError("negative x")
        return x * 2


async def _held(model: _Model, batcher: MicroBatcher, requests: list[dict[str, Any]]
                ) -> list[Any]:
    """Submit one request, then the others while the model is held on the first."""
    model.gate.clear()
    first = asyncio.ensure_future(batcher.submit({"x": [0.0]}))
    for _ in range(100):  # until the first call is inside the model
        await asyncio.sleep(0.01)
        if batcher.waiting_rows == 0:
            break
    rest = [asyncio.ensure_future(batcher.submit(r)) for r in requests]
    await asyncio.sleep(0)
    model.gate.set()
    return await asyncio.gather(first, *rest, return_exceptions=True)


def test_requests_queued_while_the_model_runs_share_one_call() -> None:
    model = _Model()
    sizes: list[int] = []
    batcher = MicroBatcher(model.predict, on_batch=sizes.append)
    results = asyncio.run(_held(model, batcher, [{"x": [1.0, 2.0]}, {"x": [3.0]}]))
    assert [list(r) for r in results] == [[0.0], [2.0, 4.0], [6.0]]
    assert model.calls == [1, 3] and sizes == [1, 3]


def test_a_lone_request_runs_at_once_with_no_wait() -> None:
    model = _Model()
    batcher = MicroBatcher(model.predict)

    async def one() -> Any:
        return await batcher.submit({"x": [4.0]})

    assert list(asyncio.run(one())) == [8.0]
    assert model.calls == [1]


def test_a_request_is_never_split_and_a_big_one_runs_alone() -> None:
    model = _Model()
    batcher = MicroBatcher(model.predict, BatchSettings(max_batch_size=3))
    results = asyncio.run(_held(model, batcher, [
        {"x": [1.0, 1.0]}, {"x": [2.0, 2.0]}, {"x": [3.0] * 5}, {"x": [4.0]}]))
    assert [len(r) for r in results] == [1, 2, 2, 5, 1]
    # [2 rows + 1 row] fits 3; the 2-row request does not fit beside them; 5 rows run alone.
    assert model.calls == [1, 3, 2, 5]


def test_a_failing_request_fails_alone() -> None:
    model = _Model()
    batcher = MicroBatcher(model.predict)
    results = asyncio.run(_held(model, batcher, [{"x": [1.0]}, {"x": [-1.0]}, {"x": [2.0]}]))
    assert list(results[1]) == [2.0] and list(results[3]) == [4.0]
    assert isinstance(results[2], ValueError)


def test_only_requests_of_one_shape_share_a_batch() -> None:
    model = _Model()
    batcher = MicroBatcher(model.predict)
    results = asyncio.run(_held(model, batcher, [
        {"x": [1.0]}, {"x": [2.0], "y": [0]}, {"x": [3.0]}]))
    assert [list(r) for r in results[1:]] == [[2.0], [4.0], [6.0]]
    assert model.calls == [1, 2, 1]


def test_a_full_queue_refuses_with_retry_after() -> None:
    model = _Model()
    batcher = MicroBatcher(model.predict, BatchSettings(max_queue=3))
    results = asyncio.run(_held(model, batcher, [{"x": [1.0, 1.0]}, {"x": [1.0]},
                                                 {"x": [1.0]}]))
    refused = results[3]
    assert isinstance(refused, QueueFull) and refused.retry_after >= 1
    assert [len(r) for r in results[:3]] == [1, 2, 1]


def test_max_wait_gathers_requests_that_arrive_within_it() -> None:
    model = _Model()
    sizes: list[int] = []
    batcher = MicroBatcher(model.predict, BatchSettings(max_wait_ms=5000, max_batch_size=3),
                           on_batch=sizes.append)

    async def three() -> list[Any]:
        tasks = [asyncio.ensure_future(batcher.submit({"x": [float(i)]})) for i in range(3)]
        return await asyncio.gather(*tasks)

    assert [list(r) for r in asyncio.run(three())] == [[0.0], [2.0], [4.0]]
    assert sizes == [3]  # a full batch goes at once, long before the wait ends


def test_arrays_and_frames_are_split_by_position() -> None:
    batcher = MicroBatcher(lambda a: pd.Series(a[:, 0] + 1, index=range(10, 10 + len(a))))

    async def two() -> list[Any]:
        return await asyncio.gather(batcher.submit(np.array([[1.0], [2.0]])),
                                    batcher.submit(np.array([[3.0]])))

    first, second = asyncio.run(two())
    assert first.tolist() == [2.0, 3.0] and second.tolist() == [4.0]


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="'max_batch_size' parameter"):
        BatchSettings(max_batch_size=0)
    with pytest.raises(ValueError, match="'max_wait_ms' parameter"):
        BatchSettings(max_wait_ms=-1)
