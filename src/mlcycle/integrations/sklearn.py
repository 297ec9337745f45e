"""scikit-learn autologging.

``enable()`` wraps the ``fit`` of every estimator class scikit-learn lists. The outermost ``fit`` of
a call chain (a ``Pipeline`` fitting its steps counts once) logs, to the active run or to a new run
named after the estimator:

- params: ``get_params(deep=True)`` with values made strings (nested estimators by class name);
- metrics: ``training_score`` and, for classifiers, ``training_accuracy``, ``training_precision``,
  ``training_recall``, ``training_f1`` (weighted), for regressors ``training_r2``,
  ``training_rmse``, ``training_mae`` — computed on the data passed to ``fit``;
- the fitted model as ``model/model.pkl`` (pickle; the artifact store keeps its BLAKE3 digest,
  checked again on download) and ``model/estimator.txt`` with its repr.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import pickle
from collections.abc import Callable
from typing import Any

from mlcycle.client import active_run

__all__ = ["disable", "enable", "is_enabled"]

_patched: dict[type, Callable[..., Any]] = {}
_in_fit: contextvars.ContextVar[bool] = contextvars.ContextVar("mlcycle_in_fit", default=False)
_options = {"log_models": True}
# Label encoders are fitted inside scikit-learn's own metric functions: not user training.
_SKIP_MODULES = {"sklearn.preprocessing._label"}


def is_enabled() -> bool:
    return bool(_patched)


def enable(*, log_models: bool = True) -> None:
    from sklearn.utils import all_estimators

    _options["log_models"] = log_models
    for _, estimator in all_estimators():
        # Patch the class that defines fit (often an abstract base such as BaseForest).
        owner = next((c for c in estimator.__mro__ if "fit" in c.__dict__), None)
        if owner is None or owner in _patched or owner.__module__ in _SKIP_MODULES:
            continue
        fit = owner.__dict__["fit"]
        if getattr(fit, "__mlcycle_autolog__", False):
            continue
        _patched[owner] = fit
        owner.fit = _wrap(fit)


def disable() -> None:
    for cls, fit in _patched.items():
        cls.fit = fit  # type: ignore[attr-defined]
    _patched.clear()


def _wrap(fit: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fit)
    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _in_fit.get():
            return fit(self, *args, **kwargs)
        X = args[0] if args else kwargs.get("X")
        y = args[1] if len(args) > 1 else kwargs.get("y")
        token = _in_fit.set(True)
        try:
            run = active_run()
            if run is None:
                import mlcycle

                with mlcycle.start_run(name=type(self).__name__) as new_run:
                    result = fit(self, *args, **kwargs)
                    _log(new_run, self, X, y)
                return result
            result = fit(self, *args, **kwargs)
            _log(run, self, X, y)
            return result
        finally:
            _in_fit.reset(token)

    patched.__mlcycle_autolog__ = True  # type: ignore[attr-defined]
    return patched


def _param_value(value: Any) -> str:
    if hasattr(value, "get_params"):
        return type(value).__name__
    return str(value)


def _log(run: Any, estimator: Any, X: Any, y: Any) -> None:
    params = {k: _param_value(v) for k, v in estimator.get_params(deep=True).items()}
    params = {k: v[:6000] for k, v in params.items() if len(k) <= 250}
    # A re-fit with other params in the same run keeps the first ones (params are set once).
    with contextlib.suppress(Exception):
        run.log_params(params)
    cls = type(estimator)
    run.set_tag("mlcycle.autolog.estimator", f"{cls.__module__}.{cls.__name__}")
    if y is not None:
        run.log_metrics(_training_metrics(estimator, X, y))
    if _options["log_models"]:
        run.log_bytes(pickle.dumps(estimator), "model/model.pkl")
        run.log_text(repr(estimator), "model/estimator.txt")


def _training_metrics(estimator: Any, X: Any, y: Any) -> dict[str, float]:
    from sklearn import metrics
    from sklearn.base import is_classifier, is_regressor

    out: dict[str, float] = {}
    with contextlib.suppress(Exception):  # not every estimator scores (e.g. transformers)
        out["training_score"] = float(estimator.score(X, y))
    try:
        if is_classifier(estimator):
            pred = estimator.predict(X)
            out["training_accuracy"] = float(metrics.accuracy_score(y, pred))
            for name, fn in (("precision", metrics.precision_score),
                             ("recall", metrics.recall_score), ("f1", metrics.f1_score)):
                out[f"training_{name}"] = float(fn(y, pred, average="weighted", zero_division=0))
        elif is_regressor(estimator):
            pred = estimator.predict(X)
            out["training_r2"] = float(metrics.r2_score(y, pred))
            out["training_rmse"] = float(metrics.mean_squared_error(y, pred) ** 0.5)
            out["training_mae"] = float(metrics.mean_absolute_error(y, pred))
    except Exception:  # an estimator without predict: keep what we have
        pass
    return out
