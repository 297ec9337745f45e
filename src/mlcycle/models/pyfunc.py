"""``PyFuncModel``: every loaded model behind one interface, whatever its flavor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlcycle.models.example import read_example
from mlcycle.models.flavors import Predictor
from mlcycle.models.manifest import ModelFiles, ModelInfo
from mlcycle.models.signature import Signature

__all__ = ["PyFuncModel"]


class PyFuncModel:
    """A loaded model. ``predict(data)`` validates *data* (pandas, polars, numpy or a mapping of
    columns) against the signature, converts it to what the model was trained on and returns
    the flavor's prediction. ``predict_proba`` exists when the model has one (``hasattr``
    tells). ``raw`` is the native object (an estimator, a ``Booster``, an ``nn.Module``, an
    ONNX Runtime session, your class).

    >>> model = load_model("model")                  # doctest: +SKIP
    >>> model.predict(frame)                         # doctest: +SKIP
    """

    def __init__(self, info: ModelInfo, raw: Any, predictor: Predictor,
                 files: ModelFiles) -> None:
        self.info = info
        self.raw = raw
        self._predictor = predictor
        self._files = files

    def __repr__(self) -> str:
        where = self.info.model_uri or self.info.path
        return f"PyFuncModel(flavor={self.info.flavor!r}, path={where!r})"

    @property
    def signature(self) -> Signature | None:
        return self.info.signature

    def validate(self, data: Any) -> Any:
        """*data* as the model receives it (see ``Signature.validate``); unchanged when the
        model was saved without a signature."""
        signature = self.info.signature
        return data if signature is None else signature.validate(data)

    def predict(self, data: Any) -> Any:
        return self._predictor.predict(self.validate(data))

    @property
    def predict_proba(self) -> Callable[[Any], Any]:
        proba = self._predictor.predict_proba
        if proba is None:
            raise AttributeError(
                f"this {self.info.flavor} model has no predict_proba "
                f"({type(self.raw).__name__} does not give probabilities)"
            )

        def predict_proba(data: Any) -> Any:
            return proba(self.validate(data))

        return predict_proba

    @property
    def input_example(self) -> Any:
        """The saved input example in the format it was given (``None`` without one), read
        from its verified bytes."""
        name = self.info.input_example
        if name is None:
            return None
        fmt = self.info.signature.input_format if self.info.signature else None
        return read_example(self._files.read_bytes(name), name, fmt)
