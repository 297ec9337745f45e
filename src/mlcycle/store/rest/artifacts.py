"""``RestArtifactStore``: the content-addressed objects of a remote ``mlcycle server``.

Uploads are skipped when the server has the object already (a HEAD first), and streamed from
disk otherwise; the server recomputes the digest and refuses bytes that do not match. Downloads
are checked against their digest here too, so neither side trusts the other's bytes.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from typing import IO, Any

import httpx
from blake3 import blake3

from mlcycle.errors import ArtifactNotFound, InvalidInputError, StoreError
from mlcycle.store.artifacts import digest_bytes, digest_file
from mlcycle.store.base import ArtifactStore
from mlcycle.store.rest._http import API, send, stream

__all__ = ["RestArtifactStore"]

_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
_SPOOL = 16 << 20  # downloads up to this size stay in memory; larger ones go to a temp file


class RestArtifactStore(ArtifactStore):
    """``RestArtifactStore(http_client("http://host:8080", token=...))``."""

    def __init__(self, client: httpx.Client) -> None:
        self.http = client

    def _object(self, digest: str) -> str:
        if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
            raise InvalidInputError(
                f"digest must be 64 lowercase hex characters, got {digest!r}",
                details={"field": "digest"},
            )
        return f"{API}/artifacts/objects/{digest}"

    def exists(self, digest: str) -> bool:
        try:
            send(self.http, "HEAD", self._object(digest))
        except ArtifactNotFound:
            return False
        return True

    def put_file(self, path: str, *, digest: str | None = None) -> tuple[str, int]:
        if digest is None:
            digest, size = digest_file(path)
        else:
            size = os.path.getsize(path)
        if not self.exists(digest):
            with open(path, "rb") as fh:
                # A Content-Length keeps the upload a plain (not chunked) body of known size.
                send(self.http, "PUT", self._object(digest), content=_chunks(fh),
                     headers={"content-type": "application/octet-stream",
                              "content-length": str(size)})
        return digest, size

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        digest = digest_bytes(data)
        if not self.exists(digest):
            send(self.http, "PUT", self._object(digest), content=data,
                 headers={"content-type": "application/octet-stream"})
        return digest, len(data)

    def open(self, digest: str) -> IO[bytes]:
        """The object's bytes, downloaded and checked against *digest* before they are handed
        out (in memory up to 16 MiB, in a temporary file beyond)."""
        out: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_SPOOL)  # noqa: SIM115
        try:
            self._download(digest, out)
        except BaseException:
            out.close()
            raise
        out.seek(0)
        return out

    def get_file(self, digest: str, dest: str) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
        tmp = dest + ".partial"
        try:
            with open(tmp, "wb") as out:
                self._download(digest, out)
            os.replace(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def _download(self, digest: str, out: IO[bytes]) -> None:
        hasher = blake3()
        with stream(self.http, self._object(digest)) as response:
            for chunk in response.iter_bytes(_CHUNK):
                hasher.update(chunk)
                out.write(chunk)
        if hasher.hexdigest() != digest:
            raise StoreError(
                f"artifact object {digest} arrived corrupted: the content hash of the bytes "
                "received differs from its digest",
                details={"digest": digest},
            )

    def describe(self) -> dict[str, Any]:
        return {"kind": "rest", "url": str(self.http.base_url)}


def _chunks(fh: IO[bytes]) -> Iterator[bytes]:
    while chunk := fh.read(_CHUNK):
        yield chunk
