"""What ``mlcycle server`` does for monitors beyond their REST routes: ``/metrics`` with their
gauges, and the scheduler that runs due monitors on their interval (a background task of the
app's lifespan, one run at a time; failures are logged, never fatal).

Every ``mlcycle server`` process runs the scheduler, but a beat does work only in the process
that holds the scheduler lease (:class:`SchedulerLease`, a lock in the metadata store): of the
workers of ``--workers N``, and of several servers over one database, one runs the monitors and
the triggers, and another takes over when it stops (at once when it released the lease or its
process is gone on the same host; else once the lease is stale).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

from fastapi import APIRouter, Response

from mlcycle.config import Settings
from mlcycle.datasets.service import DataService
from mlcycle.deploy.service import DeploymentService
from mlcycle.entities import Lock
from mlcycle.monitoring.prometheus import monitor_registry
from mlcycle.monitoring.scheduler import MonitorScheduler, Reactions
from mlcycle.monitoring.service import MonitorService
from mlcycle.registry.service import RegistryService
from mlcycle.store.base import (
    ArtifactStore,
    DatasetStore,
    DeploymentStore,
    LockStore,
    ModelRegistryStore,
    MonitorStore,
    TrackingStore,
)

__all__ = ["SchedulerLease", "metrics_router", "monitor_service", "scheduled_monitors"]

logger = logging.getLogger("mlcycle.monitoring")


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


class SchedulerLease:
    """Which of the server processes over one database runs the scheduler: the holder of lock
    :data:`NAME` in the metadata store. Each call renews the holder's lock (so its age says when
    it was last seen) or takes it when it is free or stale: its process gone on this host, or
    not renewed for *stale_after_s* seconds. Of two processes asking at once, one wins (the
    lock is one conditional insert)."""

    NAME = "mlcycle-server-scheduler"

    def __init__(self, store: LockStore, *, stale_after_s: float,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store = store
        self.stale_after_s = stale_after_s
        self.clock = clock
        self.owner = f"mlcycle server {secrets.token_hex(6)}"

    def __call__(self) -> bool:
        from mlcycle.ci.lock import is_stale

        at = self.clock()
        now = at.replace(microsecond=at.microsecond // 1000 * 1000)  # the store keeps ms
        held = self.store.find_lock(self.NAME)
        if held is not None and held.owner == self.owner:
            self.store.break_lock(held)  # renewed below; a process that takes it between leads
        elif held is not None:
            why = is_stale(held, now=now, stale_after_s=self.stale_after_s)
            if why is None:
                return False
            logger.warning("scheduler lease of %s (pid %s on %s) taken over: %s", held.owner,
                           held.pid, held.host, why)
            self.store.break_lock(held)
        mine = Lock(name=self.NAME, owner=self.owner, pid=os.getpid(),
                    host=socket.gethostname(), acquired_at=now)
        return self.store.acquire_lock(mine) == mine

    def release(self) -> None:
        """Give the lease up (at shutdown), so another process takes it at its next beat."""
        held = self.store.find_lock(self.NAME)
        if held is not None and held.owner == self.owner:
            self.store.break_lock(held)


@contextlib.asynccontextmanager
async def scheduled_monitors(service: MonitorService, poll_interval: float,
                             reactions: Reactions | None = None,
                             lease: SchedulerLease | None = None
                             ) -> AsyncIterator[MonitorScheduler]:
    """Run the scheduler in the background for the duration of the block; *reactions* (the
    retraining triggers) follow each monitor run and each poll; with a *lease*, only while
    this process holds it."""
    scheduler = MonitorScheduler(service, poll_interval=poll_interval, reactions=reactions,
                                 leader=lease)
    task = asyncio.create_task(scheduler.run_forever(), name="mlcycle-monitor-scheduler")
    try:
        yield scheduler
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if lease is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(lease.release)
