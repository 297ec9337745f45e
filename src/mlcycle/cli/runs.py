"""``mlcycle runs ...``: list, inspect, compare, delete and restore tracked runs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Column, Table
from rich.text import Text

from mlcycle.cli.context import client_from
from mlcycle.cli.output import (
    MISSING,
    JsonFlag,
    confirm,
    console,
    fixed,
    format_duration,
    format_number,
    format_size,
    format_time,
    iso_time,
    jsonable,
    key_value_table,
    plural,
    print_json,
    print_note,
    print_success,
    progress,
    short_id,
    table,
)
from mlcycle.cli.refs import resolve_experiment, resolve_run_id, resolve_run_ids
from mlcycle.client import Client
from mlcycle.entities import Artifact, MetricHistory, Page, Run
from mlcycle.errors import ArtifactNotFound, InvalidStateError, NotFoundError
from mlcycle.tracking.compare import RunComparison
from mlcycle.types import RunStatus

__all__ = ["app"]

app = typer.Typer(
    name="runs",
    help="Tracked runs: list, inspect, compare, delete and restore.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

RunRef = Annotated[
    str, typer.Argument(metavar="RUN_ID", help="A run id or a unique prefix (6+ characters).")
]
RunRefs = Annotated[
    list[str], typer.Argument(metavar="RUN_ID", help="Run ids or unique prefixes.")
]

#: How many params and metrics ``runs list`` shows when not told which.
_DEFAULT_COLUMNS = 3


# --- list -------------------------------------------------------------------------------------
@app.command("list")
def list_runs(
    ctx: typer.Context,
    experiments: Annotated[
        list[str] | None,
        typer.Option("--experiment", "-e", help="Only this experiment (name or id); repeatable."),
    ] = None,
    filter_: Annotated[
        str, typer.Option("--filter", "-f", help="e.g. \"metrics.rmse < 0.5 and params.C = '1'\"")
    ] = "",
    order_by: Annotated[
        list[str] | None,
        typer.Option("--order-by", "-o", help="e.g. 'metrics.rmse ASC'; repeatable."),
    ] = None,
    max_results: Annotated[
        int, typer.Option("--max", "-n", min=1, help="Runs per page.")
    ] = 100,
    all_pages: Annotated[bool, typer.Option("--all-pages", help="Fetch every page.")] = False,
    page_token: Annotated[
        str | None, typer.Option("--page-token", help="Continue from a previous page.")
    ] = None,
    include_deleted: Annotated[bool, typer.Option("--all", help="Include deleted runs.")] = False,
    params: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Param column to show; repeatable.")
    ] = None,
    metrics: Annotated[
        list[str] | None, typer.Option("--metric", "-m", help="Metric column to show; repeatable.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List runs, newest first unless --order-by says otherwise.

    Example: mlcycle runs list -e iris -f "metrics.rmse < 0.5" -o "metrics.rmse ASC"
    """
    client = client_from(ctx)
    experiment_ids = [resolve_experiment(client, e).experiment_id for e in experiments or ()]
    page = _search(
        client,
        experiment_ids=experiment_ids or None,
        filter=filter_,
        order_by=order_by or (),
        max_results=max_results,
        page_token=page_token,
        include_deleted=include_deleted,
        all_pages=all_pages,
    )
    if as_json:
        print_json({"runs": [_run_json(r) for r in page.items],
                    "next_page_token": page.next_page_token})
        return
    console.print(_runs_table(page.items, params, metrics))
    if page.next_page_token:
        print_note(f"More runs: add --all-pages, or --page-token {page.next_page_token}")


def _search(client: Client, *, all_pages: bool, page_token: str | None, **query: Any) -> Page[Run]:
    page = client.search_runs(page_token=page_token, **query)
    if not all_pages:
        return page
    runs = list(page.items)
    while page.next_page_token:
        page = client.search_runs(page_token=page.next_page_token, **query)
        runs.extend(page.items)
    return Page(runs)


def _runs_table(runs: Sequence[Run], params: list[str] | None,
                metrics: list[str] | None) -> Table:
    param_keys = params or _common_keys((r.params for r in runs), _DEFAULT_COLUMNS)
    metric_keys = metrics or _common_keys((r.metrics for r in runs), _DEFAULT_COLUMNS)
    if not (params or metrics):
        param_keys, metric_keys = _fit(param_keys, metric_keys, _room(console.width))
    out = table(fixed("run id"), Column("name", min_width=10), fixed("status"),
                fixed("start (UTC)"), fixed("duration"),
                *(_value_column(k) for k in [*param_keys, *metric_keys]),
                title=plural(len(runs), "run"))
    for run in runs:
        out.add_row(
            Text(short_id(run.run_id)),
            Text(run.name),
            _status(run),
            Text(format_time(run.start_time, seconds=False)),
            Text(format_duration(run.duration), justify="right"),
            *(Text(run.params.get(k, MISSING)) for k in param_keys),
            *(Text(format_number(run.metrics.get(k)), justify="right") for k in metric_keys),
        )
    return out


#: Width of the columns every run list has (with borders), and a param or metric column's.
_BASE_WIDTH = 66
_VALUE_WIDTH = 11


