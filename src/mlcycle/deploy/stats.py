"""Per-version request statistics that serving workers count and the canary controller sums.

A worker keeps one :class:`VersionStats` per model version for the current rollout, sends
them as JSON in its :class:`~mlcycle.entities.WorkerReport`, and the controller merges the
reports of all workers. Latency is a fixed-bucket histogram (the same buckets everywhere, so
merging is adding), which is also what Prometheus gets.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["LATENCY_BUCKETS", "VersionStats", "merge_stats"]

#: Upper bounds (seconds) of the latency histogram; a last bucket catches everything above.
LATENCY_BUCKETS: Final = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
)


def _zeros() -> list[int]:
    return [0] * (len(LATENCY_BUCKETS) + 1)


@dataclass(slots=True)
class VersionStats:
    """Counters of one model version. ``errors`` counts answers the version failed (5xx), not
    requests refused as invalid input. Feedback: ``correct`` for labels that equal the
    prediction (classification); ``abs_error_sum`` and ``abs_error_sq_sum`` for numeric ones
    (regression); ``feedback`` counts both."""

    requests: int = 0
    errors: int = 0
    latency_sum: float = 0.0
    latency_buckets: list[int] = field(default_factory=_zeros)
    feedback: int = 0
    correct: int = 0
    abs_error_sum: float = 0.0
    abs_error_sq_sum: float = 0.0

    def observe(self, seconds: float, *, error: bool = False) -> None:
        """One answered request that took *seconds*."""
        self.requests += 1
        if error:
            self.errors += 1
        self.latency_sum += seconds
        self.latency_buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1

    def observe_feedback(self, prediction: Any, label: Any) -> None:
        """Ground truth *label* arrived for *prediction*."""
        self.feedback += 1
        if _is_number(prediction) and _is_number(label) and not (
            isinstance(prediction, bool) or isinstance(label, bool)
        ) and (isinstance(prediction, float) or isinstance(label, float)):
            err = abs(float(prediction) - float(label))
            self.abs_error_sum += err
            self.abs_error_sq_sum += err * err
        if prediction == label:
            self.correct += 1

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.feedback if self.feedback else None

    def latency_quantile(self, q: float) -> float | None:
        """The *q* quantile of latency in seconds, interpolated linearly inside the bucket it
        falls in, as Prometheus' ``histogram_quantile`` does (``None`` without requests;
        ``inf`` when it is above the last bound). The upper bound alone would move in steps
        of 2-2.5x, so a version one bucket slower would look twice as slow."""
        total = sum(self.latency_buckets)
        if not total:
            return None
        rank = q * total
        seen = 0
        for i, count in enumerate(self.latency_buckets):
            if count and seen + count >= rank:
                if i == len(LATENCY_BUCKETS):
                    return math.inf
                lower = LATENCY_BUCKETS[i - 1] if i else 0.0
                return lower + (LATENCY_BUCKETS[i] - lower) * max(rank - seen, 0.0) / count
            seen += count
        return math.inf

    def count_above(self, seconds: float) -> float:
        """About how many requests took longer than *seconds*: the buckets above it, and the
        share of its own bucket above it (interpolated linearly, as :meth:`latency_quantile`)."""
        total = 0.0
        for i, count in enumerate(self.latency_buckets):
            if not count:
                continue
            lower = LATENCY_BUCKETS[i - 1] if i else 0.0
            upper = LATENCY_BUCKETS[i] if i < len(LATENCY_BUCKETS) else math.inf
            if seconds <= lower:
                total += count
            elif seconds < upper:
                total += count * (upper - seconds) / (upper - lower) if upper < math.inf \
                    else count
        return total

    def merge(self, other: VersionStats) -> VersionStats:
        """The sum of two counters (a new object)."""
        return VersionStats(
            requests=self.requests + other.requests,
            errors=self.errors + other.errors,
            latency_sum=self.latency_sum + other.latency_sum,
            latency_buckets=[a + b for a, b in zip(self.latency_buckets,
                                                   other.latency_buckets, strict=True)],
            feedback=self.feedback + other.feedback,
            correct=self.correct + other.correct,
            abs_error_sum=self.abs_error_sum + other.abs_error_sum,
            abs_error_sq_sum=self.abs_error_sq_sum + other.abs_error_sq_sum,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "latency_sum": self.latency_sum,
            "latency_buckets": list(self.latency_buckets),
            "feedback": self.feedback,
            "correct": self.correct,
            "abs_error_sum": self.abs_error_sum,
            "abs_error_sq_sum": self.abs_error_sq_sum,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VersionStats:
        buckets = list(data.get("latency_buckets") or ())
        if len(buckets) != len(LATENCY_BUCKETS) + 1:
            buckets = _zeros()  # another bucket layout: latency unknown, counts still add
        return cls(
            requests=int(data.get("requests", 0)),
            errors=int(data.get("errors", 0)),
            latency_sum=float(data.get("latency_sum", 0.0)),
            latency_buckets=[int(b) for b in buckets],
            feedback=int(data.get("feedback", 0)),
            correct=int(data.get("correct", 0)),
            abs_error_sum=float(data.get("abs_error_sum", 0.0)),
            abs_error_sq_sum=float(data.get("abs_error_sq_sum", 0.0)),
        )


def merge_stats(reports: Iterable[Mapping[str, Any]]) -> dict[str, VersionStats]:
    """Sum per-version stats JSON (``{"3": {...}}``) of several workers."""
    out: dict[str, VersionStats] = {}
    for stats in reports:
        for version, data in stats.items():
            current = VersionStats.from_json(data)
            out[version] = out[version].merge(current) if version in out else current
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not (isinstance(value, float) and math.isnan(value))
