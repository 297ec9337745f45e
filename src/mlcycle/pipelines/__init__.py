"""Pipelines: steps and pipelines as decorated functions, cached, recorded, retried, resumed,
run on threads, processes or Ray; and hyperparameter sweeps with Optuna.

>>> import mlcycle as mc
>>> @mc.step
... def load(n: int) -> list[int]:
...     return list(range(n))
>>> @mc.step
... def total(xs: list[int]) -> int:
...     return sum(xs)
>>> @mc.pipeline
... def flow(n: int = 10):
...     return total(load(n))
>>> flow(n=4).output                                   # doctest: +SKIP
6

Modules: ``dsl`` (the decorators and the graph), ``codehash`` (the cache key: what
invalidates a cached step), ``formats`` (how outputs are stored), ``runner`` (scheduling,
records, retries, resume), ``executors`` (local threads or processes, Ray), ``worker`` (what
runs in a worker), ``sweeps`` (Optuna). Records go to the metadata store (``pipeline_runs``,
``step_runs``) beside the tracking store; an ``mlcycle server`` does not serve them yet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlcycle.pipelines.dsl import (
    Pipeline,
    PipelineResult,
    RetryPolicy,
    Step,
    StepHandle,
    pipeline,
    step,
)
from mlcycle.pipelines.executors import Executor, LocalExecutor, RayExecutor
from mlcycle.pipelines.runner import Clock, PipelineRunner, SystemClock, import_pipeline
from mlcycle.pipelines.sweeps import (
    Categorical,
    Float,
    Int,
    SweepResult,
    Trial,
    TrialPruned,
    TrialRecord,
    sweep,
)

if TYPE_CHECKING:
    from mlcycle.client import Client

__all__ = [
    "Categorical",
    "Clock",
    "Executor",
    "Float",
    "Int",
    "LocalExecutor",
    "Pipeline",
    "PipelineResult",
    "PipelineRunner",
    "RayExecutor",
    "RetryPolicy",
    "Step",
    "StepHandle",
    "SweepResult",
    "SystemClock",
    "Trial",
    "TrialPruned",
    "TrialRecord",
    "import_pipeline",
    "pipeline",
    "resume",
    "step",
    "sweep",
]


def resume(pipeline_run_id: str, *, client: Client, executor: Executor | str | None = "local",
           cache: bool | None = None) -> PipelineResult:
    """Run the failed pipeline run *pipeline_run_id* again from its failed step: a new
    pipeline run that reuses the steps that finished (see ``PipelineRunner.resume``)."""
    with PipelineRunner(client, executor=executor) as runner:
        return runner.resume(pipeline_run_id, cache=cache)
