"""``mlcycle deploy ...``: roll a registered model version out behind a deployment, watch it, and
promote or roll it back.

``mlcycle deploy NAME --model URI`` is short for ``mlcycle deploy start NAME --model URI``: a
first word that is not one of the sub-commands is the deployment's name. A deployment named
like a sub-command (``status``) is deployed with the long form: ``mlcycle deploy start status
--model ...``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text
from typer.core import TyperGroup

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
    table,
)
from mlcycle.deploy import DeploymentConfig, DeploymentService, DeploymentStatus
from mlcycle.entities import DEPLOYMENT_STRATEGIES, Deployment
from mlcycle.errors import InvalidInputError

__all__ = ["app"]


class _DeployGroup(TyperGroup):
    """A group whose default command is ``start``: ``deploy NAME ...`` reads as
    ``deploy start NAME ...`` unless NAME is a sub-command."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["start", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    name="deploy",
    cls=_DeployGroup,
    help="Deployments: roll a model version out (direct, blue-green, canary, shadow), watch it, "
         "promote or roll it back. `mlcycle deploy NAME --model URI` starts a rollout.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

Name = Annotated[str, typer.Argument(metavar="NAME", help="The deployment.")]
Reason = Annotated[str, typer.Option("--reason", "-r", help="Why (kept in the history).")]


def _service(ctx: typer.Context) -> DeploymentService:
    return client_from(ctx).deployments


