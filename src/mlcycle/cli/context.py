"""What the root command's options hand to every sub-command, and the ``Client`` made from them."""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from mlcycle.client import Client
from mlcycle.config import load_settings

__all__ = ["CliContext", "cli_context", "client_from"]


@dataclass(slots=True)
class CliContext:
    """The global options. The client is opened on first use, so ``--help`` and ``server``
    never touch a store."""

    tracking_uri: str | None = None
    debug: bool = False
    _client: Client | None = field(default=None, repr=False)

    def client(self, ctx: click.Context) -> Client:
        if self._client is None:
            self._client = Client(self.tracking_uri, settings=load_settings())
            ctx.call_on_close(self._client.close)
        return self._client


def cli_context(ctx: click.Context) -> CliContext:
    """The root's :class:`CliContext` (a default one when a command runs without the root)."""
    found = ctx.find_object(CliContext)
    if found is None:
        found = ctx.ensure_object(CliContext)
    return found


def client_from(ctx: click.Context) -> Client:
    """The ``Client`` for this invocation, closed when the command ends."""
    return cli_context(ctx).client(ctx.find_root())
