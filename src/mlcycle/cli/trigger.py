"""``mlcycle trigger ...``: retraining triggers of deployments: define, list, fire, runs.

A spec file holds the trigger's fields in YAML (``kinds``, ``pipeline``, ``dataset``,
``target``, ``schedule``, ``monitor``, ``evaluation_data``, ``gates``, ``params``, ``canary``,
``cooldown``, ``description``); options given on the command line win over it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml
from rich.text import Text

from mlcycle.cli.context import client_from
from mlcycle.cli.output import (
    MISSING,
    JsonFlag,
    console,
    format_time,
    print_json,
    print_success,
    table,
)
from mlcycle.entities import TriggerRun
from mlcycle.errors import InvalidInputError

if TYPE_CHECKING:  # retraining loads the pipelines and the evaluation: only when used
    from mlcycle.retrain import TriggerService

__all__ = ["app"]

app = typer.Typer(
    name="trigger",
    help="Retraining triggers: a schedule, a drift or quality alert, or new data retrains the "
         "model, checks the gates against production and starts a canary.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

Name = Annotated[str, typer.Argument(metavar="NAME", help="The trigger.")]

_STYLE = {"succeeded": "green", "running": "cyan", "rejected": "yellow", "failed": "bold red",
          "skipped": "dim"}


def _service(ctx: typer.Context) -> TriggerService:
    from mlcycle.retrain import TriggerService

    return TriggerService(client_from(ctx))


@app.command("create")
def create(
    ctx: typer.Context,
    name: Name,
    deployment: Annotated[str, typer.Option("--deployment", "-d", help="The deployment.")],
    spec_file: Annotated[Path | None, typer.Option(
        "--spec", "-s", exists=True, dir_okay=False, metavar="FILE",
        help="A YAML trigger spec.")] = None,
    kinds: Annotated[list[str] | None, typer.Option(
        "--kind", "-k", help="schedule, drift, quality or new_data (repeat for several).")
    ] = None,
    pipeline: Annotated[str | None, typer.Option(help="The retraining pipeline, module:function.")
                        ] = None,
    dataset: Annotated[str | None, typer.Option(help="The training dataset.")] = None,
    schedule: Annotated[str | None, typer.Option(help="A cron expression ('0 3 * * *').")
                        ] = None,
    cooldown: Annotated[str | None, typer.Option(help="Seconds or a duration (6h).")] = None,
    json_: JsonFlag = False,
) -> None:
    """Create trigger NAME of a deployment."""
    spec: dict[str, Any] = {}
    if spec_file is not None:
        try:
            loaded = yaml.safe_load(spec_file.read_text())
        except yaml.YAMLError as exc:
            raise InvalidInputError(f"{spec_file.name}: not valid YAML ({exc})",
                                    details={"field": "spec"}) from None
        if not isinstance(loaded, dict):
            raise InvalidInputError(f"{spec_file.name}: expected a mapping of trigger fields",
                                    details={"field": "spec"})
        spec = loaded
    given = {"kinds": kinds or None, "pipeline": pipeline, "dataset": dataset,
             "schedule": schedule, "cooldown": cooldown}
    spec.update({k: v for k, v in given.items() if v is not None})
    trigger = _service(ctx).create(name, deployment, spec)
    if json_:
        print_json(trigger)
        return
    print_success(f"Created trigger {trigger.name} of {trigger.deployment}: on "
                  f"{', '.join(trigger.kinds)}, runs {trigger.pipeline} on {trigger.dataset}, "
                  f"cool-down {trigger.cooldown_s}s.")


@app.command("list")
def list_(ctx: typer.Context,
          deployment: Annotated[str | None, typer.Option("--deployment", "-d")] = None,
          json_: JsonFlag = False) -> None:
    """The triggers, by name."""
    triggers = _service(ctx).list(deployment)
    if json_:
        print_json(triggers)
        return
    out = table("name", "deployment", "kinds", "pipeline", "dataset", "cool-down", "enabled")
    for t in triggers:
        out.add_row(t.name, t.deployment, ", ".join(t.kinds) + (
            f" ({t.schedule})" if t.schedule else ""), t.pipeline, t.dataset,
            f"{t.cooldown_s}s", "yes" if t.enabled else "paused")
    console.print(out)


@app.command("fire")
def fire(ctx: typer.Context, name: Name, json_: JsonFlag = False) -> None:
    """Retrain now: the run's outcome (succeeded, rejected, failed or skipped) and why."""
    run = _service(ctx).fire(name)
    if json_:
        print_json(run)
        return
    console.print(Text.assemble(f"run {run.run_id} of {run.trigger}: ", _status(run.status)))
    if run.reason:
        console.print(run.reason, soft_wrap=True)
    if run.gates.get("summary"):
        console.print(str(run.gates["summary"]))


@app.command("runs")
def runs(ctx: typer.Context, name: Name,
         max_results: Annotated[int, typer.Option("--max", help="At most this many.")] = 20,
         json_: JsonFlag = False) -> None:
    """The trigger's runs, newest first."""
    found = _service(ctx).runs(name, max_results=max_results)
    if json_:
        print_json(found)
        return
    out = table("run", "started", "cause", "status", "model", "rollout", "reason")
    for r in found:
        out.add_row(str(r.run_id), format_time(r.started_at), _cause(r), _status(r.status),
                    f"{r.model} v{r.model_version}" if r.model_version else MISSING,
                    str(r.rollout) if r.rollout else MISSING, r.reason or MISSING)
    console.print(out)


@app.command("pause")
def pause(ctx: typer.Context, name: Name) -> None:
    """Stop a trigger from firing."""
    _service(ctx).pause(name)
    print_success(f"Paused trigger {name}.")


@app.command("resume")
def resume(ctx: typer.Context, name: Name) -> None:
    """Let a trigger fire again."""
    _service(ctx).resume(name)
    print_success(f"Resumed trigger {name}.")


@app.command("delete")
def delete(ctx: typer.Context, name: Name) -> None:
    """Delete a trigger and its runs."""
    _service(ctx).delete(name)
    print_success(f"Deleted trigger {name}.")


def _status(status: str) -> Text:
    return Text(status, style=_STYLE.get(status, ""))


def _cause(r: TriggerRun) -> str:
    c = r.cause
    if r.kind in ("drift", "quality"):
        return f"{r.kind}: alert {c.get('alert_id')} ({c.get('monitor')})"
    if r.kind == "schedule":
        return f"schedule {c.get('time')}"
    if r.kind == "new_data":
        return f"new data {c.get('dataset')}@v{c.get('version')}"
    return r.kind
