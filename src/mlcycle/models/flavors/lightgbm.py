"""LightGBM: a ``Booster`` or a scikit-learn wrapper saved as LightGBM's own text model
(``model.txt``), never pickled.

The text model holds the trees, the objective and, for pandas input, the categories of
categorical columns; it does not hold a wrapper's class labels. Those are recorded in the
manifest (``classes``, as JSON values), so a loaded ``LGBMClassifier`` model predicts labels,
not scores: ``predict`` is the label of the highest probability, as ``LGBMClassifier.predict``
computes it, and ``predict_proba`` is there. The loaded native object (``.raw``) is the
``Booster``: LightGBM cannot rebuild a fitted wrapper from a text model.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mlcycle.errors import InvalidInputError
from mlcycle.models.flavors import Flavor, Predictor, class_modules
from mlcycle.models.manifest import ModelFiles

__all__ = ["LightGBMFlavor"]

_FILE = "model.txt"


class LightGBMFlavor(Flavor):
    name: ClassVar[str] = "lightgbm"
    packages: ClassVar[tuple[str, ...]] = ("lightgbm", "numpy", "scipy")

    def matches(self, model: Any) -> bool:
        module = class_modules(model)[0]
        return module == "lightgbm" or module.startswith("lightgbm.")

    def save(self, model: Any, directory: Path, options: Mapping[str, Any]) -> dict[str, Any]:
        import lightgbm as lgb

        recorded: dict[str, Any] = {"file": _FILE, "format": "text"}
        if isinstance(model, lgb.LGBMModel):
            booster = model.booster_
            recorded["estimator"] = type(model).__name__
            if isinstance(model, lgb.LGBMClassifier):
                recorded["classes"] = np.asarray(model.classes_).tolist()
        elif isinstance(model, lgb.Booster):
            booster = model
            recorded["estimator"] = "Booster"
        else:
            raise InvalidInputError(
                f"the lightgbm flavor saves a Booster or an LGBMModel, "
                f"got {type(model).__name__}",
                details={"field": "model"},
            )
        booster.save_model(str(directory / _FILE))
        return recorded

    def load(self, files: ModelFiles, options: Mapping[str, Any], *, device: str | None) -> Any:
        import lightgbm as lgb

        text = files.read_bytes(str(options.get("file", _FILE))).decode("utf-8")
        return lgb.Booster(model_str=text)

    def predictor(self, native: Any, options: Mapping[str, Any]) -> Predictor:
        import lightgbm as lgb

        if isinstance(native, lgb.LGBMModel):
            proba = native.predict_proba if hasattr(native, "predict_proba") else None
            return Predictor(native.predict, proba)
        classes = options.get("classes")
        if classes is None:
            return Predictor(native.predict)
        labels = np.asarray(classes)

        def predict_proba(data: Any) -> Any:
            scores = np.asarray(native.predict(data))
            if scores.ndim == 1:  # binary: the score is the probability of the second class
                return np.column_stack([1.0 - scores, scores])
            return scores

        def predict(data: Any) -> Any:
            return labels[np.argmax(predict_proba(data), axis=1)]

        return Predictor(predict, predict_proba)
