"""The root ``mlcycle`` command: global options, the command groups, and errors as exit codes.

Every error mlcycle raises on purpose is printed as ``Error: <headline>: <message>`` on standard
error, with the traceback only under ``--debug``, and ends the process with the code of its
category:

====  =======================================================================================
code  meaning
====  =======================================================================================
0     success
1     an error not listed below (a store failure, ...), an unexpected error, a declined prompt
2     usage: an unknown option, a bad argument, invalid input (e.g. a filter that does not parse)
3     not found: no such run, experiment or artifact
4     conflict: the name is taken, or the object's state does not allow it
5     not authenticated, or not permitted (a server refused the token)
130   interrupted with Ctrl-C (Typer's own handling)
====  =======================================================================================
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from mlcycle.cli import (
    ci,
    data,
    deploy,
    experiments,
    lineage,
    models,
    monitor,
    pipelines,
    runs,
    serve,
    server,
    trigger,
    ui,
)
from mlcycle.cli.context import CliContext
from mlcycle.cli.output import err_console, print_error, print_note
from mlcycle.errors import (
    AlreadyExistsError,
    AuthError,
    InvalidInputError,
    InvalidStateError,
    MlcycleError,
    NotFoundError,
)

__all__ = ["EXIT_CODES", "app", "exit_code_for", "main"]

#: Error category -> exit code; the first match wins. Anything else exits with 1.
EXIT_CODES: tuple[tuple[type[MlcycleError], int], ...] = (
    (InvalidInputError, 2),
    (NotFoundError, 3),
    (AlreadyExistsError, 4),
    (InvalidStateError, 4),
    (AuthError, 5),
)
EXIT_ERROR = 1


def exit_code_for(error: MlcycleError) -> int:
    """The exit code for *error* (see the table in this module's docstring)."""
    return next((code for cls, code in EXIT_CODES if isinstance(error, cls)), EXIT_ERROR)


class _Root(TyperGroup):
    """The root group; every sub-command runs inside its ``invoke``, so errors are turned into
    exit codes here, the same way under ``main()`` and under a test runner."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException, BrokenPipeError):
            # Typer's own: usage errors (2), explicit exits, declined prompts (1), and output
            # piped into a reader that stopped early (`| head`), which it ends quietly.
            raise
        except MlcycleError as exc:
            _report(ctx, exc.headline, exc.message)
            raise typer.Exit(exit_code_for(exc)) from None
        except Exception as exc:
            _report(ctx, "Unexpected error", f"{type(exc).__name__}: {exc}", unexpected=True)
            raise typer.Exit(EXIT_ERROR) from None


def _report(ctx: typer.Context, headline: str, message: str, *, unexpected: bool = False) -> None:
    """Print the error; the traceback too under ``--debug`` (call it inside ``except``)."""
    debug = isinstance(ctx.obj, CliContext) and ctx.obj.debug
    if debug:
        err_console.print_exception()
    print_error(headline, message)
    if unexpected and not debug:
        print_note("Run again with --debug to see the traceback.")


app = typer.Typer(
    name="mlcycle",
    cls=_Root,
    help="mlcycle: track, compare and serve machine-learning runs.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(runs.app)
app.add_typer(experiments.app)
app.add_typer(data.app)
app.add_typer(models.app)
app.add_typer(pipelines.app)
app.add_typer(pipelines.sweep_app)
app.add_typer(deploy.app)
app.add_typer(monitor.app)
app.add_typer(trigger.app)
app.add_typer(ci.app)
app.command("lineage")(lineage.lineage)
app.command("server")(server.serve)
app.command("serve")(serve.serve)
app.command("ui")(ui.ui)


def _installed_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("mlcycle")
    except metadata.PackageNotFoundError:  # a source tree that was not installed
        return "0+unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"mlcycle {_installed_version()}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            metavar="URI",
            help="sqlite:///…, postgresql+psycopg://… or http(s)://host:port. "
            "Default: $MLCYCLE_TRACKING_URI, else ./.mlcycle/mlcycle.db.",
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True,
                     help="Print the version and exit."),
    ] = False,
) -> None:
    """mlcycle: track, compare and serve machine-learning runs."""
    ctx.obj = CliContext(tracking_uri=tracking_uri, debug=debug)


def main() -> None:
    """The ``mlcycle`` console script."""
    app()
