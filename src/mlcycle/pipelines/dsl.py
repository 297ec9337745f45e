"""``@step`` and ``@pipeline``: plain functions that build a graph when a pipeline calls them.

A pipeline function runs once, in the driver, to *build* the graph: each step it calls returns
a :class:`StepHandle` (a promise of the step's output) instead of running, and passing a handle
to another step draws an edge. Steps whose inputs do not depend on each other are independent
and may run at the same time. Outside a pipeline a step is an ordinary function call, so steps
stay testable on their own.

A handle has no value while the graph is built: ``if handle:`` or ``handle + 1`` raise an error
that says so. Pass handles to steps (alone, or inside lists, tuples and dicts) and return them
from the pipeline; the run replaces them with values.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from mlcycle.errors import InvalidInputError, PipelineError

if TYPE_CHECKING:
    from mlcycle.client import Client
    from mlcycle.entities import PipelineRun, StepRun
    from mlcycle.pipelines.executors import Executor

__all__ = [
    "Pipeline",
    "PipelineResult",
    "RetryPolicy",
    "Step",
    "StepHandle",
    "pipeline",
    "step",
]

P = ParamSpec("P")
R = TypeVar("R")

#: ``Pipeline.run`` options; a pipeline function may not take parameters of these names.
RUN_OPTIONS = ("cache", "client", "executor", "experiment")

_graph: contextvars.ContextVar[Graph | None] = contextvars.ContextVar(
    "mlcycle_pipeline_graph", default=None)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often a failed step is tried again, and how long to wait before each try:
    ``backoff * factor ** (n - 1)`` seconds before the n-th retry, at most ``max_backoff``."""

    retries: int = 0
    backoff: float = 1.0
    factor: float = 2.0
    max_backoff: float = 60.0

    def __post_init__(self) -> None:
        checks = (
            ("retries", isinstance(self.retries, int) and self.retries >= 0, "an int >= 0"),
            ("backoff", _finite(self.backoff) and self.backoff >= 0, "a number >= 0"),
            ("backoff_factor", _finite(self.factor) and self.factor >= 1, "a number >= 1"),
            ("max_backoff", _finite(self.max_backoff) and self.max_backoff >= 0,
             "a number >= 0"),
        )
        for name, ok, expected in checks:
            if not ok:
                value = getattr(self, "factor" if name == "backoff_factor" else name)
                raise InvalidInputError(
                    f"The '{name}' parameter of step must be {expected}. Got {value!r} instead.",
                    details={"field": name})

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number *retry* (1 for the first)."""
        return float(min(self.max_backoff, self.backoff * self.factor ** (retry - 1)))


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class Step(Generic[P, R]):
    """A function made a pipeline step by ``@step``. Called inside a pipeline it returns a
    :class:`StepHandle`; called anywhere else it simply runs."""

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        outputs: Sequence[str] | None = None,
        retry: RetryPolicy | None = None,
        cache: bool = True,
        version: str | None = None,
    ) -> None:
        if not inspect.isfunction(fn):
            raise InvalidInputError(
                f"@step decorates a function; got {type(fn).__name__}", details={"field": "fn"})
        self.fn = fn
        self.name = name or fn.__name__
        names = tuple(outputs) if outputs is not None else ("return",)
        if not names or len(set(names)) != len(names) or not all(
                isinstance(n, str) and n.isidentifier() for n in names):
            raise InvalidInputError(
                f"The 'outputs' parameter of step must be distinct identifiers. "
                f"Got {outputs!r} instead.", details={"field": "outputs"})
        self.outputs: tuple[str, ...] = names
        self.retry = retry or RetryPolicy()
        self.cache = cache
        self.version = version
        self.signature = inspect.signature(fn)
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"<step {self.name!r}>"

    @overload
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    @overload
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        graph = _graph.get()
        if graph is None:
            return self.fn(*args, **kwargs)
        return graph.add(self, args, kwargs)

    @property
    def code_hash(self) -> str:
        """The hash of this step's code (see ``mlcycle.pipelines.codehash``)."""
        from mlcycle.pipelines.codehash import code_hash

        return code_hash(self.fn)


@overload
def step(fn: Callable[P, R], /) -> Step[P, R]: ...


@overload
def step(
    *,
    name: str | None = None,
    outputs: Sequence[str] | None = None,
    retries: int = 0,
    backoff: float = 1.0,
    backoff_factor: float = 2.0,
    max_backoff: float = 60.0,
    cache: bool = True,
    version: str | None = None,
) -> Callable[[Callable[P, R]], Step[P, R]]: ...


