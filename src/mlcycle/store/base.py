"""The store interfaces every backend implements: SQL (embedded SQLite or PostgreSQL) and REST.

Services and the SDK only see these classes; ``mlcycle.client`` picks the implementation from a URI.
Each implementation must pass ``mlcycle.testing.check_tracking_store``.
"""

from __future__ import annotations

import abc
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import IO, Any

from mlcycle.entities import (
    Alert,
    Artifact,
    ColumnSchema,
    ContractVersion,
    Dataset,
    DatasetVersion,
    Deployment,
    DeploymentEvent,
    Experiment,
    Lock,
    Metric,
    MetricHistory,
    ModelEvent,
    ModelVersion,
    Monitor,
    MonitorResult,
    Page,
    PipelineRun,
    RegisteredModel,
    Run,
    RunInput,
    StepOutput,
    StepRun,
    Trigger,
    TriggerRun,
    WorkerReport,
)
from mlcycle.errors import InvalidInputError, InvalidStateError, StoreError
from mlcycle.types import UNSET, JSONValue, RunStatus, Unset

__all__ = [
    "ArtifactStore",
    "DatasetStore",
    "DeploymentStore",
    "LockStore",
    "ModelRegistryStore",
    "MonitorStore",
    "PipelineStore",
    "TrackingStore",
    "TriggerStore",
]


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

    def scratch_dir(self) -> str | None:
        """A local folder on the store's own filesystem for files about to be adopted (so
        ``adopt_file`` can link or rename them in, not copy); ``None`` when there is none."""
        return None

    # files a caller has hashed already (mlcycle.datasets.files) -----------------------------
    # The defaults copy, so every store works; a local store overrides them to hardlink,
    # which is what makes versioning a large folder cost a hash and no second write.

    def adopt_file(
        self,
        path: str,
        *,
        digest: str,
        size: int,
        link: str = "auto",
        mtime_ns: int | None = None,
    ) -> str:
        """Store a local file whose BLAKE3 *digest* the caller has just computed, without
        hashing it again; returns how: ``"hardlink"``, ``"copy"`` or ``"exists"``.

        *link* is ``"auto"`` (link where the store can, else copy), ``"hardlink"`` (link or
        raise StoreError) or ``"copy"`` (always an independent copy). *mtime_ns*, the
        modification time the file had when it was hashed, lets a store refuse a file that
        changed since. This default cannot link: it copies through ``put_file``, which hashes
        the file again (a remote store's upload costs far more) so that a file edited since it
        was hashed is refused rather than stored under a digest that is not its own.
        """
        check_link_mode(link)
        if link == "hardlink":
            raise StoreError(
                f"{type(self).__name__} cannot hardlink files; use link='auto' or 'copy'",
                details={"link": link},
            )
        if self.exists(digest):
            return "exists"
        stored, _ = self.put_file(path)
        if stored != digest:
            raise InvalidStateError(
                f"{path} changed after it was hashed; version it again", details={"path": path}
            )
        return "copy"

    def missing(self, digests: Iterable[str]) -> set[str]:
        """The digests among *digests* that have no object (one existence check each here)."""
        return {digest for digest in set(digests) if not self.exists(digest)}

    def materialize_file(
        self, digest: str, dest: str, *, link: str = "auto", executable: bool = False
    ) -> str:
        """Write the object *digest* at the local path *dest* (replacing a file there);
        returns ``"hardlink"`` or ``"copy"``. A copy is checked against its digest on the way
        (``get_file``). This default always copies."""
        check_link_mode(link)
        if link == "hardlink":
            raise StoreError(
                f"{type(self).__name__} cannot hardlink files; use link='auto' or 'copy'",
                details={"link": link},
            )
        self.get_file(digest, dest)
        if executable:
            mode = stat.S_IMODE(os.stat(dest).st_mode)
            os.chmod(dest, mode | ((mode & 0o444) >> 2))
        return "copy"


LINK_MODES = ("auto", "hardlink", "copy")


def check_link_mode(link: str) -> None:
    """Reject an unknown *link* value with the one wording every caller shares."""
    if link not in LINK_MODES:
        raise InvalidInputError(
            f"The 'link' parameter must be one of {', '.join(map(repr, LINK_MODES))}. "
            f"Got {link!r} instead.",
            details={"field": "link"},
        )



