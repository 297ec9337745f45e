"""A deployment served by a real ``mlcycle serve`` process on a free loopback port, for as
long as a ``with`` block runs: what the acceptance tests talk to."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from mlcycle.serving.process import serve_deployment, wait_switched

if TYPE_CHECKING:
    from mlcycle.client import Client

__all__ = ["served"]


@contextmanager
def served(client: Client, deployment: str, version: int, *, cwd: Path,
           timeout: float = 60.0) -> Iterator[httpx.Client]:
    """An HTTP client of ``mlcycle serve --deployment <deployment>``, once it answers with
    *version*; the server is stopped (SIGTERM, so it flushes its logs) on leaving. The project
    folder *cwd* is its working directory: a model pickled with a class of the project's code
    finds its module there, as it does when the project serves it."""
    with serve_deployment(deployment, tracking_uri=client.tracking_uri,
                          artifact_uri=client.settings.resolved_artifact_uri, cwd=cwd,
                          timeout=timeout, http_timeout=30.0) as server:
        wait_switched(client.deployments, deployment, version, timeout)
        yield server.http
