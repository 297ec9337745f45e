"""``/api/v1/pipelines``: pipeline runs, their step runs, and the cache lookup.

The server keeps the records only; steps run where the pipeline is driven, and their outputs
travel through ``/api/v1/artifacts/objects/{digest}``, addressed by the digests recorded here.

    /pipelines/runs                           GET list (newest first), POST create
    /pipelines/runs/{pipeline_run_id}         GET, PATCH (204)
    /pipelines/runs/{pipeline_run_id}/steps   GET list, POST create the pending step runs
    /pipelines/steps/{step_run_id}            PATCH (204)
    /pipelines/steps/cached/{cache_key}       GET the newest finished step run with that key
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from mlcycle.server.deps import Pipelines
from mlcycle.server.pipeline_schemas import (
    CachedStepRun,
    PipelineRunCreate,
    PipelineRunOut,
    PipelineRunPage,
    PipelineRunUpdate,
    StepRunList,
    StepRunOut,
    StepRunsCreate,
    StepRunUpdate,
)
from mlcycle.types import UNSET

router = APIRouter(prefix="/pipelines", tags=["pipelines"])

# --- pipeline runs --------------------------------------------------------------------------


@router.post("/runs", status_code=201)
def create_pipeline_run(body: PipelineRunCreate, store: Pipelines) -> PipelineRunOut:
    """A new pipeline run, ``running``."""
    return PipelineRunOut.from_entity(store.create_pipeline_run(**body.model_dump()))


@router.get("/runs")
def list_pipeline_runs(store: Pipelines, pipeline: str | None = None, status: str | None = None,
                       max_results: int = 100, page_token: str | None = None
                       ) -> PipelineRunPage:
    """Pipeline runs, newest first; ``next_page_token`` asks for the next page."""
    page = store.list_pipeline_runs(pipeline=pipeline, status=status, max_results=max_results,
                                    page_token=page_token)
    return PipelineRunPage(pipeline_runs=[PipelineRunOut.from_entity(r) for r in page],
                           next_page_token=page.next_page_token)


@router.get("/runs/{pipeline_run_id}")
def get_pipeline_run(pipeline_run_id: str, store: Pipelines) -> PipelineRunOut:
    return PipelineRunOut.from_entity(store.get_pipeline_run(pipeline_run_id))


@router.patch("/runs/{pipeline_run_id}", status_code=204)
def update_pipeline_run(pipeline_run_id: str, body: PipelineRunUpdate, store: Pipelines
                        ) -> Response:
    changes = body.changes()
    store.update_pipeline_run(pipeline_run_id, status=changes.get("status", UNSET),
                              ended_at=changes.get("ended_at", UNSET),
                              error=changes.get("error", UNSET))
    return Response(status_code=204)


# --- step runs ------------------------------------------------------------------------------


@router.post("/runs/{pipeline_run_id}/steps", status_code=201)
def create_step_runs(pipeline_run_id: str, body: StepRunsCreate, store: Pipelines
                     ) -> StepRunList:
    """One ``pending`` step run per node, all or none."""
    nodes = [(n.node, n.step, n.upstream) for n in body.nodes]
    created = store.create_step_runs(pipeline_run_id, nodes)
    return StepRunList(step_runs=[StepRunOut.from_entity(s) for s in created])


@router.get("/runs/{pipeline_run_id}/steps")
def list_step_runs(pipeline_run_id: str, store: Pipelines) -> StepRunList:
    """The step runs in the order the pipeline called them."""
    steps = store.list_step_runs(pipeline_run_id)
    return StepRunList(step_runs=[StepRunOut.from_entity(s) for s in steps])


@router.patch("/steps/{step_run_id}", status_code=204)
def update_step_run(step_run_id: str, body: StepRunUpdate, store: Pipelines) -> Response:
    store.update_step_run(step_run_id, **body.store_kwargs())
    return Response(status_code=204)


@router.get("/steps/cached/{cache_key}")
def find_cached_step_run(cache_key: str, store: Pipelines) -> CachedStepRun:
    """The newest ``finished`` step run with *cache_key*; ``step_run: null`` on a miss."""
    found = store.find_cached_step_run(cache_key)
    return CachedStepRun(step_run=StepRunOut.from_entity(found) if found is not None else None)
