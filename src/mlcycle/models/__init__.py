"""Models: save, load and log a trained model of any flavor, with its signature, input example,
requirements and the BLAKE3 digest of every file.

>>> from mlcycle.models import save_model, load_model
>>> info = save_model(pipeline, "model", input_example=X_train.head())   # doctest: +SKIP
>>> load_model("model").predict(X_test)                                  # doctest: +SKIP

Flavors: ``sklearn`` (cloudpickle), ``xgboost`` (UBJSON), ``lightgbm`` (text model), ``pytorch``
(state_dict and class reference), ``onnx`` (ONNX Runtime) and ``python`` (any object with
``predict``); ``register_flavor`` adds one. Loading verifies every file before anything is
deserialised and refuses a model whose files changed (``ModelIntegrityError``); input that the
signature refuses raises ``SignatureMismatch`` naming the column.
"""

from __future__ import annotations

from typing import Any

from mlcycle.models.flavors import Flavor, Predictor, detect_flavor, flavor_names, register_flavor
from mlcycle.models.flavors.python import ModelContext, PythonModel
from mlcycle.models.manifest import FileDigest, ModelInfo
from mlcycle.models.persistence import load_model, log_model, save_model
from mlcycle.models.pyfunc import PyFuncModel
from mlcycle.models.signature import ColumnSpec, Signature, TensorSpec, infer_signature

__all__ = [
    "ColumnSpec",
    "FileDigest",
    "Flavor",
    "ModelContext",
    "ModelInfo",
    "Predictor",
    "PyFuncModel",
    "PythonModel",
    "Signature",
    "TensorSpec",
    "detect_flavor",
    "flavor_names",
    "infer_signature",
    "load_model",
    "log_model",
    "register_flavor",
    "save_model",
    "sklearn_to_onnx",
]


def sklearn_to_onnx(model: Any, X: Any, *, target_opset: int | None = None) -> Any:
    """A fitted scikit-learn model as an ``onnx.ModelProto`` (see
    ``mlcycle.models.flavors.onnx.sklearn_to_onnx``); imported here on first use."""
    from mlcycle.models.flavors.onnx import sklearn_to_onnx as convert

    return convert(model, X, target_opset=target_opset)
