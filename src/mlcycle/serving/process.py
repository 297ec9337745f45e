"""A deployment served by a real ``mlcycle serve --deployment`` child process on a free
loopback port, for as long as a ``with`` block runs: what ``mlcycle ci``'s acceptance tests and
the demos talk to."""

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
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import httpx

from mlcycle.errors import ServingError

if TYPE_CHECKING:
    from mlcycle.deploy import DeploymentService

__all__ = ["ServeProcess", "serve_deployment", "wait_switched"]

_POLL_S = 0.1


@dataclass
class ServeProcess:
    url: str
    http: httpx.Client
    process: subprocess.Popen[bytes]


@contextmanager
def serve_deployment(deployment: str, *, tracking_uri: str, artifact_uri: str,
                     cwd: Path | None = None, timeout: float = 60.0,
                     http_timeout: float = 10.0) -> Iterator[ServeProcess]:
    """``mlcycle serve --deployment`` over the given stores, until it is ready; stopped
    cleanly on leaving (SIGTERM: the prediction log is flushed, the worker says goodbye).
    *cwd* is its working directory (a project whose code a pickled model imports)."""
    port = _free_port()
    env = {**os.environ, "MLCYCLE_TRACKING_URI": tracking_uri,
           "MLCYCLE_ARTIFACT_URI": artifact_uri}
    # stderr to a file, read on failure (a pipe nobody reads fills up and stalls the server)
    errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    process = subprocess.Popen(
        [sys.executable, "-m", "mlcycle", "serve", "--deployment", deployment, "--port",
         str(port)], env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=errors)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=http_timeout) as http:
            _wait_ready(http, process, errors, timeout)
            yield ServeProcess(url, http, process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        errors.close()


def wait_switched(deployments: DeploymentService, name: str, version: int,
                  timeout: float) -> None:
    """Until *version* is the deployment's stable version and every live worker has applied
    the revision that made it so; a rollback of *version* ends the wait at once."""
    deadline = time.monotonic() + timeout
    while True:
        status = deployments.status(name)
        d = status.deployment
        applied = status.live_workers and all(
            w.report.revision >= d.revision for w in status.live_workers)
        if d.stable_version == version and applied:
            return
        if d.candidate_version is None and d.stable_version != version:
            raise ServingError(f"deployment {name!r}: version {version} is not being rolled "
                               f"out (stable v{d.stable_version}); `mlcycle deploy history "
                               f"{name}` says why")
        if time.monotonic() > deadline:
            raise ServingError(f"deployment {name!r}: the server did not serve version "
                               f"{version} within {timeout:.0f} s (stable "
                               f"v{d.stable_version}, phase {d.phase})")
        time.sleep(_POLL_S)


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
