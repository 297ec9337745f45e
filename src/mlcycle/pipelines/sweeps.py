"""Hyperparameter sweeps with Optuna: every trial a nested tracked run, run on an executor.

>>> def objective(C: float, kernel: str) -> float:              # doctest: +SKIP
...     return cross_val_score(SVC(C=C, kernel=kernel), X, y).mean()
>>> result = mc.sweep(objective, {"C": Float(1e-3, 1e3, log=True),   # doctest: +SKIP
...                               "kernel": ["rbf", "linear"]},
...                   n_trials=20, sampler="tpe", direction="maximize")
>>> result.best_params, result.best_run_id                       # doctest: +SKIP

The objective takes the parameters as keyword arguments and returns a number. An objective
that also takes a ``trial`` argument gets a :class:`Trial`: ``trial.report(value, step)``
logs an intermediate value (a metric of the trial's run) and stops the trial when the pruner
says so (the trial is then recorded ``pruned``).

The search space maps each name to ``Float(low, high, log=False, step=None)``,
``Int(low, high, log=False, step=1)``, ``Categorical([...])``, or a shorthand: a list
(categorical), ``(low, high)`` (ints if both are ints, else floats), or a dict
``{"low":…, "high":…, "log":…, "step":…, "type": "int"|"float"}`` (what a JSON file gives).
``sampler="grid"`` tries every combination (``Float`` needs a ``step`` there), at most
``n_trials`` of them.

Records: a parent run (params ``sampler``, ``n_trials``, ``direction``, ``pruner``, ``metric``;
the space as the result ``sweep.space``) with one child run per trial (the trial's params, the
objective value as the metric named *metric*, tag ``mlcycle.sweep.state``:
``complete``/``pruned``/``failed``). At the end the parent gets the metric ``best_<metric>``,
tags ``mlcycle.sweep.best_run_id`` and ``mlcycle.sweep.best_trial``, the result ``sweep``
(best trial, value, params, run id, counts), and the Optuna journal as the artifact
``sweep/study.journal``. The study lives in that journal file (under ``<home>/sweeps/``)
while the sweep runs, which is how workers in other processes report intermediate values and
ask the pruner.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcycle.entities import now_ms
from mlcycle.errors import InvalidInputError, PipelineError
from mlcycle.pipelines.executors import Executor, resolve_executor, stores_for
from mlcycle.pipelines.worker import Stores, capture_output, error_record
from mlcycle.types import JSONValue

if TYPE_CHECKING:
    from mlcycle.client import ActiveRun, Client

__all__ = [
    "Categorical",
    "Float",
    "Int",
    "SweepResult",
    "Trial",
    "TrialPruned",
    "TrialRecord",
    "parse_space",
    "sweep",
]

SAMPLERS = ("grid", "random", "tpe")
PRUNERS = ("median", "hyperband", "none")


@dataclass(frozen=True, slots=True)
class Float:
    low: float
    high: float
    log: bool = False
    step: float | None = None


@dataclass(frozen=True, slots=True)
class Int:
    low: int
    high: int
    log: bool = False
    step: int = 1


@dataclass(frozen=True, slots=True)
class Categorical:
    choices: tuple[Any, ...]

    def __init__(self, choices: Sequence[Any]) -> None:
        object.__setattr__(self, "choices", tuple(choices))


Dimension = Float | Int | Categorical


def _bad(field: str, message: str) -> InvalidInputError:
    return InvalidInputError(f"{field}: {message}", details={"field": field})


def parse_space(space: Mapping[str, Any]) -> dict[str, Dimension]:
    """The search space with every shorthand made a Float, Int or Categorical."""
    if not isinstance(space, Mapping) or not space:
        raise _bad("space", f"expected a non-empty mapping of parameter names to ranges or "
                            f"choices, got {space!r}")
    out: dict[str, Dimension] = {}
    for name, spec in space.items():
        field = f"space.{name}"
        if not isinstance(name, str) or not name.isidentifier() or name == "trial":
            raise _bad(field, "parameter names must be identifiers other than 'trial'")
        dim: Dimension
        if isinstance(spec, Float | Int | Categorical):
            dim = spec
        elif isinstance(spec, list):
            dim = Categorical(spec)
        elif isinstance(spec, tuple) and len(spec) == 2:
            low, high = spec
            both_int = all(isinstance(v, int) and not isinstance(v, bool) for v in spec)
            dim = Int(low, high) if both_int else Float(float(low), float(high))
        elif isinstance(spec, Mapping) and {"low", "high"} <= set(spec):
            kind = spec.get("type") or ("int" if all(
                isinstance(spec[k], int) and not isinstance(spec[k], bool)
                for k in ("low", "high")) else "float")
            if kind == "int":
                dim = Int(int(spec["low"]), int(spec["high"]), bool(spec.get("log", False)),
                          int(spec.get("step") or 1))
            elif kind == "float":
                step = spec.get("step")
                dim = Float(float(spec["low"]), float(spec["high"]),
                            bool(spec.get("log", False)),
                            float(step) if step is not None else None)
            else:
                raise _bad(field, f"type must be 'int' or 'float', got {kind!r}")
        else:
            raise _bad(field, "expected Float(...), Int(...), Categorical([...]), a list of "
                              f"choices, (low, high) or {{'low':…, 'high':…}}; got {spec!r}")
        _check_dimension(field, dim)
        out[name] = dim
    return out


def _check_dimension(field: str, dim: Dimension) -> None:
    if isinstance(dim, Categorical):
        if not dim.choices:
            raise _bad(field, "a categorical needs at least one choice")
        for c in dim.choices:
            if c is not None and not isinstance(c, str | int | float | bool):
                raise _bad(field, f"choices must be None, bools, numbers or strings; got {c!r}")
        return
    numbers_ok = all(isinstance(v, int | float) and not isinstance(v, bool)
                     and math.isfinite(v) for v in (dim.low, dim.high))
    if not numbers_ok or dim.low > dim.high:
        raise _bad(field, f"expected finite low <= high, got low={dim.low!r}, high={dim.high!r}")
    if dim.log and dim.low <= 0:
        raise _bad(field, f"a log range needs low > 0, got {dim.low!r}")
    if dim.log and dim.step not in (None, 1):
        raise _bad(field, "a log range cannot have a step")


def _distribution(dim: Dimension) -> Any:
    from optuna import distributions as d

    if isinstance(dim, Categorical):
        return d.CategoricalDistribution(dim.choices)
    if isinstance(dim, Int):
        return d.IntDistribution(dim.low, dim.high, log=dim.log, step=dim.step)
    return d.FloatDistribution(dim.low, dim.high, log=dim.log, step=dim.step)


def _grid_values(name: str, dim: Dimension) -> list[Any]:
    if isinstance(dim, Categorical):
        return list(dim.choices)
    if isinstance(dim, Int):
        return list(range(dim.low, dim.high + 1, dim.step))
    if dim.step is None:
        raise _bad(f"space.{name}", "sampler='grid' needs a list of values or a Float with "
                                    "a step")
    count = math.floor((dim.high - dim.low) / dim.step + 1e-9) + 1
    return [dim.low + i * dim.step for i in range(count)]


def _space_json(dims: Mapping[str, Dimension]) -> dict[str, JSONValue]:
    out: dict[str, JSONValue] = {}
    for name, dim in dims.items():
        if isinstance(dim, Categorical):
            out[name] = {"type": "categorical", "choices": list(dim.choices)}
        else:
            out[name] = {"type": "int" if isinstance(dim, Int) else "float", "low": dim.low,
                         "high": dim.high, "log": dim.log, "step": dim.step}
    return out


# --- the objective's side ---------------------------------------------------------------------


class TrialPruned(Exception):
    """Raised by ``Trial.report`` when the pruner stops a trial (or by the objective)."""


class Trial:
    """What an objective that takes a ``trial`` argument gets."""

    def __init__(self, number: int, params: Mapping[str, Any], run: ActiveRun,
                 optuna_trial: Any, metric: str) -> None:
        self.number = number
        self.params = dict(params)
        self.run = run
        self._trial = optuna_trial
        self._metric = metric

    def __repr__(self) -> str:
        return f"Trial(number={self.number}, params={self.params!r})"

    def should_prune(self) -> bool:
        return bool(self._trial.should_prune())

    def report(self, value: float, step: int) -> None:
        """Log *value* at *step* (a metric of this trial's run), and stop the trial with
        TrialPruned if the pruner says so."""
        self.run.log_metric(self._metric, float(value), step)
        self._trial.report(float(value), step)
        if self.should_prune():
            raise TrialPruned(f"trial {self.number} pruned at step {step}")


@dataclass(frozen=True, slots=True)
class _TrialResult:
    state: str
    value: float | None = None
    error: dict[str, Any] | None = None
    logs: str = ""
    started_at: int = 0
    ended_at: int = 0


def _storage(journal: str) -> Any:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(journal))


@dataclass(frozen=True, slots=True)
class TrialTask:
    """One trial, run by an executor like a step."""

    objective: Callable[..., Any]
    params: dict[str, Any]
    number: int
    trial_id: int
    study_name: str
    journal: str
    pruner: Any
    run_id: str
    metric: str
    stores: Stores | None = None

    @property
    def node(self) -> str:
        return f"trial-{self.number}"

    def execute(self, client: Client) -> _TrialResult:
        import optuna

        with capture_output() as buf:
            started = now_ms()
            state, value, error = "failed", None, None
            with client.start_run(run_id=self.run_id) as run:
                try:
                    study = optuna.load_study(study_name=self.study_name,
                                              storage=_storage(self.journal),
                                              pruner=self.pruner)
                    trial = Trial(self.number, self.params, run,
                                  optuna.trial.Trial(study, self.trial_id), self.metric)
                    kwargs = dict(self.params)
                    if "trial" in inspect.signature(self.objective).parameters:
                        kwargs["trial"] = trial
                    returned = self.objective(**kwargs)
                    if not isinstance(returned, numbers.Real) or isinstance(returned, bool):
                        raise InvalidInputError(
                            f"the objective returned {returned!r}; it must return a number",
                            details={"field": "objective"})
                    value = float(returned)
                    state = "complete"
                    run.log_metric(self.metric, value)
                except (TrialPruned, optuna.TrialPruned):
                    state = "pruned"
                except Exception as exc:
                    error = error_record(exc)
                run.set_tag("mlcycle.sweep.state", state)
                if error is not None:
                    run.set_tag("mlcycle.error", f"{error['type']}: {error['message']}"[:2000])
                text = buf.getvalue()
                if text:
                    run.log_text(text[-1_000_000:], "logs/output.txt")
                if error is not None:
                    run.end("failed")
        return _TrialResult(state, value, error, buf.getvalue()[-8_000:], started, now_ms())


# --- the driver's side ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrialRecord:
    number: int
    params: Mapping[str, Any]
    state: str  # complete, pruned, failed
    run_id: str
    value: float | None = None
    error: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class SweepResult:
    """The sweep's parent run, every trial, and the best one."""

    run_id: str
    trials: Sequence[TrialRecord]
    best_trial: TrialRecord | None
    direction: str

    @property
    def best_value(self) -> float | None:
        return self.best_trial.value if self.best_trial else None

    @property
    def best_params(self) -> Mapping[str, Any]:
        return self.best_trial.params if self.best_trial else {}

    @property
    def best_run_id(self) -> str | None:
        return self.best_trial.run_id if self.best_trial else None


def _sampler(kind: Any, dims: Mapping[str, Dimension], seed: int | None) -> tuple[Any, int]:
    """The Optuna sampler, and how many trials it can make (grid) or 0 (no limit)."""
    import optuna

    if not isinstance(kind, str):
        return kind, 0  # an Optuna sampler given as is
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed), 0
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed), 0
    if kind == "grid":
        grid = {name: _grid_values(name, dim) for name, dim in dims.items()}

        class _Grid(optuna.samplers.GridSampler):
            # Optuna's grid sampler stops an optimize() loop when the grid is used up; this
            # driver asks for trials itself and stops at the grid's size.
            def after_trial(self, *args: Any, **kwargs: Any) -> None:
                return None

        return _Grid(grid, seed=seed), math.prod(len(v) for v in grid.values())
    raise InvalidInputError(
        f"The 'sampler' parameter of sweep must be one of {', '.join(map(repr, SAMPLERS))} or "
        f"an Optuna sampler. Got {kind!r} instead.", details={"field": "sampler"})


