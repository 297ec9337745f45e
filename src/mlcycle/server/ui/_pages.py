"""The tracking pages: experiments, an experiment's runs, a run, runs compared.

Each handler reads through the tracking service (the same calls as the REST API) and renders
one template; the runs table asks the store for one page at a time, so an experiment of
10,000 runs costs what a page of them costs.
"""

from __future__ import annotations

import math
import mimetypes
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mlcycle.entities import Run
from mlcycle.errors import InvalidInputError
from mlcycle.server.deps import Service
from mlcycle.server.ui._app import PageRoute, render
from mlcycle.server.ui._session import check_access

__all__ = ["router"]


async def _viewer(request: Request) -> None:
    check_access(request)


router = APIRouter(route_class=PageRoute, include_in_schema=False,
                   dependencies=[Depends(_viewer)])

PAGE_SIZES = (25, 50, 100, 200)
#: Columns shown when none are chosen: the first few keys of the page's runs.
DEFAULT_COLUMNS = 6
#: Text previews stop here; the download link has the whole file.
PREVIEW_BYTES = 256 * 1024
MAX_COMPARED = 20
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/experiments", status_code=303)


@router.get("/experiments")
def experiments(request: Request, service: Service) -> HTMLResponse:
    return render(request, "experiments.html", title="Experiments",
                  experiments=service.list_experiments())


@dataclass(frozen=True, slots=True)
class Column:
    """A param or metric column of the runs table: ``params.lr``, ``metrics.rmse``."""

    kind: str  # "params" | "metrics"
    key: str

    @property
    def name(self) -> str:
        return f"{self.kind}.{self.key}"

    @property
    def order_name(self) -> str:
        """The key as the filter language spells it, in backticks unless it is a plain word."""
        plain = _WORD.fullmatch(self.key) is not None
        return f"{self.kind}.{self.key}" if plain else f"{self.kind}.`{self.key}`"

    def value(self, run: Run) -> Any:
        return (run.params if self.kind == "params" else run.metrics).get(self.key)

    @classmethod
    def parse(cls, text: str) -> Column:
        kind, _, key = text.partition(".")
        if kind not in ("params", "metrics") or not key:
            raise InvalidInputError(f"col: expected params.<key> or metrics.<key>, got {text!r}",
                                    details={"field": "col"})
        return cls(kind, key)


@router.get("/experiments/{experiment_id}")
def runs_table(
    request: Request,
    service: Service,
    experiment_id: str,
    filter: str = "",
    order_by: str = "",
    page_token: str | None = None,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 50,
    col: Annotated[list[str] | None, Query()] = None,
) -> HTMLResponse:
    experiment = service.get_experiment(experiment_id)
    error = None
    runs: Sequence[Run] = ()
    next_token = None
    try:
        found = service.search_runs([experiment.experiment_id], filter=filter,
                                    order_by=[order_by] if order_by else [],
                                    max_results=page_size, page_token=page_token)
        runs, next_token = found.items, found.next_page_token
    except InvalidInputError as exc:  # a filter or an order that does not parse: say where
        error = exc.message
    chosen = [Column.parse(c) for c in col or []]
    param_keys = sorted({k for r in runs for k in r.params})
    metric_keys = sorted({k for r in runs for k in r.metrics})
    available = ([Column("metrics", k) for k in metric_keys]
                 + [Column("params", k) for k in param_keys])
    columns = chosen if col else (
        [Column("metrics", k) for k in metric_keys[:DEFAULT_COLUMNS]]
        + [Column("params", k) for k in param_keys[:DEFAULT_COLUMNS]])
    # Chosen columns stay offered even when no run of this page has them.
    available += [c for c in chosen if c not in available]
    return render(
        request, "runs.html", title=experiment.name, experiment=experiment, runs=runs,
        filter=filter, order_by=order_by, error=error, columns=columns, available=available,
        page=page, page_size=page_size, page_sizes=PAGE_SIZES, next_token=next_token,
        first_row=(page - 1) * page_size + 1,
    )


@router.get("/runs/{run_id}")
def run_page(request: Request, service: Service, run_id: str, prefix: str = ""
             ) -> HTMLResponse:
    run = service.get_run(run_id)
    experiment = service.get_experiment(run.experiment_id)
    entries = _folder(service.list_artifacts(run_id, prefix.strip("/")), prefix)
    system = {k: v for k, v in run.tags.items() if k.startswith("mlcycle.")}
    tags = {k: v for k, v in run.tags.items() if not k.startswith("mlcycle.")}
    return render(request, "run.html", title=run.name, run=run, experiment=experiment,
                  tags=tags, system=system, prefix=prefix, entries=entries,
                  parent=prefix.rstrip("/").rpartition("/")[0])


