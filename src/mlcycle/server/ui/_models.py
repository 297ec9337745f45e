"""The registry and deployment pages: models, a model's versions; deployments, one deployment's
split, numbers, history, monitors and retrainings, and its promote and rollback buttons.

The buttons post forms; the token must be the read-write one (a read-only token gets a 403
page), and the page asks for a confirmation first.
"""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mlcycle.deploy import DeploymentService, DeploymentStatus
from mlcycle.errors import NotFoundError, RevisionConflict
from mlcycle.registry import RegistryService
from mlcycle.server.deps import Deployments, Registry, Service
from mlcycle.server.ui._app import PageRoute, render
from mlcycle.server.ui._session import check_access
from mlcycle.store.base import DeploymentStore, MonitorStore, TriggerStore

__all__ = ["router"]

#: The actor recorded in a deployment's history for the buttons.
ACTOR = "web-ui"
HISTORY = 50


async def _viewer(request: Request) -> None:
    check_access(request)


router = APIRouter(route_class=PageRoute, include_in_schema=False,
                   dependencies=[Depends(_viewer)])


@router.get("/models")
def models(request: Request, registry: Registry) -> HTMLResponse:
    return render(request, "models.html", title="Models", models=registry.list_models())


@router.get("/models/{name:path}")
def model(request: Request, registry: Registry, name: str) -> HTMLResponse:
    found = registry.get_model(name)
    versions = registry.list_versions(name)
    evaluations = {v.version: _evaluation(dict(v.evaluation)) for v in versions if v.evaluation}
    return render(request, "model.html", title=name, model=found, versions=versions,
                  evaluations=evaluations, lineage=_lineage(request, name, versions))


def _evaluation(evaluation: dict[str, Any]) -> dict[str, Any]:
    """A stored evaluation as the page shows it: metrics against the baseline, the gate checks,
    the segments, and the JSON without its curves (points of ROC and PR curves, which would
    make the page hundreds of kilobytes)."""
    result = dict(evaluation.get("result") or {})
    metrics = dict(result.get("metrics") or {})
    baseline = dict(result.get("baseline_metrics") or {})
    rows = [{"metric": k, "value": v, "baseline": baseline.get(k),
             "delta": None if baseline.get(k) is None or not isinstance(v, int | float)
             else v - baseline[k]} for k, v in metrics.items()]
    segments = [s for s in result.get("segments") or [] if isinstance(s, dict)]
    columns = sorted({k for s in segments for k in (s.get("metrics") or {})})
    gates = dict(evaluation.get("gates") or {})
    raw = {**evaluation, "result": {k: v for k, v in result.items() if k != "curves"}}
    return {"data": evaluation.get("data"), "baseline": evaluation.get("baseline")
            or result.get("baseline_name"), "passed": evaluation.get("passed"),
            "rows": result.get("rows"), "metrics": rows, "checks": gates.get("checks") or [],
            "segments": segments, "segment_columns": columns,
            "json": json.dumps(raw, indent=2, default=str)}


def _lineage(request: Request, name: str, versions: list[Any]) -> list[dict[str, Any]]:
    """Per version, newest first, the chain from data to deployment: the dataset versions and
    the run that made it, the retraining (trigger run, and the monitor alert behind it) when a
    trigger made it, and the deployments that hold it now, with their role."""
    deployments: DeploymentStore | None = request.app.state.deployments
    triggers: TriggerStore | None = request.app.state.triggers
    holding: dict[int, list[tuple[str, str]]] = {}
    for d in deployments.list_deployments() if deployments else []:
        if d.model != name:
            continue
        for version, role in ((d.stable_version, "stable"), (d.candidate_version, "candidate"),
                              (d.previous_version, "previous")):
            if version is not None:
                holding.setdefault(version, []).append((d.name, role))
    rows = []
    for v in sorted(versions, key=lambda v: -v.version):
        made_by = None
        tag = v.tags.get("mlcycle.trigger_run")
        if triggers is not None and tag is not None and str(tag).isdigit():
            try:
                made_by = triggers.get_run(int(str(tag)))
            except NotFoundError:  # the trigger run was deleted with its trigger
                made_by = None
        rows.append({"version": v.version, "datasets": list(v.datasets), "run_id": v.run_id,
                     "commit": v.code_commit, "made_by": made_by,
                     "deployments": holding.get(v.version, [])})
    return rows


