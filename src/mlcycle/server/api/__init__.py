"""The routes of the REST API, one module per resource, gathered under ``/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from mlcycle.server.api import (
    artifacts,
    datasets,
    deployments,
    experiments,
    models,
    monitors,
    pipelines,
    runs,
    triggers,
)
from mlcycle.server.deps import authorize

__all__ = ["api_router"]

#: Everything under ``/api/v1``; the token check covers all of it.
api_router = APIRouter(prefix="/api/v1", dependencies=[Depends(authorize)])
api_router.include_router(experiments.router)
api_router.include_router(runs.router)
api_router.include_router(artifacts.router)
api_router.include_router(datasets.router)
api_router.include_router(models.router)
api_router.include_router(pipelines.router)
api_router.include_router(deployments.router)
api_router.include_router(monitors.router)
api_router.include_router(triggers.router)
