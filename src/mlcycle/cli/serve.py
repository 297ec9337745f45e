"""``mlcycle serve MODEL_URI``: one model behind the Open Inference Protocol and ``/predict``,
under uvicorn."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from mlcycle.cli.context import client_from
from mlcycle.cli.output import err_console
from mlcycle.cli.server import _require
from mlcycle.errors import InvalidStateError

__all__ = ["APP_FACTORY", "MODEL_URI_VARIABLE", "app_from_env", "serve"]

#: What each uvicorn worker imports when there are several; it loads the model named in
#: ``MLCYCLE_SERVE_MODEL_URI``, which :func:`serve` sets before starting them.
APP_FACTORY = "mlcycle.cli.serve:app_from_env"
MODEL_URI_VARIABLE = "MLCYCLE_SERVE_MODEL_URI"


def serve(
    ctx: typer.Context,
    model_uri: Annotated[str, typer.Argument(
        metavar="MODEL_URI",
        help="models:/name@alias, models:/name/3, runs:/RUN_ID/PATH or a folder.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    name: Annotated[str | None, typer.Option(
        help="The model's name in /v2/models/{name}. Default: the registered name.")] = None,
) -> None:
    """Serve a model: /v2 (Open Inference Protocol), /predict and /metrics.

    Needs the server extra: `pip install 'mlcycle[server]'`.
    """
    uvicorn = _require("uvicorn")
    _require("fastapi")
    _require("prometheus_client")
    client = client_from(ctx)
    app, served = _build(client, model_uri, name)
    err_console.print(f"mlcycle serve {served} on http://{host}:{port}", soft_wrap=True,
                      markup=False)
    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_level="warning")
        return
    # Worker processes load the model themselves, from the same store and URI.
    os.environ["MLCYCLE_TRACKING_URI"] = client.tracking_uri
    os.environ[MODEL_URI_VARIABLE] = model_uri
    if name:
        os.environ["MLCYCLE_SERVE_NAME"] = name
    uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, workers=workers,
                log_level="warning")


def _build(client: Any, model_uri: str, name: str | None) -> tuple[Any, str]:
    from mlcycle.serving import create_serving_app

    if model_uri.startswith("models:/"):
        mv = client.registry.resolve(model_uri)
        default_name, version = mv.name, str(mv.version)
    else:
        default_name = model_uri.rstrip("/").rsplit("/", 1)[-1] or "model"
        version = "1"
    model = client.load_model(model_uri)
    served = name or default_name
    return create_serving_app(model, name=served, version=version), f"{served} v{version}"


def app_from_env() -> Any:
    """The app of one worker process (see :data:`APP_FACTORY`)."""
    from mlcycle.client import Client
    from mlcycle.config import load_settings

    settings = load_settings()
    if not settings.serve_model_uri:
        raise InvalidStateError(f"{MODEL_URI_VARIABLE} is not set: start workers with "
                                "`mlcycle serve MODEL_URI --workers N`")
    client = Client(settings=settings)
    return _build(client, settings.serve_model_uri, settings.serve_name)[0]
