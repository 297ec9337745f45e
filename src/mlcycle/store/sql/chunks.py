"""Metric points packed into chunks: the storage format of the ``metric_chunks`` table.

A chunk holds the points of one key from one write as three little-endian arrays: int64 steps,
float64 values, int64 timestamps (ms). Packing and unpacking are single C calls (``array``), so
a write of 1,000 points costs a handful of rows and a history read a handful of blobs.
"""

from __future__ import annotations

import itertools
import operator
import sys
from array import array
from collections import defaultdict
from collections.abc import Iterable, Sequence

from mlcycle.entities import Metric, MetricHistory

__all__ = ["history_from_chunks", "pack"]

_SWAP = sys.byteorder != "little"  # the stored format is little-endian everywhere


def _to_bytes(values: array) -> bytes:
    if _SWAP:
        values.byteswap()
    return values.tobytes()


def _from_bytes(typecode: str, data: bytes) -> array:
    values = array(typecode)
    values.frombytes(data)
    if _SWAP:
        values.byteswap()
    return values


def pack(points: Iterable[Metric]) -> dict[str, tuple[int, bytes, bytes, bytes]]:
    """Per key: ``(count, steps, values, timestamps)`` ready to insert, points in given order."""
    by_key: dict[str, tuple[list[int], list[float], list[int]]] = defaultdict(
        lambda: ([], [], [])
    )
    for key, value, step, timestamp in points:
        steps, values, stamps = by_key[key]
        steps.append(step)
        values.append(value)
        stamps.append(timestamp)
    return {
        key: (
            len(steps),
            _to_bytes(array("q", steps)),
            _to_bytes(array("d", values)),
            _to_bytes(array("q", stamps)),
        )
        for key, (steps, values, stamps) in by_key.items()
    }


def history_from_chunks(key: str, chunks: Sequence[tuple[bytes, bytes, bytes]]) -> MetricHistory:
    """A key's chunks, in write order, as one history in (step, timestamp, write) order."""
    steps: array = array("q")
    values: array = array("d")
    stamps: array = array("q")
    for step_bytes, value_bytes, stamp_bytes in chunks:
        steps.extend(_from_bytes("q", step_bytes))
        values.extend(_from_bytes("d", value_bytes))
        stamps.extend(_from_bytes("q", stamp_bytes))
    step_list, value_list, stamp_list = steps.tolist(), values.tolist(), stamps.tolist()
    if not _ordered(step_list, stamp_list):
        # Python's sort is stable, so points equal in (step, timestamp) keep their write order.
        order = sorted(range(len(step_list)), key=lambda i: (step_list[i], stamp_list[i]))
        step_list = [step_list[i] for i in order]
        value_list = [value_list[i] for i in order]
        stamp_list = [stamp_list[i] for i in order]
    return MetricHistory(key, step_list, value_list, stamp_list)


def _ordered(steps: list[int], stamps: list[int]) -> bool:
    """True when the points already run in (step, timestamp) order (the usual case)."""
    if all(map(operator.lt, steps, steps[1:])):  # strictly increasing steps: C-speed check
        return True
    return all(a <= b for a, b in itertools.pairwise(zip(steps, stamps, strict=True)))
