"""``ServedVersion``: one model version loaded, warmed and ready to answer, with its batchers
and the request counters of the current rollout."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlcycle.deploy.stats import VersionStats
from mlcycle.models import PyFuncModel
from mlcycle.serving.batching import BatchSettings, MicroBatcher

__all__ = ["ServedVersion", "warm_up"]


@dataclass(eq=False, slots=True)
class ServedVersion:
    """Model *model* served as version *version*. ``predict`` batches ``model.predict``;
    ``proba`` (when the model has ``predict_proba``) batches both, returning
    ``(predictions, probabilities)``. ``stats`` is replaced when a new rollout starts."""

    model: PyFuncModel
    version: str
    predict: MicroBatcher
    proba: MicroBatcher | None
    load_seconds: float = 0.0
    stats: VersionStats = field(default_factory=VersionStats)

    @classmethod
    def create(cls, model: PyFuncModel, version: str, batch: BatchSettings, *,
               on_batch: Callable[[int], None] | None = None,
               load_seconds: float = 0.0) -> ServedVersion:
        proba = None
        if hasattr(model, "predict_proba"):
            predict_proba = model.predict_proba

            def both(data: Any) -> tuple[Any, Any]:
                return model.predict(data), predict_proba(data)

            proba = MicroBatcher(both, batch, on_batch=on_batch)
        return cls(model=model, version=version, predict=MicroBatcher(model.predict, batch,
                                                                      on_batch=on_batch),
                   proba=proba, load_seconds=load_seconds)

    @property
    def signature(self) -> Any:
        return self.model.signature


def warm_up(model: PyFuncModel) -> float:
    """Predict once on the model's input example (if it has one), so the first request does
    not pay for lazy initialisation; the seconds it took. Raises what the model raises."""
    start = time.perf_counter()
    example = model.input_example
    if example is not None:
        model.predict(example)
        if hasattr(model, "predict_proba"):
            model.predict_proba(example)
    return time.perf_counter() - start
