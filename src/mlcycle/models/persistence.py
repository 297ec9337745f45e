"""Saving, loading and logging models.

A saved model is a folder::

    model/
      model.json              the manifest (mlcycle.models.manifest): flavor, versions,
                              signature, requirements, every file's BLAKE3 digest and size
      requirements.txt        the same requirements, for pip install -r
      input_example.parquet   (or .npy) when an example was given
      <the flavor's files>    model.pkl, model.ubj, model.txt, weights.pt, model.onnx, …

``save_model`` writes into a temporary folder beside the target and renames it into place, so
a failed save leaves nothing behind, and it never writes into an existing, non-empty folder.
``load_model`` verifies every file against the manifest before the flavor reads any of them.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson
from blake3 import blake3

from mlcycle.errors import (
    InvalidInputError,
    InvalidStateError,
    MlcycleError,
    ModelIntegrityError,
)
from mlcycle.models.example import write_example
from mlcycle.models.flavors import Flavor, detect_flavor, get_flavor
from mlcycle.models.manifest import (
    MANIFEST,
    ModelFiles,
    ModelInfo,
    digest_file,
    now_utc,
    read_manifest,
    verify_folder,
)
from mlcycle.models.pyfunc import PyFuncModel
from mlcycle.models.runs import ClientLike, download_run_model, run_and_client
from mlcycle.models.signature import Signature, infer_signature, infer_spec

__all__ = ["load_model", "log_model", "save_model"]

_REQUIREMENTS = "requirements.txt"


def save_model(
    model: Any,
    path: str | os.PathLike[str],
    *,
    flavor: str | None = None,
    input_example: Any = None,
    signature: Signature | None = None,
    metadata: Mapping[str, Any] | None = None,
    flavor_options: Mapping[str, Any] | None = None,
    requirements: Iterable[str] = (),
) -> ModelInfo:
    """Save *model* into the folder *path* (created; it must not exist or be empty).

    *flavor* is detected from the model's class when not given. With an *input_example* (a
    pandas or polars frame or a numpy array, a few rows) the signature is inferred from it and
    from the model's prediction on it, and the example is stored; an explicit *signature* is
    checked against the example. *requirements* adds pins to the flavor's own.

    >>> info = save_model(pipeline, "model", input_example=X_train.head())  # doctest: +SKIP
    >>> info.signature.input_names                                         # doctest: +SKIP
    ['age', 'city']
    """
    target = Path(path)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidInputError(
            f"{target} exists and is not an empty folder; save_model never overwrites",
            details={"field": "path"},
        )
    name = flavor or detect_flavor(model)
    impl = get_flavor(name)
    meta = _json_object(metadata, "metadata")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.saving-"))
    try:
        info = _write(model, staging, impl, input_example=input_example, signature=signature,
                      metadata=meta, flavor_options=dict(flavor_options or {}),
                      requirements=list(requirements))
        if target.exists():
            target.rmdir()  # empty, checked above
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return replace(info, path=str(target))


def _write(model: Any, folder: Path, impl: Flavor, *, input_example: Any,
           signature: Signature | None, metadata: dict[str, Any],
           flavor_options: dict[str, Any], requirements: list[str]) -> ModelInfo:
    recorded = _json_object(impl.save(model, folder, flavor_options), "flavor_options")
    example_name = None
    if input_example is not None:
        example_name = write_example(input_example, folder)
        signature = _signature(impl, model, recorded, input_example, signature)
    pins = impl.requirements(model, recorded)
    pins += [r for r in requirements if r not in pins]
    (folder / _REQUIREMENTS).write_text("".join(f"{r}\n" for r in pins))
    files = {p.relative_to(folder).as_posix(): digest_file(p)
             for p in sorted(folder.rglob("*")) if p.is_file()}
    info = ModelInfo(
        path=str(folder),
        flavor=impl.name,
        flavor_version=impl.version(),
        flavor_options=recorded,
        python_version=platform.python_version(),
        mlcycle_version=_mlcycle_version(),
        created=now_utc(),
        signature=signature,
        input_example=example_name,
        requirements=tuple(pins),
        files=files,
        manifest_digest="",
        metadata=metadata,
    )
    data = orjson.dumps(info.to_manifest(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    (folder / MANIFEST).write_bytes(data)
    return replace(info, manifest_digest=blake3(data).hexdigest())


def _signature(impl: Flavor, model: Any, recorded: Mapping[str, Any], example: Any,
               given: Signature | None) -> Signature:
    """The given signature checked against the example, or one inferred from the example and
    the model's prediction on it."""
    if given is not None:
        given.validate(example)  # an example the signature refuses is a mistake in one of them
        return given
    inferred = infer_signature(example)
    try:
        output = impl.predictor(model, recorded).predict(inferred.validate(example))
    except MlcycleError:
        raise
    except Exception as exc:
        raise InvalidInputError(
            f"the model could not predict its own input_example: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}",
            details={"field": "input_example"},
        ) from exc
    try:
        outputs = infer_spec(output)
    except InvalidInputError:
        outputs = None  # predictions of Python objects: nothing to describe
    return Signature(inferred.inputs, outputs, inferred.input_format)