def _pruner(kind: Any) -> Any:
    import optuna

    if kind is None or kind == "none":
        return optuna.pruners.NopPruner()
    if kind == "median":
        return optuna.pruners.MedianPruner()
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner()
    if isinstance(kind, optuna.pruners.BasePruner):
        return kind
    raise InvalidInputError(
        f"The 'pruner' parameter of sweep must be one of {', '.join(map(repr, PRUNERS))}, "
        f"None or an Optuna pruner. Got {kind!r} instead.", details={"field": "pruner"})


def sweep(
    objective: Callable[..., float],
    space: Mapping[str, Any],
    n_trials: int = 20,
    *,
    client: Client,
    sampler: Any = "tpe",
    pruner: Any = None,
    direction: str = "minimize",
    metric: str = "objective",
    executor: Executor | str | None = "local",
    seed: int | None = None,
    name: str | None = None,
    experiment: str | None = None,
) -> SweepResult:
    """Search *space* for the parameters that minimise (or maximise) *objective*; see the
    module docstring. Trials run *executor*'s workers at a time."""
    if not callable(objective):
        raise _bad("objective", f"expected a function, got {objective!r}")
    if not isinstance(n_trials, int) or isinstance(n_trials, bool) or n_trials < 1:
        raise InvalidInputError(
            f"The 'n_trials' parameter of sweep must be an int >= 1. Got {n_trials!r} instead.",
            details={"field": "n_trials"})
    if direction not in ("minimize", "maximize"):
        raise InvalidInputError(
            "The 'direction' parameter of sweep must be 'minimize' or 'maximize'. "
            f"Got {direction!r} instead.", details={"field": "direction"})
    dims = parse_space(space)
    try:
        import optuna
    except ImportError as exc:  # pragma: no cover - an install without the extra
        raise PipelineError("sweeps need Optuna: pip install 'mlcycle[pipelines]'") from exc
    sampler_obj, limit = _sampler(sampler, dims, seed)
    pruner_obj = _pruner(pruner)
    if limit:
        n_trials = min(n_trials, limit)
    distributions = {k: _distribution(d) for k, d in dims.items()}
    pool, owned = resolve_executor(executor)
    sampler_name = sampler if isinstance(sampler, str) else type(sampler).__name__
    pruner_name = pruner if isinstance(pruner, str | None) else type(pruner).__name__
    try:
        parent = client.start_run(
            experiment=experiment, name=name or f"sweep-{getattr(objective, '__name__', 'f')}",
            params={"sampler": sampler_name, "n_trials": n_trials, "direction": direction,
                    "pruner": str(pruner_name), "metric": metric, "seed": seed},
            tags={"mlcycle.sweep": "true", "mlcycle.executor": pool.name})
        with parent:
            parent.log_result("sweep.space", _space_json(dims))
            folder = Path(client.settings.home).resolve() / "sweeps"
            folder.mkdir(parents=True, exist_ok=True)
            journal = str(folder / f"{parent.run_id}.journal")
            # Optuna's own INFO lines (study created, each trial finished) repeat what the
            # runs record: quiet for the sweep, the caller's verbosity restored after.
            verbosity = optuna.logging.get_verbosity()
            optuna.logging.set_verbosity(max(verbosity, optuna.logging.WARNING))
            try:
                study = optuna.create_study(storage=_storage(journal), sampler=sampler_obj,
                                            pruner=pruner_obj, study_name=parent.run_id,
                                            direction=direction)  # type: ignore[arg-type]
                records = _drive(client, parent, pool, study, objective, distributions,
                                 n_trials, metric, journal, pruner_obj)
            finally:
                optuna.logging.set_verbosity(verbosity)
            result = _conclude(parent, records, direction, metric, journal)
    finally:
        if owned:
            pool.close()
    return result


