"""mlcycle: the whole machine-learning lifecycle in one package.

>>> import mlcycle as mc
>>> with mc.start_run(experiment="iris", params={"C": 1.0}) as run:   # doctest: +SKIP
...     for epoch in range(10):
...         run.log_metric("loss", 1 / (epoch + 1), step=epoch)
...     run.log_artifact("model.pkl")

Nothing to start: runs go to ``./.mlcycle`` (SQLite + a folder) unless ``MLCYCLE_TRACKING_URI``
points at PostgreSQL or an ``mlcycle server``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from mlcycle import data, errors
from mlcycle.client import ActiveRun, Client, active_run, require_active_run
from mlcycle.config import Settings, load_settings
from mlcycle.entities import Artifact, Experiment, Metric, MetricHistory, Page, Run, RunInput
from mlcycle.errors import MlcycleError
from mlcycle.pipelines import step
from mlcycle.types import RunStatus

__version__ = "0.1.0"

__all__ = [
    "ActiveRun",
    "Artifact",
    "Client",
    "Experiment",
    "Metric",
    "MetricHistory",
    "MlcycleError",
    "Page",
    "Run",
    "RunInput",
    "RunStatus",
    "Settings",
    "__version__",
    "active_run",
    "autolog",
    "data",
    "errors",
    "get_client",
    "get_run",
    "load_model",
    "log_artifact",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "log_result",
    "pipeline",
    "register_model",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
    "step",
    "sweep",
]

_lock = threading.Lock()
_client: Client | None = None
_tracking_uri: str | None = None
_experiment: str | None = None


def get_client() -> Client:
    """The client the module-level functions use (made from the settings on first use)."""
    global _client
    with _lock:
        if _client is None:
            _client = Client(_tracking_uri, settings=load_settings())
        return _client


def set_tracking_uri(uri: str | None) -> None:
    """Point the module-level functions at another store (``None``: back to the settings)."""
    global _client, _tracking_uri
    with _lock:
        if _client is not None:
            _client.close()
        _client = None
        _tracking_uri = uri


def set_experiment(name: str) -> Experiment:
    """Make *name* (created if needed) the default experiment of ``start_run``."""
    global _experiment
    exp = get_client().get_or_create_experiment(name)
    _experiment = name
    return exp


def start_run(
    name: str | None = None,
    *,
    experiment: str | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    nested: bool = True,
    log_system: bool = True,
    run_id: str | None = None,
) -> ActiveRun:
    """Start a run; ``with mc.start_run() as run:`` ends it with the block's outcome."""
    return get_client().start_run(
        experiment=experiment or _experiment, name=name, params=params, tags=tags,
        nested=nested, log_system=log_system, run_id=run_id,
    )


def log_metric(key: str, value: float, step: int = 0) -> None:
    require_active_run().log_metric(key, value, step)


def log_metrics(metrics: Mapping[str, float], step: int = 0) -> None:
    require_active_run().log_metrics(metrics, step)


def log_param(key: str, value: Any) -> None:
    require_active_run().log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    require_active_run().log_params(params)


def set_tag(key: str, value: Any) -> None:
    require_active_run().set_tag(key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    require_active_run().set_tags(tags)


def log_artifact(local_path: str, artifact_path: str | None = None) -> list[Artifact]:
    return require_active_run().log_artifact(local_path, artifact_path)


def log_result(key: str, value: Any) -> None:
    require_active_run().log_result(key, value)


def log_input(dataset: str, version: str, **kwargs: Any) -> None:
    require_active_run().log_input(dataset, version, **kwargs)


def log_model(model: Any, artifact_path: str = "model", **save_options: Any) -> Any:
    """Save *model* (scikit-learn, XGBoost, LightGBM, PyTorch, ONNX or a Python class) into
    the active run, with its signature and file hashes; returns its ModelInfo."""
    return require_active_run().log_model(model, artifact_path, **save_options)


def register_model(source: str, name: str, **options: Any) -> Any:
    """``mc.register_model(info.model_uri, "churn")``: the next version of a registered model,
    with the run's lineage (datasets, commit)."""
    return get_client().register_model(source, name, **options)


def load_model(uri: str, *, device: str | None = None) -> Any:
    """``mc.load_model("models:/churn@production")`` (or ``runs:/…``, or a folder), verified
    against its recorded hashes before anything is unpickled."""
    return get_client().load_model(uri, device=device)


def get_run(run_id: str) -> Run:
    return get_client().get_run(run_id)


def search_runs(
    filter: str = "",
    *,
    experiments: Sequence[str] | None = None,
    order_by: Sequence[str] = (),
    max_results: int = 100,
    page_token: str | None = None,
) -> Page[Run]:
    """``mc.search_runs("metrics.rmse < 0.5 and params.model = 'rf'", experiments=["iris"])``"""
    return get_client().search_runs(
        experiments=experiments, filter=filter, order_by=order_by,
        max_results=max_results, page_token=page_token,
    )


def autolog(*, disable: bool = False, log_models: bool = True) -> None:
    """Log params, training metrics and the fitted model of every scikit-learn ``fit``."""
    from mlcycle.integrations import sklearn

    if disable:
        sklearn.disable()
    else:
        sklearn.enable(log_models=log_models)


def pipeline(fn: Any = None, /, **options: Any) -> Any:
    """``@mc.pipeline``: a function that calls ``@mc.step`` functions becomes a pipeline;
    calling it runs it (cached, recorded, in parallel where steps are independent) on the
    SDK's client and experiment. See ``mlcycle.pipelines``."""
    from mlcycle import pipelines

    options.setdefault("client", get_client)
    options.setdefault("experiment", lambda: _experiment)
    return pipelines.pipeline(fn, **options)


def sweep(objective: Any, space: Mapping[str, Any], n_trials: int = 20, **options: Any) -> Any:
    """Tune *objective* over *space* with Optuna (``sampler="tpe"|"random"|"grid"``,
    ``pruner=``, ``executor=``); every trial is a nested run. See ``mlcycle.pipelines.sweeps``.
    """
    from mlcycle import pipelines

    client = options.pop("client", None) or get_client()
    options.setdefault("experiment", _experiment)
    return pipelines.sweep(objective, space, n_trials, client=client, **options)
