"""Lineage: from a prediction or a model version back to everything that made it.

::

    prediction (request id, time, deployment, version)
    └── model version ── training run (commit) ── pipeline run
        ├── dataset versions (and their parents)
        └── trigger run (cause, gates, rollout) ── alert ── monitor result

:func:`trace` follows the records every stage keeps: the prediction log row names the model
version, the version its run and datasets, a retrained version its trigger run (tag
``mlcycle.trigger_run``), the trigger run its cause. Every hop is a lookup by key, except
finding a prediction, which reads the deployments' prediction logs (narrow it with
*deployment*).

>>> trace(client, "models:/churn/4").to_dict()                        # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import polars as pl

from mlcycle.client import Client, open_pipeline_store, open_trigger_store
from mlcycle.entities import ModelVersion, TriggerRun
from mlcycle.errors import InvalidInputError, MlcycleError, NotFoundError
from mlcycle.monitoring.logs import PredictionLogs
from mlcycle.retrain.service import TRIGGER_RUN_TAG

__all__ = ["Lineage", "trace"]

_MAX_PARENT_DEPTH = 8


@dataclass(frozen=True, slots=True)
class Lineage:
    """The chain behind *subject*; a link that does not exist (a version no trigger made) is
    ``None``, one that should exist but could not be read says why in ``missing``."""

    subject: str
    model: dict[str, Any]
    prediction: dict[str, Any] | None = None
    run: dict[str, Any] | None = None
    pipeline_run: dict[str, Any] | None = None
    datasets: list[dict[str, Any]] = field(default_factory=list)
    trigger_run: dict[str, Any] | None = None
    alert: dict[str, Any] | None = None
    monitor_result: dict[str, Any] | None = None
    missing: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "prediction": self.prediction, "model": self.model,
                "run": self.run, "pipeline_run": self.pipeline_run, "datasets": self.datasets,
                "trigger_run": self.trigger_run, "alert": self.alert,
                "monitor_result": self.monitor_result, "missing": self.missing}


def trace(client: Client, ref: str, *, deployment: str | None = None) -> Lineage:
    """The lineage of *ref*: ``models:/name/<n>`` (or ``@alias``), or a prediction's request
    id (``NotFoundError`` when no deployment's log holds it)."""
    prediction = None
    if ref.startswith("models:/"):
        version = client.registry.resolve(ref)
    else:
        prediction = _find_prediction(client, ref, deployment)
        model = client.deployments.get(prediction["deployment"]).model
        version = client.registry.get_version(model, int(prediction["version"]))
    missing: list[str] = []
    run = _run(client, version, missing)
    trigger_run = _trigger_run(client, version, missing)
    alert, result = _cause(client, trigger_run, missing) if trigger_run else (None, None)
    return Lineage(
        subject=ref, prediction=prediction, model=_model(version), run=run,
        pipeline_run=_pipeline_run(client, trigger_run, run, missing),
        datasets=[_dataset(client, f"{d.dataset}@{d.version}", dict(d.context or {}), 0,
                           missing) for d in version.datasets],
        trigger_run=_trigger_dict(trigger_run) if trigger_run else None,
        alert=alert, monitor_result=result, missing=missing)


def _find_prediction(client: Client, request_id: str, deployment: str | None
                     ) -> dict[str, Any]:
    if not request_id or "/" in request_id:
        raise InvalidInputError(
            f"expected a prediction's request id or models:/name/<version>, got {request_id!r}",
            details={"field": "ref"})
    logs = PredictionLogs(client.settings.resolved_prediction_log_uri,
                          storage_options=client.settings.artifact_options)
    names = [deployment] if deployment else [d.name for d in client.deployments.list()]
    for name in names:
        rows = logs.read(name).filter(pl.col("request_id") == request_id)
        if rows.height:
            first = rows.row(0, named=True)
            return {"request_id": request_id, "deployment": name, "time": str(first["time"]),
                    "version": first["version"], "role": first["role"],
                    "status": first["status"], "rows": rows.height,
                    "labelled": int(rows["label"].is_not_null().sum())}
    raise NotFoundError(f"no prediction with request id {request_id!r} in the logs of "
                        + (f"deployment {deployment!r}" if deployment else
                           f"{len(names)} deployment(s)"), details={"request_id": request_id})


def _model(v: ModelVersion) -> dict[str, Any]:
    return {"uri": v.uri, "name": v.name, "version": v.version, "source": v.source,
            "created_at": v.created_at.isoformat(), "run_id": v.run_id,
            "code_commit": v.code_commit, "description": v.description, "tags": dict(v.tags),
            "evaluation": {"data": v.evaluation.get("data"),
                           "passed": v.evaluation.get("passed")} if v.evaluation else None}


def _run(client: Client, v: ModelVersion, missing: list[str]) -> dict[str, Any] | None:
    if v.run_id is None:
        return None
    try:
        run = client.get_run(v.run_id)
    except MlcycleError as exc:
        missing.append(f"run {v.run_id}: {exc.message}")
        return None
    return {"run_id": run.run_id, "name": run.name, "experiment_id": run.experiment_id,
            "status": str(run.status), "commit": v.code_commit or run.tags.get(
                "mlcycle.git.commit"),
            "pipeline_run_id": run.tags.get("mlcycle.pipeline_run_id")}


def _pipeline_run(client: Client, trigger_run: TriggerRun | None, run: dict[str, Any] | None,
                  missing: list[str]) -> dict[str, Any] | None:
    prid = (trigger_run.pipeline_run_id if trigger_run else None) or \
        (run or {}).get("pipeline_run_id")
    if not prid:
        return None
    try:
        p = open_pipeline_store(client.service.store).get_pipeline_run(prid)
    except MlcycleError as exc:
        missing.append(f"pipeline run {prid}: {exc.message}")
        return None
    return {"pipeline_run_id": p.pipeline_run_id, "pipeline": p.pipeline, "target": p.target,
            "status": p.status, "params": dict(p.params)}


def _dataset(client: Client, ref: str, context: Mapping[str, Any], depth: int,
             missing: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"ref": ref, "context": dict(context)}
    try:
        v = client.data.get_version(ref)
    except MlcycleError as exc:
        missing.append(f"dataset {ref}: {exc.message}")
        return out
    out.update(ref=v.ref, rows=v.num_rows, digest=v.digest, role=v.role,
               source=dict(v.source), parents=[])
    if depth < _MAX_PARENT_DEPTH:
        out["parents"] = [_dataset(client, p, {}, depth + 1, missing) for p in v.parents]
    return out


def _trigger_run(client: Client, v: ModelVersion, missing: list[str]) -> TriggerRun | None:
    run_id = v.tags.get(TRIGGER_RUN_TAG)
    if run_id is None:
        return None
    try:
        return open_trigger_store(client.service.store).get_run(int(run_id))
    except (MlcycleError, ValueError) as exc:
        missing.append(f"trigger run {run_id}: {exc}")
        return None


def _trigger_dict(r: TriggerRun) -> dict[str, Any]:
    return {"run_id": r.run_id, "trigger": r.trigger, "deployment": r.deployment,
            "status": r.status, "cause": dict(r.cause), "reason": r.reason,
            "started_at": r.started_at.isoformat(),
            "ended_at": r.ended_at.isoformat() if r.ended_at else None, "data": dict(r.data),
            "gates": dict(r.gates), "rollout": r.rollout}


def _cause(client: Client, r: TriggerRun, missing: list[str]
           ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    monitor, alert_id = r.cause.get("monitor"), r.cause.get("alert_id")
    if not isinstance(monitor, str) or not isinstance(alert_id, int):
        return None, None
    try:
        alerts = client.monitors.alerts(monitor, max_results=10_000)
    except MlcycleError as exc:
        missing.append(f"monitor {monitor}: {exc.message}")
        return None, None
    alert = next((a for a in alerts if a.alert_id == alert_id), None)
    if alert is None:
        missing.append(f"alert {alert_id} of monitor {monitor}: not found")
        return None, None
    alert_out = {"alert_id": alert.alert_id, "monitor": monitor, "status": alert.status,
                 "previous": alert.previous, "time": alert.time.isoformat(),
                 "message": alert.message, "delivery": alert.delivery}
    results = client.monitors.results(monitor, since=alert.time,
                                      until=alert.time + timedelta(milliseconds=1))
    result = next((x for x in results if x.result_id == alert.result_id), None)
    if result is None:
        return alert_out, None
    checks: Mapping[str, Any] = result.details.get("checks") or {}  # type: ignore[assignment]
    return alert_out, {"result_id": result.result_id, "status": result.status,
                       "run_at": result.run_at.isoformat(),
                       "window": [result.window_start.isoformat() if result.window_start
                                  else None, result.window_end.isoformat()],
                       "checks": {k: dict(c) for k, c in checks.items()}}
