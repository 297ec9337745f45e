"""``mlcycle experiments ...``: the named groups that runs belong to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer
from rich.table import Column, Table
from rich.text import Text

from mlcycle.cli.context import client_from
from mlcycle.cli.output import (
    MISSING,
    JsonFlag,
    console,
    fixed,
    format_time,
    key_value_table,
    plural,
    print_json,
    print_note,
    print_success,
    short_id,
    table,
)
from mlcycle.cli.refs import resolve_experiment
from mlcycle.client import Client
from mlcycle.entities import Experiment

__all__ = ["app"]

app = typer.Typer(
    name="experiments",
    help="Experiments: the named groups runs belong to.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

ExperimentRef = Annotated[
    str, typer.Argument(metavar="NAME_OR_ID", help="A name, an id or a unique id prefix.")
]

_COUNT_PAGE = 10_000


@app.command("list")
def list_experiments(
    ctx: typer.Context,
    include_deleted: Annotated[
        bool, typer.Option("--all", help="Include deleted experiments.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """List experiments."""
    found = client_from(ctx).list_experiments(include_deleted=include_deleted)
    if as_json:
        print_json({"experiments": found})
        return
    console.print(_experiments_table(found, show_lifecycle=include_deleted))


def _experiments_table(experiments: Sequence[Experiment], *, show_lifecycle: bool) -> Table:
    columns: list[str | Column] = [fixed("id"), "name", fixed("created (UTC)"), "description"]
    if show_lifecycle:
        columns.append(fixed("lifecycle"))
    out = table(*columns, title=plural(len(experiments), "experiment"))
    for exp in experiments:
        cells = [short_id(exp.experiment_id), exp.name, format_time(exp.created_at),
                 exp.description or MISSING]
        if show_lifecycle:
            cells.append(exp.lifecycle)
        out.add_row(*(Text(cell) for cell in cells))
    return out


@app.command("show")
def show(ctx: typer.Context, experiment: ExperimentRef, as_json: JsonFlag = False) -> None:
    """Show one experiment and how many runs it holds."""
    client = client_from(ctx)
    exp = resolve_experiment(client, experiment)
    runs = _count_runs(client, exp.experiment_id)
    if as_json:
        print_json({"experiment": exp, "run_count": runs})
        return
    console.print(key_value_table(f"Experiment {exp.name}", [
        ("id", exp.experiment_id),
        ("description", exp.description or MISSING),
        ("created (UTC)", format_time(exp.created_at)),
        ("lifecycle", exp.lifecycle),
        ("runs", str(runs)),
        *sorted(exp.tags.items()),
    ]))


def _count_runs(client: Client, experiment_id: str) -> int:
    """Runs of the experiment that are not deleted (paged, as the store offers no count)."""
    page = client.search_runs([experiment_id], max_results=_COUNT_PAGE)
    count = len(page)
    while page.next_page_token:
        page = client.search_runs([experiment_id], max_results=_COUNT_PAGE,
                                  page_token=page.next_page_token)
        count += len(page)
    return count


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name not used by another experiment.")],
    description: Annotated[
        str | None, typer.Option("--description", "-d", help="What it is about.")
    ] = None,
) -> None:
    """Create an experiment."""
    exp = client_from(ctx).create_experiment(name, description=description)
    print_success(f"Created experiment {exp.name} ({exp.experiment_id}).")


@app.command("rename")
def rename(
    ctx: typer.Context,
    experiment: ExperimentRef,
    new_name: Annotated[str, typer.Argument(metavar="NEW_NAME", help="The new name.")],
) -> None:
    """Rename an experiment; its runs stay with it."""
    client = client_from(ctx)
    exp = resolve_experiment(client, experiment)
    renamed = client.rename_experiment(exp.experiment_id, new_name)
    print_success(f"Renamed experiment {exp.name} to {renamed.name}.")


@app.command("delete")
def delete(ctx: typer.Context, experiment: ExperimentRef) -> None:
    """Delete an experiment (restorable with `mlcycle experiments restore ID`)."""
    client = client_from(ctx)
    exp = client.delete_experiment(resolve_experiment(client, experiment).experiment_id)
    print_success(f"Deleted experiment {exp.name}.")
    print_note(f"Undo with: mlcycle experiments restore {exp.experiment_id}")


@app.command("restore")
def restore(ctx: typer.Context, experiment: ExperimentRef) -> None:
    """Restore a deleted experiment."""
    client = client_from(ctx)
    exp = client.restore_experiment(resolve_experiment(client, experiment).experiment_id)
    print_success(f"Restored experiment {exp.name}.")
