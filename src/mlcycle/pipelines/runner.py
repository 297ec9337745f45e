"""Running a pipeline: caching, scheduling, retries, records, and ``resume``.

The driver (this module, in the calling process) builds the graph, then settles the steps in
call order: a step whose upstream steps are done is looked up in the cache (or, when resuming,
in the run it resumes) and either reused or submitted to the executor; independent steps are
in flight together, up to the executor's workers. The driver writes every record; workers only
run functions and store outputs (``mlcycle.pipelines.worker``).

Records: a pipeline run (``pipeline_runs``) is nested in a tracking run named after the
pipeline; each executed step logs into a tracking run nested in that one (params, the outputs
as artifacts ``outputs/<name>``, what it printed as ``logs/output.txt``, and whatever the step
logs itself with ``mlcycle.log_metric`` and friends). A cache hit executes nothing and opens no
tracking run: its step run points at the step run that made the outputs (``reused_from``) and
at that one's tracking run.

Failures: a step that raises is tried again while it has retries left, after its backoff (the
driver keeps scheduling other steps meanwhile; the wait goes through an injectable clock, so
tests never sleep). When it has none left it is recorded ``failed`` with its error, steps
downstream of it ``skipped``, independent steps still run, the pipeline run is ``failed``,
and StepFailed is raised. ``resume`` starts a new pipeline run of the same pipeline and
arguments that reuses every step that finished in the failed one (matched by node and
inputs) and runs the rest with the code as it is now.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from mlcycle.client import ActiveRun, Client, open_pipeline_store
from mlcycle.entities import PipelineRun, StepOutput, StepRun, now_ms
from mlcycle.errors import (
    InvalidInputError,
    InvalidStateError,
    MlcycleError,
    PipelineError,
    StepFailed,
)
from mlcycle.pipelines import formats
from mlcycle.pipelines.codehash import NotJSON, cache_key, canonical
from mlcycle.pipelines.dsl import Node, Pipeline, PipelineResult, StepHandle, build, iter_handles
from mlcycle.pipelines.executors import Executor, resolve_executor, stores_for
from mlcycle.pipelines.worker import Load, StepResult, StepTask, error_record
from mlcycle.store.base import PipelineStore
from mlcycle.types import JSONValue

if TYPE_CHECKING:
    from mlcycle.pipelines.worker import Stores

__all__ = ["Clock", "PipelineRunner", "SystemClock", "import_pipeline"]

_MAX_PARAM_CHARS = 500  # of a param copied onto a tracking run (the step run keeps it whole)


class Clock(Protocol):
    """Time as retries see it: ``monotonic()`` seconds and ``sleep(seconds)``."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def import_pipeline(target: str) -> Pipeline[Any]:
    """The pipeline at ``module:attribute`` (``pkg.flows:train``)."""
    module_name, _, qualname = target.partition(":")
    if not module_name or not qualname:
        raise InvalidInputError(
            f"expected a pipeline as module:function (e.g. flows:train), got {target!r}",
            details={"field": "target"})
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidInputError(f"cannot import {module_name!r} (from {target!r}): {exc}",
                                details={"field": "target"}) from exc
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise InvalidInputError(f"module {module_name!r} has no {qualname!r}",
                                    details={"field": "target"}) from None
    if not isinstance(obj, Pipeline):
        raise InvalidInputError(
            f"{target} is a {type(obj).__name__}, not a pipeline: decorate it with "
            "@mlcycle.pipeline", details={"field": "target"})
    return obj


@dataclass(eq=False)
class _Slot:
    """A node's progress within this run."""

    node: Node
    step_run_id: str
    status: str = "pending"
    outputs: dict[str, StepOutput] = field(default_factory=dict)
    attempts: int = 0
    task: StepTask | None = None
    due: float | None = None
    error: dict[str, Any] | None = None