def _room(width: int) -> int:
    """How many param and metric columns fit beside the fixed ones."""
    return max(0, (width - _BASE_WIDTH) // _VALUE_WIDTH)


def _fit(params: list[str], metrics: list[str], room: int) -> tuple[list[str], list[str]]:
    """Drop columns from the end of the longer list until both fit in *room* columns."""
    params, metrics = list(params), list(metrics)
    while len(params) + len(metrics) > room:
        (params if len(params) > len(metrics) else metrics).pop()
    return params, metrics


def _value_column(key: str) -> Column:
    return Column(key, no_wrap=True, overflow="ellipsis", min_width=min(len(key), 8))


def _common_keys(mappings: Iterable[Mapping[str, object]], limit: int) -> list[str]:
    """The *limit* keys most runs have (ties alphabetically)."""
    counts = Counter(key for mapping in mappings for key in mapping)
    return sorted(counts, key=lambda key: (-counts[key], key))[:limit]


_STATUS_STYLES = {
    RunStatus.RUNNING: "cyan",
    RunStatus.FINISHED: "green",
    RunStatus.FAILED: "red",
    RunStatus.KILLED: "yellow",
}


def _status(run: Run) -> Text:
    label = run.status.value + (" (deleted)" if run.lifecycle == "deleted" else "")
    return Text(label, style=_STATUS_STYLES[run.status])


def _run_json(run: Run) -> dict[str, Any]:
    fields = jsonable(run)
    assert isinstance(fields, dict)  # a dataclass renders as an object
    return {**fields, "duration_s": run.duration}


# --- show -------------------------------------------------------------------------------------
@app.command("show")
def show(ctx: typer.Context, run_id: RunRef, as_json: JsonFlag = False) -> None:
    """Show one run: params, latest metrics, tags, inputs, results and artifacts."""
    client = client_from(ctx)
    run = client.get_run(resolve_run_id(client, run_id))
    experiment = client.get_experiment(run.experiment_id)
    artifacts = client.list_artifacts(run.run_id)
    if as_json:
        print_json({**_run_json(run), "experiment_name": experiment.name,
                    "artifacts": artifacts})
        return
    console.print(key_value_table(f"Run {run.name}", [
        ("id", run.run_id),
        ("experiment", f"{experiment.name} ({experiment.experiment_id})"),
        ("status", run.status.value),
        ("lifecycle", run.lifecycle),
        ("start (UTC)", format_time(run.start_time)),
        ("end (UTC)", format_time(run.end_time)),
        ("duration", format_duration(run.duration)),
        ("parent run", run.parent_run_id or MISSING),
    ]))
    for title, items in (("Params", run.params), ("Metrics (latest)", run.metrics),
                         ("Tags", run.tags), ("Results", run.results)):
        if items:
            console.print(key_value_table(title, sorted(items.items())))
    if run.inputs:
        console.print(_inputs_table(run))
    if artifacts:
        console.print(_artifacts_table(artifacts))


def _inputs_table(run: Run) -> Table:
    out = table("dataset", "version", "digest", "context", title="Inputs")
    for item in run.inputs:
        context = ", ".join(f"{k}={v}" for k, v in item.context.items())
        out.add_row(Text(item.dataset), Text(item.version), Text(item.digest or MISSING),
                    Text(context or MISSING))
    return out


def _artifacts_table(artifacts: Sequence[Artifact]) -> Table:
    out = table("path", fixed("size"), fixed("digest"), title="Artifacts")
    for a in artifacts:
        out.add_row(Text(a.path), Text(format_size(a.size), justify="right"),
                    Text(short_id(a.digest)))
    return out


# --- compare ----------------------------------------------------------------------------------
@app.command("compare")
def compare(
    ctx: typer.Context,
    run_ids: RunRefs,
    only_diff: Annotated[
        bool, typer.Option("--only-diff", help="Show only params that differ.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Compare runs side by side: params (differences marked *) and final metrics.

    --json adds every metric's history, aligned by step.
    """
    if len(run_ids) < 2:
        raise typer.BadParameter("give at least two runs to compare", param_hint="RUN_ID")
    client = client_from(ctx)
    comparison = client.compare_runs(resolve_run_ids(client, run_ids))
    if as_json:
        print_json(_comparison_json(comparison))
        return
    console.print(_params_comparison(comparison, only_diff))
    console.print(_metrics_comparison(comparison))


def _comparison_columns(comparison: RunComparison, title: str) -> Table:
    headers = [f"{name}\n{short_id(run_id)}"
               for name, run_id in zip(comparison.names, comparison.run_ids, strict=True)]
    return table("", *headers, title=title)


def _params_comparison(comparison: RunComparison, only_diff: bool) -> Table:
    differing = set(comparison.differing_params)
    out = _comparison_columns(comparison, "Params (* differs)")
    for key, values in comparison.params.items():
        if only_diff and key not in differing:
            continue
        style = "bold yellow" if key in differing else ""
        marker = "* " if key in differing else "  "
        out.add_row(Text(marker + key, style=style),
                    *(Text(MISSING if v is None else v, style=style) for v in values))
    return out


def _metrics_comparison(comparison: RunComparison) -> Table:
    out = _comparison_columns(comparison, "Metrics (latest)")
    for key, values in comparison.metrics.items():
        out.add_row(Text(key), *(Text(format_number(v), justify="right") for v in values))
    return out


def _comparison_json(comparison: RunComparison) -> dict[str, Any]:
    return {
        "runs": [{"run_id": run_id, "name": name}
                 for run_id, name in zip(comparison.run_ids, comparison.names, strict=True)],
        "params": comparison.params,
        "differing_params": comparison.differing_params,
        "metrics": comparison.metrics,
        "histories": {key: {"steps": steps, "values": values}
                      for key, (steps, values) in comparison.histories.items()},
    }


# --- delete, restore, mark-failed -------------------------------------------------------------
@app.command("delete")
def delete(
    ctx: typer.Context,
    run_ids: RunRefs,
    hard: Annotated[
        bool, typer.Option("--hard", help="Erase for good (default: restorable).")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete runs. They can be restored unless --hard."""
    client = client_from(ctx)
    ids = resolve_run_ids(client, run_ids)
    how = " permanently" if hard else ""
    if not yes:
        confirm(f"Delete {plural(len(ids), 'run')}{how}?")
    with progress() as bar:
        task = bar.add_task("Deleting", total=len(ids))
        for run_id in ids:
            client.delete_run(run_id, hard=hard)
            bar.advance(task)
    print_success(f"Deleted {plural(len(ids), 'run')}{how}.")
    if not hard:
        print_note("Undo with: mlcycle runs restore RUN_ID")


@app.command("restore")
def restore(ctx: typer.Context, run_id: RunRef) -> None:
    """Restore a deleted run."""
    client = client_from(ctx)
    run = client.restore_run(resolve_run_id(client, run_id))
    print_success(f"Restored run {short_id(run.run_id)} ({run.name}).")


@app.command("mark-failed")
def mark_failed(ctx: typer.Context, run_id: RunRef) -> None:
    """End a run left 'running' by a process that was killed, with status 'failed'."""
    client = client_from(ctx)
    run = client.get_run(resolve_run_id(client, run_id))
    if run.status is not RunStatus.RUNNING:
        raise InvalidStateError(
            f"run {run.run_id!r} is {run.status.value}; only a running run can be marked failed",
            details={"run_id": run.run_id, "status": run.status.value},
        )
    run = client.end_run(run.run_id, RunStatus.FAILED)
    print_success(f"Marked run {short_id(run.run_id)} ({run.name}) failed.")


# --- history, artifacts -----------------------------------------------------------------------
@app.command("history")
def history(ctx: typer.Context, run_id: RunRef,
            key: Annotated[str, typer.Argument(help="The metric.")],
            as_json: JsonFlag = False) -> None:
    """Show every point logged for one metric of a run, in step order."""
    client = client_from(ctx)
    run = client.get_run(resolve_run_id(client, run_id))
    points = client.get_metric_history(run.run_id, key)
    if not points:
        known = ", ".join(sorted(run.metrics)) or "none"
        raise NotFoundError(
            f"run {run.run_id!r} has no metric {key!r} (it has: {known})",
            details={"run_id": run.run_id, "key": key},
        )
    if as_json:
        print_json(_history_json(run.run_id, points))
        return
    out = table(fixed("step"), fixed("value"), fixed("time (UTC)"),
                title=f"{key} ({len(points)} points)")
    for point in points.points():
        out.add_row(Text(str(point.step), justify="right"),
                    Text(format_number(point.value), justify="right"),
                    Text(format_time(point.time)))
    console.print(out)


def _history_json(run_id: str, points: MetricHistory) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "key": points.key,
        "steps": points.steps,
        "values": points.values,
        "timestamps": [iso_time(point.time) for point in points.points()],
    }


@app.command("artifacts")
def artifacts(
    ctx: typer.Context,
    run_id: RunRef,
    path: Annotated[str, typer.Option("--path", help="Only this file or folder.")] = "",
    download: Annotated[
        Path | None, typer.Option("--download", metavar="DEST", help="Copy them into DEST.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List a run's artifacts, or download them with --download DEST (digests are checked)."""
    client = client_from(ctx)
    resolved = resolve_run_id(client, run_id)
    items = client.list_artifacts(resolved, path)
    if download is not None:
        _download(client, resolved, items, download)
    elif as_json:
        print_json({"run_id": resolved, "artifacts": items})
    else:
        console.print(_artifacts_table(items))


def _download(client: Client, run_id: str, items: Sequence[Artifact], dest: Path) -> None:
    if not items:
        raise ArtifactNotFound(f"run {run_id!r} has no artifacts to download",
                               details={"run_id": run_id})
    with progress(in_bytes=True) as bar:
        task = bar.add_task("Downloading", total=sum(a.size for a in items))
        for item in items:
            client.download_artifacts(run_id, item.path, dest)
            bar.advance(task, item.size)
    total = format_size(sum(a.size for a in items))
    print_success(f"Downloaded {plural(len(items), 'file')} ({total}) to {dest}.")
