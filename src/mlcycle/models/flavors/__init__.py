"""Flavors: how one kind of model is written to a folder, read back and asked for predictions.

The table maps a flavor's name to ``"module:attribute"`` and is resolved on first use, so
``import mlcycle.models`` imports none of scikit-learn, XGBoost, LightGBM, PyTorch or ONNX
Runtime. ``register_flavor`` adds a plugin's flavor to it. Auto-detection asks each flavor in
``DETECTION_ORDER`` whether it ``matches`` the model: flavors look at the module names of the
model's classes, which needs no import either. XGBoost and LightGBM come before scikit-learn
because their scikit-learn wrappers subclass scikit-learn's estimators, and ``python`` comes
last because any object with a ``predict`` is one.

Every flavor passes ``mlcycle.testing.flavors.check_flavor``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

from mlcycle.errors import InvalidInputError, InvalidStateError
from mlcycle.models.manifest import ModelFiles

__all__ = [
    "DETECTION_ORDER",
    "Flavor",
    "Predictor",
    "class_modules",
    "detect_flavor",
    "flavor_names",
    "get_flavor",
    "import_qualified",
    "pinned",
    "qualified_name",
    "register_flavor",
]

_TABLE: dict[str, str] = {
    "sklearn": "mlcycle.models.flavors.sklearn:SklearnFlavor",
    "xgboost": "mlcycle.models.flavors.xgboost:XGBoostFlavor",
    "lightgbm": "mlcycle.models.flavors.lightgbm:LightGBMFlavor",
    "pytorch": "mlcycle.models.flavors.pytorch:PyTorchFlavor",
    "onnx": "mlcycle.models.flavors.onnx:OnnxFlavor",
    "python": "mlcycle.models.flavors.python:PythonFlavor",
}
DETECTION_ORDER: list[str] = ["xgboost", "lightgbm", "pytorch", "onnx", "sklearn", "python"]
_resolved: dict[str, Flavor] = {}


@dataclass(frozen=True, slots=True)
class Predictor:
    """What a flavor makes of a native model: a ``predict`` and, when the model has one, a
    ``predict_proba``. Both take data already validated and in the signature's format."""

    predict: Callable[[Any], Any]
    predict_proba: Callable[[Any], Any] | None = None


class Flavor:
    """The contract of a flavor. Subclasses set ``name`` and ``packages`` and implement
    ``matches``, ``save``, ``load`` and ``predictor``."""

    name: ClassVar[str]
    #: Distributions pinned in the model's requirements (the first one's version is the
    #: flavor version).
    packages: ClassVar[tuple[str, ...]]

    def matches(self, model: Any) -> bool:
        raise NotImplementedError

    def version(self) -> str:
        try:
            return metadata.version(self.packages[0])
        except metadata.PackageNotFoundError:
            raise InvalidStateError(
                f"the {self.name} flavor needs {self.packages[0]}: "
                "pip install 'mlcycle[models]'"
            ) from None

    def save(self, model: Any, directory: Path, options: Mapping[str, Any]) -> dict[str, Any]:
        """Write the model's files into *directory*; return the flavor options to record
        (JSON values only), which ``load`` and ``predictor`` get back."""
        raise NotImplementedError

    def requirements(self, model: Any, options: Mapping[str, Any]) -> list[str]:
        """Pinned requirements of this model (``packages`` by default)."""
        return pinned(self.packages)

    def load(self, files: ModelFiles, options: Mapping[str, Any], *, device: str | None) -> Any:
        """The native model from verified files."""
        raise NotImplementedError

    def predictor(self, native: Any, options: Mapping[str, Any]) -> Predictor:
        """Predictions from *native*: the object given to ``save`` or the one ``load``
        returned (``check_flavor`` compares the two)."""
        raise NotImplementedError


def register_flavor(name: str, target: str) -> None:
    """Add (or replace) a flavor: *target* is ``"package.module:ClassName"``; it is imported
    on first use. It is tried before ``python`` in auto-detection."""
    if ":" not in target:
        raise InvalidInputError(
            f"flavor target must be 'module:attribute', got {target!r}",
            details={"field": "target"},
        )
    _TABLE[name] = target
    _resolved.pop(name, None)
    if name not in DETECTION_ORDER:
        DETECTION_ORDER.insert(DETECTION_ORDER.index("python"), name)


def flavor_names() -> list[str]:
    return sorted(_TABLE)


def get_flavor(name: str) -> Flavor:
    """The flavor called *name*, imported now if it was not yet."""
    if name in _resolved:
        return _resolved[name]
    target = _TABLE.get(name)
    if target is None:
        raise InvalidInputError(
            f"flavor must be one of {', '.join(flavor_names())}, got {name!r}",
            details={"field": "flavor"},
        )
    module, _, attr = target.partition(":")
    flavor = getattr(importlib.import_module(module), attr)()
    if not isinstance(flavor, Flavor):
        raise InvalidStateError(f"flavor {name!r} ({target}) is not a Flavor")
    _resolved[name] = flavor
    return flavor


def detect_flavor(model: Any) -> str:
    """The first flavor in ``DETECTION_ORDER`` that matches *model*."""
    if isinstance(model, type):
        raise InvalidInputError(
            f"model is the class {qualified_name(model)}; pass a fitted instance of it",
            details={"field": "model"},
        )
    for name in DETECTION_ORDER:
        if name in _TABLE and get_flavor(name).matches(model):
            return name
    raise InvalidInputError(
        f"no flavor saves a {qualified_name(type(model))}: it is not a model of "
        f"{', '.join(n for n in DETECTION_ORDER if n != 'python')}, and it has no predict() "
        "method for the python flavor",
        details={"field": "model"},
    )


# --- helpers shared by the flavors ------------------------------------------------------------


def class_modules(model: Any) -> list[str]:
    """The modules of the classes of *model* (its class, then its bases)."""
    cls = model if isinstance(model, type) else type(model)
    return [getattr(c, "__module__", "") or "" for c in cls.__mro__]


def qualified_name(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def import_qualified(module: str, qualname: str, *, allowed: tuple[str, ...] = ()) -> Any:
    """``module.qualname`` imported; with *allowed*, only from modules under those packages
    (a manifest names a class to import, and a flavor that only ever names its library's own
    classes need not trust it further)."""
    if allowed and not any(module == p or module.startswith(p + ".") for p in allowed):
        raise InvalidInputError(
            f"{module}.{qualname}: expected a class from {', '.join(allowed)}",
            details={"field": "flavor_options"},
        )
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise InvalidStateError(
            f"cannot import {module}.{qualname} to load the model: {exc}",
            details={"module": module, "qualname": qualname},
        ) from exc
    return obj


def pinned(packages: Any) -> list[str]:
    """``name==version`` for each installed distribution of *packages*, in order, once."""
    out: list[str] = []
    seen: set[str] = set()
    for name in packages:
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        try:
            out.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return out
