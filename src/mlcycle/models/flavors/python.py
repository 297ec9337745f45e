"""A plain Python model: any object with ``predict(self, data)`` (optionally
``predict_proba``), pickled with cloudpickle into ``model.pkl``, so a class defined in a
notebook travels with it.

Files the model needs (a vocabulary, a lookup table, another saved model) are passed as
``flavor_options={"artifacts": {"vocab": "path/to/vocab.json"}}``: they are copied under
``artifacts/`` in the model folder, hashed like every other file, and after loading
``load_context(context)`` is called, if the object has it, with ``context.artifacts`` mapping
each name to the copied file's path. Subclassing ``PythonModel`` is optional.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from mlcycle.errors import InvalidInputError
from mlcycle.models import pickling
from mlcycle.models.flavors import Flavor, Predictor, pinned
from mlcycle.models.manifest import ModelFiles

__all__ = ["ModelContext", "PythonFlavor", "PythonModel"]

_FILE = "model.pkl"
_ARTIFACTS = "artifacts"


@dataclass(frozen=True, slots=True)
class ModelContext:
    """What ``load_context`` receives: the model folder and its artifacts' local paths."""

    directory: Path
    artifacts: Mapping[str, Path] = field(default_factory=dict)


class PythonModel:
    """An optional base class: override ``predict`` (and ``load_context`` to read artifacts
    or open resources that cannot be pickled)."""

    def load_context(self, context: ModelContext) -> None:
        return None

    def predict(self, data: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__}.predict")


class PythonFlavor(Flavor):
    name: ClassVar[str] = "python"
    packages: ClassVar[tuple[str, ...]] = ("cloudpickle",)

    def matches(self, model: Any) -> bool:
        return callable(getattr(model, "predict", None)) and not isinstance(model, type)

    def save(self, model: Any, directory: Path, options: Mapping[str, Any]) -> dict[str, Any]:
        if not callable(getattr(model, "predict", None)):
            raise InvalidInputError(
                f"the python flavor saves an object with a predict(data) method; "
                f"{type(model).__name__} has none",
                details={"field": "model"},
            )
        unknown = set(options) - {"artifacts"}
        if unknown:
            raise InvalidInputError(
                f"flavor_options: the python flavor takes artifacts, got {sorted(unknown)}",
                details={"field": f"flavor_options.{sorted(unknown)[0]}"},
            )
        artifacts: dict[str, str] = {}
        for name, source in dict(options.get("artifacts") or {}).items():
            src = Path(source)
            if not src.is_file() or "/" in name or name in ("", ".", ".."):
                raise InvalidInputError(
                    f"flavor_options.artifacts.{name}: expected a simple name and an existing "
                    f"file, got {str(source)!r}",
                    details={"field": f"flavor_options.artifacts.{name}"},
                )
            rel = f"{_ARTIFACTS}/{name}/{src.name}"
            (directory / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, directory / rel)
            artifacts[name] = rel
        data, modules = pickling.dumps(model)
        (directory / _FILE).write_bytes(data)
        return {"file": _FILE, "serializer": "cloudpickle", "modules": sorted(modules),
                "artifacts": artifacts}

    def requirements(self, model: Any, options: Mapping[str, Any]) -> list[str]:
        found = pickling.requirements_for_modules(set(options.get("modules", ())))
        base = pinned(self.packages)
        return base + [r for r in found if r not in base]

    def load(self, files: ModelFiles, options: Mapping[str, Any], *, device: str | None) -> Any:
        model = pickling.loads(files.read_bytes(str(options.get("file", _FILE))))
        hook = getattr(model, "load_context", None)
        if callable(hook):
            artifacts = {name: files.path(rel)
                         for name, rel in dict(options.get("artifacts") or {}).items()}
            hook(ModelContext(files.root, artifacts))
        return model

    def predictor(self, native: Any, options: Mapping[str, Any]) -> Predictor:
        proba = getattr(native, "predict_proba", None)
        return Predictor(native.predict, proba if callable(proba) else None)
