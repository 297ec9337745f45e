"""PyTorch: an ``nn.Module`` saved as its ``state_dict`` (``weights.pt``) and a reference to
its class with the keyword arguments that build it (``flavor_options={"init_kwargs": {...}}``).

Why not TorchScript: ``torch.jit.script`` is deprecated (PyTorch 2.13 warns so) and fails on
much ordinary Python; tracing freezes control flow. Why not ``torch.save(model)``: that pickles
the whole object, and loading it runs arbitrary code. A ``state_dict`` holds tensors only and is
read with ``torch.load(weights_only=True)``, which refuses anything else, so the weights file
is safe to read even before its hash is checked (it is checked anyway). The price: the class
must be importable where the model is loaded (not defined in ``__main__``), and its constructor
must rebuild the architecture from ``init_kwargs``; both are checked at save time, by building
the model again and loading the weights into it.

Loading maps the tensors to ``device``: the GPU when ``torch.cuda.is_available()``, else the
CPU, unless the caller names one. Input is converted to a tensor of the model's parameter dtype
on that device; output comes back as a numpy array.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import orjson

from mlcycle.errors import InvalidInputError
from mlcycle.models.flavors import (
    Flavor,
    Predictor,
    class_modules,
    import_qualified,
    qualified_name,
)
from mlcycle.models.manifest import ModelFiles

__all__ = ["PyTorchFlavor", "default_device"]

_FILE = "weights.pt"


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class PyTorchFlavor(Flavor):
    name: ClassVar[str] = "pytorch"
    packages: ClassVar[tuple[str, ...]] = ("torch", "numpy")

    def matches(self, model: Any) -> bool:
        return any(m == "torch" or m.startswith("torch.") for m in class_modules(model))

    def save(self, model: Any, directory: Path, options: Mapping[str, Any]) -> dict[str, Any]:
        import torch

        if not isinstance(model, torch.nn.Module):
            raise InvalidInputError(
                f"the pytorch flavor saves a torch.nn.Module, got {type(model).__name__}",
                details={"field": "model"},
            )
        unknown = set(options) - {"init_kwargs"}
        if unknown:
            raise InvalidInputError(
                f"flavor_options: the pytorch flavor takes init_kwargs, got {sorted(unknown)}",
                details={"field": f"flavor_options.{sorted(unknown)[0]}"},
            )
        init_kwargs = dict(options.get("init_kwargs") or {})
        try:
            init_kwargs = orjson.loads(orjson.dumps(init_kwargs))
        except TypeError as exc:
            raise InvalidInputError(
                f"flavor_options.init_kwargs must be JSON values: {exc}",
                details={"field": "flavor_options.init_kwargs"},
            ) from None
        cls = type(model)
        _check_importable(cls)
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        try:
            rebuilt = cls(**init_kwargs)
            rebuilt.load_state_dict(state, strict=True)
        except Exception as exc:
            raise InvalidInputError(
                f"{qualified_name(cls)}(**{init_kwargs!r}) does not rebuild the model the "
                f"weights belong to: {str(exc).splitlines()[0]}; pass the constructor's "
                "arguments as flavor_options={'init_kwargs': {...}}",
                details={"field": "flavor_options.init_kwargs"},
            ) from exc
        buffer = io.BytesIO()
        torch.save(state, buffer)
        (directory / _FILE).write_bytes(buffer.getvalue())
        dtype = next((str(p.dtype).removeprefix("torch.") for p in model.parameters()),
                     "float32")
        return {
            "file": _FILE,
            "class": [cls.__module__, cls.__qualname__],
            "init_kwargs": init_kwargs,
            "dtype": dtype,
        }

    def load(self, files: ModelFiles, options: Mapping[str, Any], *, device: str | None) -> Any:
        import torch

        device = device or default_device()
        module, qualname = options["class"]
        cls = import_qualified(module, qualname)
        if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
            raise InvalidInputError(
                f"{module}.{qualname} is not a torch.nn.Module", details={"field": "class"}
            )
        data = files.read_bytes(str(options.get("file", _FILE)))
        state = torch.load(io.BytesIO(data), map_location=device, weights_only=True)
        model = cls(**dict(options.get("init_kwargs") or {}))
        model.load_state_dict(state, strict=True)
        return model.to(device).eval()

    def predictor(self, native: Any, options: Mapping[str, Any]) -> Predictor:
        import torch

        dtype = getattr(torch, str(options.get("dtype", "float32")))

        def predict(data: Any) -> Any:
            param = next(native.parameters(), None)
            device = param.device if param is not None else torch.device("cpu")
            array = data.to_numpy() if hasattr(data, "to_numpy") else np.asarray(data)
            tensor = torch.tensor(array, device=device)  # a copy: input arrays may be read-only
            if tensor.is_floating_point():  # integer input (token ids) stays integer
                tensor = tensor.to(dtype)
            with torch.inference_mode():
                out = native(tensor)
            return out.detach().cpu().numpy()

        return Predictor(predict)


def _check_importable(cls: type) -> None:
    module, qualname = cls.__module__, cls.__qualname__
    if module == "__main__" or "<locals>" in qualname:
        raise InvalidInputError(
            f"the pytorch flavor stores a reference to the model's class, and "
            f"{module}.{qualname} cannot be imported where the model is loaded; define it in "
            "a module, or wrap the model in a class of the python flavor",
            details={"field": "model", "class": f"{module}.{qualname}"},
        )
    if import_qualified(module, qualname) is not cls:
        raise InvalidInputError(
            f"{module}.{qualname} does not import as the model's class",
            details={"field": "model", "class": f"{module}.{qualname}"},
        )
