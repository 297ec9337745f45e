"""What runs where a step (or a sweep trial) executes: a thread of this process, a process
pool worker, or a Ray worker. The same code runs in all three, which is why executors give
the same records.

A task carries everything it needs: the function, its arguments with upstream outputs as
:class:`Load` markers (read from the artifact store by digest, never sent through the
driver), the tracking run to log into, and :class:`Stores` to reopen the stores in another
process. The worker stores outputs in the artifact store and returns only their digests; the
driver writes every pipeline record.

While a step runs, what it writes to ``sys.stdout`` and ``sys.stderr`` (``print``, warnings,
tracebacks) is captured for its record (and still printed); output that C code writes to the
file descriptors directly, and logging handlers set up before the step, are not captured.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import io
import os
import sys
import threading
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from mlcycle.entities import Artifact, StepOutput, now_ms
from mlcycle.errors import InvalidInputError, PipelineError
from mlcycle.pipelines import formats

if TYPE_CHECKING:
    from mlcycle.client import Client

__all__ = [
    "Load",
    "StepResult",
    "StepTask",
    "Stores",
    "Task",
    "blas_env",
    "capture_output",
    "run_payload",
]

#: The environment variables that cap the threads of the BLAS and OpenMP libraries; set to 1
#: in process workers before numpy loads (so N workers use N cores, not N x cores).
BLAS_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                 "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")

#: How much captured output a task keeps (the end of it).
MAX_LOG_CHARS = 1_000_000


def blas_env(threads: int = 1) -> dict[str, str]:
    return dict.fromkeys(BLAS_ENV_VARS, str(threads))


@dataclass(frozen=True, slots=True)
class Stores:
    """How another process reopens the driver's stores; ``cwd`` is the driver's working
    folder, where a worker on the same machine runs tasks (so relative paths mean the same)."""

    tracking_uri: str
    artifact_uri: str
    home: str
    cwd: str = ""

    @classmethod
    def of(cls, client: Client) -> Stores:
        """The stores of *client*, with local paths made absolute (workers run elsewhere)."""
        artifacts = client.service.artifacts
        url = getattr(artifacts, "url", None)
        uri = client.tracking_uri
        if not isinstance(url, str) or ":memory:" in uri or uri in ("sqlite://", "sqlite:"):
            raise PipelineError(
                "the process and ray executors reopen the stores in each worker, so they need "
                "a tracking URI and an fsspec artifact store (not an in-memory database or a "
                f"test double); got {uri!r} and {type(artifacts).__name__}",
                details={"field": "executor"})
        if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
            uri = "sqlite:///" + os.path.abspath(uri.removeprefix("sqlite:///"))
        if "://" not in url:
            url = os.path.abspath(url)
        return cls(uri, url, str(Path(client.settings.home).resolve()), os.getcwd())


_clients: OrderedDict[Stores, Client] = OrderedDict()
_clients_lock = threading.Lock()
_MAX_CLIENTS = 4


def client_for(stores: Stores) -> Client:
    """A client on *stores*, kept for the life of this worker process (a few at most)."""
    from mlcycle.client import Client
    from mlcycle.config import load_settings

    with _clients_lock:
        client = _clients.get(stores)
        if client is None:
            client = Client(stores.tracking_uri, artifact_uri=stores.artifact_uri,
                            settings=load_settings(home=Path(stores.home)))
            _clients[stores] = client
            while len(_clients) > _MAX_CLIENTS:
                _, old = _clients.popitem(last=False)
                with contextlib.suppress(Exception):
                    old.close()
        _clients.move_to_end(stores)
        return client


class Task(Protocol):
    """A unit of work an executor runs: ``execute(client)`` with the driver's client in a
    thread, or with one reopened from ``stores`` elsewhere."""

    @property
    def stores(self) -> Stores | None: ...

    def execute(self, client: Client) -> Any: ...


# --- captured output --------------------------------------------------------------------------

_capture: contextvars.ContextVar[io.StringIO | None] = contextvars.ContextVar(
    "mlcycle_step_output", default=None)
_tee_lock = threading.Lock()
_tee_users = 0


class _Tee(io.TextIOBase):
    """Stands in for ``sys.stdout``/``sys.stderr``: writes go where they went before, and also
    to the buffer of the step running in this thread (if one is)."""

    def __init__(self, original: TextIO) -> None:
        self.original = original

    def write(self, text: str) -> int:
        buf = _capture.get()
        if buf is not None:
            buf.write(text)
        return self.original.write(text)

    def flush(self) -> None:
        self.original.flush()

    def writable(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


@contextlib.contextmanager
def capture_output() -> Iterator[io.StringIO]:
    """Capture this thread's writes to stdout and stderr into the buffer it yields."""
    global _tee_users
    with _tee_lock:
        if _tee_users == 0:
            sys.stdout = _Tee(sys.stdout)
            sys.stderr = _Tee(sys.stderr)
        _tee_users += 1
    buf = io.StringIO()
    token = _capture.set(buf)
    try:
        yield buf
    finally:
        _capture.reset(token)
        with _tee_lock:
            _tee_users -= 1
            if _tee_users == 0:
                for name in ("stdout", "stderr"):
                    stream = getattr(sys, name)
                    if isinstance(stream, _Tee):
                        setattr(sys, name, stream.original)


