"""``mlcycle server``: the REST API and web UI for a team, under uvicorn."""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Annotated

import typer

from mlcycle.cli.context import cli_context
from mlcycle.cli.output import err_console, print_error
from mlcycle.config import Settings, load_settings, redact_uri
from mlcycle.errors import InvalidInputError

__all__ = ["APP_FACTORY", "serve", "worker_environment"]

#: What each uvicorn worker process imports when there are several: it builds the app from
#: ``MLCYCLE_*`` variables, which :func:`serve` sets from its options before starting them.
APP_FACTORY = "mlcycle.server.app:app_from_env"


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8080,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    tracking_uri: Annotated[
        str | None,
        typer.Option("--tracking-uri", help="sqlite:///… or postgresql+psycopg://…"),
    ] = None,
    artifact_uri: Annotated[
        str | None, typer.Option("--artifact-uri", help="A folder or an fsspec URL (s3://…).")
    ] = None,
) -> None:
    """Run the mlcycle server (REST API under /api/v1, web UI under /).

    Settings not given here come from `MLCYCLE_*` variables and `mlcycle.yaml`;
    `MLCYCLE_TOKEN` is the bearer token that may write. Needs the server extra:
    `pip install 'mlcycle[server]'`.
    """
    overrides = {"tracking_uri": tracking_uri or cli_context(ctx).tracking_uri,
                 "artifact_uri": artifact_uri}
    settings = load_settings(**{k: v for k, v in overrides.items() if v})
    _check_database(settings)
    uvicorn = _require("uvicorn")
    _require("fastapi")
    err_console.print(
        f"mlcycle server on http://{host}:{port} "
        f"(tracking {redact_uri(settings.resolved_tracking_uri)}, "
        f"artifacts {settings.resolved_artifact_uri})",
        soft_wrap=True, markup=False,
    )
    if workers == 1:
        from mlcycle.server.app import SCHEDULER_POLL_S, create_app

        uvicorn.run(create_app(settings, monitor_poll_interval=SCHEDULER_POLL_S), host=host,
                    port=port, log_level="warning")
        return
    # Worker processes import the app themselves, so they get the settings from the environment.
    os.environ.update(worker_environment(settings))
    uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, workers=workers,
                log_level="warning")


def worker_environment(settings: Settings) -> dict[str, str]:
    """The ``MLCYCLE_*`` variables that give a worker process the same stores as *settings*."""
    return {
        "MLCYCLE_TRACKING_URI": settings.resolved_tracking_uri,
        "MLCYCLE_ARTIFACT_URI": settings.resolved_artifact_uri,
    }


def _check_database(settings: Settings) -> None:
    uri = settings.resolved_tracking_uri
    if uri.startswith(("http://", "https://")):
        raise InvalidInputError(
            f"tracking_uri: a server stores runs in a database (sqlite:///… or "
            f"postgresql+psycopg://…), got {uri!r}",
            details={"field": "tracking_uri"},
        )


def _require(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError:
        print_error("Missing dependency", f"{module} is not installed: "
                    "pip install 'mlcycle[server]'")
        raise typer.Exit(1) from None
