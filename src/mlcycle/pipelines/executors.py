"""Where steps and trials run: ``LocalExecutor`` (threads, or a process pool) and
``RayExecutor`` (a Ray cluster, or a local Ray started on demand).

Every executor runs the same task code (``mlcycle.pipelines.worker``), so records and results
are the same whichever runs them; they differ in where the work happens and what it costs:

* ``local`` (the default): a thread pool in this process. Nothing to start; steps must release
  the GIL to run truly at once (NumPy, scikit-learn, I/O do). BLAS is capped for the run at
  ``cores // workers`` threads, process-wide, so workers do not oversubscribe the cores.
* ``process``: a process pool (forkserver). True parallelism for Python code; each worker
  caps BLAS/OpenMP at one thread (``OMP_NUM_THREADS=1`` and threadpoolctl) because N
  unpinned workers on N cores spend most of their CPU fighting over threads.
* ``ray``: Ray tasks of one CPU each. ``RayExecutor()`` starts a local Ray (dashboard off,
  ``num_cpus=2``) on first use and leaves it up for the life of the process (starting one
  costs seconds); ``RayExecutor("ray://host:10001")`` or ``"auto"`` joins a cluster, whose
  workers must reach the same tracking and artifact stores (PostgreSQL, S3).

Tasks for another process are serialised with cloudpickle: step functions travel by value
(with the globals they use), other functions of importable modules by reference (the worker
imports them). As with any process pool, a script that uses ``process`` should keep its
top-level work under ``if __name__ == "__main__":``, because the workers import the main
module.
"""

from __future__ import annotations

import abc
import contextlib
import os
import sys
from collections.abc import Mapping
from concurrent.futures import Executor as _PoolExecutor
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from mlcycle.errors import InvalidInputError, PipelineError
from mlcycle.pipelines.worker import Stores, Task, pin_blas, run_payload

if TYPE_CHECKING:
    from mlcycle.client import Client

__all__ = ["Executor", "LocalExecutor", "RayExecutor", "resolve_executor"]


