"""``/api/v1/runs``: runs, their logging, search and comparison."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from mlcycle.server.deps import READ_ONLY, RawJSON, Service
from mlcycle.server.schemas import (
    LogBatch,
    LogInputs,
    MetricHistoryOut,
    ResultIn,
    RunComparisonOut,
    RunCreate,
    RunOut,
    RunPage,
    RunUpdate,
    SearchRequest,
    parse_log_batch,
)

router = APIRouter(prefix="/runs", tags=["runs"])

# The log-batch body is decoded with orjson and checked by the tracking service, not by a
# pydantic model (the ingest hot path); the model only describes it in the OpenAPI document.
_LOG_BATCH_DOC = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": LogBatch.model_json_schema()}},
    }
}


@router.post("", status_code=201)
def create_run(body: RunCreate, service: Service) -> RunOut:
    """Start a run, with its params and tags, in one request."""
    run = service.create_run(
        body.experiment_id,
        name=body.name,
        parent_run_id=body.parent_run_id,
        params=body.params,
        tags=body.tags,
        start_time=body.start_time,
    )
    return RunOut.from_entity(run)


# Declared before "/{run_id}" so that "compare" is not taken for a run id.
@router.get("/compare")
def compare_runs(
    service: Service,
    run_id: Annotated[list[str], Query(min_length=1, description="Repeat for each run.")],
    metric_key: Annotated[list[str] | None, Query(description="Default: every metric.")] = None,
) -> RunComparisonOut:
    """Runs side by side: params, latest metrics, and histories aligned by step."""
    return RunComparisonOut.from_entity(service.compare(run_id, metric_key))


@router.post("/search", openapi_extra=READ_ONLY, response_model=RunPage)
def search_runs(body: SearchRequest, service: Service) -> Response:
    """A page of runs matching the filter. Serialised here rather than by FastAPI, which would
    validate every run of the page again on the way out (the largest cost of a search)."""
    page = service.search_runs(
        body.experiment_ids,
        filter=body.filter,
        order_by=body.order_by,
        max_results=body.max_results,
        page_token=body.page_token,
        include_deleted=body.include_deleted,
    )
    out = RunPage(runs=[RunOut.from_entity(r) for r in page.items],
                  next_page_token=page.next_page_token)
    return Response(out.model_dump_json(), media_type="application/json")


@router.get("/{run_id}")
def get_run(run_id: str, service: Service) -> RunOut:
    return RunOut.from_entity(service.get_run(run_id))


@router.patch("/{run_id}")
def update_run(run_id: str, body: RunUpdate, service: Service) -> RunOut:
    """Rename, set the status, set or clear (``null``) the end time."""
    return RunOut.from_entity(service.update_run(run_id, **body.changes()))


@router.delete("/{run_id}", status_code=204)
def delete_run(run_id: str, service: Service, hard: bool = False) -> None:
    """Soft-delete (restorable), or with ``hard=true`` remove the run and all it logged."""
    service.delete_run(run_id, hard=hard)


@router.post("/{run_id}/restore")
def restore_run(run_id: str, service: Service) -> RunOut:
    return RunOut.from_entity(service.restore_run(run_id))


@router.post("/{run_id}/log-batch", status_code=204, openapi_extra=_LOG_BATCH_DOC)
def log_batch(run_id: str, body: RawJSON, service: Service) -> None:
    """Append metric points and set params and tags, in one transaction."""
    batch = parse_log_batch(body)
    service.log_batch(run_id, metrics=batch.metrics, params=batch.params, tags=batch.tags)


@router.delete("/{run_id}/tags/{key:path}", status_code=204)
def delete_tag(run_id: str, key: str, service: Service) -> None:
    service.delete_tag(run_id, key)


@router.get("/{run_id}/metrics/{key:path}/history")
def get_metric_history(run_id: str, key: str, service: Service) -> MetricHistoryOut:
    """Every point of one metric in step order, as columns."""
    return MetricHistoryOut.from_entity(service.get_metric_history(run_id, key))


@router.post("/{run_id}/inputs", status_code=204)
def log_inputs(run_id: str, body: LogInputs, service: Service) -> None:
    """Record the dataset versions the run read."""
    service.log_inputs(run_id, [i.to_entity() for i in body.inputs])


@router.put("/{run_id}/results/{key:path}", status_code=204)
def log_result(run_id: str, key: str, body: ResultIn, service: Service) -> None:
    """Store a free-form JSON value (a report, a confusion matrix) under *key*."""
    service.log_result(run_id, key, body.value)
