"""``/api/v1/triggers``: retraining triggers of deployments and their runs.

    /triggers                     GET list (by name; ``deployment`` filters), POST create
    /triggers/{name}              GET, PATCH (``enabled``, ``seen_version``), DELETE (204)
    /triggers/{name}/runs         GET newest first (``max_results``), POST start a run
                                  (201: ``running``, or ``skipped`` with the reason)
    /trigger-runs                 GET newest first (``deployment``, ``max_results``)
    /trigger-runs/{run_id}        GET, PATCH progress or outcome of a running run
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from mlcycle.server.deps import Triggers
from mlcycle.server.trigger_schemas import (
    TriggerCreate,
    TriggerList,
    TriggerOut,
    TriggerRunIn,
    TriggerRunList,
    TriggerRunOut,
    TriggerRunUpdate,
    TriggerUpdate,
)

router = APIRouter(tags=["triggers"])


@router.get("/triggers")
def list_triggers(store: Triggers, deployment: Annotated[str | None, Query()] = None
                  ) -> TriggerList:
    return TriggerList(triggers=[TriggerOut.from_entity(tr)
                                 for tr in store.list_triggers(deployment=deployment)])


@router.post("/triggers", status_code=201)
def create_trigger(body: TriggerCreate, store: Triggers) -> TriggerOut:
    return TriggerOut.from_entity(store.create_trigger(body.to_entity()))


@router.get("/triggers/{name}")
def get_trigger(name: str, store: Triggers) -> TriggerOut:
    return TriggerOut.from_entity(store.get_trigger(name))


@router.patch("/triggers/{name}")
def update_trigger(name: str, body: TriggerUpdate, store: Triggers) -> TriggerOut:
    return TriggerOut.from_entity(store.update_trigger(name, **body.changes()))


@router.delete("/triggers/{name}", status_code=204)
def delete_trigger(name: str, store: Triggers) -> Response:
    store.delete_trigger(name)
    return Response(status_code=204)


@router.get("/triggers/{name}/runs")
def list_trigger_runs(name: str, store: Triggers,
                      max_results: Annotated[int, Query()] = 100) -> TriggerRunList:
    runs = store.list_runs(name, max_results=max_results)
    return TriggerRunList(runs=[TriggerRunOut.from_entity(r) for r in runs])


@router.post("/triggers/{name}/runs", status_code=201)
def start_trigger_run(name: str, body: TriggerRunIn, store: Triggers) -> TriggerRunOut:
    return TriggerRunOut.from_entity(store.start_run(body.to_entity(name),
                                                     cooldown_s=body.cooldown_s))


@router.get("/trigger-runs")
def list_all_runs(store: Triggers, deployment: Annotated[str | None, Query()] = None,
                  max_results: Annotated[int, Query()] = 100) -> TriggerRunList:
    runs = store.list_runs(deployment=deployment, max_results=max_results)
    return TriggerRunList(runs=[TriggerRunOut.from_entity(r) for r in runs])


@router.get("/trigger-runs/{run_id}")
def get_trigger_run(run_id: int, store: Triggers) -> TriggerRunOut:
    return TriggerRunOut.from_entity(store.get_run(run_id))


@router.patch("/trigger-runs/{run_id}")
def update_trigger_run(run_id: int, body: TriggerRunUpdate, store: Triggers) -> TriggerRunOut:
    return TriggerRunOut.from_entity(store.update_run(run_id, **body.changes()))