class PipelineRunner:
    """Runs pipelines on one client's stores with one executor (``close`` releases an
    executor it made from a name)."""

    def __init__(
        self,
        client: Client,
        *,
        store: PipelineStore | None = None,
        executor: Executor | str | None = "local",
        clock: Clock | None = None,
    ) -> None:
        self.client = client
        self.store = store or open_pipeline_store(client.service.store)
        self.executor, self._owns_executor = resolve_executor(executor)
        self.clock = clock or SystemClock()
        self.cache_dir = str(client.settings.home / "cache")

    def close(self) -> None:
        if self._owns_executor:
            self.executor.close()

    def __enter__(self) -> PipelineRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- entry points ---------------------------------------------------------------------
    def run(
        self,
        pipeline: Pipeline[Any],
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        cache: bool = True,
        experiment: str | None = None,
        _resumes: PipelineRun | None = None,
    ) -> PipelineResult:
        """Run *pipeline* with *args* and *kwargs*; see the module docstring."""
        kwargs = dict(kwargs or {})
        try:
            bound = pipeline.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInputError(f"pipeline {pipeline.name!r}: {exc}",
                                    details={"field": "arguments"}) from None
        bound.apply_defaults()
        graph, returned = build(pipeline.fn, args, kwargs)
        params = {k: _json_or_repr(v) for k, v in bound.arguments.items()}
        spec = (_resumes.spec_digest if _resumes is not None
                else self._save_spec(pipeline, args, kwargs))
        reusable: dict[str, StepRun] = {}
        if _resumes is not None:
            reusable = {s.node: s for s in self.store.list_step_runs(_resumes.pipeline_run_id)
                        if s.status == "finished"}
        parent = self.client.start_run(
            experiment=experiment, name=pipeline.name, params=_tracking_params(params),
            tags={"mlcycle.pipeline": pipeline.name, "mlcycle.executor": self.executor.name})
        with parent:
            record = self.store.create_pipeline_run(
                pipeline.name, target=pipeline.target, executor=self.executor.name,
                params=params, cache=cache, created_at=now_ms(), spec_digest=spec,
                run_id=parent.run_id,
                resumed_from=_resumes.pipeline_run_id if _resumes is not None else None)
            prid = record.pipeline_run_id
            parent.set_tag("mlcycle.pipeline_run_id", prid)
            created = self.store.create_step_runs(
                prid, [(n.key, n.step.name, n.upstream) for n in graph.nodes])
            slots = [_Slot(n, s.step_run_id) for n, s in zip(graph.nodes, created, strict=True)]
            execution = _Execution(self, prid, parent, slots, cache=cache, reusable=reusable)
            try:
                failed = execution.run()
            except BaseException as exc:
                execution.abandon(exc)
                self.store.update_pipeline_run(prid, status="failed", ended_at=now_ms(),
                                               error=error_record(exc))
                raise
            if failed is not None:
                error = dict(failed.error or {})
                self.store.update_pipeline_run(
                    prid, status="failed", ended_at=now_ms(),
                    error={"step": failed.node.key, "type": error.get("type"),
                           "message": error.get("message")})
                raise StepFailed(
                    f"step {failed.node.key!r} of pipeline {pipeline.name!r} failed after "
                    f"{failed.attempts} attempt(s): {error.get('type')}: "
                    f"{error.get('message')}. Fix it, then `mlcycle pipeline resume {prid}`",
                    details={"pipeline_run_id": prid, "step": failed.node.key,
                             "step_run_id": failed.step_run_id,
                             "error_type": error.get("type")})
            output = self._values(returned, {s.node.key: s.outputs for s in slots})
            self.store.update_pipeline_run(prid, status="finished", ended_at=now_ms())
        return PipelineResult(self.store.get_pipeline_run(prid),
                              self.store.list_step_runs(prid), output)

    def resume(self, pipeline_run_id: str, *, cache: bool | None = None) -> PipelineResult:
        """Run a failed pipeline run again as a new run (``resumed_from`` it): the steps that
        finished there are reused, the others run with the code as it is now."""
        old = self.store.get_pipeline_run(pipeline_run_id)
        if old.status == "finished":
            raise InvalidStateError(
                f"pipeline run {pipeline_run_id} finished; there is nothing to resume (run "
                "the pipeline again to reuse its cached steps)",
                details={"pipeline_run_id": pipeline_run_id, "status": old.status})
        pipeline, args, kwargs = self._load_spec(old)
        experiment = None
        if old.run_id is not None:
            experiment = self.client.get_run(old.run_id).experiment_id
        return self.run(pipeline, args, kwargs, cache=old.cache if cache is None else cache,
                        experiment=experiment, _resumes=old)

    # --- pieces ---------------------------------------------------------------------------
    def _save_spec(self, pipeline: Pipeline[Any], args: Sequence[Any],
                   kwargs: Mapping[str, Any]) -> str | None:
        """Store what ``resume`` needs to rebuild the call: the arguments, and the pipeline
        itself only when it cannot be imported back from ``target``."""
        try:
            import cloudpickle

            by_value = None
            if pipeline.target is None:
                by_value = _PipelineCopy.of(pipeline)
            blob = cloudpickle.dumps({"target": pipeline.target, "pipeline": by_value,
                                      "args": tuple(args), "kwargs": dict(kwargs)})
        except Exception:  # unpicklable arguments: the run goes on, resume will say why
            return None
        return self.client.service.artifacts.put_bytes(bytes(blob))[0]

    def _load_spec(self, old: PipelineRun
                   ) -> tuple[Pipeline[Any], tuple[Any, ...], dict[str, Any]]:
        if old.spec_digest is None:
            raise PipelineError(
                f"pipeline run {old.pipeline_run_id} cannot be resumed: its arguments could "
                "not be stored (they do not pickle); run the pipeline again instead",
                details={"pipeline_run_id": old.pipeline_run_id})
        import cloudpickle

        spec = cloudpickle.loads(self.client.service.artifacts.get_bytes(old.spec_digest))
        if spec["target"] is not None:
            pipeline = import_pipeline(spec["target"])
        else:
            pipeline = spec["pipeline"].restore()
        return pipeline, tuple(spec["args"]), dict(spec["kwargs"])

    def _values(self, value: Any, outputs: Mapping[str, Mapping[str, StepOutput]]) -> Any:
        """*value* (what the pipeline function returned) with handles replaced by values."""
        if isinstance(value, StepHandle):
            if value.output is None:
                return tuple(self._values(h, outputs) for h in value)
            return formats.load(outputs[value.node.key][value.output],
                                self.client.service.artifacts, self.cache_dir)
        if isinstance(value, list):
            return [self._values(v, outputs) for v in value]
        if isinstance(value, tuple):
            return tuple(self._values(v, outputs) for v in value)
        if isinstance(value, dict):
            return {k: self._values(v, outputs) for k, v in value.items()}
        return value


