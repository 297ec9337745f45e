"""``mlcycle ci ...``: test, release and promote the model the project file declares.

``mlcycle ci run`` exits with the code of its outcome (see :mod:`mlcycle.ci.results`): 0
released, unchanged or planned; 10 data, 11 pipeline, 12 gates, 13 model tests, 14 acceptance,
15 promotion failed; 16 another run holds the lock; 2 a broken ``mlcycle.yaml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from mlcycle.cli.context import client_from
from mlcycle.cli.output import JsonFlag, console, print_error, print_json, print_success, table
from mlcycle.errors import InvalidInputError, LockHeld

if TYPE_CHECKING:
    from mlcycle.ci import CiResult

__all__ = ["app"]

app = typer.Typer(
    name="ci",
    help="CI/CD for models: detect changes, validate data, train, test, release to staging, "
         "accept and promote to production, as the `ci:` section of mlcycle.yaml says.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

ConfigOption = Annotated[Path, typer.Option(
    "--config", "-c", envvar="MLCYCLE_CONFIG", metavar="PATH",
    help="The project file (its `ci:` section).")]

_STYLE = {"passed": "green", "failed": "bold red", "skipped": "dim"}
#: The exit code of `ci run` when another run of the project holds the lock.
EXIT_LOCKED = 16


@app.command("run")
def run(
    ctx: typer.Context,
    config: ConfigOption = Path("mlcycle.yaml"),
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print what would change and the plan; do nothing.")] = False,
    junit: Annotated[Path | None, typer.Option(
        metavar="PATH", help="Write the JUnit XML report of every check here.")] = None,
    summary: Annotated[Path | None, typer.Option(
        metavar="PATH", help="Write a Markdown summary (for a pull-request comment) here.")
    ] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Break the lock of another run (one that died without releasing it).")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Run the chain: changes → data contract → pipeline → gates and model tests → register
    (@staging) → staging acceptance over HTTP → promotion to production. Stops at the first
    failing step, production untouched, and exits with that step's code."""
    from mlcycle.ci import CiProject, CiRunner, to_junit, to_markdown

    project = CiProject.from_file(config)
    runner = CiRunner(client_from(ctx), project, force=force)
    if dry_run:
        changes, steps = runner.plan()
        if as_json:
            print_json({"project": project.name, "changed": changes.changed,
                        "changes": list(changes.reasons),
                        "production": changes.production.uri if changes.production else None,
                        "plan": [{"step": s, "action": a} for s, a in steps]})
            return
        console.print(f"[bold]mlcycle ci[/] {project.name}: plan (--dry-run: nothing is done)")
        for i, (step, action) in enumerate(steps, 1):
            console.print(f"  {i}. [cyan]{step}[/]: {action}", soft_wrap=True)
        return
    try:
        result = runner.run()
    except LockHeld as exc:
        print_error(exc.headline, exc.message)
        raise typer.Exit(EXIT_LOCKED) from None
    if junit is not None:
        _write(junit, to_junit(result))
    if summary is not None:
        _write(summary, to_markdown(result))
    if as_json:
        print_json(result.to_dict())
    else:
        _print(result)
    raise typer.Exit(result.exit_code)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _print(result: CiResult) -> None:
    if result.checks and result.outcome != "unchanged":
        out = table("step", "check", "status", "result", title=f"mlcycle ci: {result.project}")
        for check in result.checks:
            out.add_row(check.step, check.name,
                        Text(check.status, style=_STYLE[check.status]), check.message)
        console.print(out)
    if result.passed:
        print_success(f"{result.outcome}: {result.reason}")
    else:
        print_error(result.outcome.replace("_", " "), result.reason)


@app.command("init")
def init(
    github: Annotated[bool, typer.Option("--github", help="Write a GitHub Actions workflow.")]
    = False,
    gitlab: Annotated[bool, typer.Option("--gitlab", help="Write a .gitlab-ci.yml.")] = False,
    directory: Annotated[Path, typer.Option(
        "--dir", metavar="PATH", help="The repository's root.")] = Path("."),
    config: Annotated[str, typer.Option(
        "--config", "-c", metavar="PATH", help="The project file, relative to the root.")]
    = "mlcycle.yaml",
    branch: Annotated[str, typer.Option(help="The branch whose pushes release.")] = "main",
    schedule: Annotated[str, typer.Option(
        metavar="CRON", help="When the scheduled run starts (UTC).")] = "0 4 * * *",
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace a workflow file that exists.")] = False,
) -> None:
    """Write the CI system's workflow that runs `mlcycle ci run` on push and on a schedule."""
    from mlcycle.ci.workflows import GITHUB_PATH, GITLAB_PATH, github_workflow, gitlab_workflow

    if github == gitlab:
        raise InvalidInputError("give one of --github or --gitlab", details={"field": "github"})
    path = directory / (GITHUB_PATH if github else GITLAB_PATH)
    if path.exists() and not overwrite:
        raise InvalidInputError(f"{path} exists; pass --overwrite to replace it",
                                details={"field": "overwrite", "path": str(path)})
    render = github_workflow if github else gitlab_workflow
    _write(path, render(config=config, branch=branch, schedule=schedule))
    print_success(f"wrote {path}: `mlcycle ci run --config {config}` on pushes to {branch} and "
                  f"on the schedule {schedule!r}")
