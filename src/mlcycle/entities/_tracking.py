from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, NamedTuple, TypeVar

from mlcycle.types import JSONValue, RunStatus

T = TypeVar("T")


def now_ms() -> int:
    """Milliseconds since the epoch, the unit every stored timestamp uses."""
    return time.time_ns() // 1_000_000


def to_ms(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware (UTC)")
    return int(value.timestamp() * 1000)


def from_ms(value: int | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value / 1000, tz=UTC)


@dataclass(frozen=True, slots=True)
class Experiment:
    experiment_id: str
    name: str
    created_at: datetime
    description: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    lifecycle: str = "active"


class Metric(NamedTuple):
    """One point. A tuple rather than a dataclass: millions are made on the logging hot path."""

    key: str
    value: float
    step: int = 0
    timestamp: int = 0  # ms since the epoch

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp / 1000, tz=UTC)


@dataclass(frozen=True, slots=True)
class MetricHistory:
    """A metric's points in step order, column by column (cheap to build, send and plot)."""

    key: str
    steps: Sequence[int]
    values: Sequence[float]
    timestamps: Sequence[int]

    def __len__(self) -> int:
        return len(self.steps)

    def points(self) -> list[Metric]:
        return [
            Metric(self.key, v, s, t)
            for s, v, t in zip(self.steps, self.values, self.timestamps, strict=True)
        ]

    @property
    def last(self) -> float | None:
        return self.values[-1] if self.values else None


@dataclass(frozen=True, slots=True)
class RunInput:
    """A dataset version a run read. ``context`` says how (e.g. ``{"role": "train"}``)."""

    dataset: str
    version: str
    digest: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Artifact:
    path: str
    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class Run:
    run_id: str
    experiment_id: str
    name: str
    status: RunStatus
    start_time: datetime
    end_time: datetime | None = None
    parent_run_id: str | None = None
    lifecycle: str = "active"
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)  # the latest value of each
    inputs: Sequence[RunInput] = ()
    results: Mapping[str, JSONValue] = field(default_factory=dict)

    @property
    def duration(self) -> float | None:
        if self.end_time is None:
            return None
        return (self.end_time - self.start_time).total_seconds()


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; pass ``next_page_token`` back to get the next."""

    items: Sequence[T]
    next_page_token: str | None = None

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)
