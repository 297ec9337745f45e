"""``POST /feedback``: ground truth for earlier predictions, by request id.

The body is one object or a list of them::

    {"request_id": "9f2c...", "label": 1}             # row 0 of that request
    {"request_id": "9f2c...", "row": 3, "label": 0}   # row 3 of a multi-row request
    {"request_id": "9f2c...", "labels": [1, 0, 1]}    # every row, in order

Every label is written to the feedback log. When the request is one this worker answered
recently (:class:`RecentPredictions`, bounded), the label is also counted at once into the
answering version's statistics, which the canary controller compares. With several workers,
feedback that reaches another worker than the one that answered is logged but not counted live.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlcycle.deploy.stats import VersionStats
from mlcycle.errors import InvalidInputError
from mlcycle.serving.protocol import as_list

__all__ = ["Label", "RecentPredictions", "parse_feedback"]

_MAX_ID = 128


@dataclass(frozen=True, slots=True)
class Label:
    request_id: str
    row: int
    label: Any


def parse_feedback(body: Any) -> list[Label]:
    """The labels in a feedback body; ``InvalidInputError`` naming the field (and the item of a
    list) that is wrong."""
    items = body if isinstance(body, list) else [body]
    if not items:
        raise InvalidInputError("body: an empty list; send at least one feedback object",
                                details={"field": "body"})
    labels: list[Label] = []
    for i, item in enumerate(items):
        where = f"[{i}]." if isinstance(body, list) else ""
        labels.extend(_parse_one(item, where))
    return labels


def _parse_one(item: Any, where: str) -> list[Label]:
    def invalid(field: str, message: str) -> InvalidInputError:
        return InvalidInputError(f"{where}{field}: {message}", details={"field": where + field})

    if not isinstance(item, Mapping):
        raise invalid("body", 'expected {"request_id": ..., "label": ...}')
    unknown = sorted(set(item) - {"request_id", "row", "label", "labels"})
    if unknown:
        raise invalid(unknown[0], "unknown field (expected request_id, row, label or labels)")
    request_id = item.get("request_id")
    if not isinstance(request_id, str) or not request_id or len(request_id) > _MAX_ID:
        raise invalid("request_id", f"a non-empty string of at most {_MAX_ID} characters was "
                      f"expected, got {request_id!r}")
    if ("label" in item) == ("labels" in item):
        raise invalid("label", "give exactly one of 'label' (one row) or 'labels' (every row)")
    if "labels" in item:
        values = item["labels"]
        if "row" in item:
            raise invalid("row", "'row' goes with 'label', not with 'labels'")
        if not isinstance(values, list) or not values:
            raise invalid("labels", "a non-empty list was expected")
        return [Label(request_id, r, v) for r, v in enumerate(values)]
    row = item.get("row", 0)
    if not isinstance(row, int) or isinstance(row, bool) or row < 0:
        raise invalid("row", f"a row index (an integer >= 0) was expected, got {row!r}")
    return [Label(request_id, row, item["label"])]


@dataclass(slots=True)
class _Answer:
    """What one version answered to one request (a primary or a shadow answer)."""

    stats: VersionStats
    output: Any
    rows: list[Any] | None = None  # output as JSON-ready rows, made on first feedback
    seen: set[int] = field(default_factory=set)


class RecentPredictions:
    """The last *capacity* requests this worker answered, so feedback can be counted live."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._answers: dict[str, list[_Answer]] = {}

    def __len__(self) -> int:
        return len(self._answers)

    def add(self, request_id: str, stats: VersionStats, output: Any) -> None:
        """Remember what the version counted by *stats* answered to *request_id*. One answer
        per version: a client that sends the same ``x-request-id`` again replaces its earlier
        answer (memory stays bounded by *capacity* requests × versions served)."""
        answers = self._answers.get(request_id)
        if answers is None:
            if len(self._answers) >= self.capacity:
                del self._answers[next(iter(self._answers))]  # the oldest
            answers = self._answers[request_id] = []
        answers[:] = [a for a in answers if a.stats is not stats]
        answers.append(_Answer(stats, output))

    def observe(self, label: Label) -> bool:
        """Count *label* for every version that answered its request (once per row);
        ``False`` when the request is not (or no longer) known here, or has no such row."""
        answers = self._answers.get(label.request_id)
        if not answers:
            return False
        matched = False
        for answer in answers:
            if answer.rows is None:
                answer.rows = as_list(answer.output)
            if label.row >= len(answer.rows) or label.row in answer.seen:
                continue
            answer.seen.add(label.row)
            answer.stats.observe_feedback(answer.rows[label.row], label.label)
            matched = True
        return matched
