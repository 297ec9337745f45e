"""``RestTrackingStore``: the tracking store of a remote ``mlcycle server``, over its REST API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from mlcycle.entities import Artifact, Experiment, Metric, MetricHistory, Page, Run, RunInput
from mlcycle.errors import ExperimentNotFound, InvalidInputError
from mlcycle.store.base import TrackingStore
from mlcycle.store.rest import wire
from mlcycle.store.rest._http import API, call, segment
from mlcycle.types import UNSET, JSONValue, RunStatus, Unset

__all__ = ["RestTrackingStore"]


class RestTrackingStore(TrackingStore):
    """``RestTrackingStore(http_client("http://host:8080", token=...))``.

    Any ``httpx.Client`` with a ``base_url`` will do: tests hand it a
    ``starlette.testclient.TestClient(create_app(settings))``, which serves the app in-process.
    The store owns the client: ``close()`` closes it.
    """

    def __init__(self, client: httpx.Client) -> None:
        self.http = client

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return call(self.http, method, f"{API}/{path}", **kwargs)

    # --- experiments ----------------------------------------------------------------------
    def create_experiment(
        self, name: str, *, description: str | None = None, tags: Mapping[str, str] | None = None
    ) -> Experiment:
        body = {"name": name, "description": description, "tags": dict(tags or {})}
        return wire.experiment_from_wire(self._call("POST", "experiments", body=body))

    def get_experiment(self, experiment_id: str) -> Experiment:
        return wire.experiment_from_wire(
            self._call("GET", f"experiments/{segment(experiment_id)}")
        )

    def find_experiment(self, name: str) -> Experiment | None:
        try:
            data = self._call("GET", f"experiments/by-name/{segment(name)}")
        except ExperimentNotFound:
            return None
        return wire.experiment_from_wire(data)

    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]:
        data = self._call("GET", "experiments",
                          params={"include_deleted": "true" if include_deleted else "false"})
        return [wire.experiment_from_wire(e) for e in data["experiments"]]

    def update_experiment(
        self,
        experiment_id: str,
        *,
        name: str | Unset = UNSET,
        description: str | Unset | None = UNSET,
        lifecycle: str | Unset = UNSET,
    ) -> Experiment:
        path = f"experiments/{segment(experiment_id)}"
        data: Any = None
        # The API has a verb per lifecycle change (DELETE, POST .../restore) and PATCH for fields.
        if lifecycle == "deleted":
            data = self._call("DELETE", path)
        elif lifecycle == "active":
            data = self._call("POST", f"{path}/restore")
        elif lifecycle is not UNSET:
            raise _bad_lifecycle(lifecycle)
        changes = _set_fields(name=name, description=description)
        if changes or data is None:
            data = self._call("PATCH", path, body=changes)
        return wire.experiment_from_wire(data)

    # --- runs -----------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        *,
        name: str,
        start_time: int,
        parent_run_id: str | None = None,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Run:
        body = {
            "experiment_id": experiment_id,
            "name": name,
            "start_time": start_time,
            "parent_run_id": parent_run_id,
            "params": dict(params or {}),
            "tags": dict(tags or {}),
        }
        return wire.run_from_wire(self._call("POST", "runs", body=body))

    def get_run(self, run_id: str) -> Run:
        return wire.run_from_wire(self._call("GET", f"runs/{segment(run_id)}"))

    def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus | Unset = UNSET,
        end_time: int | Unset | None = UNSET,
        name: str | Unset = UNSET,
        lifecycle: str | Unset = UNSET,
    ) -> None:
        path = f"runs/{segment(run_id)}"
        if lifecycle == "deleted":
            self._call("DELETE", path)
        elif lifecycle == "active":
            self._call("POST", f"{path}/restore")
        elif lifecycle is not UNSET:
            raise _bad_lifecycle(lifecycle)
        changes = _set_fields(
            status=status if isinstance(status, Unset) else RunStatus(status).value,
            end_time=end_time,
            name=name,
        )
        # An empty PATCH still checks that the run exists, as the SQL store does.
        if changes or lifecycle is UNSET:
            self._call("PATCH", path, body=changes)

    def delete_run(self, run_id: str, *, hard: bool = False) -> None:
        self._call("DELETE", f"runs/{segment(run_id)}",
                   params={"hard": "true" if hard else "false"})

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        if not metrics and not params and not tags:
            return
        body: dict[str, Any] = {"metrics": wire.encode_metrics(metrics)}
        if params:
            body["params"] = dict(params)
        if tags:
            body["tags"] = dict(tags)
        self._call("POST", f"runs/{segment(run_id)}/log-batch", body=body)

    def delete_tag(self, run_id: str, key: str) -> None:
        self._call("DELETE", f"runs/{segment(run_id)}/tags/{segment(key)}")

    def get_metric_history(self, run_id: str, key: str) -> MetricHistory:
        data = self._call("GET", f"runs/{segment(run_id)}/metrics/{segment(key)}/history")
        return wire.history_from_wire(data)

    def log_inputs(self, run_id: str, inputs: Sequence[RunInput]) -> None:
        body = {
            "inputs": [
                {"dataset": i.dataset, "version": i.version, "digest": i.digest,
                 "context": dict(i.context)}
                for i in inputs
            ]
        }
        self._call("POST", f"runs/{segment(run_id)}/inputs", body=body)

    def log_result(self, run_id: str, key: str, value: JSONValue) -> None:
        self._call("PUT", f"runs/{segment(run_id)}/results/{segment(key)}",
                   body={"value": value})

    def search_runs(
        self,
        experiment_ids: Sequence[str] | None = None,
        *,
        filter: str = "",
        order_by: Sequence[str] = (),
        max_results: int = 100,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> Page[Run]:
        body = {
            "experiment_ids": None if experiment_ids is None else list(experiment_ids),
            "filter": filter,
            "order_by": list(order_by),
            "max_results": max_results,
            "page_token": page_token,
            "include_deleted": include_deleted,
        }
        data = self._call("POST", "runs/search", body=body)
        return Page([wire.run_from_wire(r) for r in data["runs"]], data.get("next_page_token"))

    # --- artifact manifest ----------------------------------------------------------------
    def record_artifacts(self, run_id: str, artifacts: Sequence[Artifact]) -> None:
        if not artifacts:
            return
        body = {"artifacts": [{"path": a.path, "digest": a.digest, "size": a.size}
                              for a in artifacts]}
        self._call("POST", f"runs/{segment(run_id)}/artifacts", body=body)

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[Artifact]:
        data = self._call("GET", f"runs/{segment(run_id)}/artifacts",
                          params={"prefix": prefix} if prefix else None)
        return [wire.artifact_from_wire(a) for a in data["artifacts"]]


def _set_fields(**fields: Any) -> dict[str, Any]:
    """The fields of a PATCH body: the ones given (``None`` included: it clears a field)."""
    return {k: v for k, v in fields.items() if not isinstance(v, Unset)}


def _bad_lifecycle(value: object) -> InvalidInputError:
    return InvalidInputError(f"lifecycle: expected 'active' or 'deleted', got {value!r}",
                             details={"field": "lifecycle"})
