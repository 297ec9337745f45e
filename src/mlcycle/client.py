"""``Client``: one object for everything tracking, over the embedded store or a remote server.

The tracking URI picks the stores: ``sqlite:///…`` or ``postgresql+psycopg://…`` use the SQL store
and an fsspec artifact store in this process; ``http(s)://…`` talks to an ``mlcycle server``. The
code that uses a ``Client`` is the same either way.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import orjson

from mlcycle.config import Settings, load_settings
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
from mlcycle.errors import ExperimentNotFound, InvalidInputError, InvalidStateError
from mlcycle.registry.service import RegistryService
from mlcycle.store.base import (
    ArtifactStore,
    DatasetStore,
    DeploymentStore,
    LockStore,
    ModelRegistryStore,
    MonitorStore,
    PipelineStore,
    TrackingStore,
    TriggerStore,
)
from mlcycle.tracking import validation as v
from mlcycle.tracking.compare import RunComparison
from mlcycle.tracking.service import TrackingService
from mlcycle.tracking.system import capture
from mlcycle.tracking.writer import MetricWriter
from mlcycle.types import RunStatus

if TYPE_CHECKING:
    from mlcycle.datasets.service import DataService
    from mlcycle.deploy.service import DeploymentService
    from mlcycle.monitoring.service import MonitorService

__all__ = [
    "ActiveRun",
    "Client",
    "active_run",
    "open_dataset_store",
    "open_deployment_store",
    "open_lock_store",
    "open_monitor_store",
    "open_pipeline_store",
    "open_registry_store",
    "open_stores",
    "open_trigger_store",
]

_active: contextvars.ContextVar[tuple[ActiveRun, ...]] = contextvars.ContextVar(
    "mlcycle_active_runs", default=()
)


def active_run() -> ActiveRun | None:
    """The innermost run started with ``with ... start_run()`` in this context, if any."""
    stack = _active.get()
    return stack[-1] if stack else None


def open_stores(settings: Settings, tracking_uri: str | None = None,
                artifact_uri: str | None = None) -> tuple[TrackingStore, ArtifactStore]:
    """The tracking and artifact stores a URI names."""
    uri = tracking_uri or settings.resolved_tracking_uri
    if uri.startswith(("http://", "https://")):
        from mlcycle.store.rest import RestArtifactStore, RestTrackingStore, http_client

        token = settings.token.get_secret_value() if settings.token else None
        http = http_client(uri, token=token)
        return RestTrackingStore(http), RestArtifactStore(http)
    from mlcycle.store.artifacts import FsspecArtifactStore
    from mlcycle.store.sql import SqlTrackingStore

    if not uri.startswith(("sqlite:", "postgresql:", "postgresql+")):
        raise InvalidInputError(
            f"tracking_uri: expected sqlite:///…, postgresql+psycopg://… or http(s)://…, "
            f"got {uri!r}",
            details={"field": "tracking_uri"},
        )

    return (
        SqlTrackingStore.from_uri(uri),
        FsspecArtifactStore(artifact_uri or settings.resolved_artifact_uri,
                            **settings.artifact_options),
    )


def open_dataset_store(tracking: TrackingStore) -> DatasetStore:
    """The dataset store beside a tracking store: the same database, or the same server."""
    from mlcycle.store.sql import SqlTrackingStore

    if isinstance(tracking, SqlTrackingStore):
        from mlcycle.store.sql.datasets import SqlDatasetStore

        return SqlDatasetStore(tracking.engine)
    from mlcycle.store.rest import RestTrackingStore

    if isinstance(tracking, RestTrackingStore):
        from mlcycle.store.rest.datasets import RestDatasetStore

        return RestDatasetStore(tracking.http)
    raise InvalidStateError(f"no dataset store goes with {type(tracking).__name__}")


def open_registry_store(tracking: TrackingStore) -> ModelRegistryStore:
    """The model registry beside a tracking store: the same database, or the same server."""
    from mlcycle.store.sql import SqlTrackingStore

    if isinstance(tracking, SqlTrackingStore):
        from mlcycle.store.sql.registry import SqlModelRegistryStore

        return SqlModelRegistryStore(tracking.engine)
    from mlcycle.store.rest import RestTrackingStore

    if isinstance(tracking, RestTrackingStore):
        from mlcycle.store.rest.registry import RestModelRegistryStore

        return RestModelRegistryStore(tracking.http)
    raise InvalidStateError(f"no model registry goes with {type(tracking).__name__}")


def open_pipeline_store(tracking: TrackingStore) -> PipelineStore:
    """The pipeline records beside a tracking store: the same database, or the same server."""
    from mlcycle.store.sql import SqlTrackingStore

    if isinstance(tracking, SqlTrackingStore):
        from mlcycle.store.sql.pipelines import SqlPipelineStore

        return SqlPipelineStore(tracking.engine)
    from mlcycle.store.rest import RestTrackingStore

    if isinstance(tracking, RestTrackingStore):
        from mlcycle.store.rest.pipelines import RestPipelineStore

        return RestPipelineStore(tracking.http)
    raise InvalidStateError(f"no pipeline store goes with {type(tracking).__name__}",
                            details={"store": type(tracking).__name__})


def open_deployment_store(tracking: TrackingStore) -> DeploymentStore:
    """The deployment state beside a tracking store: the same database, or the same server."""
    from mlcycle.store.sql import SqlTrackingStore

    if isinstance(tracking, SqlTrackingStore):
        from mlcycle.store.sql.deployments import SqlDeploymentStore

        return SqlDeploymentStore(tracking.engine)
    from mlcycle.store.rest import RestTrackingStore

    if isinstance(tracking, RestTrackingStore):
        from mlcycle.store.rest.deployments import RestDeploymentStore

        return RestDeploymentStore(tracking.http)
    raise InvalidStateError(f"no deployment store goes with {type(tracking).__name__}",
                            details={"store": type(tracking).__name__})


def open_monitor_store(tracking: TrackingStore) -> MonitorStore:
    """The monitors beside a tracking store: the same database, or the same server."""
    from mlcycle.store.sql import SqlTrackingStore

    if isinstance(tracking, SqlTrackingStore):
        from mlcycle.store.sql.monitors import SqlMonitorStore

        return SqlMonitorStore(tracking.engine)
    from mlcycle.store.rest import RestTrackingStore

    if isinstance(tracking, RestTrackingStore):
        from mlcycle.store.rest.monitors import RestMonitorStore

        return RestMonitorStore(tracking.http)
    raise InvalidStateError(f"no monitor store goes with {type(tracking).__name__}",
                            details={"store": type(tracking).__name__})


def open_trigger_store(tracking: TrackingStore) -> TriggerStore:
    """The retraining triggers beside a tracking store: the same database, or the same server."""
    from mlcycle.store.sql import SqlTrackingStore

    if isinstance(tracking, SqlTrackingStore):
        from mlcycle.store.sql.triggers import SqlTriggerStore

        return SqlTriggerStore(tracking.engine)
    from mlcycle.store.rest import RestTrackingStore

    if isinstance(tracking, RestTrackingStore):
        from mlcycle.store.rest.triggers import RestTriggerStore

        return RestTriggerStore(tracking.http)
    raise InvalidStateError(f"no trigger store goes with {type(tracking).__name__}",
                            details={"store": type(tracking).__name__})


def open_lock_store(tracking: TrackingStore) -> LockStore:
    """Named locks in the database of a tracking store. A remote server has none to lend: a
    lock must outlive the process that takes it only in the database both processes share."""
    from mlcycle.store.sql import SqlTrackingStore

    if isinstance(tracking, SqlTrackingStore):
        from mlcycle.store.sql.locks import SqlLockStore

        return SqlLockStore(tracking.engine)
    raise InvalidStateError(
        f"no lock store goes with {type(tracking).__name__}: point the tracking URI at the "
        "database (sqlite:///… or postgresql+psycopg://…), not at a server",
        details={"store": type(tracking).__name__})


class Client:
    """``Client()`` reads ``MLCYCLE_*`` settings; ``Client("http://host:8080")`` talks to a server.

    >>> client = Client("sqlite:///runs.db", artifact_uri="artifacts")   # doctest: +SKIP
    >>> with client.start_run(experiment="iris", params={"C": 1.0}) as run:  # doctest: +SKIP
    ...     run.log_metric("accuracy", 0.97)
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        *,
        artifact_uri: str | None = None,
        settings: Settings | None = None,
        stores: tuple[TrackingStore, ArtifactStore] | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.tracking_uri = tracking_uri or self.settings.resolved_tracking_uri
        store, artifacts = stores or open_stores(self.settings, tracking_uri, artifact_uri)
        self.service = TrackingService(store, artifacts)
        self.writer = MetricWriter(
            store, interval=self.settings.flush_interval, batch=self.settings.flush_batch
        )
        self._data: DataService | None = None
        self._registry: RegistryService | None = None
        self._deployments: DeploymentService | None = None
        self._monitors: MonitorService | None = None

    @property
    def data(self) -> DataService:
        """The data stage (ingest, versions, contracts, validation, preparation) on this
        client's stores."""
        if self._data is None:
            from mlcycle.datasets.service import DataService

            self._data = DataService(
                open_dataset_store(self.service.store), self.service.artifacts,
                self.service.store, cache_dir=str(self.settings.home / "cache"))
        return self._data

    @property
    def registry(self) -> RegistryService:
        """The model registry on this client's stores; lineage comes from its runs."""
        if self._registry is None:
            self._registry = RegistryService(open_registry_store(self.service.store),
                                             self.service.store)
        return self._registry

    @property
    def deployments(self) -> DeploymentService:
        """Deployments (direct, blue-green, canary, shadow) of this client's registered models."""
        if self._deployments is None:
            from mlcycle.deploy.service import DeploymentService

            self._deployments = DeploymentService(open_deployment_store(self.service.store),
                                                  self.registry)
        return self._deployments

    @property
    def monitors(self) -> MonitorService:
        """Monitors of this client's deployments: drift, performance and operations over the
        prediction logs, results as time series, alerts."""
        if self._monitors is None:
            from mlcycle.monitoring.service import MonitorService

            self._monitors = MonitorService(
                open_monitor_store(self.service.store), deployments=self.deployments,
                data=self.data, log_uri=self.settings.resolved_prediction_log_uri,
                storage_options=self.settings.artifact_options)
        return self._monitors

    def close(self) -> None:
        self.writer.close()
        self.service.store.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.tracking_uri!r})"

    # --- experiments ----------------------------------------------------------------------
    def create_experiment(self, name: str, *, description: str | None = None,
                          tags: Mapping[str, Any] | None = None) -> Experiment:
        return self.service.create_experiment(name, description=description, tags=tags)

    def get_or_create_experiment(self, name: str) -> Experiment:
        return self.service.get_or_create_experiment(name)

    def get_experiment(self, name_or_id: str) -> Experiment:
        """An experiment by name, or else by id."""
        found = self.service.store.find_experiment(name_or_id)
        if found is not None:
            return found
        try:
            return self.service.get_experiment(name_or_id)
        except ExperimentNotFound:
            raise ExperimentNotFound(
                f"no experiment named {name_or_id!r} or with that id",
                details={"experiment": name_or_id},
            ) from None

    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]:
        return self.service.list_experiments(include_deleted=include_deleted)

    def rename_experiment(self, name_or_id: str, new_name: str) -> Experiment:
        exp = self.get_experiment(name_or_id)
        return self.service.update_experiment(exp.experiment_id, name=new_name)

    def delete_experiment(self, name_or_id: str) -> Experiment:
        return self.service.delete_experiment(self.get_experiment(name_or_id).experiment_id)

    def restore_experiment(self, experiment_id: str) -> Experiment:
        return self.service.restore_experiment(experiment_id)

    # --- runs -----------------------------------------------------------------------------
    def start_run(
        self,
        *,
        experiment: str | None = None,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        parent_run_id: str | None = None,
        nested: bool = True,
        log_system: bool = True,
        run_id: str | None = None,
    ) -> ActiveRun:
        """Start a run (or resume *run_id*); use it as a context manager.

        Inside another run's ``with`` block the new run is that run's child unless
        ``nested=False``. The block's outcome sets the status: finished, failed on an
        exception, killed on ``KeyboardInterrupt``.
        """
        if run_id is not None:
            run = self.service.update_run(run_id, status=RunStatus.RUNNING, end_time=None)
            return ActiveRun(self, run)
        parent = active_run()
        if parent_run_id is None and nested and parent is not None:
            parent_run_id = parent.run_id
            if experiment is None:
                experiment_id = parent.experiment_id
            else:
                experiment_id = self.service.resolve_experiment(experiment).experiment_id
        else:
            experiment_id = self.service.resolve_experiment(experiment).experiment_id
        run = self.service.create_run(
            experiment_id, name=name, parent_run_id=parent_run_id, params=params, tags=tags
        )
        active = ActiveRun(self, run)
        if log_system:
            active._log_system()
        return active

    def get_run(self, run_id: str) -> Run:
        return self.service.get_run(run_id)

    def end_run(self, run_id: str, status: RunStatus | str = RunStatus.FINISHED) -> Run:
        self.writer.flush(run_id)
        self.service.end_run(run_id, status)
        return self.service.get_run(run_id)

    def delete_run(self, run_id: str, *, hard: bool = False) -> None:
        self.service.delete_run(run_id, hard=hard)

    def restore_run(self, run_id: str) -> Run:
        return self.service.restore_run(run_id)

    def set_run_name(self, run_id: str, name: str) -> Run:
        return self.service.update_run(run_id, name=name)

    def log_batch(self, run_id: str, *, metrics: Iterable[Any] = (),
                  params: Mapping[str, Any] | None = None,
                  tags: Mapping[str, Any] | None = None) -> None:
        """Write points, params and tags now, in one transaction (durable on return)."""
        self.service.log_batch(run_id, metrics=metrics, params=params, tags=tags)

    def get_metric_history(self, run_id: str, key: str) -> MetricHistory:
        return self.service.get_metric_history(run_id, key)

    def search_runs(
        self,
        experiment_ids: Sequence[str] | None = None,
        *,
        experiments: Sequence[str] | None = None,
        filter: str = "",
        order_by: Sequence[str] = (),
        max_results: int = 100,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> Page[Run]:
        """Runs matching *filter* (``metrics.rmse < 0.5 and params.model = 'rf'``).

        ``experiments`` takes names or ids; ``experiment_ids`` ids; neither searches all.
        """
        ids = list(experiment_ids) if experiment_ids is not None else None
        if experiments is not None:
            ids = (ids or []) + [self.get_experiment(e).experiment_id for e in experiments]
        return self.service.search_runs(
            ids, filter=filter, order_by=order_by, max_results=max_results,
            page_token=page_token, include_deleted=include_deleted,
        )

    def compare_runs(self, run_ids: Sequence[str],
                     metric_keys: Sequence[str] | None = None) -> RunComparison:
        return self.service.compare(run_ids, metric_keys)

    # --- artifacts ------------------------------------------------------------------------
    def list_artifacts(self, run_id: str, prefix: str = "") -> list[Artifact]:
        return self.service.list_artifacts(run_id, prefix)

    def read_artifact(self, run_id: str, path: str) -> bytes:
        return self.service.read_artifact(run_id, path)

    def download_artifacts(self, run_id: str, path: str = "",
                           dest: str | os.PathLike[str] = ".") -> Path:
        return self.service.download_artifacts(run_id, path, dest)

    # --- models ---------------------------------------------------------------------------
    def log_model(self, run_id: str, model: Any, artifact_path: str = "model",
                  **save_options: Any) -> Any:
        """Save *model* (any supported flavor) as artifacts of a run; returns its ModelInfo
        (``model_uri`` is ``runs:/<run_id>/<artifact_path>``)."""
        from mlcycle.models import log_model

        return log_model(self, model, artifact_path, run_id=run_id, **save_options)

    def register_model(self, source: str, name: str, **options: Any) -> Any:
        """Register the model logged at *source* (``runs:/<run_id>/<path>``) as the next version
        of *name*. Its manifest digest, flavor and signature are read from the run's artifacts
        (and pin every byte of it); lineage comes from the run (see RegistryService)."""
        from mlcycle.models.runs import parse_runs_uri

        run_id, path = parse_runs_uri(source)
        manifest_path = f"{path}/model.json" if path else "model.json"
        found = [a for a in self.list_artifacts(run_id, path) if a.path == manifest_path]
        if not found:
            raise InvalidInputError(
                f"{source} holds no saved model (no {manifest_path} in run {run_id})",
                details={"field": "source", "source": source})
        manifest = orjson.loads(self.read_artifact(run_id, manifest_path))
        options.setdefault("manifest_digest", found[0].digest)
        options.setdefault("flavor", manifest.get("flavor"))
        options.setdefault("signature", manifest.get("signature"))
        return self.registry.register_model(name, source, run_id=run_id, **options)

    def evaluate_model(self, uri: str, data: Any, *, target: str, gates: Any = None,
                       baseline: str | None = "production", segments: Any = None,
                       store: bool = True) -> tuple[Any, Any]:
        """Evaluate a model on a holdout; returns ``(EvaluationResult, GateReport | None)``.

        *data*: a dataset version ref (its segments, or those of the data it was prepared
        from, apply unless *segments* is given) or a
        frame. *baseline*: the alias whose version the candidate is compared with on the same
        rows (skipped when the alias is missing). *gates*: a GateSet or its
        YAML text. With *store*, the result and the gate report are kept on the model version.
        """
        from mlcycle.errors import ModelAliasNotFound
        from mlcycle.evaluation import GateSet, evaluate

        candidate = self.registry.resolve(uri) if uri.startswith("models:/") else None
        model = self.load_model(uri)
        frame = data
        data_ref = None
        if isinstance(data, str):
            version = self.data.get_version(data)
            data_ref = version.ref
            frame = self.data.load(version, format="pandas")
            if segments is None:
                segments = self.data.segments_for(version)
        baseline_model = None
        if baseline and candidate is not None:
            try:
                base = self.registry.resolve(f"models:/{candidate.name}@{baseline}")
            except ModelAliasNotFound:
                base = None
            if base is not None:  # the production version itself compares equal to itself
                baseline_model = (model if base.version == candidate.version
                                  else self.load_model(base.uri))
        size = sum(f.size for f in model.info.files.values())
        result = evaluate(model, frame, target=target, segments=segments or (),
                          baseline=baseline_model, baseline_name=baseline or "production",
                          model_size=size)
        report = None
        if gates is not None:
            gate_set = gates if isinstance(gates, GateSet) else GateSet.from_yaml(gates)
            report = gate_set.check(result)
        if store and candidate is not None:
            self.registry.update_version(candidate.name, candidate.version, evaluation={
                "data": data_ref, "result": result.to_dict(),
                "gates": report.to_dict() if report is not None else None,
                "passed": report.passed if report is not None else None,
            })
        return result, report

    def load_model(self, uri: str, *, device: str | None = None) -> Any:
        """A model from ``models:/name@alias``, ``models:/name/3``, ``runs:/<id>/<path>`` or a
        folder; every file is checked against its recorded digest before it is read."""
        from mlcycle.models import load_model

        if uri.startswith("models:/"):
            version = self.registry.resolve(uri)
            return load_model(version.source, client=self, device=device,
                              expected_digest=version.manifest_digest)
        return load_model(uri, client=self, device=device)


class ActiveRun:
    """A run being logged to. Metrics are queued (non-blocking); params, tags and artifacts are
    written when called. Leaving the ``with`` block flushes and ends the run."""

    def __init__(self, client: Client, run: Run) -> None:
        self.client = client
        self.run_id = run.run_id
        self.experiment_id = run.experiment_id
        self.name = run.name
        self.info = run  # as it was when started
        self._token: contextvars.Token[tuple[ActiveRun, ...]] | None = None
        self._ended = False

    def __repr__(self) -> str:
        return f"ActiveRun(run_id={self.run_id!r}, name={self.name!r})"

    # context management ----------------------------------------------------------------------
    def __enter__(self) -> ActiveRun:
        self._token = _active.set((*_active.get(), self))
        _track_open(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            try:
                _active.reset(self._token)
            except ValueError:  # exited in another context than entered: drop it by hand
                _active.set(tuple(r for r in _active.get() if r is not self))
            self._token = None
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        try:
            self.end(status)
        except Exception:
            if exc_type is None:
                raise  # an error of our own; the block's error takes precedence otherwise

    def end(self, status: RunStatus | str = RunStatus.FINISHED) -> None:
        """Flush queued metrics and mark the run ended (idempotent)."""
        if self._ended:
            return
        self._ended = True
        _untrack(self)
        try:
            self.client.writer.flush(self.run_id)
        finally:
            self.client.service.end_run(self.run_id, status)

    def flush(self) -> None:
        """Block until every metric logged so far is stored."""
        self.client.writer.flush(self.run_id)

    # logging ---------------------------------------------------------------------------------
    def log_metric(self, key: str, value: float, step: int = 0, *,
                   timestamp: int | None = None) -> None:
        key, number, step = v.check_metric(key, value, step)
        self.client.writer.put(
            self.run_id, Metric(key, number, step, timestamp if timestamp else now_ms())
        )

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0, *,
                    timestamp: int | None = None) -> None:
        ts = timestamp if timestamp else now_ms()
        points = []
        for key, value in metrics.items():
            key, number, step = v.check_metric(key, value, step)
            points.append(Metric(key, number, step, ts))
        self.client.writer.put_many(self.run_id, points)

    def log_batch(self, *, metrics: Iterable[Any] = (), params: Mapping[str, Any] | None = None,
                  tags: Mapping[str, Any] | None = None) -> None:
        """Write now, in one transaction: durable when it returns."""
        self.client.log_batch(self.run_id, metrics=metrics, params=params, tags=tags)

    def log_param(self, key: str, value: Any) -> None:
        self.client.service.log_batch(self.run_id, params={key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.client.service.log_batch(self.run_id, params=params)

    def set_tag(self, key: str, value: Any) -> None:
        self.client.service.log_batch(self.run_id, tags={key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.client.service.log_batch(self.run_id, tags=tags)

    def log_artifact(self, local_path: str | os.PathLike[str],
                     artifact_path: str | None = None) -> list[Artifact]:
        """Store a file, or a folder with everything under it."""
        return self.client.service.log_artifact(self.run_id, local_path, artifact_path)

    log_artifacts = log_artifact

    def log_text(self, text: str, artifact_path: str) -> Artifact:
        return self.client.service.log_bytes(self.run_id, text.encode(), artifact_path)

    def log_bytes(self, data: bytes, artifact_path: str) -> Artifact:
        return self.client.service.log_bytes(self.run_id, data, artifact_path)

    def log_result(self, key: str, value: Any) -> None:
        """Free-form JSON (a confusion matrix, a report dict) stored with the run."""
        self.client.service.log_result(self.run_id, key, value)

    def log_model(self, model: Any, artifact_path: str = "model", **save_options: Any) -> Any:
        """Save *model* into this run (see ``Client.log_model``)."""
        return self.client.log_model(self.run_id, model, artifact_path, **save_options)

    def log_input(self, dataset: str, version: str, *, digest: str | None = None,
                  context: Mapping[str, Any] | None = None) -> None:
        """Record that this run read *version* of *dataset*."""
        self.client.service.log_inputs(
            self.run_id, [RunInput(dataset, version, digest, dict(context or {}))]
        )

    def _log_system(self) -> None:
        facts = capture()
        self.client.service.log_batch(self.run_id, tags=facts.tags)
        if facts.diff:
            self.client.service.log_bytes(self.run_id, facts.diff, "system/git.diff")
        self.client.service.log_bytes(self.run_id, facts.requirements,
                                      "system/requirements.txt")


# Runs entered but not ended when the interpreter exits normally are ended there: failed when
# an exception escaped to the top, finished otherwise.
_open_runs: dict[int, ActiveRun] = {}
_open_lock = threading.Lock()
_uncaught: list[BaseException] = []


def _track_open(run: ActiveRun) -> None:
    with _open_lock:
        if not _open_runs:
            _install_exit_hooks()
        _open_runs[id(run)] = run


def _untrack(run: ActiveRun) -> None:
    with _open_lock:
        _open_runs.pop(id(run), None)


_hooks_installed = False


def _install_exit_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    import atexit

    previous = sys.excepthook

    def _excepthook(tp: type[BaseException], value: BaseException, tb: TracebackType | None
                    ) -> None:
        _uncaught.append(value)
        previous(tp, value, tb)

    sys.excepthook = _excepthook

    def _end_open_runs() -> None:
        status = RunStatus.FAILED if _uncaught else RunStatus.FINISHED
        for run in list(_open_runs.values()):
            with contextlib.suppress(Exception):  # exiting: nothing left to report to
                run.end(status)

    atexit.register(_end_open_runs)


def require_active_run() -> ActiveRun:
    run = active_run()
    if run is None:
        raise InvalidStateError(
            "no active run: call inside `with mlcycle.start_run():` or start one first"
        )
    return run