class Executor(abc.ABC):
    """Runs tasks and hands back futures of their results."""

    #: How the executor is named in records (``local``, ``process``, ``ray``).
    name: str = "executor"
    #: Whether tasks leave this process (then they are pickled and reopen the stores).
    remote: bool = False

    @property
    @abc.abstractmethod
    def workers(self) -> int:
        """How many tasks run at once."""

    @abc.abstractmethod
    def submit(self, task: Task, client: Client) -> Future[Any]:
        """Start *task*; a remote executor sends it with ``task.stores``."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the executor started (idempotent)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _unpickled(source: Future[bytes]) -> Future[Any]:
    """A future of the task result that *source* (its pickled bytes) will deliver."""
    out: Future[Any] = Future()

    def done(f: Future[bytes]) -> None:
        exc = f.exception()
        if exc is not None:
            out.set_exception(exc)
            return
        try:
            import cloudpickle

            out.set_result(cloudpickle.loads(f.result()))
        except Exception as err:
            out.set_exception(err)

    source.add_done_callback(done)
    return out


def _payload(task: Task) -> bytes:
    try:
        import cloudpickle
    except ImportError as exc:  # pragma: no cover - an install without the extra
        raise PipelineError("this executor needs cloudpickle: pip install "
                            "'mlcycle[pipelines]'") from exc
    try:
        return bytes(cloudpickle.dumps(task, protocol=5))
    except Exception as exc:
        raise PipelineError(
            f"cannot send {getattr(task, 'node', 'a task')!r} to another process: {exc}",
            details={"field": "executor"}) from exc


class LocalExecutor(Executor):
    """Threads (``LocalExecutor()``) or processes (``LocalExecutor(processes=True)``) on this
    machine; ``workers`` defaults to the number of cores."""

    def __init__(self, workers: int | None = None, *, processes: bool = False) -> None:
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise InvalidInputError(
                f"The 'workers' parameter of LocalExecutor must be an int >= 1. "
                f"Got {workers!r} instead.", details={"field": "workers"})
        self._workers = workers or os.cpu_count() or 1
        self.processes = processes
        self.name = "process" if processes else "local"
        self.remote = processes
        self._pool: _PoolExecutor | None = None
        self._limits: Any = None

    def __repr__(self) -> str:
        return f"LocalExecutor(workers={self._workers}, processes={self.processes})"

    @property
    def workers(self) -> int:
        return self._workers

    def _open(self) -> _PoolExecutor:
        if self._pool is None:
            if self.processes:
                import multiprocessing

                self._pool = ProcessPoolExecutor(
                    self._workers, mp_context=multiprocessing.get_context("forkserver"),
                    initializer=pin_blas)
            else:
                with contextlib.suppress(ImportError):
                    from threadpoolctl import threadpool_limits

                    cores = os.cpu_count() or 1
                    self._limits = threadpool_limits(limits=max(1, cores // self._workers))
                self._pool = ThreadPoolExecutor(self._workers,
                                                thread_name_prefix="mlcycle-step")
        return self._pool

    def submit(self, task: Task, client: Client) -> Future[Any]:
        pool = self._open()
        if self.processes:
            return _unpickled(pool.submit(run_payload, _payload(task)))
        return pool.submit(task.execute, client)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._limits is not None:
            self._limits.restore_original_limits()
            self._limits = None


class RayExecutor(Executor):
    """Ray tasks of ``task_cpus`` CPUs each. Without *address*, a local Ray with *num_cpus*
    CPUs and no dashboard is started on first use (if this process has none yet) and stays
    up until the process exits or ``shutdown()``."""

    name = "ray"
    remote = True

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: int = 2,
        task_cpus: float = 1,
        init_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.task_cpus = task_cpus
        self.init_options = dict(init_options or {})
        self._remote: Any = None
        self._started = False
        if address:
            self.name = f"ray:{address}"

    def __repr__(self) -> str:
        return f"RayExecutor(address={self.address!r}, num_cpus={self.num_cpus})"

    def _ray(self) -> Any:
        try:
            import ray
        except ImportError as exc:
            raise PipelineError("the ray executor needs Ray: pip install 'mlcycle[ray]'",
                                details={"field": "executor"}) from exc
        if not ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False, **self.init_options}
            if self.address:
                ray.init(address=self.address, **options)
            else:
                # Workers of a local Ray import what this process can: its sys.path.
                path = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
                env = options.setdefault("runtime_env", {}).setdefault("env_vars", {})
                env.setdefault("PYTHONPATH", path)
                ray.init(num_cpus=self.num_cpus, **options)
            self._started = True
        if self._remote is None:
            self._remote = ray.remote(num_cpus=self.task_cpus, max_retries=0)(run_payload)
        return ray

    @property
    def workers(self) -> int:
        ray = self._ray()
        cpus = float(ray.cluster_resources().get("CPU", 1))
        return max(1, int(cpus // self.task_cpus))

    def start(self) -> RayExecutor:
        """Start (or join) Ray now and have a worker per CPU import mlcycle, instead of on the
        first tasks: Ray starts worker processes on demand, and each takes a second or so."""
        ray = self._ray()
        warm = ray.remote(num_cpus=self.task_cpus, max_retries=0)(_warm)
        ray.get([warm.remote() for _ in range(self.workers)])
        return self

    def submit(self, task: Task, client: Client) -> Future[Any]:
        self._ray()
        ref = self._remote.remote(_payload(task))
        return _unpickled(ref.future())

    def shutdown(self) -> None:
        """Stop the local Ray this executor started."""
        if self._started:
            import ray

            ray.shutdown()
            self._started = False
            self._remote = None


def _warm() -> None:
    import time

    # What every task needs first: the task code, and the stores a worker reopens.
    import mlcycle.pipelines.worker
    import mlcycle.store.artifacts
    import mlcycle.store.sql.pipelines  # noqa: F401

    time.sleep(0.2)  # hold this worker so that the next warm-up task gets another


def resolve_executor(spec: Executor | str | None) -> tuple[Executor, bool]:
    """The executor *spec* names, and whether the caller made it (and so closes it):
    ``"local"``, ``"process"``, ``"ray"``, ``"ray:<address>"`` / ``"ray://host:port"``."""
    if isinstance(spec, Executor):
        return spec, False
    if spec is None or spec == "local":
        return LocalExecutor(), True
    if spec == "process":
        return LocalExecutor(processes=True), True
    if spec == "ray":
        return RayExecutor(), True
    if isinstance(spec, str) and spec.startswith("ray://"):
        return RayExecutor(spec), True
    if isinstance(spec, str) and spec.startswith("ray:"):
        return RayExecutor(spec.removeprefix("ray:")), True
    raise InvalidInputError(
        "The 'executor' parameter must be 'local', 'process', 'ray', 'ray:<address>' or an "
        f"Executor. Got {spec!r} instead.", details={"field": "executor"})


def stores_for(executor: Executor, client: Client) -> Stores | None:
    """What a task needs to reopen the stores, when *executor* runs it elsewhere."""
    return Stores.of(client) if executor.remote else None
