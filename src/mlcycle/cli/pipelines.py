"""``mlcycle pipeline ...`` (run, list, show, resume) and ``mlcycle sweep run``.

``TARGET`` is ``module:attribute``, imported with the current folder on ``sys.path`` (like
``python -m``): ``mlcycle pipeline run flows:train --param n=500 --no-cache``.
"""

from __future__ import annotations

import contextlib
import importlib
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
import yaml
from rich.text import Text

from mlcycle.cli.context import client_from
from mlcycle.cli.output import (
    MISSING,
    JsonFlag,
    console,
    fixed,
    format_duration,
    format_number,
    format_time,
    key_value_table,
    plural,
    print_json,
    print_note,
    short_id,
    table,
)
from mlcycle.entities import PipelineRun, StepRun
from mlcycle.errors import InvalidInputError, PipelineRunNotFound, StepFailed
from mlcycle.pipelines import PipelineResult, PipelineRunner, import_pipeline
from mlcycle.pipelines.sweeps import SweepResult, sweep

__all__ = ["app", "sweep_app"]

app = typer.Typer(
    name="pipeline",
    help="Pipelines: run (cached, in parallel), list, show and resume runs.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
sweep_app = typer.Typer(
    name="sweep",
    help="Hyperparameter sweeps with Optuna; every trial a nested run.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

Target = Annotated[str, typer.Argument(
    metavar="TARGET", help="module:function, imported from the current folder.")]
PipelineRef = Annotated[str, typer.Argument(
    metavar="PIPELINE_RUN_ID", help="A pipeline run id or a unique prefix (6+ characters).")]
ExecutorOpt = Annotated[str, typer.Option(
    "--executor", "-x", help="local (threads), process, ray, or ray:ADDRESS.")]


def _on_path() -> None:
    here = str(Path.cwd())
    if here not in sys.path:
        sys.path.insert(0, here)


def _params(pairs: Sequence[str]) -> dict[str, Any]:
    """``k=v`` pairs; a value is read as JSON when it parses (``5``, ``true``, ``[1,2]``)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.isidentifier():
            raise InvalidInputError(f"--param: expected NAME=VALUE, got {pair!r}",
                                    details={"field": "param"})
        try:
            out[key] = orjson.loads(text)
        except orjson.JSONDecodeError:
            out[key] = text
    return out


@contextlib.contextmanager
def _quiet(as_json: bool) -> Iterator[None]:
    """With ``--json``, what steps print goes to standard error: standard output is the JSON."""
    if not as_json:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


def _resolve(runner: PipelineRunner, ref: str) -> str:
    """A full pipeline run id from an id or a unique prefix."""
    ref = ref.strip()
    if len(ref) == 32:
        return ref
    if len(ref) < 6:
        raise InvalidInputError(f"a pipeline run prefix needs 6+ characters, got {ref!r}",
                                details={"field": "pipeline_run_id"})
    found: list[str] = []
    token = None
    while True:
        page = runner.store.list_pipeline_runs(max_results=1000, page_token=token)
        found += [r.pipeline_run_id for r in page if r.pipeline_run_id.startswith(ref)]
        token = page.next_page_token
        if token is None or len(found) > 1:
            break
    if not found:
        raise PipelineRunNotFound(f"no pipeline run with id or prefix {ref!r}",
                                  details={"pipeline_run_id": ref})
    if len(found) > 1:
        raise InvalidInputError(f"prefix {ref!r} matches several pipeline runs; give more "
                                "characters", details={"field": "pipeline_run_id"})
    return found[0]


# --- pipeline ---------------------------------------------------------------------------------
@app.command("run")
def run(
    ctx: typer.Context,
    target: Target,
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", help="An argument of the pipeline function, NAME=VALUE; repeatable.")
    ] = None,
    no_cache: Annotated[bool, typer.Option(
        "--no-cache", help="Run every step, even those with a finished twin.")] = False,
    executor: ExecutorOpt = "local",
    experiment: Annotated[str | None, typer.Option(
        "--experiment", "-e", help="Experiment of the pipeline's tracking run.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Run the pipeline TARGET and show its steps."""
    _on_path()
    pipe = import_pipeline(target)
    client = client_from(ctx)
    with PipelineRunner(client, executor=executor) as runner:
        try:
            with _quiet(as_json):
                result = runner.run(pipe, (), _params(param or ()), cache=not no_cache,
                                    experiment=experiment)
        except StepFailed as exc:
            _report_failed(runner, exc, as_json)
            raise
    _print_result(result, as_json)


@app.command("resume")
def resume(
    ctx: typer.Context,
    ref: PipelineRef,
    no_cache: Annotated[bool, typer.Option(
        "--no-cache", help="Run the steps that did not finish without looking in the cache.")
    ] = False,
    executor: ExecutorOpt = "local",
    as_json: JsonFlag = False,
) -> None:
    """Run a failed pipeline run again from its failed step (a new run reusing the rest)."""
    _on_path()
    client = client_from(ctx)
    with PipelineRunner(client, executor=executor) as runner:
        prid = _resolve(runner, ref)
        try:
            with _quiet(as_json):
                result = runner.resume(prid, cache=False if no_cache else None)
        except StepFailed as exc:
            _report_failed(runner, exc, as_json)
            raise
    _print_result(result, as_json)


def _report_failed(runner: PipelineRunner, exc: StepFailed, as_json: bool) -> None:
    prid = exc.details.get("pipeline_run_id")
    if not prid:
        return
    record, steps = runner.store.get_pipeline_run(prid), runner.store.list_step_runs(prid)
    if as_json:
        print_json({"pipeline_run": record, "steps": steps})
    else:
        _print_run(record, steps)


def _print_result(result: PipelineResult, as_json: bool) -> None:
    if as_json:
        print_json({"pipeline_run": result.run, "steps": result.steps})
        return
    _print_run(result.run, result.steps)
    hits = sum(s.cache_hit for s in result.steps)
    print_note(f"{plural(len(result.steps), 'step')}, {hits} from the cache; "
               f"`mlcycle pipeline show {short_id(result.pipeline_run_id)}` for details")


@app.command("list")
def list_runs(
    ctx: typer.Context,
    pipeline: Annotated[str | None, typer.Option(
        "--pipeline", help="Only runs of this pipeline (its name).")] = None,
    status: Annotated[str | None, typer.Option(
        "--status", help="running, finished or failed.")] = None,
    max_results: Annotated[int, typer.Option("--max", "-n", min=1, max=10_000,
                                             help="Runs to show.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Pipeline runs, newest first."""
    with PipelineRunner(client_from(ctx)) as runner:
        page = runner.store.list_pipeline_runs(pipeline=pipeline, status=status,
                                               max_results=max_results)
    if as_json:
        print_json({"pipeline_runs": list(page), "next_page_token": page.next_page_token})
        return
    out = table(fixed("id"), "pipeline", fixed("status"), fixed("started (UTC)"),
                fixed("duration"), "executor", title=plural(len(page), "pipeline run"))
    for r in page:
        out.add_row(short_id(r.pipeline_run_id), Text(r.pipeline), _status(r.status),
                    format_time(r.created_at), format_duration(r.duration), Text(r.executor))
    console.print(out)


@app.command("show")
def show(
    ctx: typer.Context,
    ref: PipelineRef,
    logs: Annotated[bool, typer.Option("--logs", help="Print each step's output too.")
                    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """A pipeline run and its steps: status, timings, cache, inputs, outputs, errors."""
    with PipelineRunner(client_from(ctx)) as runner:
        prid = _resolve(runner, ref)
        record, steps = runner.store.get_pipeline_run(prid), runner.store.list_step_runs(prid)
    if as_json:
        print_json({"pipeline_run": record, "steps": steps})
        return
    _print_run(record, steps, details=True)
    for s in steps:
        if s.error and s.status == "failed":
            console.print(Text(f"\n{s.node} failed:", style="bold red"))
            console.print(Text(str(s.error.get("traceback") or s.error.get("message"))))
        if logs and s.logs:
            console.print(Text(f"\n{s.node} output:", style="bold"))
            console.print(Text(s.logs))


def _print_run(r: PipelineRun, steps: Sequence[StepRun], *, details: bool = False) -> None:
    items: dict[str, Any] = {
        "id": r.pipeline_run_id, "pipeline": r.pipeline, "status": r.status,
        "target": r.target or MISSING, "executor": r.executor, "cache": r.cache,
        "params": r.params, "started": format_time(r.created_at),
        "duration": format_duration(r.duration), "tracking run": r.run_id or MISSING,
    }
    if r.resumed_from:
        items["resumed from"] = r.resumed_from
    if r.error:
        items["error"] = f"{r.error.get('step', '')}: {r.error.get('type')}: " \
                         f"{r.error.get('message')}"
    console.print(key_value_table(f"pipeline run {short_id(r.pipeline_run_id)}", items))
    columns: list[Any] = ["step", fixed("status"), fixed("cache"), fixed("tries"),
                          fixed("duration"), "outputs", fixed("run")]
    if details:
        columns[5:5] = ["inputs", "params"]
    out = table(*columns, title=plural(len(steps), "step"))
    for s in steps:
        cache = "hit" if s.cache_hit else ("-" if s.status in ("skipped", "pending") else "miss")
        row: list[Any] = [Text(s.node), _status(s.status), cache, str(s.attempts),
                          format_duration(s.duration),
                          Text(", ".join(f"{o.name}:{o.digest[:8]}" for o in s.outputs)
                               or MISSING), short_id(s.run_id)]
        if details:
            row[5:5] = [Text(", ".join(f"{k}:{v[:8]}" for k, v in s.inputs.items()) or MISSING),
                        Text(_compact(_literal(s.params)))]
        out.add_row(*row)
    console.print(out)


def _literal(params: Mapping[str, Any]) -> dict[str, Any]:
    """The params that are values, not upstream outputs (those are in the inputs column)."""
    return {k: v for k, v in params.items() if not (isinstance(v, dict) and "$input" in v)}


def _status(status: str) -> Text:
    style = {"finished": "green", "complete": "green", "failed": "red", "skipped": "yellow",
             "pruned": "yellow", "retrying": "yellow"}.get(status, "")
    return Text(status, style=style)


def _compact(value: Any) -> str:
    text = orjson.dumps(value).decode() if value else MISSING
    return text if len(text) <= 80 else text[:77] + "..."


# --- sweep ------------------------------------------------------------------------------------
@sweep_app.command("run")
def sweep_run(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(
        metavar="TARGET", help="The objective, module:function (returns a number).")],
    space: Annotated[str, typer.Option(
        "--space", "-s", help="The search space: JSON or YAML text, @FILE, or module:attribute "
                              "(e.g. '{\"C\": {\"low\": 0.01, \"high\": 10, \"log\": true}, "
                              "\"kernel\": [\"rbf\", \"linear\"]}').")],
    trials: Annotated[int, typer.Option("--trials", "-n", min=1, help="Number of trials.")
                      ] = 20,
    sampler: Annotated[str, typer.Option("--sampler", help="tpe, random or grid.")] = "tpe",
    pruner: Annotated[str, typer.Option("--pruner", help="none, median or hyperband.")
                      ] = "none",
    direction: Annotated[str, typer.Option("--direction", help="minimize or maximize.")
                         ] = "minimize",
    metric: Annotated[str, typer.Option("--metric", help="The objective's metric name.")
                      ] = "objective",
    seed: Annotated[int | None, typer.Option("--seed", help="The sampler's seed.")] = None,
    executor: ExecutorOpt = "local",
    experiment: Annotated[str | None, typer.Option(
        "--experiment", "-e", help="Experiment of the sweep's run.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Tune the objective TARGET over a search space; prints the best trial."""
    _on_path()
    objective = _import(target)
    result = sweep(objective, _space(space), trials, client=client_from(ctx), sampler=sampler,
                   pruner=pruner, direction=direction, metric=metric, executor=executor,
                   seed=seed, experiment=experiment)
    _print_sweep(result, metric, as_json)


def _import(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise InvalidInputError(f"expected module:attribute, got {target!r}",
                                details={"field": "target"})
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidInputError(f"cannot import {module_name!r}: {exc}",
                                details={"field": "target"}) from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InvalidInputError(f"module {module_name!r} has no {attr!r}",
                                    details={"field": "target"})
        obj = getattr(obj, part)
    return obj


_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def _space(text: str) -> Any:
    if text.startswith("@"):
        path = Path(text[1:])
        if not path.is_file():
            raise InvalidInputError(f"--space: no file {str(path)!r}", details={"field": "space"})
        text = path.read_text()
    elif _TARGET.match(text):
        return _import(text)
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"--space: not JSON or YAML: {exc}",
                                details={"field": "space"}) from exc
    return value


def _print_sweep(result: SweepResult, metric: str, as_json: bool) -> None:
    if as_json:
        print_json({"run_id": result.run_id, "best_trial": result.best_trial,
                    "trials": list(result.trials)})
        return
    out = table(fixed("trial"), fixed("state"), fixed(metric), "params", fixed("run"),
                title=f"sweep {short_id(result.run_id)}: {plural(len(result.trials), 'trial')}")
    for t in result.trials:
        out.add_row(str(t.number), _status(t.state),
                    format_number(t.value), Text(_compact(t.params)), short_id(t.run_id))
    console.print(out)
    best = result.best_trial
    if best is not None:
        console.print(Text(f"best: trial {best.number}, {metric} = {format_number(best.value)}, "
                           f"params {_compact(best.params)}, run {best.run_id}", style="green"))
