"""``/api/v1/monitors``: monitors of deployments, their results and their alerts.

    /monitors                    GET list (by name; ``deployment`` filters), POST create
    /monitors/{name}             GET, DELETE (204)
    /monitors/{name}/enabled     PUT ``{"enabled": false}`` pauses the scheduled runs
    /monitors/{name}/results     GET newest first (``since``, ``until``, ``max_results``), POST
    /monitors/{name}/alerts      GET newest first (``max_results``), POST
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from mlcycle.entities import from_ms
from mlcycle.server.deps import Monitors
from mlcycle.server.monitor_schemas import (
    AlertIn,
    AlertList,
    AlertOut,
    MonitorCreate,
    MonitorEnabled,
    MonitorList,
    MonitorOut,
    MonitorResultIn,
    MonitorResultList,
    MonitorResultOut,
)

router = APIRouter(prefix="/monitors", tags=["monitors"])


@router.get("")
def list_monitors(store: Monitors, deployment: Annotated[str | None, Query()] = None
                  ) -> MonitorList:
    return MonitorList(monitors=[MonitorOut.from_entity(m)
                                 for m in store.list_monitors(deployment=deployment)])


@router.post("", status_code=201)
def create_monitor(body: MonitorCreate, store: Monitors) -> MonitorOut:
    return MonitorOut.from_entity(store.create_monitor(body.to_entity()))


@router.get("/{name}")
def get_monitor(name: str, store: Monitors) -> MonitorOut:
    return MonitorOut.from_entity(store.get_monitor(name))


@router.put("/{name}/enabled")
def set_monitor_enabled(name: str, body: MonitorEnabled, store: Monitors) -> MonitorOut:
    return MonitorOut.from_entity(store.set_monitor_enabled(name, body.enabled))


@router.delete("/{name}", status_code=204)
def delete_monitor(name: str, store: Monitors) -> Response:
    store.delete_monitor(name)
    return Response(status_code=204)


@router.get("/{name}/results")
def list_results(name: str, store: Monitors, since: Annotated[int | None, Query()] = None,
                 until: Annotated[int | None, Query()] = None,
                 max_results: Annotated[int, Query()] = 100) -> MonitorResultList:
    results = store.list_results(name, since=from_ms(since), until=from_ms(until),
                                 max_results=max_results)
    return MonitorResultList(results=[MonitorResultOut.from_entity(r) for r in results])


@router.post("/{name}/results", status_code=201)
def log_result(name: str, body: MonitorResultIn, store: Monitors) -> MonitorResultOut:
    return MonitorResultOut.from_entity(store.log_result(body.to_entity(name)))


@router.get("/{name}/alerts")
def list_alerts(name: str, store: Monitors, max_results: Annotated[int, Query()] = 100
                ) -> AlertList:
    alerts = store.list_alerts(name, max_results=max_results)
    return AlertList(alerts=[AlertOut.from_entity(a) for a in alerts])


@router.post("/{name}/alerts", status_code=201)
def log_alert(name: str, body: AlertIn, store: Monitors) -> AlertOut:
    return AlertOut.from_entity(store.log_alert(body.to_entity(name)))