@router.get("/deployments")
def deployments(request: Request, store: Deployments) -> HTMLResponse:
    return render(request, "deployments.html", title="Deployments",
                  deployments=store.list_deployments())


@router.get("/deployments/{name}")
def deployment(request: Request, service: Service, store: Deployments, registry: Registry,
               name: str) -> HTMLResponse:
    deploy = _service(service, store, registry)
    status = deploy.status(name)
    # Monitors and retraining triggers are kept beside deployments on a SQL store; a server
    # without them shows the deployment alone.
    monitors: MonitorStore | None = request.app.state.monitors
    triggers: TriggerStore | None = request.app.state.triggers
    return render(request, "deployment.html", title=name, status=status, d=status.deployment,
                  versions=_version_rows(status), events=deploy.history(name, HISTORY),
                  monitors=monitors.list_monitors(deployment=name) if monitors else [],
                  retrainings=triggers.list_runs(deployment=name, max_results=HISTORY)
                  if triggers else [])


@router.post("/deployments/{name}/promote")
async def promote(request: Request, service: Service, store: Deployments, registry: Registry,
                  name: str) -> Response:
    check_access(request, write=True)
    await _unchanged(request, store, name)
    _service(service, store, registry).promote(name, actor=ACTOR, reason="promoted in the web UI")
    return RedirectResponse(f"/deployments/{name}", status_code=303)


@router.post("/deployments/{name}/rollback")
async def rollback(request: Request, service: Service, store: Deployments, registry: Registry,
                   name: str) -> Response:
    check_access(request, write=True)
    await _unchanged(request, store, name)
    _service(service, store, registry).rollback(name, actor=ACTOR,
                                                reason="rolled back in the web UI")
    return RedirectResponse(f"/deployments/{name}", status_code=303)


async def _unchanged(request: Request, store: Any, name: str) -> None:
    """The button acts on the state the user saw and confirmed: if the deployment changed
    since (the controller stepped, a retraining started another canary), refuse."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    seen = form["revision"][0] if form.get("revision") else None
    current = store.get_deployment(name).revision
    if seen is not None and str(seen) != str(current):
        raise RevisionConflict(
            f"deployment {name!r} changed since the page was shown (revision {seen}, now "
            f"{current}); look again before you decide", details={"field": "revision",
                                                                  "expected": str(seen),
                                                                  "actual": current})


def _service(service: Any, store: Any, registry: Any) -> DeploymentService:
    return DeploymentService(store, RegistryService(registry, service.store))


def _version_rows(st: DeploymentStatus) -> list[dict[str, Any]]:
    """One row per version the deployment holds: its role, its share of the traffic, and what
    the workers counted for it in the current rollout (as ``mlcycle deploy status`` shows)."""
    d = st.deployment
    roles: list[tuple[int, str, str]] = []
    if d.candidate_version is not None:
        stable_share = {"canary": f"{100 - d.weight:g}%"}.get(d.phase, "100%")
        roles.append((d.stable_version, "stable", stable_share))
        candidate_share = {"canary": f"{d.weight:g}%", "shadow": f"copy of {d.weight:g}%",
                           "warming": "warming"}.get(d.phase, "–")
        roles.append((d.candidate_version, "candidate", candidate_share))
    else:
        roles.append((d.stable_version, "stable", "100%"))
    if d.previous_version is not None and d.previous_version not in (d.stable_version,
                                                                    d.candidate_version):
        roles.append((d.previous_version, "previous", "0%"))
    rows = []
    for version, role, traffic in roles:
        s = st.stats.get(version)
        p95 = s.latency_quantile(0.95) if s else None
        rows.append({
            "version": version, "role": role, "traffic": traffic,
            "requests": s.requests if s else 0,
            "error_rate": s.error_rate if s and s.requests else None,
            "p95_ms": None if p95 is None or math.isinf(p95) else p95 * 1000,
            "accuracy": s.accuracy if s else None,
            "ready": sum(1 for w in st.live_workers if version in w.report.ready_versions),
        })
    return rows
