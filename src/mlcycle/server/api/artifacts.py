"""Artifacts: content-addressed objects (``/api/v1/artifacts/objects/{digest}``) and each run's
manifest of paths pointing at them (``/api/v1/runs/{run_id}/artifacts``).

A client uploads an object once (``HEAD`` tells it whether the server has it already), then
records ``[{path, digest, size}]`` for the run. The server trusts neither half: it hashes every
upload itself, and records a manifest entry only for an object it holds, at the size it has.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import IO, Annotated

import anyio
from blake3 import blake3
from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from mlcycle.entities import Artifact
from mlcycle.errors import ArtifactNotFound, InvalidInputError
from mlcycle.server.deps import Service
from mlcycle.server.schemas import ArtifactList, ArtifactOut, ArtifactsRecord, ObjectOut

router = APIRouter(tags=["artifacts"])

Digest = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="BLAKE3, 64 hex digits.")]

_CHUNK = 1 << 20
_OBJECT = "/artifacts/objects/{digest}"


@router.put(_OBJECT, status_code=201, openapi_extra={
    "requestBody": {"required": True,
                    "content": {"application/octet-stream": {"schema": {"type": "string",
                                                                         "format": "binary"}}}}
})
async def upload_object(digest: Digest, request: Request, service: Service) -> ObjectOut:
    """Store the raw request body as the object *digest*. The server hashes the bytes itself
    and refuses them (400) when they do not match."""
    hasher = blake3()
    size = 0
    # Streamed to a temporary file, not held in memory: models can be gigabytes.
    fd, tmp = tempfile.mkstemp(prefix="mlcycle-upload-")
    try:
        async with await anyio.open_file(fd, "wb") as out:
            try:
                async for chunk in request.stream():
                    hasher.update(chunk)
                    size += len(chunk)
                    await out.write(chunk)
            except ClientDisconnect:  # the client went away: an expected end, not a server fault
                raise InvalidInputError(f"body: the upload was cut off after {size} bytes",
                                        details={"field": "body"}) from None
        actual = hasher.hexdigest()
        if actual != digest:
            raise InvalidInputError(
                f"digest: the uploaded bytes hash to {actual}, not to the {digest} named in the "
                "URL; the upload was corrupted or the URL is wrong",
                details={"field": "digest", "expected": digest, "received": actual},
            )
        await run_in_threadpool(service.artifacts.put_file, tmp, digest=digest)
    finally:
        os.unlink(tmp)
    return ObjectOut(digest=digest, size=size)


@router.head(_OBJECT)
def head_object(digest: Digest, service: Service) -> Response:
    """200 when the server holds the object, 404 otherwise (uploads skip what exists)."""
    if not service.artifacts.exists(digest):
        raise ArtifactNotFound(f"no artifact object with digest {digest}",
                               details={"digest": digest})
    return Response(status_code=200)


@router.get(_OBJECT, response_class=StreamingResponse,
            responses={200: {"content": {"application/octet-stream": {}}}})
def download_object(digest: Digest, service: Service) -> StreamingResponse:
    """The object's bytes, streamed. Clients check them against *digest*."""
    size = service.artifacts.size(digest)
    fh = service.artifacts.open(digest)
    return StreamingResponse(_read(fh), media_type="application/octet-stream",
                             headers={"content-length": str(size)})


@router.post("/runs/{run_id}/artifacts", status_code=204)
def record_artifacts(run_id: str, body: ArtifactsRecord, service: Service) -> None:
    """Add ``[{path, digest, size}]`` to the run's manifest; each object must be uploaded first."""
    service.record_artifacts(
        run_id, [Artifact(item.path, item.digest, item.size) for item in body.artifacts]
    )


@router.get("/runs/{run_id}/artifacts")
def list_artifacts(run_id: str, service: Service, prefix: str = "") -> ArtifactList:
    """The run's artifacts in path order; *prefix* keeps one file or one folder."""
    items = service.list_artifacts(run_id, prefix)
    return ArtifactList(artifacts=[ArtifactOut.from_entity(a) for a in items])


def _read(fh: IO[bytes]) -> Iterator[bytes]:
    with fh:
        while chunk := fh.read(_CHUNK):
            yield chunk