def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    outputs: Sequence[str] | None = None,
    retries: int = 0,
    backoff: float = 1.0,
    backoff_factor: float = 2.0,
    max_backoff: float = 60.0,
    cache: bool = True,
    version: str | None = None,
) -> Any:
    """Make a function a pipeline step.

    >>> @step(retries=2, backoff=0.5)
    ... def load(n: int) -> list[int]:
    ...     return list(range(n))

    ``outputs=("train", "test")``: the function returns that many values (a tuple, or a dict
    with those keys), each stored and cached on its own; the handle unpacks
    (``train, test = split(data)``) or indexes (``split(data)["test"]``). ``retries`` failed
    attempts are tried again after ``backoff * backoff_factor ** n`` seconds (at most
    ``max_backoff``). ``cache=False`` always runs the step (for steps that read the clock, the
    network or randomness); ``version`` is part of the cache key, for invalidating by hand what
    the code hash cannot see.
    """
    retry = RetryPolicy(retries, backoff, backoff_factor, max_backoff)

    def wrap(f: Callable[..., Any]) -> Step[Any, Any]:
        return Step(f, name=name, outputs=outputs, retry=retry, cache=cache, version=version)

    return wrap(fn) if fn is not None else wrap


# --- the graph --------------------------------------------------------------------------------


class StepHandle:
    """The future output of a step call inside a pipeline. ``output`` is ``None`` for the
    whole result of a step with several outputs (index or unpack it for one)."""

    __slots__ = ("graph", "node", "output")

    def __init__(self, graph: Graph, node: Node, output: str | None) -> None:
        self.graph = graph
        self.node = node
        self.output = output

    def __repr__(self) -> str:
        which = f"[{self.output!r}]" if self.output not in (None, "return") else ""
        return f"<output of step {self.node.key!r}{which}>"

    def __getitem__(self, key: int | str) -> StepHandle:
        outputs = self.node.step.outputs
        if self.output is not None:
            raise self._no_value(f"indexing [{key!r}]")
        if isinstance(key, int) and -len(outputs) <= key < len(outputs):
            return StepHandle(self.graph, self.node, outputs[key])
        if isinstance(key, str) and key in outputs:
            return StepHandle(self.graph, self.node, key)
        raise InvalidInputError(
            f"step {self.node.step.name!r} has outputs {list(outputs)}; got [{key!r}]",
            details={"step": self.node.step.name, "field": "outputs"})

    def __iter__(self) -> Iterator[StepHandle]:
        if self.output is not None:
            raise self._no_value("iterating over it")
        return iter([StepHandle(self.graph, self.node, o) for o in self.node.step.outputs])

    def __len__(self) -> int:
        if self.output is not None:
            raise self._no_value("len()")
        return len(self.node.step.outputs)

    def _no_value(self, what: str) -> PipelineError:
        return PipelineError(
            f"{self!r} has no value while the pipeline is being built ({what}): pass it to "
            "another step, or return it from the pipeline",
            details={"step": self.node.step.name})

    def __bool__(self) -> bool:
        raise self._no_value("a truth test")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise self._no_value(f"attribute {name!r}")

    def _op(self, *_: Any) -> Any:
        raise self._no_value("arithmetic or comparison")

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _op
    __truediv__ = __rtruediv__ = __lt__ = __le__ = __gt__ = __ge__ = _op
    __hash__ = object.__hash__


@dataclass(eq=False)
class Node:
    """One step call: ``arguments`` are the step function's bound arguments (by parameter
    name, defaults filled in), with :class:`StepHandle` objects where outputs go in."""

    index: int
    key: str
    step: Step[Any, Any]
    arguments: dict[str, Any]
    upstream: list[str] = field(default_factory=list)