def load_model(
    model_uri: str | os.PathLike[str],
    *,
    client: ClientLike | None = None,
    expected_digest: str | None = None,
    device: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> PyFuncModel:
    """The model in the folder *model_uri*, or at ``runs:/<run_id>/<artifact_path>`` in
    *client*'s stores.

    Every file is checked against the manifest (and the manifest against *expected_digest*,
    which a ``runs:/`` load takes from the artifact store) before any of them is read by the
    flavor; a difference raises ``ModelIntegrityError`` naming the file. *device* (``"cpu"``,
    ``"cuda"``, …) is for the flavors that place a model: PyTorch, ONNX, XGBoost.

    >>> model = load_model("runs:/4f1c…/model", client=client)   # doctest: +SKIP
    """
    uri = os.fspath(model_uri)
    if uri.startswith("runs:/"):
        if client is None:
            raise InvalidInputError(
                f"{uri}: loading from a run needs client= (a mlcycle.Client)",
                details={"field": "client"},
            )
        return _load_from_run(client, uri, expected_digest, device, cache_dir)
    if "://" in uri or uri.startswith("models:/"):
        raise InvalidInputError(
            f"model_uri must be a local folder or runs:/<run_id>/<path>, got {uri!r}",
            details={"field": "model_uri"},
        )
    return _load_folder(Path(uri), expected_digest, device)


def _load_from_run(client: ClientLike, uri: str, expected_digest: str | None,
                   device: str | None, cache_dir: str | os.PathLike[str] | None) -> PyFuncModel:
    fetched = download_run_model(client, uri, cache_dir=cache_dir)
    digest = fetched.manifest_digest
    if expected_digest is not None and expected_digest != digest:
        raise ModelIntegrityError(
            f"{uri}: the run's {MANIFEST} has digest {digest}, expected {expected_digest}",
            details={"file": MANIFEST, "expected": expected_digest, "got": digest},
        )
    try:
        model = _load_folder(fetched.local_path, digest, device)
    except ModelIntegrityError:
        # The cached copy changed; the artifact store's objects are checked as they are
        # copied, so a fresh download is the stored model or an error of its own.
        fetched = download_run_model(client, uri, cache_dir=cache_dir, refresh=True)
        model = _load_folder(fetched.local_path, digest, device)
    model.info = replace(model.info, run_id=fetched.run_id, artifact_path=fetched.artifact_path,
                         model_uri=fetched.uri)
    return model


def _load_folder(root: Path, expected_digest: str | None, device: str | None) -> PyFuncModel:
    info, _ = read_manifest(root, expected_digest=expected_digest)
    verify_folder(root, info)  # before the flavor reads (and may unpickle) anything
    impl = get_flavor(info.flavor)
    _warn_on_version_drift(info)
    files = ModelFiles(root, info.files)
    try:
        raw = impl.load(files, info.flavor_options, device=device)
    except MlcycleError:
        raise
    except Exception as exc:
        raise InvalidStateError(
            f"the {info.flavor} model at {root} could not be loaded: {type(exc).__name__}: "
            f"{exc}. It needs {', '.join(info.requirements) or 'nothing pinned'}",
            details={"path": str(root), "flavor": info.flavor},
        ) from exc
    return PyFuncModel(info, raw, impl.predictor(raw, info.flavor_options), files)


def log_model(
    run_or_client: Any,
    model: Any,
    artifact_path: str = "model",
    *,
    run_id: str | None = None,
    **save_options: Any,
) -> ModelInfo:
    """Save *model* and store its folder as artifacts of a run: an ``ActiveRun``, or a
    ``Client`` with *run_id*. *save_options* are those of ``save_model``. The returned info
    has ``run_id``, ``model_uri`` (``runs:/<run_id>/<artifact_path>``) and the manifest
    digest as the artifact store recorded it.

    >>> with client.start_run() as run:                                        # doctest: +SKIP
    ...     info = log_model(run, pipeline, input_example=X_train.head())
    >>> load_model(info.model_uri, client=client).predict(X_test)             # doctest: +SKIP
    """
    rid, client = run_and_client(run_or_client, run_id)
    artifact_path = artifact_path.strip("/")
    with tempfile.TemporaryDirectory(prefix="mlcycle-model-") as tmp:
        local = Path(tmp) / "model"
        info = save_model(model, local, **save_options)
        records = client.service.log_artifact(rid, local, artifact_path)
    stored = {r.path: r.digest for r in records}
    manifest_key = f"{artifact_path}/{MANIFEST}"
    if stored.get(manifest_key) != info.manifest_digest:  # the store hashes what it received
        raise InvalidStateError(
            f"the artifact store recorded {manifest_key} with digest "
            f"{stored.get(manifest_key)}, not {info.manifest_digest}",
            details={"run_id": rid, "path": manifest_key},
        )
    uri = f"runs:/{rid}/{artifact_path}"
    return replace(info, path=uri, run_id=rid, artifact_path=artifact_path, model_uri=uri)


# --- helpers ----------------------------------------------------------------------------------


def _json_object(value: Mapping[str, Any] | None, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInputError(
            f"{field}: expected a mapping, got {type(value).__name__}", details={"field": field}
        )
    try:
        return dict(orjson.loads(orjson.dumps(
            dict(value), option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)))
    except TypeError as exc:
        raise InvalidInputError(
            f"{field}: values must be JSON-serialisable: {exc}", details={"field": field}
        ) from None


def _mlcycle_version() -> str:
    try:
        return metadata.version("mlcycle")
    except metadata.PackageNotFoundError:
        return "unknown"


def _warn_on_version_drift(info: ModelInfo) -> None:
    """A model loads under other package versions, and may then predict differently (or fail):
    say which versions differ, once per load."""
    drift = []
    for pin in info.requirements:
        name, _, version = pin.partition("==")
        if not version:
            continue
        with contextlib.suppress(metadata.PackageNotFoundError):
            here = metadata.version(name)
            if here != version:
                drift.append(f"{name} {version} (here {here})")
    saved = ".".join(info.python_version.split(".")[:2])
    here_py = ".".join(platform.python_version().split(".")[:2])
    if saved != here_py:
        drift.append(f"Python {info.python_version} (here {platform.python_version()})")
    if drift:
        warnings.warn(
            f"the {info.flavor} model at {info.path} was saved with {', '.join(drift)}",
            UserWarning, stacklevel=3,
        )
