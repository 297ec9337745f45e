"""ONNX: an ``onnx.ModelProto`` saved as ``model.onnx`` and run with ONNX Runtime.

Loading builds an ``InferenceSession`` from the verified bytes (the native object, ``.raw``),
with the CUDA execution provider first when ONNX Runtime has it and the device is not ``cpu``.
Input goes to the graph's inputs by name: one input takes the whole batch as one array; several
inputs (what ``skl2onnx`` makes of a DataFrame) take one column each. ``predict`` returns the
first output; ``predict_proba`` the output called ``probabilities`` when the graph has one (as
``sklearn_to_onnx`` makes for classifiers).

``sklearn_to_onnx`` converts a fitted scikit-learn model with skl2onnx, so one model can be
served by ONNX Runtime without scikit-learn or pickle.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mlcycle.errors import InvalidInputError, InvalidStateError
from mlcycle.models.flavors import Flavor, Predictor, class_modules
from mlcycle.models.manifest import ModelFiles

__all__ = ["OnnxFlavor", "sklearn_to_onnx"]

_FILE = "model.onnx"
_PROBABILITIES = "probabilities"
_ELEMENT_TYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int16)": np.int16,
    "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_,
    "tensor(string)": np.object_,
}


class OnnxFlavor(Flavor):
    name: ClassVar[str] = "onnx"
    packages: ClassVar[tuple[str, ...]] = ("onnx", "onnxruntime", "numpy")

    def matches(self, model: Any) -> bool:
        return class_modules(model)[0].startswith("onnx") and type(model).__name__ == "ModelProto"

    def save(self, model: Any, directory: Path, options: Mapping[str, Any]) -> dict[str, Any]:
        import onnx

        if not isinstance(model, onnx.ModelProto):
            raise InvalidInputError(
                f"the onnx flavor saves an onnx.ModelProto, got {type(model).__name__}",
                details={"field": "model"},
            )
        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as exc:
            raise InvalidInputError(
                f"the ONNX model is not valid: {str(exc).splitlines()[0]}",
                details={"field": "model"},
            ) from None
        (directory / _FILE).write_bytes(model.SerializeToString())
        return {
            "file": _FILE,
            "opset": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        }

    def load(self, files: ModelFiles, options: Mapping[str, Any], *, device: str | None) -> Any:
        return _session(files.read_bytes(str(options.get("file", _FILE))), device)

    def predictor(self, native: Any, options: Mapping[str, Any]) -> Predictor:
        session = native if hasattr(native, "run") else _session(
            native.SerializeToString(), "cpu")
        inputs = session.get_inputs()
        outputs = [o.name for o in session.get_outputs()]

        def feed(data: Any) -> dict[str, Any]:
            if len(inputs) == 1:
                array = data.to_numpy() if hasattr(data, "to_numpy") else np.asarray(data)
                return {inputs[0].name: _as_type(array, inputs[0].type)}
            if not hasattr(data, "columns"):
                raise InvalidInputError(
                    f"this ONNX graph has {len(inputs)} inputs "
                    f"({', '.join(i.name for i in inputs)}): give a DataFrame with those columns",
                    details={"field": "input"},
                )
            columns = _columns_by_input(list(data.columns), [i.name for i in inputs])
            out = {}
            for spec in inputs:
                column = np.asarray(data[columns[spec.name]])
                if len(spec.shape) == 2:
                    column = column.reshape(-1, 1)
                out[spec.name] = _as_type(column, spec.type)
            return out

        def predict(data: Any) -> Any:
            return session.run([outputs[0]], feed(data))[0]

        proba = None
        if _PROBABILITIES in outputs and outputs[0] != _PROBABILITIES:
            def proba(data: Any) -> Any:
                return session.run([_PROBABILITIES], feed(data))[0]

        return Predictor(predict, proba)


def _columns_by_input(columns: list[str], names: list[str]) -> dict[str, str]:
    """The column that feeds each graph input: the same name, or the name as converters
    write it (skl2onnx turns ``mean radius`` into ``mean_radius``), or else by position."""
    known = {c: c for c in columns}
    for c in columns:
        known.setdefault(re.sub(r"[^0-9A-Za-z_]", "_", str(c)), c)
    if all(n in known for n in names):
        return {n: known[n] for n in names}
    if len(columns) == len(names):
        return dict(zip(names, columns, strict=True))
    missing = [n for n in names if n not in known]
    raise InvalidInputError(
        f"this ONNX graph's inputs {', '.join(missing)} match no input column",
        details={"field": missing[0]},
    )


def _as_type(array: np.ndarray, onnx_type: str) -> np.ndarray:
    dtype = _ELEMENT_TYPES.get(onnx_type)
    if dtype is None:
        return array
    if dtype is np.object_:
        return array.astype(str).astype(object)
    return array.astype(dtype, copy=False)


def _session(data: bytes, device: str | None) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise InvalidStateError(
            "the onnx flavor needs onnxruntime: pip install 'mlcycle[models]'"
        ) from exc
    providers = ["CPUExecutionProvider"]
    if device != "cpu" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(data, providers=providers)


def sklearn_to_onnx(model: Any, X: Any, *, target_opset: int | None = None) -> Any:
    """*model* (fitted scikit-learn) as an ONNX graph whose inputs are those of *X* (a frame:
    one input per column; an array: one input). Classifiers get a ``probabilities`` tensor
    output instead of skl2onnx's list of dictionaries, so ``predict_proba`` works.

    >>> proto = sklearn_to_onnx(pipeline, X_train[:1])        # doctest: +SKIP
    >>> save_model(proto, "model-onnx", input_example=X_train[:5])  # doctest: +SKIP
    """
    try:
        from skl2onnx import to_onnx
    except ImportError as exc:
        raise InvalidStateError(
            "converting scikit-learn to ONNX needs skl2onnx: pip install 'mlcycle[models]'"
        ) from exc
    # ONNX operators are mostly float32; float64 inputs would make double-typed graphs that
    # many converters do not support. Prediction casts input to the graph's types anyway.
    example = X[:1]
    if isinstance(example, np.ndarray) and example.dtype == np.float64:
        example = example.astype(np.float32)
    elif hasattr(example, "dtypes") and hasattr(example, "astype") and hasattr(example, "iloc"):
        doubles = {c: np.float32 for c, t in example.dtypes.items() if t == np.float64}
        example = example.astype(doubles)
    try:
        return to_onnx(model, example, target_opset=target_opset,
                       options={"zipmap": False})
    except Exception as exc:
        raise InvalidInputError(
            f"skl2onnx cannot convert {type(model).__name__}: {str(exc).splitlines()[0]}",
            details={"field": "model"},
        ) from exc
