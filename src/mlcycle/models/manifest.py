"""The manifest of a saved model (``model.json``) and the check of its files.

A model folder holds ``model.json`` and the files it lists, each with its BLAKE3 digest and
size. ``verify_folder`` compares the folder with the manifest before anything in it is
deserialised: a changed, missing or added file (or a symbolic link, which could point anywhere)
refuses the model. The manifest's own digest is the one the artifact store records for
``model.json``, so a caller that learnt it from the store (``runs:/`` loads, the registry) passes
it as ``expected_digest`` and an edited manifest is refused too.

Flavors read their files through ``ModelFiles.read_bytes``, which hashes the bytes it returns
again: what is unpickled is exactly what was verified, even if the file is swapped on disk
between the check and the read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from blake3 import blake3

from mlcycle.errors import InvalidInputError, ModelIntegrityError
from mlcycle.models.signature import Signature

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "FileDigest",
    "ModelFiles",
    "ModelInfo",
    "digest_file",
    "read_manifest",
    "verify_folder",
]

MANIFEST = "model.json"
FORMAT = "mlcycle-model"
FORMAT_VERSION = 1
_CHUNK = 1 << 20
_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class FileDigest:
    blake3: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"blake3": self.blake3, "size": self.size}


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A saved model as its manifest describes it, and where it is.

    ``manifest_digest`` is the BLAKE3 digest of ``model.json``: the one number that pins every
    byte of the model (the registry keeps it). ``run_id``, ``artifact_path`` and ``model_uri``
    are set when the model was logged to, or loaded from, a run.
    """

    path: str
    flavor: str
    flavor_version: str
    flavor_options: Mapping[str, Any]
    python_version: str
    mlcycle_version: str
    created: datetime
    signature: Signature | None
    input_example: str | None
    requirements: tuple[str, ...]
    files: Mapping[str, FileDigest]
    manifest_digest: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    artifact_path: str | None = None
    model_uri: str | None = None

    def to_manifest(self) -> dict[str, Any]:
        """The ``model.json`` content (without the location fields, which are not part of the
        model)."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "flavor": self.flavor,
            "flavor_version": self.flavor_version,
            "flavor_options": dict(self.flavor_options),
            "python_version": self.python_version,
            "mlcycle_version": self.mlcycle_version,
            "created": self.created.isoformat().replace("+00:00", "Z"),
            "signature": None if self.signature is None else self.signature.to_dict(),
            "input_example": self.input_example,
            "requirements": list(self.requirements),
            "files": {name: d.to_dict() for name, d in sorted(self.files.items())},
            "metadata": dict(self.metadata),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.to_manifest(),
            "path": self.path,
            "manifest_digest": self.manifest_digest,
            "run_id": self.run_id,
            "artifact_path": self.artifact_path,
            "model_uri": self.model_uri,
        }

    @classmethod
    def from_manifest(cls, data: Any, *, path: str, manifest_digest: str) -> ModelInfo:
        """Parse a manifest; a malformed one names the field."""
        if not isinstance(data, Mapping):
            raise _bad("", "expected a JSON object")
        if data.get("format") != FORMAT:
            raise _bad("format", f"expected {FORMAT!r}, got {data.get('format')!r}")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise _bad(
                "format_version",
                f"this mlcycle reads version {FORMAT_VERSION}, got {version!r} "
                "(saved by another mlcycle release?)",
            )
        files: dict[str, FileDigest] = {}
        raw_files = _field(data, "files", Mapping)
        for name, entry in raw_files.items():
            if (not isinstance(entry, Mapping) or not isinstance(entry.get("blake3"), str)
                    or not _DIGEST_RE.match(entry["blake3"])
                    or not isinstance(entry.get("size"), int)):
                raise _bad(f"files.{name}", "expected {'blake3': <64 hex>, 'size': <int>}")
            _check_relative(name)
            files[name] = FileDigest(entry["blake3"], entry["size"])
        signature = data.get("signature")
        try:
            created = datetime.fromisoformat(str(_field(data, "created", str)))
        except ValueError:
            raise _bad("created", "expected an ISO 8601 time") from None
        example = data.get("input_example")
        if example is not None and example not in files:
            raise _bad("input_example", f"{example!r} is not one of the listed files")
        return cls(
            path=path,
            flavor=_field(data, "flavor", str),
            flavor_version=_field(data, "flavor_version", str),
            flavor_options=dict(_field(data, "flavor_options", Mapping)),
            python_version=_field(data, "python_version", str),
            mlcycle_version=_field(data, "mlcycle_version", str),
            created=created if created.tzinfo else created.replace(tzinfo=UTC),
            signature=None if signature is None else Signature.from_dict(signature),
            input_example=example,
            requirements=tuple(str(r) for r in _field(data, "requirements", list)),
            files=files,
            manifest_digest=manifest_digest,
            metadata=dict(data.get("metadata") or {}),
        )


def _field(data: Mapping[str, Any], name: str, kind: type) -> Any:
    value = data.get(name)
    if not isinstance(value, kind):
        raise _bad(name, f"expected {kind.__name__}, got {type(value).__name__}")
    return value


def _bad(field_name: str, why: str) -> InvalidInputError:
    where = f"{MANIFEST}: {field_name}: " if field_name else f"{MANIFEST}: "
    return InvalidInputError(
        where + why, details={"field": f"{MANIFEST}.{field_name}".rstrip(".")}
    )


def _check_relative(name: str) -> None:
    parts = name.split("/")
    if (not name or name.startswith("/") or "\\" in name
            or any(p in ("", ".", "..") for p in parts) or name == MANIFEST):
        raise _bad(f"files.{name}", "expected a relative path inside the model folder")


# --- hashing and verification -----------------------------------------------------------------


def digest_file(path: str | os.PathLike[str]) -> FileDigest:
    hasher = blake3()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    return FileDigest(hasher.hexdigest(), size)


def _listing(root: Path) -> dict[str, Path]:
    """Every entry under *root* but the manifest, by relative POSIX path; links are refused."""
    out: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for name in [*dirnames, *filenames]:
            path = base / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                raise ModelIntegrityError(
                    f"model at {root}: {rel} is a symbolic link; a model folder holds only "
                    "plain files",
                    details={"file": rel, "path": str(root)},
                )
        for name in filenames:
            rel = (base / name).relative_to(root).as_posix()
            if rel != MANIFEST:
                out[rel] = base / name
    return out


def read_manifest(
    root: str | os.PathLike[str], *, expected_digest: str | None = None
) -> tuple[ModelInfo, bytes]:
    """The parsed manifest of the folder *root* and its bytes, checked against
    *expected_digest* when given (before it is parsed)."""
    root = Path(root)
    path = root / MANIFEST
    if not path.is_file() or path.is_symlink():
        raise InvalidInputError(
            f"{root} is not a saved model: it has no {MANIFEST}",
            details={"field": "path", "path": str(root)},
        )
    data = path.read_bytes()
    digest = blake3(data).hexdigest()
    if expected_digest is not None and digest != expected_digest:
        raise ModelIntegrityError(
            f"model at {root}: {MANIFEST} has digest {digest}, expected {expected_digest}: "
            "the manifest was changed after the model was stored",
            details={"file": MANIFEST, "expected": expected_digest, "got": digest},
        )
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(
            f"{root / MANIFEST}: not valid JSON: {exc}", details={"field": MANIFEST}
        ) from None
    return ModelInfo.from_manifest(parsed, path=str(root), manifest_digest=digest), data


def verify_folder(root: str | os.PathLike[str], info: ModelInfo) -> None:
    """Refuse *root* unless its files are exactly those of the manifest, byte for byte."""
    root = Path(root)
    present = _listing(root)
    extra = sorted(set(present) - set(info.files))
    if extra:
        raise ModelIntegrityError(
            f"model at {root}: {extra[0]} is not listed in {MANIFEST}; files were added "
            "after the model was saved",
            details={"file": extra[0], "path": str(root), "extra": extra},
        )
    for name, want in sorted(info.files.items()):
        if name not in present:
            raise ModelIntegrityError(
                f"model at {root}: {name} is listed in {MANIFEST} but missing",
                details={"file": name, "path": str(root)},
            )
        got = digest_file(present[name])
        if got != want:
            raise ModelIntegrityError(
                f"model at {root}: {name} changed since the model was saved (BLAKE3 "
                f"{got.blake3[:16]}…, {got.size} bytes; expected {want.blake3[:16]}…, "
                f"{want.size} bytes); refusing to load it",
                details={"file": name, "path": str(root), "expected": want.blake3,
                         "got": got.blake3},
            )


class ModelFiles:
    """The verified files of one model, as a flavor reads them."""

    def __init__(self, root: str | os.PathLike[str], files: Mapping[str, FileDigest]) -> None:
        self.root = Path(root)
        self._files = dict(files)

    def __contains__(self, name: object) -> bool:
        return name in self._files

    def names(self, prefix: str = "") -> list[str]:
        return sorted(n for n in self._files if n.startswith(prefix))

    def path(self, name: str) -> Path:
        """The file's path, for a reader that only takes paths (its content was verified when
        the model was opened, not at this call)."""
        self._digest(name)
        return self.root / name

    def read_bytes(self, name: str) -> bytes:
        """The file's bytes, hashed again as they are read."""
        want = self._digest(name)
        data = (self.root / name).read_bytes()
        got = blake3(data).hexdigest()
        if got != want.blake3 or len(data) != want.size:
            raise ModelIntegrityError(
                f"model at {self.root}: {name} changed while it was being loaded",
                details={"file": name, "path": str(self.root)},
            )
        return data

    def _digest(self, name: str) -> FileDigest:
        try:
            return self._files[name]
        except KeyError:
            raise ModelIntegrityError(
                f"model at {self.root}: the flavor needs {name}, which {MANIFEST} does not list",
                details={"file": name, "path": str(self.root)},
            ) from None


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
