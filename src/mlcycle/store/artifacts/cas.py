"""A content-addressed object store over fsspec.

Objects live at ``<root>/objects/<first two hex digits>/<rest of the digest>``, so the same
bytes are stored once however many runs log them. Local writes go to a temporary name and are
renamed into place (readers never see half a file); object stores such as S3 make each PUT atomic
themselves.
"""

from __future__ import annotations

import os
import re
import tempfile
from typing import IO, Any

import fsspec
from blake3 import blake3

from mlcycle.errors import ArtifactNotFound, InvalidInputError, StoreError
from mlcycle.store.base import ArtifactStore

__all__ = ["FsspecArtifactStore", "digest_bytes", "digest_file"]

_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


def digest_bytes(data: bytes) -> str:
    return blake3(data).hexdigest()


def digest_file(path: str) -> tuple[str, int]:
    """BLAKE3 digest and size of a local file, read in chunks."""
    hasher = blake3()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    return hasher.hexdigest(), size


class FsspecArtifactStore(ArtifactStore):
    """``FsspecArtifactStore("/data/artifacts")`` or ``("s3://bucket/prefix", key=..., ...)``."""

    def __init__(self, url: str, **storage_options: Any) -> None:
        self.url = url
        self.fs, root = fsspec.core.url_to_fs(url, **storage_options)
        self.root = root.rstrip("/")
        self._local = "file" in (self.fs.protocol if isinstance(self.fs.protocol, tuple)
                                 else (self.fs.protocol,))
        if self._local:
            os.makedirs(self._objects_dir(), exist_ok=True)

    def _objects_dir(self) -> str:
        return f"{self.root}/objects"

    def _path(self, digest: str) -> str:
        if not _DIGEST_RE.match(digest):
            raise InvalidInputError(
                f"digest must be 64 lowercase hex characters, got {digest!r}",
                details={"field": "digest"},
            )
        return f"{self.root}/objects/{digest[:2]}/{digest[2:]}"

    def exists(self, digest: str) -> bool:
        return bool(self.fs.exists(self._path(digest)))

    def size(self, digest: str) -> int:
        try:
            return int(self.fs.size(self._path(digest)))
        except FileNotFoundError:
            raise ArtifactNotFound(
                f"no artifact object with digest {digest}", details={"digest": digest}
            ) from None

    def put_file(self, path: str, *, digest: str | None = None) -> tuple[str, int]:
        if digest is None:
            digest, size = digest_file(path)
        else:
            size = os.path.getsize(path)
        target = self._path(digest)
        if self.fs.exists(target):
            return digest, size
        try:
            if self._local:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".incoming-")
                try:
                    with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
                        while chunk := src.read(_CHUNK):
                            out.write(chunk)
                    os.replace(tmp, target)
                except BaseException:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
                    raise
            else:
                self.fs.put_file(path, target)
        except OSError as exc:
            raise StoreError(f"could not store artifact {digest}: {exc}") from exc
        return digest, size

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        digest = digest_bytes(data)
        target = self._path(digest)
        if self.fs.exists(target):
            return digest, len(data)
        try:
            if self._local:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".incoming-")
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                os.replace(tmp, target)
            else:
                self.fs.pipe_file(target, data)
        except OSError as exc:
            raise StoreError(f"could not store artifact {digest}: {exc}") from exc
        return digest, len(data)

    def open(self, digest: str) -> IO[bytes]:
        path = self._path(digest)
        try:
            return self.fs.open(path, "rb")
        except FileNotFoundError:
            raise ArtifactNotFound(
                f"no artifact object with digest {digest}", details={"digest": digest}
            ) from None

    def get_file(self, digest: str, dest: str) -> None:
        """Copy the object to *dest* and check its digest on the way (a corrupted object fails)."""
        hasher = blake3()
        os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
        tmp = dest + ".partial"
        with self.open(digest) as src, open(tmp, "wb") as out:
            while chunk := src.read(_CHUNK):
                hasher.update(chunk)
                out.write(chunk)
        if hasher.hexdigest() != digest:
            os.unlink(tmp)
            raise StoreError(f"artifact object {digest} is corrupted: its content hash differs")
        os.replace(tmp, dest)

    def describe(self) -> dict[str, Any]:
        return {"kind": "fsspec", "url": self.url}
