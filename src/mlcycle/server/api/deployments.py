"""``/api/v1/deployments``: deployment state, its history, and serving workers' reports.

    /deployments                              GET list (by name), POST create
    /deployments/{name}                       GET, PATCH (a compare-and-set), DELETE (204)
    /deployments/{name}/events                GET newest first (``max_results``)
    /deployments/{name}/workers               GET the last report of every worker
    /deployments/{name}/workers/{worker_id}   PUT a worker's report (204)

A PATCH names the revision it read (``expected_revision``); when the deployment moved on in
between, the answer is 409 ``revision_conflict`` and nothing changed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from mlcycle.server.deployment_schemas import (
    DeploymentCreate,
    DeploymentEventList,
    DeploymentEventOut,
    DeploymentList,
    DeploymentOut,
    DeploymentUpdate,
    WorkerReportIn,
    WorkerReportList,
    WorkerReportOut,
)
from mlcycle.server.deps import Deployments

router = APIRouter(prefix="/deployments", tags=["deployments"])


@router.get("")
def list_deployments(store: Deployments) -> DeploymentList:
    return DeploymentList(deployments=[DeploymentOut.from_entity(d)
                                       for d in store.list_deployments()])


@router.post("", status_code=201)
def create_deployment(body: DeploymentCreate, store: Deployments) -> DeploymentOut:
    return DeploymentOut.from_entity(store.create_deployment(**body.model_dump()))


@router.get("/{name}")
def get_deployment(name: str, store: Deployments) -> DeploymentOut:
    return DeploymentOut.from_entity(store.get_deployment(name))


@router.patch("/{name}")
def update_deployment(name: str, body: DeploymentUpdate, store: Deployments) -> DeploymentOut:
    return DeploymentOut.from_entity(store.update_deployment(name, **body.store_kwargs()))


@router.delete("/{name}", status_code=204)
def delete_deployment(name: str, store: Deployments) -> Response:
    store.delete_deployment(name)
    return Response(status_code=204)


@router.get("/{name}/events")
def list_deployment_events(name: str, store: Deployments,
                           max_results: Annotated[int, Query()] = 100) -> DeploymentEventList:
    events = store.list_deployment_events(name, max_results=max_results)
    return DeploymentEventList(events=[DeploymentEventOut.from_entity(e) for e in events])


@router.get("/{name}/workers")
def list_worker_reports(name: str, store: Deployments) -> WorkerReportList:
    reports = store.list_worker_reports(name)
    return WorkerReportList(workers=[WorkerReportOut.from_entity(r) for r in reports])


@router.put("/{name}/workers/{worker_id:path}", status_code=204)
def report_worker(name: str, worker_id: str, body: WorkerReportIn, store: Deployments
                  ) -> Response:
    store.report_worker(body.to_entity(name, worker_id))
    return Response(status_code=204)
