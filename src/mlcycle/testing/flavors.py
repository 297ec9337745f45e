"""``check_flavor``: the conformance suite every model flavor passes.

>>> check_flavor("sklearn", fitted_pipeline, X_test)    # doctest: +SKIP

It saves the model, loads it back and checks, raising ``AssertionError`` with the step that
failed:

1. the manifest names the flavor, pins the flavor's package and lists every file with its
   BLAKE3 digest; the signature was inferred from ``X``;
2. the loaded model predicts what the original predicts on ``X`` (and ``predict_proba`` too
   when the original has one);
3. the input example comes back as it was given;
4. input missing a column (or of the wrong shape, for a tensor signature) is refused with a
   ``SignatureMismatch`` naming it;
5. each tampering is refused with a ``ModelIntegrityError`` naming the file, before the
   flavor's ``load`` is called: one byte of each file changed, a file removed, a file added,
   and an edited manifest when its digest is expected.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
import polars as pl

from mlcycle.errors import ModelIntegrityError, SignatureMismatch
from mlcycle.models import ModelInfo, load_model, save_model
from mlcycle.models.flavors import get_flavor
from mlcycle.models.manifest import MANIFEST
from mlcycle.models.signature import TensorSpec

__all__ = ["assert_same_predictions", "check_flavor"]


def check_flavor(
    flavor: str,
    model: Any,
    X: Any,
    *,
    flavor_options: Mapping[str, Any] | None = None,
    rtol: float = 0.0,
    atol: float = 0.0,
    device: str | None = None,
    workdir: str | Path | None = None,
) -> ModelInfo:
    """Run the checks above on *model* with input *X*; returns the saved model's info.

    Predictions must be equal; *rtol*/*atol* loosen that for floats (a model loaded on a GPU
    does not compute bit for bit what it did on the CPU).
    """
    impl = get_flavor(flavor)
    with tempfile.TemporaryDirectory(prefix="mlcycle-check-flavor-",
                                     dir=None if workdir is None else str(workdir)) as tmp:
        root = Path(tmp)
        info = save_model(model, root / "model", flavor=flavor, input_example=X,
                          flavor_options=flavor_options)

        # 1. the manifest
        assert info.flavor == flavor, f"flavor recorded as {info.flavor!r}, not {flavor!r}"
        package = impl.packages[0]
        assert any(r.startswith(f"{package}==") for r in info.requirements), (
            f"requirements {list(info.requirements)} do not pin {package}"
        )
        on_disk = sorted(p.relative_to(root / "model").as_posix()
                         for p in (root / "model").rglob("*") if p.is_file())
        assert on_disk == sorted([*info.files, MANIFEST]), (
            f"files on disk {on_disk} differ from the manifest's {sorted(info.files)}"
        )
        assert info.signature is not None, "no signature was inferred from the input example"

        # 2. the same predictions
        loaded = load_model(root / "model", expected_digest=info.manifest_digest, device=device)
        original = impl.predictor(model, info.flavor_options)
        validated = info.signature.validate(X)
        assert_same_predictions(original.predict(validated), loaded.predict(X), rtol=rtol,
                                atol=atol, what="predict")
        if original.predict_proba is not None:
            assert hasattr(loaded, "predict_proba"), "the loaded model lost predict_proba"
            assert_same_predictions(original.predict_proba(validated), loaded.predict_proba(X),
                                    rtol=rtol, atol=atol, what="predict_proba")

        # 3. the input example
        assert_same_predictions(_values(X), _values(loaded.input_example), rtol=0, atol=0,
                                what="input_example")

        # 4. the signature is enforced
        _check_signature_enforced(loaded, X)

        # 5. tampering is refused before the flavor loads anything
        _check_tampering(root, info, impl)
    return info


def _check_signature_enforced(loaded: Any, X: Any) -> None:
    signature = loaded.info.signature
    if isinstance(signature.inputs, TensorSpec):
        array = np.asarray(_values(X))
        bad = array.reshape(array.shape[0], -1)[:, :-1] if array.ndim > 1 else array[:, None]
        expected_field = "input"
    else:
        first = signature.inputs[0].name
        bad = _drop_column(X, first)
        expected_field = first
    try:
        loaded.predict(bad)
    except SignatureMismatch as exc:
        assert exc.details.get("field") == expected_field, (
            f"the signature error names {exc.details.get('field')!r}, not {expected_field!r}: "
            f"{exc}"
        )
    else:
        raise AssertionError("input without a required column (or of the wrong shape) was "
                             "accepted")


def _check_tampering(root: Path, info: ModelInfo, impl: Any) -> None:
    source = root / "model"

    def attempt(name: str, change: Callable[[Path], None], file: str,
                expected_digest: str | None = None) -> None:
        copy = root / f"tampered-{name}"
        shutil.copytree(source, copy)
        change(copy)
        with mock.patch.object(type(impl), "load", side_effect=AssertionError(
                f"{impl.name}.load was called on a tampered model ({name})")) as load:
            try:
                load_model(copy, expected_digest=expected_digest)
            except ModelIntegrityError as exc:
                assert exc.details.get("file") == file, (
                    f"{name}: the integrity error names {exc.details.get('file')!r}, "
                    f"not {file!r}: {exc}"
                )
            else:
                raise AssertionError(f"a tampered model was loaded ({name})")
            assert not load.called, f"{impl.name}.load ran before the files were verified"
        shutil.rmtree(copy)

    for i, name in enumerate(sorted(info.files)):
        attempt(f"flip-{i}", functools.partial(_flip_byte, name=name), name)
    victim = str(info.flavor_options.get("file", sorted(info.files)[0]))

    def remove(d: Path) -> None:
        (d / victim).unlink()

    def add(d: Path) -> None:
        (d / "extra.pkl").write_bytes(b"not in the manifest")

    attempt("removed", remove, victim)
    attempt("added", add, "extra.pkl")

    def edit_manifest(d: Path) -> None:
        manifest = d / MANIFEST
        manifest.write_bytes(manifest.read_bytes().replace(b'"metadata"', b'"metadata" ', 1))

    attempt("manifest", edit_manifest, MANIFEST, expected_digest=info.manifest_digest)


def _flip_byte(folder: Path, *, name: str) -> None:
    path = folder / name
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle] ^= 0x01
    path.write_bytes(bytes(data))


def _drop_column(X: Any, name: str) -> Any:
    if isinstance(X, pd.DataFrame):
        return X.drop(columns=[name])
    if isinstance(X, pl.DataFrame):
        return X.drop(name)
    array = np.asarray(X)
    return array[:, 1:]


def _values(data: Any) -> Any:
    if isinstance(data, pd.DataFrame | pd.Series | pl.DataFrame | pl.Series):
        return data.to_numpy()
    return np.asarray(data)


def assert_same_predictions(expected: Any, got: Any, *, rtol: float = 0.0, atol: float = 0.0,
                            what: str = "predictions") -> None:
    """Equal arrays (NaN equals NaN); floats within *rtol*/*atol* when given."""
    a, b = _values(expected), _values(got)
    assert a.shape == b.shape, f"{what}: shape {b.shape}, expected {a.shape}"
    if (rtol or atol) and a.dtype.kind in "fc" and b.dtype.kind in "fc":
        np.testing.assert_allclose(b, a, rtol=rtol, atol=atol, err_msg=what)
        return
    if a.dtype.kind in "fc" and b.dtype.kind in "fc":
        equal = np.array_equal(a, b, equal_nan=True)
    else:
        both_null = pd.isna(a) & pd.isna(b) if a.dtype == object or b.dtype == object else False
        equal = bool(np.all((a == b) | both_null))
    assert equal, f"{what} differ after loading: {b[:5]!r}… vs {a[:5]!r}…"
