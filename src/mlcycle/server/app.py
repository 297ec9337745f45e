"""``create_app(settings)``: the ASGI app of ``mlcycle server``.

>>> app = create_app(Settings(home=".mlcycle"))           # doctest: +SKIP
>>> uvicorn.run(app, host="127.0.0.1", port=8080)         # doctest: +SKIP

The REST API lives under ``/api/v1`` (OpenAPI at ``/docs``), the web UI under ``/``; ``/health``
answers without a token.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import metadata

from fastapi import FastAPI

from mlcycle.client import Client, open_stores
from mlcycle.config import Settings, load_settings
from mlcycle.errors import InvalidInputError
from mlcycle.retrain import TriggerService
from mlcycle.server.api import api_router, health
from mlcycle.server.auth import TokenPolicy
from mlcycle.server.errors import install_error_handlers
from mlcycle.server.monitoring import (
    SchedulerLease,
    metrics_router,
    monitor_service,
    scheduled_monitors,
)
from mlcycle.server.ui import mount_ui
from mlcycle.store.base import (
    ArtifactStore,
    DatasetStore,
    DeploymentStore,
    ModelRegistryStore,
    MonitorStore,
    PipelineStore,
    TrackingStore,
    TriggerStore,
)
from mlcycle.store.sql import SqlTrackingStore
from mlcycle.store.sql.datasets import SqlDatasetStore
from mlcycle.store.sql.deployments import SqlDeploymentStore
from mlcycle.store.sql.locks import SqlLockStore
from mlcycle.store.sql.monitors import SqlMonitorStore
from mlcycle.store.sql.pipelines import SqlPipelineStore
from mlcycle.store.sql.registry import SqlModelRegistryStore
from mlcycle.store.sql.triggers import SqlTriggerStore
from mlcycle.tracking.service import TrackingService

__all__ = ["app_from_env", "create_app"]


def create_app(
    settings: Settings,
    *,
    stores: tuple[TrackingStore, ArtifactStore] | None = None,
    datasets: DatasetStore | None = None,
    registry: ModelRegistryStore | None = None,
    pipelines: PipelineStore | None = None,
    deployments: DeploymentStore | None = None,
    monitors: MonitorStore | None = None,
    triggers: TriggerStore | None = None,
    monitor_poll_interval: float | None = None,
) -> FastAPI:
    """The server's app over *stores*, or over the SQL and artifact stores that *settings* name.

    Datasets are kept by *datasets*, or by default in the tracking store's database (without a
    SQL tracking store and no *datasets*, the dataset routes answer ``invalid_state``); the
    model registry likewise by *registry*, pipeline records by *pipelines* and deployment
    state by *deployments*, or in the tracking store's database.
    Stores handed in belong to the caller, who closes them; stores opened here are closed when
    the app shuts down. With monitors kept, ``/metrics`` exports their results and a background
    task runs due monitors every *monitor_poll_interval* seconds (``None``, the default: no
    scheduler; ``mlcycle server`` sets 30) while this process holds the scheduler lease in the
    tracking store's database (without a SQL tracking store: always).
    """
    owned = stores is None
    tracking, artifacts = stores if stores is not None else _open_stores(settings)
    if datasets is None and isinstance(tracking, SqlTrackingStore):
        # Shares the tracking store's engine, so closing the tracking store is enough.
        datasets = SqlDatasetStore(tracking.engine)
    if registry is None and isinstance(tracking, SqlTrackingStore):
        registry = SqlModelRegistryStore(tracking.engine)
    if pipelines is None and isinstance(tracking, SqlTrackingStore):
        pipelines = SqlPipelineStore(tracking.engine)
    if deployments is None and isinstance(tracking, SqlTrackingStore):
        deployments = SqlDeploymentStore(tracking.engine)
    if monitors is None and isinstance(tracking, SqlTrackingStore):
        monitors = SqlMonitorStore(tracking.engine)
    if triggers is None and isinstance(tracking, SqlTrackingStore):
        triggers = SqlTriggerStore(tracking.engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if monitors is not None and deployments is not None and registry is not None \
                    and datasets is not None and monitor_poll_interval is not None:
                service = monitor_service(settings, tracking, artifacts, monitors=monitors,
                                          deployments=deployments, registry=registry,
                                          datasets=datasets)
                reactions = None
                if triggers is not None:
                    # Retraining runs in this process: the triggers' pipelines must import here.
                    reactions = TriggerService(Client(settings=settings,
                                                      stores=(tracking, artifacts)),
                                               store=triggers)
                # A holder on another host is taken for dead after LEASE_STALE_S without a
                # renewal (on this host, as soon as its process is gone): long enough for a
                # retraining, which holds its process's beat while it runs.
                lease = (SchedulerLease(SqlLockStore(tracking.engine),
                                        stale_after_s=LEASE_STALE_S)
                         if isinstance(tracking, SqlTrackingStore) else None)
                await stack.enter_async_context(scheduled_monitors(
                    service, monitor_poll_interval, reactions, lease))
            yield
        if owned:
            tracking.close()

    app = FastAPI(
        title="mlcycle",
        summary="Experiment tracking, artifacts and the rest of the ML lifecycle.",
        version=_version(),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.service = TrackingService(tracking, artifacts)
    app.state.datasets = datasets
    app.state.registry = registry
    app.state.pipelines = pipelines
    app.state.deployments = deployments
    app.state.monitors = monitors
    app.state.triggers = triggers
    app.state.tokens = TokenPolicy.from_settings(settings)
    install_error_handlers(app)
    app.include_router(health.router)
    if monitors is not None:
        app.include_router(metrics_router(monitors))
    app.include_router(api_router)
    mount_ui(app)
    return app


#: Seconds between the scheduler's beats in ``mlcycle server``.
SCHEDULER_POLL_S = 30.0
#: Seconds without a renewal after which another host's scheduler lease is taken over.
LEASE_STALE_S = 600.0


def app_from_env() -> FastAPI:
    """The app over the settings of the environment: the factory each uvicorn worker process
    calls when ``mlcycle server --workers N`` runs several (``uvicorn --factory``). Each runs
    the scheduler; the one holding the lease does the work."""
    return create_app(load_settings(), monitor_poll_interval=SCHEDULER_POLL_S)


def _open_stores(settings: Settings) -> tuple[TrackingStore, ArtifactStore]:
    uri = settings.resolved_tracking_uri
    if uri.startswith(("http://", "https://")):
        # A server in front of another server would only add a hop (and a loop, pointed at
        # itself); it needs a database.
        raise InvalidInputError(
            f"tracking_uri: the server stores runs in a database, so it needs sqlite:///... or "
            f"postgresql+psycopg://..., got the server URL {uri!r}",
            details={"field": "tracking_uri"},
        )
    return open_stores(settings)


def _version() -> str:
    try:
        return metadata.version("mlcycle")
    except metadata.PackageNotFoundError:  # a source tree that was not installed
        return "0+unknown"