class DatasetStore(abc.ABC):
    """Metadata of datasets, their versions, contracts and segments (the bytes of snapshots,
    manifests and profiles live in an ArtifactStore, addressed by digest)."""

    @abc.abstractmethod
    def create_dataset(
        self, name: str, *, description: str | None = None, tags: Mapping[str, str] | None = None
    ) -> Dataset:
        """A new dataset; DatasetAlreadyExists when the name is taken."""

    @abc.abstractmethod
    def find_dataset(self, name: str) -> Dataset | None: ...

    def get_dataset(self, name: str) -> Dataset:
        from mlcycle.errors import DatasetNotFound

        found = self.find_dataset(name)
        if found is None:
            raise DatasetNotFound(f"no dataset named {name!r}", details={"dataset": name})
        return found

    @abc.abstractmethod
    def list_datasets(self) -> list[Dataset]: ...

    @abc.abstractmethod
    def set_segments(self, name: str, segments: Mapping[str, str | None]) -> Dataset:
        """Add or replace named segments (``name -> expression``); ``None`` removes one."""

    @abc.abstractmethod
    def create_version(
        self,
        dataset: str,
        *,
        kind: str,
        digest: str,
        num_rows: int | None,
        num_bytes: int,
        columns: Sequence[ColumnSchema] = (),
        source: Mapping[str, Any] | None = None,
        fingerprint: str | None = None,
        profile_digest: str | None = None,
        parents: Sequence[str] = (),
        code_hash: str | None = None,
        role: str = "data",
        run_id: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> tuple[DatasetVersion, bool]:
        """Record a version, creating the dataset on first use. Returns ``(version, created)``:
        when the dataset already has a version with this digest, that one and ``False``."""

    @abc.abstractmethod
    def get_version(self, dataset: str, version: int) -> DatasetVersion: ...

    @abc.abstractmethod
    def find_version_by_digest(self, dataset: str, digest: str) -> DatasetVersion | None: ...

    @abc.abstractmethod
    def list_versions(self, dataset: str) -> list[DatasetVersion]:
        """Every version of *dataset*, newest first."""

    @abc.abstractmethod
    def create_contract(
        self, dataset: str, body: str, *, source_version: str | None = None
    ) -> ContractVersion: ...

    @abc.abstractmethod
    def get_contract(self, dataset: str, version: int | None = None) -> ContractVersion:
        """The contract version *version*, or the newest one."""

    @abc.abstractmethod
    def list_contracts(self, dataset: str) -> list[ContractVersion]: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class ModelRegistryStore(abc.ABC):
    """Registered models, their numbered versions, aliases and the events that changed them.

    Every write takes the *actor* who made it, and stores the change and its event in one
    transaction: either both are kept or neither. A write that is refused (an unknown version,
    an archived target, a malformed alias) is recorded as a ``rejected`` event and changes
    nothing else. The store checks names and aliases itself (``check_model_name``,
    ``check_alias``), so the same rules hold however it is reached.
    """

    @abc.abstractmethod
    def create_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        actor: str | None = None,
    ) -> RegisteredModel:
        """A new model with no version yet; ModelAlreadyExists when the name is taken."""

    @abc.abstractmethod
    def find_model(self, name: str) -> RegisteredModel | None: ...

    def get_model(self, name: str) -> RegisteredModel:
        from mlcycle.errors import ModelNotFound

        found = self.find_model(name)
        if found is None:
            raise ModelNotFound(f"no model named {name!r}", details={"model": name})
        return found

    @abc.abstractmethod
    def list_models(self, *, name_contains: str | None = None) -> list[RegisteredModel]:
        """Models by name; *name_contains* keeps those whose name holds it (case ignored)."""

    @abc.abstractmethod
    def update_model(
        self,
        name: str,
        *,
        description: str | Unset | None = UNSET,
        tags: Mapping[str, str | None] | None = None,
        actor: str | None = None,
    ) -> RegisteredModel:
        """Change the description (``None`` clears it) or tags (a ``None`` value removes one)."""

    @abc.abstractmethod
    def create_version(
        self,
        name: str,
        *,
        source: str,
        run_id: str | None = None,
        manifest_digest: str | None = None,
        flavor: str | None = None,
        signature: Mapping[str, Any] | None = None,
        code_commit: str | None = None,
        datasets: Sequence[RunInput] = (),
        contract: str | None = None,
        evaluation: Mapping[str, JSONValue] | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        actor: str | None = None,
    ) -> ModelVersion:
        """Record the next version of *name* (the model is created with its first version).
        Numbers start at 1 and never repeat, however many writers register at once."""

    @abc.abstractmethod
    def get_version(self, name: str, version: int) -> ModelVersion: ...

    @abc.abstractmethod
    def list_versions(self, name: str, *, include_archived: bool = True) -> list[ModelVersion]:
        """The versions of *name*, newest first."""

    @abc.abstractmethod
    def update_version(
        self,
        name: str,
        version: int,
        *,
        description: str | Unset | None = UNSET,
        tags: Mapping[str, str | None] | None = None,
        evaluation: Mapping[str, JSONValue] | None = None,
        actor: str | None = None,
    ) -> ModelVersion:
        """Change the description or tags; *evaluation* adds (or replaces) result keys."""

    @abc.abstractmethod
    def set_version_status(
        self, name: str, version: int, status: str, *, actor: str | None = None
    ) -> ModelVersion:
        """Archive (``"archived"``) or restore (``"active"``) a version. Archiving a version an
        alias points at is refused (InvalidStateError): move or delete the alias first, so that
        nothing that follows the alias is left pointing at a retired model. Setting the status
        it has already is no change and writes no event."""

    @abc.abstractmethod
    def set_alias(
        self, name: str, alias: str, version: int, *, actor: str | None = None
    ) -> ModelVersion:
        """Point *alias* at *version* (moving it from where it was, in one transaction and one
        ``alias_set`` event). The version must exist and be active."""

    @abc.abstractmethod
    def delete_alias(self, name: str, alias: str, *, actor: str | None = None) -> int:
        """Remove *alias*; returns the version it pointed at. ModelAliasNotFound if unset."""

    @abc.abstractmethod
    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version *alias* points at; ModelAliasNotFound (naming the aliases there are)."""

    @abc.abstractmethod
    def list_events(
        self, name: str, *, version: int | None = None, max_results: int = 100
    ) -> list[ModelEvent]:
        """The events of model *name* (of one *version*, if given), newest first. Events of a
        name no model has are refused writes; they are listed too."""

    @abc.abstractmethod
    def log_event(
        self,
        name: str,
        kind: str,
        *,
        version: int | None = None,
        alias: str | None = None,
        details: Mapping[str, JSONValue] | None = None,
        actor: str | None = None,
    ) -> ModelEvent:
        """Record an event no store write made: a service's ``rejected`` write, found before
        it reached the store."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class PipelineStore(abc.ABC):
    """Records of pipeline runs and their step runs, and the lookup that makes caching work.

    A pipeline run's step runs are created together (``pending``) when it starts, then each is
    updated as it settles; ``find_cached_step_run`` answers "has a finished step run this cache
    key?" from an index, which is what a cached step costs.
    """

    @abc.abstractmethod
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
        """A new pipeline run, ``running``."""

    @abc.abstractmethod
    def update_pipeline_run(
        self,
        pipeline_run_id: str,
        *,
        status: str | Unset = UNSET,
        ended_at: int | Unset | None = UNSET,
        error: Mapping[str, Any] | Unset | None = UNSET,
    ) -> None: ...

    @abc.abstractmethod
    def get_pipeline_run(self, pipeline_run_id: str) -> PipelineRun:
        """The pipeline run; PipelineRunNotFound when there is none."""

    @abc.abstractmethod
    def list_pipeline_runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> Page[PipelineRun]:
        """Pipeline runs, newest first."""

    @abc.abstractmethod
    def create_step_runs(
        self, pipeline_run_id: str, nodes: Sequence[tuple[str, str, Sequence[str]]]
    ) -> list[StepRun]:
        """One ``pending`` step run per ``(node, step, upstream nodes)``, in one transaction."""

    @abc.abstractmethod
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
        """Change the given fields (``UNSET`` leaves one alone)."""

    @abc.abstractmethod
    def list_step_runs(self, pipeline_run_id: str) -> list[StepRun]:
        """The step runs of a pipeline run, in the order the pipeline called them."""

    @abc.abstractmethod
    def find_cached_step_run(self, cache_key: str) -> StepRun | None:
        """The newest ``finished`` step run with *cache_key*, if any."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class DeploymentStore(abc.ABC):
    """Deployment state, its history, and what serving workers report.

    Every change is a compare-and-set on ``revision`` written in one transaction with its
    :class:`DeploymentEvent`, so two controllers (one per serving worker) deciding at the same
    moment cannot both apply a decision: the second gets ``RevisionConflict``.
    """

    @abc.abstractmethod
    def create_deployment(
        self,
        name: str,
        *,
        model: str,
        version: int,
        config: Mapping[str, JSONValue] | None = None,
        description: str = "",
        actor: str | None = None,
        reason: str = "",
    ) -> Deployment:
        """A new deployment serving *model* version *version* (``stable``, revision 1), with a
        ``created`` event (its reason *reason*, or one the store words); ``DeploymentAlreadyExists``
        when the name is taken."""

    @abc.abstractmethod
    def get_deployment(self, name: str) -> Deployment:
        """The deployment; ``DeploymentNotFound`` when there is none. Cheap (one row by key):
        serving workers call it to poll."""

    @abc.abstractmethod
    def list_deployments(self) -> list[Deployment]:
        """All deployments, by name."""

    @abc.abstractmethod
    def update_deployment(
        self,
        name: str,
        *,
        expected_revision: int,
        event: str,
        reason: str = "",
        details: Mapping[str, JSONValue] | None = None,
        actor: str | None = None,
        stable_version: int | Unset = UNSET,
        candidate_version: int | Unset | None = UNSET,
        previous_version: int | Unset | None = UNSET,
        strategy: str | Unset = UNSET,
        phase: str | Unset = UNSET,
        weight: float | Unset = UNSET,
        step: int | Unset = UNSET,
        rollout: int | Unset = UNSET,
        config: Mapping[str, JSONValue] | Unset = UNSET,
        description: str | Unset = UNSET,
    ) -> Deployment:
        """Change the given fields (``UNSET`` leaves one alone), bump the revision and record
        *event* — all or nothing. ``RevisionConflict`` when the stored revision is not
        *expected_revision*. An update that changes no field still records the event (a
        controller ``decision``) but keeps the revision."""

    @abc.abstractmethod
    def delete_deployment(self, name: str) -> None:
        """Remove the deployment, its events and worker reports."""

    @abc.abstractmethod
    def list_deployment_events(
        self, name: str, *, max_results: int = 100
    ) -> list[DeploymentEvent]:
        """The deployment's events, newest first."""

    @abc.abstractmethod
    def report_worker(self, report: WorkerReport) -> None:
        """Insert or replace what worker ``report.worker_id`` says about its deployment."""

    @abc.abstractmethod
    def list_worker_reports(self, name: str) -> list[WorkerReport]:
        """The last report of every worker that has served *name*, newest heartbeat first."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class MonitorStore(abc.ABC):
    """Monitors of deployments, their results (a time series) and the alerts they fired.

    Results and alerts are append-only. Storing a result also sets the monitor's
    ``last_run_at`` and ``status``, in the same transaction, so the scheduler and the next
    run's verdict-change check read one row.
    """

    @abc.abstractmethod
    def create_monitor(self, monitor: Monitor) -> Monitor:
        """Store *monitor* (its ``created_at``/``updated_at``, ``last_run_at`` and ``status``
        are the store's: now, now, ``None``, ``None``); ``MonitorAlreadyExists`` when the name
        is taken."""

    @abc.abstractmethod
    def get_monitor(self, name: str) -> Monitor:
        """The monitor; ``MonitorNotFound`` when there is none."""

    @abc.abstractmethod
    def list_monitors(self, *, deployment: str | None = None) -> list[Monitor]:
        """All monitors (of *deployment*), by name."""

    @abc.abstractmethod
    def set_monitor_enabled(self, name: str, enabled: bool) -> Monitor:
        """Pause (``False``) or resume the scheduled runs of a monitor."""

    @abc.abstractmethod
    def delete_monitor(self, name: str) -> None:
        """Remove the monitor, its results and its alerts."""

    @abc.abstractmethod
    def log_result(self, result: MonitorResult) -> MonitorResult:
        """Append *result* (its ``result_id`` is the store's) and set the monitor's
        ``last_run_at`` and ``status`` from it."""

    @abc.abstractmethod
    def list_results(
        self,
        name: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        max_results: int = 100,
    ) -> list[MonitorResult]:
        """The monitor's results run in [*since*, *until*), newest first."""

    @abc.abstractmethod
    def log_alert(self, alert: Alert) -> Alert:
        """Append *alert* (its ``alert_id`` is the store's)."""

    @abc.abstractmethod
    def list_alerts(self, name: str, *, max_results: int = 100) -> list[Alert]:
        """The monitor's alerts, newest first."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class TriggerStore(abc.ABC):
    """Retraining triggers of deployments and their runs.

    The store keeps the guards, so two schedulers (or a scheduler and a person) firing at the
    same moment cannot both retrain: :meth:`start_run` inserts the run as ``running`` only when
    no run of the same deployment is running and the trigger's last run that ran started more
    than ``cooldown_s`` ago, in one transaction; otherwise it stores the run as ``skipped`` with
    the reason. Runs are never deleted with their outcome unrecorded.
    """

    @abc.abstractmethod
    def create_trigger(self, trigger: Trigger) -> Trigger:
        """Store *trigger* (``created_at``/``updated_at`` are the store's);
        ``TriggerAlreadyExists`` when the name is taken."""

    @abc.abstractmethod
    def get_trigger(self, name: str) -> Trigger:
        """The trigger; ``TriggerNotFound`` when there is none."""

    @abc.abstractmethod
    def list_triggers(self, *, deployment: str | None = None) -> list[Trigger]:
        """All triggers (of *deployment*), by name."""

    @abc.abstractmethod
    def update_trigger(
        self,
        name: str,
        *,
        enabled: bool | Unset = UNSET,
        seen_version: int | Unset | None = UNSET,
    ) -> Trigger:
        """Pause or resume the trigger, or move the newest dataset version it reacted to."""

    @abc.abstractmethod
    def delete_trigger(self, name: str) -> None:
        """Remove the trigger and its runs; ``InvalidStateError`` while one is running."""

    @abc.abstractmethod
    def start_run(self, run: TriggerRun, *, cooldown_s: int) -> TriggerRun:
        """Store a run of ``run.trigger`` started at ``run.started_at`` (its ``run_id``,
        ``deployment`` and ``status`` are the store's): ``running`` when the guards allow it,
        ``skipped`` with the reason otherwise (see the class docstring)."""

    @abc.abstractmethod
    def update_run(
        self,
        run_id: int,
        *,
        status: str | Unset = UNSET,
        ended_at: datetime | Unset | None = UNSET,
        reason: str | Unset = UNSET,
        data: Mapping[str, JSONValue] | Unset = UNSET,
        pipeline_run_id: str | Unset | None = UNSET,
        training_run_id: str | Unset | None = UNSET,
        model: str | Unset | None = UNSET,
        model_version: int | Unset | None = UNSET,
        gates: Mapping[str, JSONValue] | Unset = UNSET,
        rollout: int | Unset | None = UNSET,
    ) -> TriggerRun:
        """Record progress of a ``running`` run (``UNSET`` leaves a field alone);
        ``InvalidStateError`` when the run has ended already, so an outcome is never
        overwritten."""

    @abc.abstractmethod
    def get_run(self, run_id: int) -> TriggerRun:
        """The run; ``TriggerRunNotFound`` when there is none."""

    @abc.abstractmethod
    def list_runs(
        self,
        trigger: str | None = None,
        *,
        deployment: str | None = None,
        max_results: int = 100,
    ) -> list[TriggerRun]:
        """Runs (of *trigger*, of *deployment*), newest first."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class LockStore(abc.ABC):
    """Named locks, one holder each: :meth:`acquire_lock` is one conditional insert, so of two
    processes asking at the same moment exactly one gets the lock. Deciding that a holder is
    gone (and breaking its lock) is the caller's; :meth:`break_lock` removes only the holding
    it was shown, so two breakers cannot both win."""

    @abc.abstractmethod
    def acquire_lock(self, lock: Lock) -> Lock:
        """Take *lock* when nobody holds its name; returns the holder after the attempt:
        *lock* itself on success, else whoever holds it."""

    @abc.abstractmethod
    def find_lock(self, name: str) -> Lock | None: ...

    @abc.abstractmethod
    def break_lock(self, held: Lock) -> bool:
        """Remove *held* if it still holds its name (same owner, process and time);
        False when it had changed hands or was released meanwhile."""

    def release_lock(self, held: Lock) -> bool:
        """Give back a lock this process holds (the same as breaking it)."""
        return self.break_lock(held)
