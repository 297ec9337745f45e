from __future__ import annotations

import math

from mlcycle.entities import Metric
from mlcycle.store.sql.chunks import history_from_chunks, pack


def _history(*writes: list[Metric], key: str = "x"):  # type: ignore[no-untyped-def]
    chunks = [pack(points)[key][1:] for points in writes]
    return history_from_chunks(key, chunks)


def test_pack_groups_points_by_key_in_order() -> None:
    packed = pack([Metric("a", 1.0, 0, 10), Metric("b", 2.0, 0, 10), Metric("a", 3.0, 1, 11)])
    assert sorted(packed) == ["a", "b"]
    assert packed["a"][0] == 2 and packed["b"][0] == 1
    assert len(packed["a"][1]) == 16  # two little-endian int64 steps


def test_history_sorts_by_step_then_time_and_keeps_write_order_for_ties() -> None:
    h = _history(
        [Metric("x", 1.0, 5, 100), Metric("x", 2.0, 1, 100)],
        [Metric("x", 3.0, 5, 50), Metric("x", 4.0, 5, 100)],
    )
    assert list(h.steps) == [1, 5, 5, 5]
    assert list(h.timestamps) == [100, 50, 100, 100]
    assert list(h.values) == [2.0, 3.0, 1.0, 4.0]  # 1.0 was written before 4.0


def test_non_finite_values_and_extreme_steps_survive() -> None:
    big = 2**63 - 1
    h = _history([Metric("x", math.nan, -big - 1, 0), Metric("x", math.inf, 0, 0),
                  Metric("x", -math.inf, big, 2**62)])
    assert math.isnan(h.values[0]) and h.values[1:] == [math.inf, -math.inf]
    assert list(h.steps) == [-big - 1, 0, big]
    assert h.timestamps[-1] == 2**62


def test_empty_history() -> None:
    h = history_from_chunks("x", [])
    assert len(h) == 0 and h.last is None
