"""The dataset pages: datasets, a dataset's versions and contracts, one version's schema,
lineage and stored profile (with a histogram per column, drawn from the profile's sketches: no
rows are read)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from mlcycle.datasets.profile import ColumnProfile, DatasetProfile
from mlcycle.server.deps import Datasets, Service
from mlcycle.server.ui._app import PageRoute, render
from mlcycle.server.ui._session import check_access

__all__ = ["router"]

#: Bins of a numeric column's histogram, read off its quantile sketch.
BINS = 20
#: Columns drawn; the table lists them all.
MAX_CHARTS = 24


async def _viewer(request: Request) -> None:
    check_access(request)


router = APIRouter(route_class=PageRoute, include_in_schema=False,
                   dependencies=[Depends(_viewer)])


@router.get("/datasets")
def datasets(request: Request, store: Datasets) -> HTMLResponse:
    return render(request, "datasets.html", title="Datasets", datasets=store.list_datasets())


@router.get("/datasets/{name}")
def dataset(request: Request, store: Datasets, name: str) -> HTMLResponse:
    found = store.get_dataset(name)
    return render(request, "dataset.html", title=name, dataset=found,
                  versions=store.list_versions(name), contracts=store.list_contracts(name))


@router.get("/datasets/{name}/versions/{version:int}")
def dataset_version(request: Request, store: Datasets, service: Service, name: str,
                    version: int) -> HTMLResponse:
    found = store.get_version(name, version)
    profile = None
    if found.profile_digest is not None:
        profile = DatasetProfile.from_json(service.artifacts.get_bytes(found.profile_digest))
    columns = list(profile.columns.values()) if profile else []
    charts = [c for c in (_chart(col) for col in columns[:MAX_CHARTS]) if c is not None]
    return render(request, "dataset_version.html", title=found.ref, version=found,
                  columns=columns, charts=charts)


def _chart(col: ColumnProfile) -> dict[str, Any] | None:
    """A column's distribution as Plotly bar data: counts in equal-width bins between its
    minimum and maximum, estimated from its quantile sketch, for numbers; the most frequent
    values for categories."""
    if col.kind == "numeric" and col.count:
        low, high = float(col.min), float(col.max)
        if not (math.isfinite(low) and math.isfinite(high)):
            return None
        if low == high:
            return {"name": col.name, "x": [low], "y": [col.count], "width": None}
        edges = np.linspace(low, high, BINS + 1)
        counts = col.histogram(edges)
        return {"name": col.name, "x": [float(v) for v in (edges[:-1] + edges[1:]) / 2],
                "y": [round(float(v), 2) for v in counts],
                "width": [float(edges[1] - edges[0])] * BINS}
    if col.top:
        return {"name": col.name, "x": [str(v) for v, _ in col.top],
                "y": [int(n) for _, n in col.top], "width": None}
    return None
