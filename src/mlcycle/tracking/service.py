"""``TrackingService``: the rules of tracking over any pair of stores (SQL or REST).

The SDK, the server and the CLI all go through it, so a value is validated the same way
wherever it enters.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from mlcycle.entities import (
    Artifact,
    Experiment,
    Metric,
    MetricHistory,
    Page,
    Run,
    RunInput,
    now_ms,
)
from mlcycle.errors import (
    ArtifactNotFound,
    ExperimentAlreadyExists,
    InvalidInputError,
)
from mlcycle.store.base import ArtifactStore, TrackingStore
from mlcycle.tracking import validation as v
from mlcycle.tracking.compare import RunComparison, compare_runs
from mlcycle.types import UNSET, JSONValue, RunStatus, Unset

__all__ = ["DEFAULT_EXPERIMENT", "TrackingService"]

DEFAULT_EXPERIMENT = "Default"
_INT64 = 2**63


class TrackingService:
    def __init__(self, store: TrackingStore, artifacts: ArtifactStore) -> None:
        self.store = store
        self.artifacts = artifacts

    # --- experiments ----------------------------------------------------------------------
    def create_experiment(
        self, name: str, *, description: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> Experiment:
        v.check_name(name, "experiment name")
        return self.store.create_experiment(
            name.strip(), description=description, tags=v.check_tags(tags)
        )

    def get_or_create_experiment(self, name: str) -> Experiment:
        v.check_name(name, "experiment name")
        found = self.store.find_experiment(name)
        if found is not None:
            return found
        try:
            return self.store.create_experiment(name)
        except ExperimentAlreadyExists:  # another process created it just now
            found = self.store.find_experiment(name)
            assert found is not None
            return found

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self.store.get_experiment(experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment:
        found = self.store.find_experiment(name)
        if found is None:
            from mlcycle.errors import ExperimentNotFound

            raise ExperimentNotFound(f"no experiment named {name!r}", details={"name": name})
        return found

    def resolve_experiment(self, experiment: str | None) -> Experiment:
        """An experiment by name or id; the ``Default`` experiment for None."""
        if experiment is None:
            return self.get_or_create_experiment(DEFAULT_EXPERIMENT)
        found = self.store.find_experiment(experiment)
        if found is not None:
            return found
        from mlcycle.errors import ExperimentNotFound

        try:
            return self.store.get_experiment(experiment)
        except ExperimentNotFound:
            return self.get_or_create_experiment(experiment)

    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]:
        return self.store.list_experiments(include_deleted=include_deleted)

    def update_experiment(
        self,
        experiment_id: str,
        *,
        name: str | Unset = UNSET,
        description: str | Unset | None = UNSET,
    ) -> Experiment:
        if name is not UNSET:
            v.check_name(name, "experiment name")
        return self.store.update_experiment(experiment_id, name=name, description=description)

    def delete_experiment(self, experiment_id: str) -> Experiment:
        return self.store.update_experiment(experiment_id, lifecycle="deleted")

    def restore_experiment(self, experiment_id: str) -> Experiment:
        return self.store.update_experiment(experiment_id, lifecycle="active")

    # --- runs -----------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        *,
        name: str | None = None,
        parent_run_id: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        start_time: int | None = None,
    ) -> Run:
        if name is not None:
            v.check_name(name, "run name", required=False)
        return self.store.create_run(
            experiment_id,
            name=name or _default_run_name(),
            start_time=start_time if start_time is not None else now_ms(),
            parent_run_id=parent_run_id,
            params=v.check_params(params),
            tags=v.check_tags(tags),
        )

    def get_run(self, run_id: str) -> Run:
        return self.store.get_run(run_id)

    def end_run(
        self, run_id: str, status: RunStatus | str = RunStatus.FINISHED, end_time: int | None = None
    ) -> None:
        try:
            status = RunStatus(status)
        except ValueError:
            raise InvalidInputError(
                f"status: expected one of {', '.join(s.value for s in RunStatus)}, got {status!r}",
                details={"field": "status"},
            ) from None
        self.store.update_run(
            run_id, status=status, end_time=end_time if end_time is not None else now_ms()
        )

    def update_run(
        self,
        run_id: str,
        *,
        name: str | Unset = UNSET,
        status: RunStatus | str | Unset = UNSET,
        end_time: int | Unset | None = UNSET,
    ) -> Run:
        """Change the given fields and return the run as it now is."""
        if name is not UNSET:
            v.check_name(name, "run name", required=False)
        if status is not UNSET:
            try:
                status = RunStatus(status)
            except ValueError:
                raise InvalidInputError(
                    f"status: expected one of {', '.join(s.value for s in RunStatus)}, "
                    f"got {status!r}",
                    details={"field": "status"},
                ) from None
        self.store.update_run(run_id, name=name, status=status, end_time=end_time)
        return self.store.get_run(run_id)

    def delete_run(self, run_id: str, *, hard: bool = False) -> None:
        self.store.delete_run(run_id, hard=hard)

    def restore_run(self, run_id: str) -> Run:
        self.store.update_run(run_id, lifecycle="active")
        return self.store.get_run(run_id)

    def check_metrics(self, metrics: Iterable[Any]) -> list[Metric]:
        """Validate points given as ``Metric`` or ``(key, value, step[, timestamp])``."""
        out: list[Metric] = []
        default_ts = now_ms()
        known_keys = v.known_keys()
        ts: Any
        for i, m in enumerate(metrics):
            try:
                if type(m) is Metric:
                    key, value, step, ts = m
                else:
                    key, value, step = m[0], m[1], m[2]
                    ts = m[3] if len(m) > 3 else None
            except (TypeError, IndexError, KeyError):
                raise InvalidInputError(
                    f"metrics[{i}]: expected (key, value, step[, timestamp]), got {m!r}",
                    details={"field": f"metrics[{i}]"},
                ) from None
            # The common case (a known key, a float, int step and time) costs four type checks;
            # anything else takes the full rules, which also produce the error messages.
            if key in known_keys and type(value) is float and type(step) is int and (
                -_INT64 <= step < _INT64
            ):
                if type(m) is Metric and type(ts) is int and ts:
                    out.append(m)  # already in its final form
                    continue
            else:
                key, value, step = v.check_metric(key, value, step)
            if not ts:
                ts = default_ts
            elif type(ts) is not int:
                raise InvalidInputError(
                    f"metrics.{key}: timestamp must be integer milliseconds, got {ts!r}",
                    details={"field": f"metrics[{i}].timestamp"},
                )
            out.append(Metric(key, value, step, ts))
        return out

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Iterable[Any] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        self.store.log_batch(
            run_id,
            metrics=self.check_metrics(metrics),
            params=v.check_params(params),
            tags=v.check_tags(tags),
        )

    def delete_tag(self, run_id: str, key: str) -> None:
        self.store.delete_tag(run_id, v.check_key(key, "tag"))

    def get_metric_history(self, run_id: str, key: str) -> MetricHistory:
        return self.store.get_metric_history(run_id, v.check_key(key, "metric"))

    def log_inputs(self, run_id: str, inputs: Sequence[RunInput]) -> None:
        for i, item in enumerate(inputs):
            v.check_name(item.dataset, f"inputs[{i}].dataset")
            v.check_name(item.version, f"inputs[{i}].version")
        self.store.log_inputs(run_id, list(inputs))

    def log_result(self, run_id: str, key: str, value: Any) -> None:
        v.check_key(key, "result")
        self.store.log_result(run_id, key, to_json_value(value, f"results.{key}"))

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
        return self.store.search_runs(
            experiment_ids,
            filter=filter,
            order_by=order_by,
            max_results=max_results,
            page_token=page_token,
            include_deleted=include_deleted,
        )

    def compare(self, run_ids: Sequence[str], metric_keys: Sequence[str] | None = None
                ) -> RunComparison:
        runs = [self.store.get_run(r) for r in run_ids]
        keys = sorted({k for r in runs for k in r.metrics}) if metric_keys is None else metric_keys
        histories = {
            k: [self.store.get_metric_history(r.run_id, k) if k in r.metrics else None
                for r in runs]
            for k in keys
        }
        return compare_runs(runs, histories)

    # --- artifacts ------------------------------------------------------------------------
    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[Artifact]:
        """Store a file or a folder under *artifact_path* (default: its own name)."""
        src = Path(local_path)
        if not src.exists():
            raise InvalidInputError(
                f"local path {str(src)!r} does not exist", details={"field": "local_path"}
            )
        base = v.check_artifact_path(artifact_path or src.name)
        files = [(src, base)] if src.is_file() else [
            (p, f"{base}/{p.relative_to(src).as_posix()}")
            for p in sorted(src.rglob("*")) if p.is_file()
        ]
        records = []
        for path, rel in files:
            rel = v.check_artifact_path(rel)
            digest, size = self.artifacts.put_file(str(path))
            records.append(Artifact(rel, digest, size))
        self.store.record_artifacts(run_id, records)
        return records

    def log_bytes(self, run_id: str, data: bytes, artifact_path: str) -> Artifact:
        path = v.check_artifact_path(artifact_path)
        digest, size = self.artifacts.put_bytes(data)
        record = Artifact(path, digest, size)
        self.store.record_artifacts(run_id, [record])
        return record

    def record_artifacts(self, run_id: str, artifacts: Sequence[Artifact]) -> None:
        """Add entries for objects stored already (how a remote client logs artifacts): each path
        must stay inside the run, each object must exist, at the size given."""
        checked = []
        for i, item in enumerate(artifacts):
            path = v.check_artifact_path(item.path)
            try:
                size = self.artifacts.size(item.digest)
            except ArtifactNotFound:
                raise ArtifactNotFound(
                    f"artifacts[{i}]: no object with digest {item.digest}; upload it first",
                    details={"field": f"artifacts[{i}].digest", "digest": item.digest},
                ) from None
            if size != item.size:
                raise InvalidInputError(
                    f"artifacts[{i}].size: object {item.digest} has {size} bytes, not {item.size}",
                    details={"field": f"artifacts[{i}].size"},
                )
            checked.append(Artifact(path, item.digest, item.size))
        self.store.record_artifacts(run_id, checked)

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[Artifact]:
        if prefix:
            prefix = v.check_artifact_path(prefix)
        return self.store.list_artifacts(run_id, prefix)

    def find_artifact(self, run_id: str, path: str) -> Artifact:
        path = v.check_artifact_path(path)
        for a in self.store.list_artifacts(run_id, path):
            if a.path == path:
                return a
        raise ArtifactNotFound(
            f"run {run_id!r} has no artifact {path!r}", details={"run_id": run_id, "path": path}
        )

    def read_artifact(self, run_id: str, path: str) -> bytes:
        return self.artifacts.get_bytes(self.find_artifact(run_id, path).digest)

    def download_artifacts(self, run_id: str, path: str, dest: str | os.PathLike[str]) -> Path:
        """Copy an artifact file, or every file under a folder, to *dest*; returns the local path.

        Each object's digest is checked while copying."""
        dest = Path(dest)
        if path:
            path = v.check_artifact_path(path)
        items = self.store.list_artifacts(run_id, path)
        if not items:
            raise ArtifactNotFound(
                f"run {run_id!r} has no artifact {path!r}", details={"run_id": run_id, "path": path}
            )
        for a in items:
            target = dest / a.path  # a.path passed check_artifact_path: no '..', not absolute
            self.artifacts.get_file(a.digest, str(target))
        return dest / path if path else dest


def to_json_value(value: Any, field: str) -> JSONValue:
    """Plain JSON types from *value* (NumPy arrays and scalars included)."""
    try:
        return orjson.loads(
            orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
        )
    except TypeError as exc:
        raise InvalidInputError(f"{field}: not JSON-serialisable: {exc}",
                                details={"field": field}) from None


_ADJECTIVES = ["brave", "calm", "eager", "fair", "keen", "lucid", "merry", "noble", "quick",
               "sunny", "tidy", "vivid", "witty", "bold", "crisp", "gentle"]
_NOUNS = ["otter", "falcon", "maple", "comet", "river", "cedar", "lynx", "harbor", "meadow",
          "quartz", "tiger", "willow", "ember", "orbit", "sparrow", "delta"]


def _default_run_name() -> str:
    n = int.from_bytes(os.urandom(4), "big")
    return f"{_ADJECTIVES[n % 16]}-{_NOUNS[(n >> 4) % 16]}-{(n >> 8) % 1000:03d}"
