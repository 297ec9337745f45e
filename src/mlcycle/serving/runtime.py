"""What a serving app answers with: one fixed model (:class:`StaticRuntime`) or a deployment it
follows (:class:`DeploymentRuntime`).

A runtime exposes ``table``, the current :class:`~mlcycle.serving.router.RoutingTable`
(``None`` until the stable version is loaded and warmed: the app is not ready before). A
deployment runtime polls the deployment every ``poll_interval`` seconds; on a new revision it
loads and warms the versions it lacks in a worker thread, off the request path, and then swaps
the table in one assignment: requests already running finish on the version they started with,
so no request fails across a switch. Every ``report_interval`` seconds it reports what it has
loaded and counted (:class:`~mlcycle.entities.WorkerReport`) and runs one step of the
controller (``tick``); compare-and-set on the revision makes it safe for every worker to do so.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from mlcycle.deploy.service import DeploymentService
from mlcycle.deploy.stats import VersionStats
from mlcycle.entities import Deployment, WorkerReport
from mlcycle.models import PyFuncModel
from mlcycle.serving.batching import BatchSettings
from mlcycle.serving.metrics import ServingMetrics
from mlcycle.serving.router import RoutingTable
from mlcycle.serving.served import ServedVersion, warm_up

__all__ = ["DeploymentRuntime", "Runtime", "StaticRuntime", "new_worker_id"]

logger = logging.getLogger("mlcycle.serving")

#: Seconds before a version that failed to load is tried again.
RETRY_LOAD_AFTER = 5.0


def new_worker_id() -> str:
    """Host, process and a random suffix: unique among the workers of a deployment."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class Runtime(Protocol):
    deployment: str
    model_name: str
    table: RoutingTable | None

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class StaticRuntime:
    """One model, always answering as the stable version."""

    def __init__(self, model: PyFuncModel, *, name: str, version: str, batch: BatchSettings,
                 metrics: ServingMetrics, warm: bool = True) -> None:
        self.deployment = self.model_name = name
        self.table: RoutingTable | None = None
        self._model, self._version, self._batch = model, version, batch
        self._metrics, self._warm = metrics, warm

    async def start(self) -> None:
        seconds = await asyncio.to_thread(warm_up, self._model) if self._warm else 0.0
        served = _served(self._model, self.model_name, self._version, self._batch,
                         self._metrics, seconds)
        self.table = RoutingTable(served)

    async def stop(self) -> None:
        return None


