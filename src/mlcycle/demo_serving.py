"""The demo's serving stage: the production model behind a deployment, served by a real
``mlcycle serve`` process on 127.0.0.1, with the test rows sent as traffic and their labels as
feedback, then read back from the deployment's counters and the Parquet prediction log."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import fsspec
import httpx
import pandas as pd
import pyarrow.dataset as ds

import mlcycle as mc
from mlcycle.deploy import VersionStats
from mlcycle.errors import ServingError

__all__ = ["TrafficSummary", "serve_and_send_traffic"]


@dataclass(frozen=True, slots=True)
class TrafficSummary:
    deployment: str
    version: int
    url: str
    requests: int
    errors: int
    p95_ms: float | None
    accuracy: float | None
    feedback: int
    logged_rows: int
    log_uri: str


def serve_and_send_traffic(client: mc.Client, name: str, model_uri: str, frame: pd.DataFrame,
                           labels: pd.Series, *, timeout: float = 60.0) -> TrafficSummary:
    """Deploy *model_uri* as *name* (blue-green: the first version goes live at once), serve it,
    send every row of *frame* as its own ``/predict`` request and every label as feedback, and
    sum up what the deployment counted and logged."""
    client.deployments.deploy(name, model_uri, strategy="blue-green", actor="demo")
    version = client.registry.resolve(model_uri).version
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    settings = client.settings
    env = {**os.environ, "MLCYCLE_TRACKING_URI": client.tracking_uri,
           "MLCYCLE_ARTIFACT_URI": settings.resolved_artifact_uri}
    server = subprocess.Popen(
        [sys.executable, "-m", "mlcycle", "serve", "--deployment", name, "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        with httpx.Client(base_url=url, timeout=10.0) as http:
            _wait_ready(http, server, timeout)
            _wait_switched(client, name, version, timeout)
            # Earlier servers of this deployment counted too: this run's share is the rest.
            before = client.deployments.status(name).stats.get(version, VersionStats())
            request_ids = []
            for record in frame.to_dict(orient="records"):
                answer = http.post("/predict", json=[record])
                answer.raise_for_status()
                request_ids.append(answer.headers["x-request-id"])
            feedback = [{"request_id": rid, "label": int(label)}
                        for rid, label in zip(request_ids, labels, strict=True)]
            http.post("/feedback", json=feedback).raise_for_status()
            stats = _counted(client, name, version, before, len(request_ids), timeout)
    finally:
        server.send_signal(signal.SIGTERM)  # a clean stop flushes the prediction log
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    log_uri = settings.resolved_prediction_log_uri
    return TrafficSummary(
        deployment=name, version=version, url=url, requests=stats.requests,
        errors=stats.errors,
        p95_ms=None if (p95 := stats.latency_quantile(0.95)) is None else p95 * 1000,
        accuracy=stats.accuracy, feedback=stats.feedback,
        logged_rows=_logged_rows(f"{log_uri}/predictions", name), log_uri=log_uri)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(http: httpx.Client, server: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise ServingError("mlcycle serve stopped before it was ready: "
                               + (server.stderr.read().decode()[-2000:] if server.stderr else ""))
        try:
            if http.get("/v2/health/ready").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise ServingError(f"mlcycle serve was not ready after {timeout:.0f} s")


def _wait_switched(client: mc.Client, name: str, version: int, timeout: float) -> None:
    """Until the worker has warmed *version*, the controller has switched traffic to it, and
    the worker has applied the switch."""
    deadline = time.monotonic() + timeout
    while True:
        status = client.deployments.status(name)
        deployment = status.deployment
        applied = status.live_workers and all(
            w.report.revision >= deployment.revision for w in status.live_workers)
        if deployment.phase == "stable" and deployment.stable_version == version and applied:
            return
        if deployment.candidate_version is None and deployment.stable_version != version:
            raise ServingError(f"deployment {name!r}: version {version} was rolled back; "
                               f"`mlcycle deploy history {name}` says why")
        if time.monotonic() > deadline:
            raise ServingError(f"deployment {name!r}: version {version} not switched to "
                               f"after {timeout:.0f} s (phase {deployment.phase})")
        time.sleep(0.1)


def _counted(client: mc.Client, name: str, version: int, before: VersionStats, requests: int,
             timeout: float) -> VersionStats:
    """What the deployment counted for *version* since *before*, once the worker has reported
    every request and label (it reports about once a second)."""
    deadline = time.monotonic() + timeout
    while True:
        now = client.deployments.status(name).stats.get(version, VersionStats())
        stats = _since(now, before)
        if stats.requests >= requests and stats.feedback >= requests:
            return stats
        if time.monotonic() > deadline:
            raise ServingError(f"deployment {name!r}: after {timeout:.0f} s the workers had "
                               f"reported {stats.requests} of {requests} requests and "
                               f"{stats.feedback} of {requests} labels")
        time.sleep(0.2)


def _since(now: VersionStats, before: VersionStats) -> VersionStats:
    return VersionStats(
        requests=now.requests - before.requests, errors=now.errors - before.errors,
        latency_sum=now.latency_sum - before.latency_sum,
        latency_buckets=[a - b for a, b in zip(now.latency_buckets, before.latency_buckets,
                                               strict=True)],
        feedback=now.feedback - before.feedback, correct=now.correct - before.correct)


def _logged_rows(path: str, name: str) -> int:
    fs, folder = fsspec.core.url_to_fs(f"{path}/deployment={name}")
    if not fs.isdir(folder):
        return 0
    dataset = ds.dataset(folder, filesystem=fs, format="parquet", partitioning="hive")
    return int(dataset.count_rows())
