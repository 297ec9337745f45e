"""The store interfaces every backend implements: SQL (embedded SQLite or PostgreSQL) and REST.

Services and the SDK only see these classes; ``mlcycle.client`` picks the implementation from a URI.
Each implementation must pass ``mlcycle.testing.check_tracking_store``.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import IO, Any

from mlcycle.entities import Artifact, Experiment, Metric, MetricHistory, Page, Run, RunInput
from mlcycle.types import UNSET, JSONValue, RunStatus, Unset

__all__ = ["ArtifactStore", "TrackingStore"]


class TrackingStore(abc.ABC):
    """Metadata of experiments and runs. Inputs arrive validated by the tracking service."""

    # experiments ---------------------------------------------------------------------------
    @abc.abstractmethod
    def create_experiment(
        self, name: str, *, description: str | None = None, tags: Mapping[str, str] | None = None
    ) -> Experiment: ...

    @abc.abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment: ...

    @abc.abstractmethod
    def find_experiment(self, name: str) -> Experiment | None: ...

    @abc.abstractmethod
    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]: ...

    @abc.abstractmethod
    def update_experiment(
        self,
        experiment_id: str,
        *,
        name: str | Unset = UNSET,
        description: str | Unset | None = UNSET,
        lifecycle: str | Unset = UNSET,
    ) -> Experiment: ...

    # runs ----------------------------------------------------------------------------------
    @abc.abstractmethod
    def create_run(
        self,
        experiment_id: str,
        *,
        name: str,
        start_time: int,
        parent_run_id: str | None = None,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Run: ...

    @abc.abstractmethod
    def get_run(self, run_id: str) -> Run: ...

    @abc.abstractmethod
    def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus | Unset = UNSET,
        end_time: int | Unset | None = UNSET,
        name: str | Unset = UNSET,
        lifecycle: str | Unset = UNSET,
    ) -> None:
        """Change the given fields (``UNSET`` leaves one alone). Returns nothing: ending a run is
        on every run's path, and re-reading it there would double the cost."""

    @abc.abstractmethod
    def delete_run(self, run_id: str, *, hard: bool = False) -> None:
        """Soft-delete (``lifecycle='deleted'``, restorable) or, with ``hard``, remove the rows."""

    @abc.abstractmethod
    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Append metric points and set params and tags in one transaction.

        A param may be set once; setting it again to another value raises InvalidInputError.
        """

    @abc.abstractmethod
    def delete_tag(self, run_id: str, key: str) -> None: ...

    @abc.abstractmethod
    def get_metric_history(self, run_id: str, key: str) -> MetricHistory: ...

    @abc.abstractmethod
    def log_inputs(self, run_id: str, inputs: Sequence[RunInput]) -> None: ...

    @abc.abstractmethod
    def log_result(self, run_id: str, key: str, value: JSONValue) -> None: ...

    @abc.abstractmethod
    def search_runs(
        self,
        experiment_ids: Sequence[str] | None = None,
        *,
        filter: str = "",
        order_by: Sequence[str] = (),
        max_results: int = 100,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> Page[Run]: ...

    # artifact manifest (the bytes live in an ArtifactStore) ---------------------------------
    @abc.abstractmethod
    def record_artifacts(self, run_id: str, artifacts: Sequence[Artifact]) -> None: ...

    @abc.abstractmethod
    def list_artifacts(self, run_id: str, prefix: str = "") -> list[Artifact]: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class ArtifactStore(abc.ABC):
    """Content-addressed bytes: each object is stored once under its BLAKE3 digest."""

    @abc.abstractmethod
    def put_file(self, path: str, *, digest: str | None = None) -> tuple[str, int]:
        """Store a local file; returns ``(digest, size)``."""

    @abc.abstractmethod
    def put_bytes(self, data: bytes) -> tuple[str, int]: ...

    @abc.abstractmethod
    def exists(self, digest: str) -> bool: ...

    @abc.abstractmethod
    def open(self, digest: str) -> IO[bytes]: ...

    def size(self, digest: str) -> int:
        """The object's size in bytes; ArtifactNotFound when there is none."""
        with self.open(digest) as fh:
            return len(fh.read()) if not fh.seekable() else fh.seek(0, 2)

    def get_bytes(self, digest: str) -> bytes:
        with self.open(digest) as fh:
            return fh.read()

    @abc.abstractmethod
    def get_file(self, digest: str, dest: str) -> None: ...

    def describe(self) -> dict[str, Any]:
        return {"kind": type(self).__name__}

