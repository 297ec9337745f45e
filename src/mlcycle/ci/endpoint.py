"""A deployment served by a real ``mlcycle serve`` process on a free loopback port, for as
long as a ``with`` block runs: what the acceptance tests talk to."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

import httpx

from mlcycle.errors import ServingError

if TYPE_CHECKING:
    from mlcycle.client import Client

__all__ = ["served"]

_POLL_S = 0.1


@contextmanager
def served(client: Client, deployment: str, version: int, *, cwd: Path,
           timeout: float = 60.0) -> Iterator[httpx.Client]:
    """An HTTP client of ``mlcycle serve --deployment <deployment>``, once it answers with
    *version*; the server is stopped (SIGTERM, so it flushes its logs) on leaving."""
    port = _free_port()
    env = {**os.environ, "MLCYCLE_TRACKING_URI": client.tracking_uri,
           "MLCYCLE_ARTIFACT_URI": client.settings.resolved_artifact_uri}
    # The project folder is the working directory: a model pickled with a class of the
    # project's code finds its module there, as it does when the project serves it.
    # stderr to a file, read on failure (a pipe nobody reads fills up and stalls the server)
    errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    server = subprocess.Popen(
        [sys.executable, "-m", "mlcycle", "serve", "--deployment", deployment,
         "--port", str(port)], env=env, cwd=cwd, stdout=subprocess.DEVNULL,
        stderr=errors)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30.0) as http:
            _wait_ready(http, server, errors, timeout)
            _wait_applied(client, deployment, version, timeout)
            yield http
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        errors.close()


def _tail(errors: IO[bytes]) -> str:
    errors.seek(0)
    return errors.read().decode(errors="replace")[-2000:]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(http: httpx.Client, server: subprocess.Popen[bytes], errors: IO[bytes],
                timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise ServingError(f"mlcycle serve stopped before it was ready: {_tail(errors)}")
        try:
            if http.get("/v2/health/ready").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(_POLL_S)
    raise ServingError(f"mlcycle serve was not ready after {timeout:.0f} s")


def _wait_applied(client: Client, name: str, version: int, timeout: float) -> None:
    """Until every live worker has applied the deployment's revision that made *version*
    stable."""
    deadline = time.monotonic() + timeout
    while True:
        status = client.deployments.status(name)
        d = status.deployment
        applied = status.live_workers and all(
            w.report.revision >= d.revision for w in status.live_workers)
        if d.stable_version == version and applied:
            return
        if time.monotonic() > deadline:
            raise ServingError(f"deployment {name!r}: the server did not serve version "
                               f"{version} within {timeout:.0f} s (stable "
                               f"v{d.stable_version}, phase {d.phase})")
        time.sleep(_POLL_S)
