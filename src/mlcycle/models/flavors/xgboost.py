"""XGBoost: a ``Booster`` or a scikit-learn wrapper (``XGBClassifier``, ``XGBRegressor``, …)
saved with XGBoost's own ``save_model`` as UBJSON (``model.ubj``), never pickled.

UBJSON rather than JSON: the same content (trees, parameters, and for the wrappers their
scikit-learn attributes), smaller and faster to parse, and floats stored bit for bit. The
manifest records the wrapper class, only ever one of ``xgboost``'s own, so loading rebuilds the
same kind of object (``XGBClassifier().load_model(...)``) and ``predict_proba`` keeps working.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from mlcycle.errors import InvalidInputError
from mlcycle.models.flavors import Flavor, Predictor, class_modules, import_qualified
from mlcycle.models.manifest import ModelFiles

__all__ = ["XGBoostFlavor"]

_FILE = "model.ubj"


class XGBoostFlavor(Flavor):
    name: ClassVar[str] = "xgboost"
    packages: ClassVar[tuple[str, ...]] = ("xgboost", "numpy", "scipy")

    def matches(self, model: Any) -> bool:
        module = class_modules(model)[0]
        return module == "xgboost" or module.startswith("xgboost.")

    def save(self, model: Any, directory: Path, options: Mapping[str, Any]) -> dict[str, Any]:
        import xgboost as xgb

        if not isinstance(model, xgb.Booster | xgb.XGBModel):
            raise InvalidInputError(
                f"the xgboost flavor saves a Booster or an XGBModel, got {type(model).__name__}",
                details={"field": "model"},
            )
        model.save_model(str(directory / _FILE))
        cls = type(model)
        return {"file": _FILE, "format": "ubj", "class": [cls.__module__, cls.__qualname__]}

    def load(self, files: ModelFiles, options: Mapping[str, Any], *, device: str | None) -> Any:
        import xgboost as xgb

        module, qualname = options.get("class", ["xgboost.core", "Booster"])
        cls = import_qualified(module, qualname, allowed=("xgboost",))
        raw = bytearray(files.read_bytes(str(options.get("file", _FILE))))
        model = xgb.Booster() if isinstance(cls, type) and issubclass(cls, xgb.Booster) else cls()
        model.load_model(raw)
        if device is not None:
            if isinstance(model, xgb.XGBModel):
                model.set_params(device=device)
            else:
                model.set_param({"device": device})
        return model

    def predictor(self, native: Any, options: Mapping[str, Any]) -> Predictor:
        import xgboost as xgb

        if isinstance(native, xgb.Booster):
            def predict(data: Any) -> Any:
                return native.predict(xgb.DMatrix(data, enable_categorical=True))

            return Predictor(predict)
        proba = native.predict_proba if hasattr(native, "predict_proba") else None
        return Predictor(native.predict, proba)