class Graph:
    """The steps a pipeline function called, in call order (a topological order: a handle
    exists only after its step was called)."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self._calls: dict[str, int] = {}

    def add(self, step: Step[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
            ) -> StepHandle:
        try:
            bound = step.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInputError(f"step {step.name!r}: {exc}",
                                    details={"step": step.name}) from None
        bound.apply_defaults()
        count = self._calls.get(step.name, 0) + 1
        self._calls[step.name] = count
        key = step.name if count == 1 else f"{step.name}#{count}"
        node = Node(len(self.nodes), key, step, dict(bound.arguments))
        for handle in iter_handles(node.arguments):
            if handle.graph is not self:
                raise InvalidInputError(
                    f"step {step.name!r} was given {handle!r} from another pipeline run",
                    details={"step": step.name})
            if handle.node.key not in node.upstream:
                node.upstream.append(handle.node.key)
        self.nodes.append(node)
        return StepHandle(self, node, None if len(step.outputs) > 1 else step.outputs[0])


def iter_handles(value: Any) -> Iterator[StepHandle]:
    """Every handle in *value*, looking inside lists, tuples and dicts."""
    if isinstance(value, StepHandle):
        if value.output is None:  # every output of a multi-output step
            yield from value
        else:
            yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from iter_handles(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from iter_handles(item)


def build(fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]
          ) -> tuple[Graph, Any]:
    """Run a pipeline function to build its graph; returns the graph and what it returned."""
    graph = Graph()
    token = _graph.set(graph)
    try:
        returned = fn(*args, **kwargs)
    finally:
        _graph.reset(token)
    if not graph.nodes:
        raise InvalidInputError(
            f"pipeline {getattr(fn, '__name__', fn)!r} called no step: decorate the functions "
            "it calls with @mlcycle.step", details={"field": "pipeline"})
    return graph, returned


# --- pipelines --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PipelineResult:
    """What a pipeline run gives back: its record, its step runs, and the pipeline function's
    return value with every handle replaced by the step output it stood for."""

    run: PipelineRun
    steps: Sequence[StepRun]
    output: Any = None

    @property
    def pipeline_run_id(self) -> str:
        return self.run.pipeline_run_id

    def step(self, node: str) -> StepRun:
        """The step run of *node* (a step's name; ``name#2`` for its second call)."""
        for s in self.steps:
            if s.node == node:
                return s
        raise KeyError(f"no step {node!r} in this run; it has {[s.node for s in self.steps]}")


class Pipeline(Generic[P]):
    """A function made a pipeline by ``@pipeline``. Calling it runs it (``run`` takes the
    options); called inside another pipeline, its steps join that pipeline's graph."""

    def __init__(
        self,
        fn: Callable[P, Any],
        *,
        name: str | None = None,
        client: Client | Callable[[], Client] | None = None,
        experiment: str | Callable[[], str | None] | None = None,
        executor: Executor | str = "local",
    ) -> None:
        if not inspect.isfunction(fn):
            raise InvalidInputError(
                f"@pipeline decorates a function; got {type(fn).__name__}",
                details={"field": "fn"})
        taken = sorted(set(RUN_OPTIONS) & set(inspect.signature(fn).parameters))
        if taken:
            raise InvalidInputError(
                f"pipeline {fn.__name__!r}: parameters may not be named {', '.join(taken)} "
                f"(those are options of .run()); rename them",
                details={"field": taken[0]})
        self.fn = fn
        self.name = name or fn.__name__
        self.client = client
        self.experiment = experiment
        self.executor = executor
        self.signature = inspect.signature(fn)
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"<pipeline {self.name!r}>"

    @property
    def target(self) -> str | None:
        """``module:qualname``, when the pipeline can be imported back from it."""
        module, qualname = self.fn.__module__, self.fn.__qualname__
        if module == "__main__" or "<locals>" in qualname:
            return None
        return f"{module}:{qualname}"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        if _graph.get() is not None:  # a sub-pipeline: its steps join the caller's graph
            return self.fn(*args, **kwargs)
        return self.run(*args, **kwargs)  # type: ignore[arg-type]

    def run(
        self,
        *args: Any,
        executor: Executor | str | None = None,
        cache: bool = True,
        client: Client | None = None,
        experiment: str | None = None,
        **kwargs: Any,
    ) -> PipelineResult:
        """Run the pipeline and wait for it.

        ``executor``: ``"local"`` (threads, the default), ``"process"`` (a process pool),
        ``"ray"`` (``"ray://host:port"`` for a cluster), or an Executor. ``cache=False``
        runs every step (``--no-cache``); its results are still recorded for later runs.
        Raises StepFailed when a step failed: the run is recorded, and
        ``mlcycle pipeline resume <id>`` (or ``resume``) continues from that step.
        """
        from mlcycle.pipelines.runner import PipelineRunner

        with PipelineRunner(self._client(client),
                            executor=executor if executor is not None else self.executor
                            ) as runner:
            return runner.run(self, args, kwargs, cache=cache,
                              experiment=experiment or self._experiment())

    def _client(self, client: Client | None) -> Client:
        if client is not None:
            return client
        source = self.client
        if source is None:
            from mlcycle.client import active_run

            current = active_run()
            if current is not None:
                return current.client
            raise InvalidInputError(
                f"pipeline {self.name!r} has no client: pass client=…, decorate it with "
                "mlcycle.pipeline (which uses the SDK's client), or run it inside a run",
                details={"field": "client"})
        return source() if callable(source) else source

    def _experiment(self) -> str | None:
        exp = self.experiment
        return exp() if callable(exp) else exp


def pipeline(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    client: Client | Callable[[], Client] | None = None,
    experiment: str | Callable[[], str | None] | None = None,
    executor: Executor | str = "local",
) -> Any:
    """Make a function a pipeline: it calls steps, and what it returns is the run's output.

    >>> @pipeline                                                  # doctest: +SKIP
    ... def train(n: int = 100):
    ...     data = load(n)
    ...     return fit(data, C=1.0)
    >>> result = train(n=200)                                     # doctest: +SKIP
    >>> result.output, result.run.status                          # doctest: +SKIP

    ``client`` (a Client, or a function returning one) is where records go;
    ``mlcycle.pipeline`` passes the SDK's.
    """

    def wrap(f: Callable[..., Any]) -> Pipeline[Any]:
        return Pipeline(f, name=name, client=client, experiment=experiment, executor=executor)

    return wrap(fn) if fn is not None else wrap