def error_record(exc: BaseException) -> dict[str, Any]:
    """How an error is stored: its type, message and the end of its traceback."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return {"type": f"{type(exc).__module__}.{type(exc).__qualname__}".removeprefix("builtins."),
            "message": str(exc), "traceback": tb[-8_000:]}


# --- steps ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Load:
    """An argument read from the artifact store: an upstream output, or a literal argument
    that is not plain JSON (stored like an output so its digest can be part of the key)."""

    output: StepOutput


@dataclass(frozen=True, slots=True)
class StepResult:
    ok: bool
    outputs: tuple[StepOutput, ...] = ()
    error: dict[str, Any] | None = None
    logs: str = ""
    started_at: int = 0
    ended_at: int = 0


@dataclass(frozen=True, slots=True)
class StepTask:
    """One attempt at one step."""

    node: str
    fn: Callable[..., Any]
    arguments: dict[str, Any]
    outputs: tuple[str, ...]
    run_id: str
    cache_dir: str
    stores: Stores | None = None
    attempt: int = 1

    def execute(self, client: Client) -> StepResult:
        with capture_output() as buf:
            started = now_ms()
            try:
                with client.start_run(run_id=self.run_id) as run:
                    started = now_ms()
                    args = _resolve(self.arguments, client, self.cache_dir)
                    bound = inspect.BoundArguments(inspect.signature(self.fn), args)
                    value = self.fn(*bound.args, **bound.kwargs)
                    ended = now_ms()
                    stored = [formats.dump(v, n, client.service.artifacts)
                              for n, v in _split(value, self.outputs, self.node)]
                    client.service.store.record_artifacts(
                        run.run_id, [Artifact(f"outputs/{o.name}", o.digest, o.size)
                                     for o in stored])
                    _log_text(client, run.run_id, buf, self.attempt)
                result = StepResult(True, tuple(stored), None, "", started, ended)
            except Exception as exc:
                ended = now_ms()
                with contextlib.suppress(Exception):
                    _log_text(client, self.run_id, buf, self.attempt)
                result = StepResult(False, (), error_record(exc), "", started, ended)
        logs = buf.getvalue()[-MAX_LOG_CHARS:]
        return StepResult(result.ok, result.outputs, result.error, logs, result.started_at,
                          result.ended_at)


def _log_text(client: Client, run_id: str, buf: io.StringIO, attempt: int) -> None:
    text = buf.getvalue()
    if text:
        name = "logs/output.txt" if attempt == 1 else f"logs/output.{attempt}.txt"
        client.service.log_bytes(run_id, text[-MAX_LOG_CHARS:].encode(), name)


def _resolve(value: Any, client: Client, cache_dir: str) -> Any:
    if isinstance(value, Load):
        return formats.load(value.output, client.service.artifacts, cache_dir)
    if isinstance(value, list):
        return [_resolve(v, client, cache_dir) for v in value]
    if isinstance(value, tuple):
        return tuple(_resolve(v, client, cache_dir) for v in value)
    if isinstance(value, dict):
        return {k: _resolve(v, client, cache_dir) for k, v in value.items()}
    return value


def _split(value: Any, names: tuple[str, ...], node: str) -> list[tuple[str, Any]]:
    if len(names) == 1:
        return [(names[0], value)]
    if isinstance(value, dict) and set(value) == set(names):
        return [(n, value[n]) for n in names]
    if isinstance(value, list | tuple) and len(value) == len(names):
        return list(zip(names, value, strict=True))
    got = (f"a dict with keys {sorted(value)}" if isinstance(value, dict)
           else f"a {type(value).__name__}" + (f" of {len(value)}"
                                               if isinstance(value, list | tuple) else ""))
    raise InvalidInputError(
        f"step {node!r} declares outputs {list(names)}: it must return a tuple of "
        f"{len(names)} values or a dict with those keys; it returned {got}",
        details={"step": node, "field": "outputs"})


# --- other processes --------------------------------------------------------------------------

_pinned = False


def pin_blas() -> None:
    """Cap BLAS/OpenMP at one thread in this worker process (once)."""
    global _pinned
    if _pinned:
        return
    _pinned = True
    for name, value in blas_env().items():
        os.environ.setdefault(name, value)
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1)


def run_payload(payload: bytes) -> bytes:
    """Run a cloudpickled task in a process or Ray worker; returns the pickled result."""
    import cloudpickle

    pin_blas()
    task = cloudpickle.loads(payload)
    if task.stores is None:
        raise PipelineError("a task sent to another process needs its stores")
    if task.stores.cwd and os.path.isdir(task.stores.cwd):
        os.chdir(task.stores.cwd)  # one task at a time in this process
    result = task.execute(client_for(task.stores))
    return bytes(cloudpickle.dumps(result))
