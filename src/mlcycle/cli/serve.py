"""``mlcycle serve MODEL_URI`` or ``mlcycle serve --deployment NAME``: a model (or the versions
of a deployment, followed live) behind the Open Inference Protocol, ``/predict``,
``/feedback`` and ``/metrics``, under uvicorn with uvloop and httptools.

The command binds the listening socket itself, with ``TCP_NODELAY`` (accepted connections
inherit it on Linux): stock ``uvicorn --workers N`` leaves it off on the socket it shares with
its workers, and every kept-alive request then waits ~40 ms for Nagle's algorithm and the
client's delayed ACK.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from typing import Annotated, Any

import typer

from mlcycle.cli.context import client_from
from mlcycle.cli.output import err_console, print_error
from mlcycle.cli.server import _require
from mlcycle.errors import InvalidStateError

__all__ = ["APP_FACTORY", "DEPLOYMENT_VARIABLE", "MODEL_URI_VARIABLE", "app_from_env",
           "listening_socket", "serve"]

#: What each uvicorn worker imports when there are several; it serves what
#: ``MLCYCLE_SERVE_MODEL_URI`` or ``MLCYCLE_SERVE_DEPLOYMENT`` names, which :func:`serve` sets
#: (with the other ``MLCYCLE_SERVE_*`` options) before starting them.
APP_FACTORY = "mlcycle.cli.serve:app_from_env"
MODEL_URI_VARIABLE = "MLCYCLE_SERVE_MODEL_URI"
DEPLOYMENT_VARIABLE = "MLCYCLE_SERVE_DEPLOYMENT"
_MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def serve(
    ctx: typer.Context,
    model_uri: Annotated[str | None, typer.Argument(
        metavar="[MODEL_URI]",
        help="models:/name@alias, models:/name/3, runs:/RUN_ID/PATH or a folder "
             "(or --deployment).")] = None,
    deployment: Annotated[str | None, typer.Option(
        help="Serve deployment NAME and follow its promotions and rollbacks live.")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    name: Annotated[str | None, typer.Option(
        help="The model's name in /v2/models/{name}. Default: the registered name.")] = None,
    max_batch_size: Annotated[int | None, typer.Option(
        min=1, help="Rows per micro-batched model call [MLCYCLE_SERVE_MAX_BATCH_SIZE; 256].")
    ] = None,
    max_wait_ms: Annotated[float | None, typer.Option(
        min=0, help="How long a micro-batch may wait to fill; 0 never waits "
                    "[MLCYCLE_SERVE_MAX_WAIT_MS; 0].")] = None,
    max_queue: Annotated[int | None, typer.Option(
        min=1, help="Rows that may wait for the model before requests get 429 "
                    "[MLCYCLE_SERVE_MAX_QUEUE; 4096].")] = None,
    threads: Annotated[int | None, typer.Option(
        min=1, help="Native threads (OpenMP, BLAS) per worker for a model call "
                    "[MLCYCLE_SERVE_THREADS; 1].")] = None,
) -> None:
    """Serve a model or a deployment: /v2 (Open Inference Protocol), /predict, /feedback and
    /metrics. Set MLCYCLE_SERVE_TOKEN to require a bearer token on predictions and feedback.

    Needs the server extra: `pip install 'mlcycle[server]'`.
    """
    if (model_uri is None) == (deployment is None):
        print_error("Invalid arguments", "give a MODEL_URI or --deployment NAME (one of them)")
        raise typer.Exit(2)
    uvicorn = _require("uvicorn")
    _require("fastapi")
    _require("prometheus_client")
    options = {"MLCYCLE_SERVE_MAX_BATCH_SIZE": max_batch_size,
               "MLCYCLE_SERVE_MAX_WAIT_MS": max_wait_ms, "MLCYCLE_SERVE_MAX_QUEUE": max_queue,
               "MLCYCLE_SERVE_NAME": name, MODEL_URI_VARIABLE: model_uri,
               DEPLOYMENT_VARIABLE: deployment, "MLCYCLE_SERVE_THREADS": threads}
    for variable, value in options.items():  # the workers (and this process) read them
        if value is not None:
            os.environ[variable] = str(value)
    client = client_from(ctx)
    from mlcycle.config import load_settings

    limit_threads(load_settings().serve_threads)
    os.environ["MLCYCLE_TRACKING_URI"] = client.tracking_uri
    sock = listening_socket(host, port)
    what = f"deployment {deployment}" if deployment else str(model_uri)
    config_options: dict[str, Any] = dict(loop="uvloop", http="httptools", log_level="warning",
                                          timeout_graceful_shutdown=10)
    if workers == 1:
        app = _build(client, load_settings())
        err_console.print(f"mlcycle serve {what} on http://{host}:{port}", soft_wrap=True,
                          markup=False)
        uvicorn.Server(uvicorn.Config(app, **config_options)).run(sockets=[sock])
        return
    from uvicorn.supervisors import Multiprocess

    metrics_dir = tempfile.mkdtemp(prefix="mlcycle-serve-metrics-")
    os.environ[_MULTIPROC_VARIABLE] = metrics_dir
    err_console.print(f"mlcycle serve {what} on http://{host}:{port} ({workers} workers)",
                      soft_wrap=True, markup=False)
    try:
        config = uvicorn.Config(APP_FACTORY, factory=True, workers=workers, **config_options)
        Multiprocess(config, sockets=[sock]).run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


#: The variables native thread pools read when they load (the workers inherit them).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def limit_threads(threads: int) -> None:
    """At most *threads* native threads per model call in this process and its workers: the
    environment for pools not loaded yet, threadpoolctl for those already loaded (call it again
    after loading a model)."""
    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn and the pipelines extra bring it
        return
    threadpool_limits(limits=threads)


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket with ``TCP_NODELAY`` set, which the connections it accepts inherit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        print_error("Cannot listen", f"{host}:{port}: {exc.strerror or exc}")
        raise typer.Exit(1) from None
    sock.set_inheritable(True)
    return sock


def _build(client: Any, settings: Any) -> Any:
    """The app of one process, from the settings (``MLCYCLE_SERVE_*``)."""
    from mlcycle.serving import ServingSettings, create_deployment_app, create_serving_app

    serving = ServingSettings.from_settings(settings)
    if settings.serve_deployment:
        def load(model: str, version: int) -> Any:
            loaded = client.load_model(f"models:/{model}/{version}")
            limit_threads(settings.serve_threads)  # pools the model's libraries brought
            return loaded

        return create_deployment_app(client.deployments, settings.serve_deployment, load,
                                     settings=serving)
    model_uri = settings.serve_model_uri
    if model_uri.startswith("models:/"):
        mv = client.registry.resolve(model_uri)
        default_name, version = mv.name, str(mv.version)
    else:
        default_name = model_uri.rstrip("/").rsplit("/", 1)[-1] or "model"
        version = "1"
    model = client.load_model(model_uri)
    limit_threads(settings.serve_threads)
    return create_serving_app(model, name=settings.serve_name or default_name, version=version,
                              settings=serving)


def app_from_env() -> Any:
    """The app of one worker process (see :data:`APP_FACTORY`)."""
    from mlcycle.client import Client
    from mlcycle.config import load_settings

    settings = load_settings()
    if not settings.serve_model_uri and not settings.serve_deployment:
        raise InvalidStateError(f"neither {MODEL_URI_VARIABLE} nor {DEPLOYMENT_VARIABLE} is set: "
                                "start workers with `mlcycle serve MODEL_URI --workers N`")
    return _build(Client(settings=settings), settings)