def _drive(client: Client, parent: ActiveRun, pool: Executor, study: Any,
           objective: Callable[..., Any], distributions: Mapping[str, Any], n_trials: int,
           metric: str, journal: str, pruner: Any) -> list[TrialRecord]:
    from optuna.trial import TrialState

    stores = stores_for(pool, client)
    workers = pool.workers
    running: dict[Future[Any], tuple[int, dict[str, Any], str]] = {}
    records: list[TrialRecord] = []
    asked = 0
    try:
        while asked < n_trials or running:
            while asked < n_trials and len(running) < workers:
                trial = study.ask(dict(distributions))
                asked += 1
                run = client.service.create_run(
                    parent.experiment_id, name=f"trial-{trial.number}",
                    parent_run_id=parent.run_id, params=trial.params,
                    tags={"mlcycle.sweep.trial": trial.number,
                          "mlcycle.sweep.parent": parent.run_id})
                # Optuna's Trial keeps its storage id private; a worker reopens the trial by it.
                task = TrialTask(objective, dict(trial.params), trial.number, trial._trial_id,
                                 study.study_name, journal, pruner, run.run_id, metric, stores)
                running[pool.submit(task, client)] = (trial.number, dict(trial.params),
                                                      run.run_id)
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                number, params, run_id = running.pop(future)
                exc = future.exception()
                result = (_TrialResult("failed", error=error_record(exc)) if exc is not None
                          else future.result())
                if result.state == "complete":
                    study.tell(number, result.value)
                else:
                    state = TrialState.PRUNED if result.state == "pruned" else TrialState.FAIL
                    study.tell(number, state=state)
                    if exc is not None:  # the worker died: its run never ended
                        with contextlib.suppress(Exception):
                            client.end_run(run_id, "failed")
                records.append(TrialRecord(number, params, result.state, run_id, result.value,
                                           result.error))
    finally:
        for future in running:
            future.cancel()
    return sorted(records, key=lambda r: r.number)