# --- changing ---------------------------------------------------------------------------------
@app.command("start")
def start(
    ctx: typer.Context,
    name: Name,
    model: Annotated[str, typer.Option(
        "--model", "-m", metavar="URI",
        help="models:/NAME@ALIAS or models:/NAME/VERSION.")],
    strategy: Annotated[str, typer.Option(
        "--strategy", "-s", help=f"One of {', '.join(DEPLOYMENT_STRATEGIES)}.")] = "direct",
    steps: Annotated[str | None, typer.Option(
        "--steps", metavar="P,P,...", help="Canary percents, increasing (default 5,25,50,100).")
    ] = None,
    min_requests: Annotated[int | None, typer.Option(
        "--min-requests", min=1, help="Candidate requests per canary step (default 100).")
    ] = None,
    sticky_key: Annotated[str | None, typer.Option(
        "--sticky-key", metavar="KEY",
        help="A request header or input column whose value pins a caller to one version.")
    ] = None,
    shadow_percent: Annotated[float | None, typer.Option(
        "--shadow-percent", help="Share of requests copied to a shadow (default 100).")
    ] = None,
    config_file: Annotated[Path | None, typer.Option(
        "--config", "-c", exists=True, dir_okay=False, metavar="FILE",
        help="YAML settings (steps, min_requests, thresholds...); flags given win.")] = None,
    description: Annotated[str, typer.Option("--description", help="What it serves.")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Deploy the version --model names (creates the deployment on first use)."""
    config: dict[str, Any] = {}
    if config_file is not None:
        config.update(DeploymentConfig.from_yaml(config_file.read_text(),
                                                 source=config_file.name))
    if steps is not None:
        config["steps"] = _steps(steps)
    for key, value in (("min_requests", min_requests), ("sticky_key", sticky_key),
                       ("shadow_percent", shadow_percent)):
        if value is not None:
            config[key] = value
    service = _service(ctx)
    before = _find(service, name)
    d = service.deploy(name, model, strategy=strategy, config=config or None,
                       description=description)
    if as_json:
        print_json(d)
        return
    if before is not None and before.revision == d.revision:
        print_note(f"{name} already serves version {d.stable_version} of {d.model}: nothing "
                   "to do")
        return
    print_success(_headline(d, before is None))


def _find(service: DeploymentService, name: str) -> Deployment | None:
    from mlcycle.errors import DeploymentNotFound

    try:
        return service.get(name)
    except DeploymentNotFound:
        return None


def _steps(text: str) -> list[float]:
    try:
        return [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise InvalidInputError(f"--steps: expected percents separated by commas (5,25,50,100), "
                                f"got {text!r}", details={"field": "steps"}) from None


def _headline(d: Deployment, created: bool) -> str:
    if created:
        return f"Created deployment {d.name}: {d.model} v{d.stable_version} is stable"
    v = d.candidate_version
    if d.phase == "warming":
        return f"{d.name}: warming v{v} on every worker; traffic switches when all have it ready"
    if d.phase == "canary":
        return f"{d.name}: canary of v{v} at {d.weight:g}% of the traffic"
    if d.phase == "shadow":
        return f"{d.name}: v{v} shadows {d.weight:g}% of the traffic"
    return f"{d.name}: v{d.stable_version} now answers (was v{d.previous_version})"


@app.command("promote")
def promote(ctx: typer.Context, name: Name, reason: Reason = "", as_json: JsonFlag = False
            ) -> None:
    """Make the candidate stable now."""
    d = _service(ctx).promote(name, reason=reason)
    if as_json:
        print_json(d)
        return
    print_success(f"{name}: v{d.stable_version} promoted (v{d.previous_version} kept as "
                  "previous)")


@app.command("rollback")
def rollback(ctx: typer.Context, name: Name, reason: Reason = "", as_json: JsonFlag = False
             ) -> None:
    """Drop the candidate; without one, switch back to the previous version."""
    d = _service(ctx).rollback(name, reason=reason)
    if as_json:
        print_json(d)
        return
    print_success(f"{name}: rolled back; v{d.stable_version} answers")


# --- reading ----------------------------------------------------------------------------------
@app.command("list")
def list_deployments(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Every deployment, its versions and phase."""
    found = _service(ctx).list()
    if as_json:
        print_json({"deployments": found})
        return
    out = table("name", "model", fixed("stable"), fixed("candidate"), fixed("phase"),
                fixed("weight"), fixed("updated (UTC)"), title=plural(len(found), "deployment"))
    for d in found:
        out.add_row(Text(d.name), Text(d.model), f"v{d.stable_version}",
                    f"v{d.candidate_version}" if d.candidate_version else MISSING, d.phase,
                    f"{d.weight:g}%" if d.candidate_version else MISSING,
                    format_time(d.updated_at))
    console.print(out)


@app.command("status")
def status(ctx: typer.Context, name: Name, as_json: JsonFlag = False) -> None:
    """Versions with their traffic, requests, errors, p95 latency and accuracy in this rollout;
    the workers; what the controller would do now."""
    st = _service(ctx).status(name)
    rows = _version_rows(st)
    workers = [{"worker_id": w.report.worker_id, "live": w.live, "age_s": w.age_s,
                "revision": w.report.revision, "ready_versions": list(w.report.ready_versions)}
               for w in st.workers]
    if as_json:
        print_json({"deployment": st.deployment, "versions": rows, "workers": workers,
                    "verdict": st.verdict})
        return
    d = st.deployment
    console.print(key_value_table(f"deployment {d.name}", {
        "model": d.model, "strategy": d.strategy, "phase": d.phase,
        "revision": d.revision, "rollout": d.rollout,
        "workers": f"{len(st.live_workers)} live of {len(st.workers)}",
        "updated": format_time(d.updated_at),
    }))
    out = table(fixed("version"), fixed("role"), fixed("traffic"), fixed("requests"),
                fixed("error rate"), fixed("p95"), fixed("accuracy"), fixed("workers ready"),
                title=f"rollout {d.rollout}")
    for r in rows:
        out.add_row(f"v{r['version']}", r["role"], r["traffic"], str(r["requests"]),
                    _percent(r["error_rate"] if r["requests"] else None), _latency(r["p95_s"]),
                    _percent(r["accuracy"]), str(r["workers_ready"]))
    console.print(out)
    if st.verdict is not None:
        console.print(Text(f"controller: {st.verdict.action}: {st.verdict.reason}"))


def _version_rows(st: DeploymentStatus) -> list[dict[str, Any]]:
    d = st.deployment
    roles: list[tuple[int, str, str]] = []
    if d.candidate_version is not None:
        share = {"canary": f"{100 - d.weight:g}%", "shadow": "100%", "warming": "100%"}
        roles.append((d.stable_version, "stable", share.get(d.phase, "100%")))
        cand = {"canary": f"{d.weight:g}%", "shadow": f"copy of {d.weight:g}%",
                "warming": "warming"}
        roles.append((d.candidate_version, "candidate", cand.get(d.phase, MISSING)))
    else:
        roles.append((d.stable_version, "stable", "100%"))
    if d.previous_version is not None and d.previous_version not in (d.stable_version,
                                                                    d.candidate_version):
        roles.append((d.previous_version, "previous", "0%"))
    rows = []
    for version, role, traffic in roles:
        s = st.stats.get(version)
        ready = sum(1 for w in st.live_workers if version in w.report.ready_versions)
        rows.append({
            "version": version, "role": role, "traffic": traffic,
            "requests": s.requests if s else 0, "errors": s.errors if s else 0,
            "error_rate": s.error_rate if s else None,
            "p95_s": s.latency_quantile(0.95) if s else None,
            "feedback": s.feedback if s else 0, "accuracy": s.accuracy if s else None,
            "workers_ready": ready,
        })
    return rows


def _percent(value: float | None) -> str:
    return MISSING if value is None else f"{value:.2%}"


def _latency(seconds: float | None) -> str:
    if seconds is None:
        return MISSING
    return "> 10 s" if math.isinf(seconds) else f"≤ {seconds * 1000:g} ms"


@app.command("history")
def history(
    ctx: typer.Context,
    name: Name,
    max_results: Annotated[int, typer.Option("--max-results", "-n", min=1, max=10_000,
                                             help="How many events, newest first.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """What changed the deployment, who or what did, and why; newest first."""
    events = _service(ctx).history(name, max_results)
    if as_json:
        print_json({"events": events})
        return
    out = table(fixed("time (UTC)"), fixed("event"), fixed("rev"), "by", "reason",
                title=plural(len(events), "event"))
    for e in events:
        out.add_row(format_time(e.time), e.kind, str(e.revision), Text(e.actor or MISSING),
                    Text(e.reason or MISSING))
    console.print(out)
