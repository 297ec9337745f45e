"""``RestPipelineStore``: the pipeline records of a remote ``mlcycle server``, over its REST API.

Only the records go through here; a step's outputs travel through the artifact endpoints
(``RestArtifactStore``) on the same client, before the step run that names their digests is
updated. Times are integer milliseconds on the wire; the shapes are those of
``mlcycle.server.pipeline_schemas``, turned back into entities by the ``*_from_wire`` functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from mlcycle.entities import Page, PipelineRun, StepOutput, StepRun, from_ms
from mlcycle.errors import PipelineRunNotFound, StoreError
from mlcycle.store.base import PipelineStore
from mlcycle.store.rest._http import API, call, segment
from mlcycle.types import UNSET, JSONValue, Unset

__all__ = ["RestPipelineStore", "pipeline_run_from_wire", "step_run_from_wire"]


class RestPipelineStore(PipelineStore):
    """``RestPipelineStore(http_client("http://host:8080", token=...))``.

    The client is usually the tracking store's (``open_pipeline_store``), so it stays open on
    ``close()``: whoever made it closes it.
    """

    def __init__(self, client: httpx.Client) -> None:
        self.http = client

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return call(self.http, method, f"{API}/pipelines/{path}", **kwargs)

    @staticmethod
    def _run(pipeline_run_id: str) -> str:
        # An empty id or one with "/" cannot be one path segment, so the server could only
        # answer "no such endpoint"; no pipeline run has such an id anyway.
        if not pipeline_run_id or "/" in pipeline_run_id:
            raise PipelineRunNotFound(f"no pipeline run with id {pipeline_run_id!r}",
                                      details={"pipeline_run_id": pipeline_run_id})
        return f"runs/{segment(pipeline_run_id)}"

    # --- pipeline runs --------------------------------------------------------------------
    def create_pipeline_run(
        self,
        pipeline: str,
        *,
        target: str | None,
        executor: str,
        params: Mapping[str, JSONValue],
        cache: bool,
        created_at: int,
        spec_digest: str | None = None,
        run_id: str | None = None,
        resumed_from: str | None = None,
    ) -> PipelineRun:
        body = {
            "pipeline": pipeline,
            "target": target,
            "executor": executor,
            "params": dict(params),
            "cache": cache,
            "created_at": created_at,
            "spec_digest": spec_digest,
            "run_id": run_id,
            "resumed_from": resumed_from,
        }
        return pipeline_run_from_wire(self._call("POST", "runs", body=body))

    def update_pipeline_run(
        self,
        pipeline_run_id: str,
        *,
        status: str | Unset = UNSET,
        ended_at: int | Unset | None = UNSET,
        error: Mapping[str, Any] | Unset | None = UNSET,
    ) -> None:
        body = _given(status=status, ended_at=ended_at,
                      error=dict(error) if isinstance(error, Mapping) else error)
        if body:  # nothing to change is no request, as in the SQL store
            self._call("PATCH", self._run(pipeline_run_id), body=body)

    def get_pipeline_run(self, pipeline_run_id: str) -> PipelineRun:
        return pipeline_run_from_wire(self._call("GET", self._run(pipeline_run_id)))

    def list_pipeline_runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> Page[PipelineRun]:
        params: dict[str, Any] = {"max_results": max_results}
        for name, value in (("pipeline", pipeline), ("status", status),
                            ("page_token", page_token)):
            if value is not None:
                params[name] = value
        data = self._call("GET", "runs", params=params)
        return Page([pipeline_run_from_wire(r) for r in data["pipeline_runs"]],
                    data.get("next_page_token"))

    # --- step runs ------------------------------------------------------------------------
    def create_step_runs(
        self, pipeline_run_id: str, nodes: Sequence[tuple[str, str, Sequence[str]]]
    ) -> list[StepRun]:
        body = {"nodes": [{"node": node, "step": step, "upstream": list(upstream)}
                          for node, step, upstream in nodes]}
        data = self._call("POST", f"{self._run(pipeline_run_id)}/steps", body=body)
        return [step_run_from_wire(s) for s in data["step_runs"]]

    def update_step_run(
        self,
        step_run_id: str,
        *,
        status: str | Unset = UNSET,
        cache_key: str | Unset | None = UNSET,
        code_hash: str | Unset | None = UNSET,
        cache_hit: bool | Unset = UNSET,
        reused_from: str | Unset | None = UNSET,
        params: Mapping[str, JSONValue] | Unset = UNSET,
        inputs: Mapping[str, str] | Unset = UNSET,
        outputs: Sequence[StepOutput] | Unset = UNSET,
        attempts: int | Unset = UNSET,
        run_id: str | Unset | None = UNSET,
        error: Mapping[str, Any] | Unset | None = UNSET,
        logs: str | Unset = UNSET,
        started_at: int | Unset | None = UNSET,
        ended_at: int | Unset | None = UNSET,
    ) -> None:
        body = _given(
            status=status, cache_key=cache_key, code_hash=code_hash, cache_hit=cache_hit,
            reused_from=reused_from, attempts=attempts, run_id=run_id, logs=logs,
            started_at=started_at, ended_at=ended_at,
            params=dict(params) if isinstance(params, Mapping) else params,
            inputs=dict(inputs) if isinstance(inputs, Mapping) else inputs,
            error=dict(error) if isinstance(error, Mapping) else error,
            outputs=UNSET if isinstance(outputs, Unset) else [
                {"name": o.name, "digest": o.digest, "format": o.format, "size": o.size}
                for o in outputs],
        )
        if not body:
            return
        if not step_run_id or "/" in step_run_id:  # as the SQL store answers an unknown id
            raise StoreError(f"no step run with id {step_run_id!r}",
                             details={"step_run_id": step_run_id})
        self._call("PATCH", f"steps/{segment(step_run_id)}", body=body)

    def list_step_runs(self, pipeline_run_id: str) -> list[StepRun]:
        data = self._call("GET", f"{self._run(pipeline_run_id)}/steps")
        return [step_run_from_wire(s) for s in data["step_runs"]]

    def find_cached_step_run(self, cache_key: str) -> StepRun | None:
        if not cache_key or "/" in cache_key:
            return None
        data = self._call("GET", f"steps/cached/{segment(cache_key)}")
        found = data["step_run"]
        return step_run_from_wire(found) if found is not None else None


def _given(**fields: Any) -> dict[str, Any]:
    """The fields that are not ``UNSET`` (``None`` stays: it clears a field)."""
    return {name: value for name, value in fields.items() if value is not UNSET}


# --- wire → entities ------------------------------------------------------------------------


def pipeline_run_from_wire(data: Mapping[str, Any]) -> PipelineRun:
    return PipelineRun(
        pipeline_run_id=data["pipeline_run_id"],
        pipeline=data["pipeline"],
        status=data["status"],
        created_at=from_ms(data["created_at"]),  # type: ignore[arg-type]
        target=data.get("target"),
        executor=data.get("executor", "local"),
        params=dict(data.get("params") or {}),
        cache=bool(data.get("cache", True)),
        spec_digest=data.get("spec_digest"),
        run_id=data.get("run_id"),
        resumed_from=data.get("resumed_from"),
        error=data.get("error"),
        ended_at=from_ms(data.get("ended_at")),
    )


def step_run_from_wire(data: Mapping[str, Any]) -> StepRun:
    return StepRun(
        step_run_id=data["step_run_id"],
        pipeline_run_id=data["pipeline_run_id"],
        node=data["node"],
        step=data["step"],
        status=data["status"],
        created_at=from_ms(data["created_at"]),  # type: ignore[arg-type]
        cache_key=data.get("cache_key"),
        code_hash=data.get("code_hash"),
        cache_hit=bool(data.get("cache_hit", False)),
        reused_from=data.get("reused_from"),
        params=dict(data.get("params") or {}),
        inputs=dict(data.get("inputs") or {}),
        outputs=tuple(StepOutput(o["name"], o["digest"], o["format"], o["size"])
                      for o in data.get("outputs") or ()),
        upstream=tuple(data.get("upstream") or ()),
        attempts=data.get("attempts", 0),
        run_id=data.get("run_id"),
        error=data.get("error"),
        logs=data.get("logs") or "",
        started_at=from_ms(data.get("started_at")),
        ended_at=from_ms(data.get("ended_at")),
    )
