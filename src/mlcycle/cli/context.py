"""What the root command's options hand to every sub-command, and the ``Client`` made from them."""

from __future__ import annotations

from dataclasses import dataclass

import typer

from mlcycle.client import Client
from mlcycle.config import load_settings

__all__ = ["CliContext", "cli_context", "client_from"]


@dataclass(slots=True)
class CliContext:
    """The global options, and the client once a command asked for it (``--help`` and
    ``server`` never open one)."""

    tracking_uri: str | None = None
    debug: bool = False
    client: Client | None = None


def cli_context(ctx: typer.Context) -> CliContext:
    """The root's :class:`CliContext` (a default one when a command runs without the root)."""
    return ctx.ensure_object(CliContext)


def client_from(ctx: typer.Context) -> Client:
    """The ``Client`` of this invocation, opened on first use and closed when the command ends."""
    state = cli_context(ctx)
    if state.client is None:
        state.client = Client(state.tracking_uri, settings=load_settings())
        ctx.find_root().call_on_close(state.client.close)
    return state.client