@router.get("/runs/{run_id}/metrics.json")
def run_metrics(service: Service, run_id: str) -> Response:
    """Every metric's history and the run's status: what the run page polls while it runs."""
    run = service.get_run(run_id)
    histories = {k: service.get_metric_history(run_id, k) for k in sorted(run.metrics)}
    return Response(orjson.dumps({
        "status": str(run.status),
        "metrics": {k: {"steps": list(h.steps), "values": [_finite(v) for v in h.values]}
                    for k, h in histories.items()},
    }), media_type="application/json")


@router.get("/runs/{run_id}/artifacts/{path:path}")
def artifact_page(request: Request, service: Service, run_id: str, path: str) -> HTMLResponse:
    run = service.get_run(run_id)
    artifact = service.find_artifact(run_id, path)
    kind = _preview_kind(path)
    text = None
    if kind == "text":
        with service.artifacts.open(artifact.digest) as fh:
            text = fh.read(PREVIEW_BYTES).decode(errors="replace")
    return render(request, "artifact.html", title=path, run=run, artifact=artifact, kind=kind,
                  text=text, truncated=artifact.size > PREVIEW_BYTES)


@router.get("/runs/{run_id}/raw/{path:path}")
def artifact_raw(service: Service, run_id: str, path: str) -> Response:
    """The artifact's bytes. HTML is sent as a sandboxed document: it may show itself, not run
    scripts as this site."""
    data = service.read_artifact(run_id, path)
    media_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    headers = {"content-security-policy": "sandbox", "x-content-type-options": "nosniff"}
    return Response(data, media_type=media_type, headers=headers)


@router.get("/compare")
def compare(
    request: Request,
    service: Service,
    run_id: Annotated[list[str] | None, Query()] = None,
) -> HTMLResponse:
    ids = list(dict.fromkeys(run_id or []))
    if not 2 <= len(ids) <= MAX_COMPARED:
        return render(request, "compare.html", status_code=400 if ids else 200,
                      title="Compare runs", comparison=None,
                      error=f"Choose between 2 and {MAX_COMPARED} runs to compare "
                            f"({len(ids)} chosen).")
    comparison = service.compare(ids)
    # Parallel coordinates: one axis per param whose values are all numbers, then the metrics.
    axes: list[dict[str, Any]] = []
    for key, values in comparison.params.items():
        numbers = [_number(v) for v in values]
        if all(n is not None for n in numbers) and len(set(numbers)) > 1:
            axes.append({"label": key, "values": numbers})
    for key, latest in comparison.metrics.items():
        if all(v is not None for v in latest):
            axes.append({"label": key, "values": [_finite(v) for v in latest]})
    charts = {key: {"steps": steps, "series": [[_finite(v) for v in row] for row in rows]}
              for key, (steps, rows) in comparison.histories.items()}
    return render(request, "compare.html", title="Compare runs", comparison=comparison,
                  error=None, charts=charts, axes=axes,
                  differing=set(comparison.differing_params))


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    path: str
    folder: bool
    size: int


def _folder(artifacts: Sequence[Any], prefix: str) -> list[Entry]:
    """The files and sub-folders directly inside *prefix* (``""``: the run's top level)."""
    base = prefix.rstrip("/") + "/" if prefix.strip("/") else ""
    seen: dict[str, Entry] = {}
    for a in artifacts:
        if not a.path.startswith(base):
            continue
        head, sep, _ = a.path[len(base):].partition("/")
        if sep:
            old = seen.get(head)
            seen[head] = Entry(head, base + head, True, a.size + (old.size if old else 0))
        else:
            seen[head] = Entry(head, a.path, False, a.size)
    return sorted(seen.values(), key=lambda e: (not e.folder, e.name))


def _preview_kind(path: str) -> str:
    media_type = mimetypes.guess_type(path)[0] or ""
    if media_type == "text/html":
        return "html"
    if media_type.startswith("image/"):
        return "image"
    if media_type.startswith("text/") or path.endswith(
            (".json", ".yaml", ".yml", ".txt", ".log", ".md", ".csv", ".toml", ".py", ".cfg")):
        return "text"
    return "binary"


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: a gap in the chart instead."""
    return value if value is not None and math.isfinite(value) else None
