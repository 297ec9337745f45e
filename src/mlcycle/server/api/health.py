"""``/health``: for load balancers and ``live_server``; no token needed, nothing revealed."""

from __future__ import annotations

from fastapi import APIRouter, Request

from mlcycle.server.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(request: Request) -> Health:
    return Health(status="ok", version=request.app.version)