def _conclude(parent: ActiveRun, records: Sequence[TrialRecord], direction: str, metric: str,
              journal: str) -> SweepResult:
    complete = [r for r in records if r.state == "complete" and r.value is not None]
    pick = max if direction == "maximize" else min
    best = pick(complete, key=lambda r: r.value) if complete else None  # type: ignore[arg-type,return-value]
    counts = {s: sum(r.state == s for r in records) for s in ("complete", "pruned", "failed")}
    summary: dict[str, JSONValue] = {**counts, "direction": direction}
    if best is not None:
        parent.log_metric(f"best_{metric}", float(best.value))  # type: ignore[arg-type]
        parent.set_tags({"mlcycle.sweep.best_run_id": best.run_id,
                         "mlcycle.sweep.best_trial": best.number})
        summary.update({"best_trial": best.number, "best_value": best.value,
                        "best_params": dict(best.params), "best_run_id": best.run_id})
    parent.log_result("sweep", summary)
    with contextlib.suppress(OSError):
        parent.log_artifact(journal, "sweep/study.journal")
    if best is None:
        first = next((r.error for r in records if r.error), None) or {}
        raise PipelineError(
            f"no trial of the sweep completed ({counts['pruned']} pruned, {counts['failed']} "
            f"failed); the first error: {first.get('type')}: {first.get('message')}",
            details={"run_id": parent.run_id, **counts})
    return SweepResult(parent.run_id, tuple(records), best, direction)
