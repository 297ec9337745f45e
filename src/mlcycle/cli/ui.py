"""``mlcycle ui``: the web UI over the embedded store (or the database ``--tracking-uri`` names),
on 127.0.0.1, for one person looking at their own runs."""

from __future__ import annotations

from typing import Annotated

import typer

from mlcycle.cli.context import cli_context
from mlcycle.cli.output import err_console
from mlcycle.cli.server import _check_database, _require
from mlcycle.config import load_settings, redact_uri

__all__ = ["ui"]


def ui(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 5000,
) -> None:
    """Open the web UI on http://127.0.0.1:PORT over the local runs (./.mlcycle by default).

    Listens on loopback only: for a team, run `mlcycle server` with a token instead.
    Needs the server extra: `pip install 'mlcycle[server]'`.
    """
    tracking_uri = cli_context(ctx).tracking_uri
    settings = load_settings(**({"tracking_uri": tracking_uri} if tracking_uri else {}))
    _check_database(settings)
    uvicorn = _require("uvicorn")
    _require("fastapi")
    from mlcycle.server.app import create_app

    err_console.print(f"mlcycle UI on http://127.0.0.1:{port} "
                      f"(tracking {redact_uri(settings.resolved_tracking_uri)}); Ctrl-C stops it",
                      soft_wrap=True, markup=False)
    uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