@dataclass(frozen=True)
class _PipelineCopy:
    """A pipeline as pickled by value for ``resume`` (its client is not picklable, and the
    resumed run gets the runner's anyway)."""

    fn: Any
    name: str
    executor: Any

    @classmethod
    def of(cls, pipeline: Pipeline[Any]) -> _PipelineCopy:
        executor = pipeline.executor if isinstance(pipeline.executor, str) else "local"
        return cls(pipeline.fn, pipeline.name, executor)

    def restore(self) -> Pipeline[Any]:
        return Pipeline(self.fn, name=self.name, executor=self.executor)


class _Execution:
    """One pipeline run's scheduling loop."""

    def __init__(self, runner: PipelineRunner, pipeline_run_id: str, parent: ActiveRun,
                 slots: list[_Slot], *, cache: bool, reusable: Mapping[str, StepRun]) -> None:
        self.runner = runner
        self.pipeline_run_id = pipeline_run_id
        self.store = runner.store
        self.client = runner.client
        self.executor = runner.executor
        self.clock = runner.clock
        self.parent = parent
        self.slots = slots
        self.by_key = {s.node.key: s for s in slots}
        self.cache = cache
        self.reusable = reusable
        self.running: dict[Future[Any], _Slot] = {}
        self.stores: Stores | None = stores_for(runner.executor, runner.client)
        self.failed: _Slot | None = None

    def run(self) -> _Slot | None:
        """Settle every step; returns the first that failed, if any."""
        while True:
            self._start_ready()
            waiting = [s for s in self.slots if s.status == "retrying"]
            if not self.running and not waiting:
                break
            now = self.clock.monotonic()
            due = min((s.due for s in waiting if s.due is not None), default=None)
            if due is not None and due <= now:
                for slot in waiting:
                    if slot.due is not None and slot.due <= now:
                        self._submit(slot)
                continue
            if self.running:
                timeout = None if due is None else max(0.0, due - now)
                done, _ = wait(list(self.running), timeout=timeout,
                               return_when=FIRST_COMPLETED)
                for future in done:
                    self._settle(self.running.pop(future), future)
            elif due is not None:
                self.clock.sleep(due - now)
        for slot in self.slots:
            if slot.status == "pending":  # upstream failed: it never ran
                self._skip(slot)
        return self.failed

    def abandon(self, exc: BaseException) -> None:
        """Record the steps in flight as failed (the driver was interrupted)."""
        for future, slot in list(self.running.items()):
            future.cancel()
            self.store.update_step_run(slot.step_run_id, status="failed",
                                       error=error_record(exc), ended_at=now_ms())
        self.running.clear()

    # --- starting -------------------------------------------------------------------------
    def _start_ready(self) -> None:
        # Call order is a topological order, so one pass settles chains of cache hits.
        for slot in self.slots:
            if slot.status != "pending":
                continue
            ups = [self.by_key[k].status for k in slot.node.upstream]
            if any(u in ("failed", "skipped") for u in ups):
                self._skip(slot)
            elif all(u == "finished" for u in ups):
                self._start(slot)

    def _start(self, slot: _Slot) -> None:
        step = slot.node.step
        arguments, params, inputs = self._arguments(slot.node)
        code = step.code_hash
        key = cache_key(step=step.name, code=code, params=params, inputs=inputs,
                        version=step.version)
        reuse = self._reusable(slot, key, inputs)
        if reuse is not None:
            at = now_ms()
            self.store.update_step_run(
                slot.step_run_id, status="finished", cache_key=key, code_hash=code,
                cache_hit=True, reused_from=reuse.reused_from or reuse.step_run_id,
                params=params, inputs=inputs, outputs=reuse.outputs, run_id=reuse.run_id,
                started_at=at, ended_at=at)
            slot.status = "finished"
            slot.outputs = {o.name: o for o in reuse.outputs}
            return
        run = self.client.service.create_run(
            self.parent.experiment_id, name=slot.node.key, parent_run_id=self.parent.run_id,
            params=_tracking_params(params),
            tags={"mlcycle.step": step.name, "mlcycle.step_run_id": slot.step_run_id,
                  "mlcycle.pipeline_run_id": self.pipeline_run_id})
        slot.task = StepTask(slot.node.key, step.fn, arguments, step.outputs, run.run_id,
                             self.runner.cache_dir, self.stores)
        self.store.update_step_run(slot.step_run_id, cache_key=key, code_hash=code,
                                   params=params, inputs=inputs, run_id=run.run_id)
        self._submit(slot)

    def _reusable(self, slot: _Slot, key: str, inputs: Mapping[str, str]) -> StepRun | None:
        old = self.reusable.get(slot.node.key)
        if old is not None and dict(old.inputs) == dict(inputs) and self._stored(old):
            return old
        if not (self.cache and slot.node.step.cache):
            return None
        found = self.store.find_cached_step_run(key)
        return found if found is not None and self._stored(found) else None

    def _stored(self, record: StepRun) -> bool:
        """Whether every output of *record* is still in the artifact store."""
        return not self.client.service.artifacts.missing(o.digest for o in record.outputs)

    def _submit(self, slot: _Slot) -> None:
        assert slot.task is not None
        slot.attempts += 1
        slot.due = None
        slot.status = "running"
        slot.task = dataclasses.replace(slot.task, attempt=slot.attempts)
        self.store.update_step_run(slot.step_run_id, status="running", attempts=slot.attempts)
        self.running[self.executor.submit(slot.task, self.client)] = slot

    # --- settling -------------------------------------------------------------------------
    def _settle(self, slot: _Slot, future: Future[Any]) -> None:
        exc = future.exception()
        if exc is not None:  # the worker itself failed (a crashed process, a lost Ray task)
            result = StepResult(False, error=error_record(exc), ended_at=now_ms())
        else:
            result = future.result()
        fields: dict[str, Any] = {"logs": result.logs,
                                  "started_at": result.started_at or None,
                                  "ended_at": result.ended_at or None}
        if result.ok:
            slot.status = "finished"
            slot.outputs = {o.name: o for o in result.outputs}
            self.store.update_step_run(slot.step_run_id, status="finished", error=None,
                                       outputs=result.outputs, **fields)
            return
        slot.error = result.error
        retry = slot.node.step.retry
        if slot.attempts <= retry.retries:
            slot.status = "retrying"
            slot.due = self.clock.monotonic() + retry.delay(slot.attempts)
            self.store.update_step_run(slot.step_run_id, status="retrying",
                                       error=result.error, **fields)
            return
        slot.status = "failed"
        self.store.update_step_run(slot.step_run_id, status="failed", error=result.error,
                                   **fields)
        if self.failed is None:
            self.failed = slot

    def _skip(self, slot: _Slot) -> None:
        blocked = next((k for k in slot.node.upstream
                        if self.by_key[k].status in ("failed", "skipped")), None)
        slot.status = "skipped"
        self.store.update_step_run(
            slot.step_run_id, status="skipped",
            error={"type": "Skipped", "message": f"upstream step {blocked!r} did not finish"})

    # --- arguments ------------------------------------------------------------------------
    def _arguments(self, node: Node
                   ) -> tuple[dict[str, Any], dict[str, JSONValue], dict[str, str]]:
        """The task's arguments (outputs as Load markers), the params (JSON, for the key and
        the record) and the input digests by argument path."""
        inputs: dict[str, str] = {}

        def convert(value: Any, path: str) -> tuple[Any, JSONValue]:
            if isinstance(value, StepHandle):
                if value.output is None:
                    parts = [convert(h, f"{path}[{i}]") for i, h in enumerate(value)]
                    return tuple(p[0] for p in parts), [p[1] for p in parts]
                out = self.by_key[value.node.key].outputs[value.output]
                inputs[path] = out.digest
                return Load(out), {"$input": path}
            if next(iter_handles(value), None) is not None:
                if isinstance(value, dict):
                    pairs = {k: convert(v, f"{path}.{k}") for k, v in value.items()}
                    return ({k: p[0] for k, p in pairs.items()},
                            {str(k): p[1] for k, p in pairs.items()})
                parts = [convert(v, f"{path}[{i}]") for i, v in enumerate(value)]
                items = [p[0] for p in parts]
                return (tuple(items) if isinstance(value, tuple) else items,
                        [p[1] for p in parts])
            try:
                return value, canonical(value)
            except NotJSON:
                stored = formats.dump(value, path, self.client.service.artifacts)
                inputs[path] = stored.digest
                return Load(stored), {"$input": path}

        arguments: dict[str, Any] = {}
        params: dict[str, JSONValue] = {}
        for name, value in node.arguments.items():
            try:
                arguments[name], params[name] = convert(value, name)
            except MlcycleError:
                raise
            except Exception as exc:
                raise InvalidInputError(
                    f"step {node.key!r}: argument {name!r} cannot be stored: {exc}",
                    details={"step": node.key, "field": name}) from exc
        return arguments, params, inputs


def _json_or_repr(value: Any) -> JSONValue:
    try:
        return canonical(value)
    except NotJSON:
        return repr(value)[:_MAX_PARAM_CHARS]


def _tracking_params(params: Mapping[str, JSONValue]) -> dict[str, str]:
    import orjson

    out = {}
    for key, value in params.items():
        text = value if isinstance(value, str) else orjson.dumps(value).decode()
        out[key] = text[:_MAX_PARAM_CHARS]
    return out
