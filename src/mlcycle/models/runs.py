"""Models inside runs: ``runs:/<run_id>/<artifact_path>`` URIs and the local cache of their
folders.

A logged model is the folder's files as artifacts of the run; the artifact store records each
file's BLAKE3 digest, so the digest of ``<artifact_path>/model.json`` is the model's manifest
digest. A load downloads the folder into ``<home>/cache/models/<manifest digest>/`` (the
artifact store checks every object's digest on the way), and the model is then verified
against that manifest digest like any other: an edited cache is refused, removed and fetched
again.

Only what a ``Client`` has is used (``client.service``, the tracking service, and
``client.settings.home``), through a protocol: this package sits below the client, so it takes
one as an argument rather than importing it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mlcycle.errors import ArtifactNotFound, InvalidInputError
from mlcycle.models.manifest import MANIFEST
from mlcycle.tracking.service import TrackingService

__all__ = ["ClientLike", "RunModel", "download_run_model", "parse_runs_uri", "run_and_client"]

_RUNS_URI = re.compile(r"^runs:/(?P<run_id>[^/]+)/(?P<path>.+?)/?$")


class _SettingsLike(Protocol):
    @property
    def home(self) -> Path: ...


class ClientLike(Protocol):
    """What a ``mlcycle.Client`` offers that models use."""

    @property
    def service(self) -> TrackingService: ...

    @property
    def settings(self) -> _SettingsLike: ...


@dataclass(frozen=True, slots=True)
class RunModel:
    """A model folder of a run, downloaded and not yet verified."""

    run_id: str
    artifact_path: str
    local_path: Path
    manifest_digest: str

    @property
    def uri(self) -> str:
        return f"runs:/{self.run_id}/{self.artifact_path}"


def parse_runs_uri(uri: str) -> tuple[str, str]:
    """``(run_id, artifact_path)`` of ``runs:/<run_id>/<artifact_path>``."""
    match = _RUNS_URI.match(uri)
    if match is None:
        raise InvalidInputError(
            f"model URI must look like runs:/<run_id>/<artifact_path>, got {uri!r}",
            details={"field": "model_uri"},
        )
    return match["run_id"], match["path"]


def run_and_client(run_or_client: Any, run_id: str | None) -> tuple[str, ClientLike]:
    """The run id and client of an ``ActiveRun``, or of a ``Client`` and *run_id*."""
    client = getattr(run_or_client, "client", None)
    own_id = getattr(run_or_client, "run_id", None)
    if client is not None and isinstance(own_id, str):
        if run_id is not None and run_id != own_id:
            raise InvalidInputError(
                f"run_id {run_id!r} differs from the run given ({own_id!r}); pass one of them",
                details={"field": "run_id"},
            )
        return own_id, client
    if hasattr(run_or_client, "service") and hasattr(run_or_client, "settings"):
        if run_id is None:
            raise InvalidInputError(
                "log_model with a Client needs run_id= (or pass the ActiveRun itself)",
                details={"field": "run_id"},
            )
        return run_id, run_or_client
    raise InvalidInputError(
        f"expected an ActiveRun or a Client, got {type(run_or_client).__name__}",
        details={"field": "run"},
    )


def download_run_model(client: ClientLike, uri: str, *, cache_dir: str | os.PathLike[str] | None,
                       refresh: bool = False) -> RunModel:
    """The folder of the model at *uri* in the local cache, downloaded if it is not there
    (or *refresh*)."""
    run_id, artifact_path = parse_runs_uri(uri)
    service = client.service
    manifest_path = f"{artifact_path}/{MANIFEST}"
    try:
        record = service.find_artifact(run_id, manifest_path)
    except ArtifactNotFound:
        raise ArtifactNotFound(
            f"run {run_id!r} has no model at {artifact_path!r} (no {manifest_path})",
            details={"run_id": run_id, "path": artifact_path},
        ) from None
    root = Path(cache_dir) if cache_dir is not None else client.settings.home / "cache" / "models"
    target = root / record.digest
    if refresh and target.exists():
        shutil.rmtree(target)
    if not target.exists():
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=root, prefix=".download-"))
        try:
            folder = service.download_artifacts(run_id, artifact_path, staging)
            try:
                os.replace(folder, target)
            except OSError:
                if not target.exists():  # not a concurrent download of the same model
                    raise
        finally:
            with contextlib.suppress(OSError):
                shutil.rmtree(staging)
    return RunModel(run_id, artifact_path, target, record.digest)
