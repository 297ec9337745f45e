"""Runs side by side: params, final metrics, and metric histories aligned by step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mlcycle.entities import MetricHistory, Run

__all__ = ["RunComparison", "compare_runs"]


@dataclass(frozen=True, slots=True)
class RunComparison:
    run_ids: list[str]
    names: list[str]
    #: param key -> one value per run (None where a run lacks it)
    params: dict[str, list[str | None]]
    #: metric key -> the latest value per run
    metrics: dict[str, list[float | None]]
    #: metric key -> (union of steps, per run a list aligned to those steps)
    histories: dict[str, tuple[list[int], list[list[float | None]]]]

    @property
    def differing_params(self) -> list[str]:
        return [k for k, values in self.params.items() if len(set(values)) > 1]


def _align(histories: Sequence[MetricHistory | None]) -> tuple[list[int], list[list[float | None]]]:
    steps = sorted({s for h in histories if h is not None for s in h.steps})
    index = {s: i for i, s in enumerate(steps)}
    rows: list[list[float | None]] = []
    for h in histories:
        row: list[float | None] = [None] * len(steps)
        if h is not None:
            for s, v in zip(h.steps, h.values, strict=True):
                row[index[s]] = v  # the last point logged at a step wins
        rows.append(row)
    return steps, rows


def compare_runs(
    runs: Sequence[Run], histories: Mapping[str, Sequence[MetricHistory | None]]
) -> RunComparison:
    """*histories* maps a metric key to one history per run (in the order of *runs*)."""
    param_keys = sorted({k for r in runs for k in r.params})
    metric_keys = sorted({k for r in runs for k in r.metrics})
    return RunComparison(
        run_ids=[r.run_id for r in runs],
        names=[r.name for r in runs],
        params={k: [r.params.get(k) for r in runs] for k in param_keys},
        metrics={k: [r.metrics.get(k) for r in runs] for k in metric_keys},
        histories={k: _align(hs) for k, hs in histories.items()},
    )
