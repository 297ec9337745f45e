"""What ``mlcycle server`` does for monitors beyond their REST routes: ``/metrics`` with their
gauges, and the scheduler that runs due monitors on their interval (a background task of the
app's lifespan, one run at a time; failures are logged, never fatal).

``mlcycle server`` runs the scheduler with one worker only: with ``--workers N`` each would run
every due monitor, so none does; there, run ``mlcycle monitor run NAME`` from cron or keep a
one-worker server for the schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import APIRouter, Response

from mlcycle.config import Settings
from mlcycle.datasets.service import DataService
from mlcycle.deploy.service import DeploymentService
from mlcycle.monitoring.prometheus import monitor_registry
from mlcycle.monitoring.scheduler import MonitorScheduler, Reactions
from mlcycle.monitoring.service import MonitorService
from mlcycle.registry.service import RegistryService
from mlcycle.store.base import (
    ArtifactStore,
    DatasetStore,
    DeploymentStore,
    ModelRegistryStore,
    MonitorStore,
    TrackingStore,
)

__all__ = ["metrics_router", "monitor_service", "scheduled_monitors"]


def metrics_router(store: MonitorStore) -> APIRouter:
    """``GET /metrics``: the monitor gauges in Prometheus' text format (no token needed, as
    Prometheus scrapes without one)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    registry = monitor_registry(store)
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router


def monitor_service(settings: Settings, tracking: TrackingStore, artifacts: ArtifactStore, *,
                    monitors: MonitorStore, deployments: DeploymentStore,
                    registry: ModelRegistryStore, datasets: DatasetStore) -> MonitorService:
    """The monitor service over the server's own stores."""
    return MonitorService(
        monitors,
        deployments=DeploymentService(deployments, RegistryService(registry, tracking)),
        data=DataService(datasets, artifacts, tracking, cache_dir=str(settings.home / "cache")),
        log_uri=settings.resolved_prediction_log_uri, storage_options=settings.artifact_options)


@contextlib.asynccontextmanager
async def scheduled_monitors(service: MonitorService, poll_interval: float,
                             reactions: Reactions | None = None
                             ) -> AsyncIterator[MonitorScheduler]:
    """Run the scheduler in the background for the duration of the block; *reactions* (the
    retraining triggers) follow each monitor run and each poll."""
    scheduler = MonitorScheduler(service, poll_interval=poll_interval, reactions=reactions)
    task = asyncio.create_task(scheduler.run_forever(), name="mlcycle-monitor-scheduler")
    try:
        yield scheduler
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