class DeploymentRuntime:
    """The versions deployment *deployment* names, loaded by ``load(model, version)``, routed
    as its phase says (see the module docstring)."""

    def __init__(self, service: DeploymentService, deployment: str,
                 load: Callable[[str, int], PyFuncModel], *, batch: BatchSettings,
                 metrics: ServingMetrics, worker_id: str | None = None,
                 poll_interval: float = 0.5, report_interval: float = 1.0,
                 warm: bool = True, startup_timeout: float = 60.0) -> None:
        self.deployment = deployment
        self.model_name = deployment
        self.table: RoutingTable | None = None
        self.worker_id = worker_id or new_worker_id()
        self.applied_revision = 0
        self.rollout = -1
        self._service, self._load, self._batch, self._metrics = service, load, batch, metrics
        self._poll, self._report_every, self._warm = poll_interval, report_interval, warm
        self._startup_timeout = startup_timeout
        self._loaded: dict[int, ServedVersion] = {}
        self._failed: dict[int, float] = {}  # version -> when its load failed
        self._task: asyncio.Task[None] | None = None
        self._current: Deployment | None = None
        self._reported_at = 0.0
        self._started = datetime.now(UTC).isoformat()

    async def start(self) -> None:
        """Check that the deployment exists (a clear error at start-up if not), then follow it
        in the background; returns once the stable version is warm (or after
        *startup_timeout* seconds: the app is ready once it is)."""
        current = await asyncio.to_thread(self._service.get, self.deployment)
        self.model_name = current.model
        self._task = asyncio.create_task(self._follow(current))
        # Wait (bounded) for the stable version: a worker that shares its listening socket
        # with others accepts connections only once started, so none answers 503 while the
        # others are ready. A version that does not load in time leaves the worker up, unready.
        deadline = time.monotonic() + self._startup_timeout
        while self.table is None and time.monotonic() < deadline and not self._task.done():
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Stop following; a last report says this worker is gone (with what it counted), so
        a blue-green switch does not wait for it."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.applied_revision:
            report = self._report(self._current) if self._current is not None else None
            if report is not None:
                report = dataclasses.replace(
                    report, info={**report.info, "stopped": datetime.now(UTC).isoformat()})
                try:
                    await asyncio.to_thread(self._service.report, report)
                except Exception as exc:  # the store may be gone; the heartbeat will age out
                    logger.warning("deployment %s: last report failed: %s: %s",
                                   self.deployment, type(exc).__name__, exc)

    async def _follow(self, current: Deployment) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                self._current = current
                if current.revision != self.applied_revision or self._missing(current):
                    await self.apply(current)
                if loop.time() - self._reported_at >= self._report_every:
                    self._reported_at = loop.time()
                    await asyncio.to_thread(self._report_and_tick, self._report(current))
                await asyncio.sleep(self._poll)
                current = await asyncio.to_thread(self._service.get, self.deployment)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store may be down for a while
                logger.warning("deployment %s: %s: %s (retrying)", self.deployment,
                               type(exc).__name__, exc)
                await asyncio.sleep(self._poll)

    def _missing(self, deployment: Deployment) -> bool:
        return any(v not in self._loaded for v in deployment.versions)

    async def apply(self, deployment: Deployment) -> None:
        """Load what *deployment* needs and swap in its routing table (once its stable version
        is ready; until then the previous table goes on answering)."""
        for version in deployment.versions:
            if version in self._loaded:
                continue
            failed_at = self._failed.get(version)
            if failed_at is not None and time.monotonic() - failed_at < RETRY_LOAD_AFTER:
                continue
            try:
                self._loaded[version] = await asyncio.to_thread(
                    self._load_version, deployment.model, version)
                self._failed.pop(version, None)
            except Exception as exc:  # reported, retried later
                self._failed[version] = time.monotonic()
                logger.error("deployment %s: loading %s version %d failed: %s: %s",
                             self.deployment, deployment.model, version, type(exc).__name__, exc)
        if deployment.rollout != self.rollout:
            for served in self._loaded.values():
                served.stats = VersionStats()
            self.rollout = deployment.rollout
        stable = self._loaded.get(deployment.stable_version)
        if stable is None:
            return
        self.table = _table(deployment, stable, self._loaded.get(
            deployment.candidate_version) if deployment.candidate_version is not None else None)
        self._loaded = {v: s for v, s in self._loaded.items() if v in deployment.versions}
        self.applied_revision = deployment.revision
        self._metrics.revision.labels(self.deployment).set(deployment.revision)

    def _load_version(self, model: str, version: int) -> ServedVersion:
        start = time.perf_counter()
        loaded = self._load(model, version)
        if self._warm:
            warm_up(loaded)
        return _served(loaded, model, str(version), self._batch, self._metrics,
                       time.perf_counter() - start)

    def _report(self, deployment: Deployment) -> WorkerReport:
        """Taken in the event loop, where the counters change; sent from a thread."""
        return WorkerReport(
            deployment=self.deployment, worker_id=self.worker_id,
            heartbeat_at=datetime.now(UTC), revision=self.applied_revision,
            rollout=self.rollout, ready_versions=tuple(sorted(self._loaded)),
            stats={str(v): s.stats.to_json() for v, s in self._loaded.items()},
            info={"host": socket.gethostname(), "pid": os.getpid(), "started": self._started})

    def _report_and_tick(self, report: WorkerReport) -> None:
        self._service.report(report)
        self._service.tick(self.deployment)


def _served(model: PyFuncModel, name: str, version: str, batch: BatchSettings,
            metrics: ServingMetrics, load_seconds: float) -> ServedVersion:
    metrics.model_load.labels(name, version).set(load_seconds)
    return ServedVersion.create(model, version, batch,
                                on_batch=metrics.batch_rows.labels(name, version).observe,
                                load_seconds=load_seconds)


def _table(deployment: Deployment, stable: ServedVersion,
           candidate: ServedVersion | None) -> RoutingTable:
    config = deployment.config
    sticky = config.get("sticky_key")
    canary = shadow = 0.0
    if deployment.phase == "canary":
        canary = float(deployment.weight)
    elif deployment.phase == "shadow":
        shadow = float(deployment.weight)
    return RoutingTable(stable, candidate if canary or shadow else None, canary_percent=canary,
                        shadow_percent=shadow, sticky_key=sticky if isinstance(sticky, str)
                        else None, revision=deployment.revision)
