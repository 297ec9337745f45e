"""Pickling for the flavors that must pickle (scikit-learn, python): cloudpickle, the modules
the pickle will need, and a clear error when something cannot be pickled.

cloudpickle rather than joblib or plain pickle: it pickles classes and functions defined in
``__main__`` or a notebook by value (a custom transformer, a ``FunctionTransformer`` with a
lambda), which plain pickle and joblib refuse or store as a reference that will not import
elsewhere. Importable classes are still pickled by reference, so the requirements pin the
versions. joblib's strength, memory-mapping big arrays, helps little for models of the size
this stores, and its files are pickles too: neither is safer to load, which is why the loader
verifies every file's hash before unpickling.

While pickling, every object's class module is recorded, so the requirements list the
distributions the pickle really refers to (a scikit-learn pipeline ending in an XGBoost model
needs xgboost).
"""

from __future__ import annotations

import io
import pickle
import sys
from collections.abc import Iterator
from importlib import metadata
from typing import Any

from mlcycle.errors import InvalidInputError, InvalidStateError

__all__ = ["dumps", "loads", "requirements_for_modules"]

_PROTOCOL = pickle.HIGHEST_PROTOCOL
_MAX_DEPTH = 8


def _cloudpickle() -> Any:
    try:
        import cloudpickle
    except ImportError as exc:
        raise InvalidStateError(
            "saving this model needs cloudpickle: pip install 'mlcycle[models]'"
        ) from exc
    return cloudpickle


def dumps(obj: Any, *, what: str = "model") -> tuple[bytes, set[str]]:
    """The pickle of *obj* and the top-level modules its objects' classes come from.

    An object that cannot be pickled raises ``InvalidInputError`` naming the attribute path to
    the first part that fails (``model.steps[1][1].lock``) and its type.
    """
    cloudpickle = _cloudpickle()
    modules: set[str] = set()

    class _Recording(cloudpickle.CloudPickler):  # type: ignore[name-defined]
        def reducer_override(self, o: Any) -> Any:
            cls = o if isinstance(o, type) else type(o)
            module = getattr(cls, "__module__", None)
            if isinstance(module, str):
                modules.add(module.partition(".")[0])
            return super().reducer_override(o)

    buffer = io.BytesIO()
    try:
        _Recording(buffer, protocol=_PROTOCOL).dump(obj)
    except Exception as exc:
        path, culprit, error = _find_unpicklable(obj, what, cloudpickle)
        if culprit is None:
            path, culprit, error = what, obj, exc
        raise InvalidInputError(
            f"{what} cannot be pickled: {path} ({type(culprit).__module__}."
            f"{type(culprit).__qualname__}) failed: {error}. Remove or recreate it after "
            "loading (e.g. with __getstate__/__setstate__), or save the model with a flavor "
            "that does not pickle",
            details={"field": what, "path": path, "type": type(culprit).__qualname__},
        ) from exc
    return buffer.getvalue(), modules


def loads(data: bytes) -> Any:
    """Unpickle bytes the caller has verified (cloudpickle's functions must be importable)."""
    _cloudpickle()
    return pickle.loads(data)


def _children(obj: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield f"[{key!r}]", value
    elif isinstance(obj, list | tuple | set | frozenset):
        for i, value in enumerate(obj):
            yield f"[{i}]", value
    else:
        state = getattr(obj, "__dict__", None)
        if isinstance(state, dict):
            for key, value in state.items():
                yield f".{key}", value
        for slot in getattr(type(obj), "__slots__", ()):
            if isinstance(slot, str) and hasattr(obj, slot):
                yield f".{slot}", getattr(obj, slot)


def _find_unpicklable(obj: Any, path: str, cloudpickle: Any,
                      depth: int = 0) -> tuple[str, Any, Exception | None]:
    """The deepest part of *obj* that fails to pickle, by walking into the first failing
    child of each container or object (``None`` as culprit when every child pickles)."""
    try:
        cloudpickle.dumps(obj, protocol=_PROTOCOL)
        return path, None, None
    except Exception as exc:
        failure: tuple[str, Any, Exception | None] = (path, obj, exc)
    if depth >= _MAX_DEPTH:
        return failure
    for suffix, child in _children(obj):
        found = _find_unpicklable(child, path + suffix, cloudpickle, depth + 1)
        if found[1] is not None:
            return found
    return failure


def requirements_for_modules(modules: set[str]) -> list[str]:
    """``dist==version`` for the distributions that provide *modules* (the standard library,
    ``__main__`` and modules of no distribution left out), sorted."""
    mapping = metadata.packages_distributions()
    dists: set[str] = set()
    for module in modules:
        if module in sys.stdlib_module_names or module in ("__main__", "builtins", ""):
            continue
        for dist in mapping.get(module, ()):
            dists.add(dist)
    out = []
    for dist in sorted(dists, key=str.lower):
        try:
            out.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    return out
