"""The demo's serving stages: the production model behind a deployment, served by a real
``mlcycle serve`` process on 127.0.0.1, sent the test rows as traffic and their labels as
feedback; then the closed loop: drifted traffic, a monitor that sees it, a trigger that retrains
on the newest data plus the labelled production rows, gates against production, and a canary
that the serving worker's controller promotes (or rolls back) while traffic flows."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import fsspec
import pandas as pd
import pyarrow.dataset as ds

import mlcycle as mc
from mlcycle.deploy import VersionStats
from mlcycle.errors import NotFoundError, ServingError
from mlcycle.monitoring import LogWindow
from mlcycle.serving.process import ServeProcess, serve_deployment, wait_switched

__all__ = ["LoopSummary", "ModelServer", "TrafficSummary", "close_the_loop", "ensure",
           "model_server", "run_canary", "send_traffic", "wait_logged"]


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


@dataclass(frozen=True, slots=True)
class LoopSummary:
    """What the closed loop did: the drift the monitor found, the trigger run, and the canary."""

    drifted: dict[str, float]  # column -> drift score (W/std or JS), drifted columns only
    monitor_status: str
    trigger_status: str
    trigger_reason: str
    new_version: int | None
    gates: str
    outcome: str  # "promoted", "rolled back", "not deployed", or "still in canary"
    outcome_reason: str
    accuracy_before: float | None
    accuracy_after: float | None


ModelServer = ServeProcess


def model_server(client: mc.Client, deployment: str, *, timeout: float = 60.0
                 ) -> AbstractContextManager[ServeProcess]:
    """``mlcycle serve --deployment`` over *client*'s stores on a free loopback port, until
    ready; stopped cleanly on exit."""
    return serve_deployment(deployment, tracking_uri=client.tracking_uri,
                            artifact_uri=client.settings.resolved_artifact_uri,
                            timeout=timeout)


def send_traffic(server: ModelServer, frame: pd.DataFrame, labels: Any, *,
                 concurrency: int = 1, progress: Callable[[int], None] | None = None
                 ) -> list[str]:
    """Each row of *frame* as its own ``/predict`` request (*concurrency* clients at once, as
    independent callers would send them; the server micro-batches what arrives together), then
    every label as feedback; the request ids, in row order. *progress* is told how many rows
    each finished request answered."""
    records = frame.to_dict(orient="records")

    def one(record: dict[str, Any]) -> str:
        answer = server.http.post("/predict", json=[record])
        answer.raise_for_status()
        if progress is not None:
            progress(1)
        return str(answer.headers["x-request-id"])

    if concurrency <= 1:
        ids = [one(record) for record in records]
    else:
        with ThreadPoolExecutor(concurrency, thread_name_prefix="traffic") as pool:
            ids = list(pool.map(one, records))
    feedback = [{"request_id": rid, "label": int(label)}
                for rid, label in zip(ids, labels, strict=True)]
    for start in range(0, len(feedback), 5_000):
        server.http.post("/feedback", json=feedback[start:start + 5_000]).raise_for_status()
    return ids


def serve_production(client: mc.Client, server: ModelServer, name: str, version: int,
                     frame: pd.DataFrame, labels: Any, *, timeout: float = 60.0,
                     concurrency: int = 1) -> TrafficSummary:
    """Wait for *version* to be live, send *frame* and *labels*, and sum up what the
    deployment counted and logged."""
    wait_switched(client.deployments, name, version, timeout)
    # Earlier servers of this deployment counted too: this run's share is the rest.
    before = client.deployments.status(name).stats.get(version, VersionStats())
    sent = send_traffic(server, frame, labels, concurrency=concurrency)
    stats = _counted(client, name, version, before, len(sent), timeout)
    log_uri = client.settings.resolved_prediction_log_uri
    p95 = stats.latency_quantile(0.95)
    return TrafficSummary(
        deployment=name, version=version, url=server.url, requests=stats.requests,
        errors=stats.errors, p95_ms=None if p95 is None else p95 * 1000,
        accuracy=stats.accuracy, feedback=stats.feedback,
        logged_rows=_logged_rows(f"{log_uri}/predictions", name), log_uri=log_uri)


def close_the_loop(client: mc.Client, server: ModelServer, *, deployment: str, dataset: str,
                   evaluation: str, pipeline: str, gates: str, drifted: pd.DataFrame,
                   labels: pd.Series, normal: LogWindow, unseen: pd.DataFrame,
                   unseen_labels: pd.Series, timeout: float = 120.0) -> LoopSummary:
    """The monitor looks at the *normal* traffic (ok), then drifted traffic with its labels →
    its drift alert → the retraining trigger → gates against production → a canary under more
    drifted traffic (*unseen* rows: not in the retraining data), until the controller promotes
    or rolls back."""
    from mlcycle.retrain import TriggerService

    monitors, triggers = client.monitors, TriggerService(client)
    monitor, trigger = f"{deployment}-drift", f"{deployment}-retrain"
    ensure(lambda: monitors.get(monitor), lambda: monitors.create(
        monitor, deployment, {"checks": ["drift", "performance"], "window": "1d"}))
    ensure(lambda: triggers.get(trigger), lambda: triggers.create(
        trigger, deployment, kinds=["drift"], pipeline=pipeline, dataset=dataset,
        target="target", evaluation_data=evaluation, gates=gates, cooldown=0,
        canary={"steps": [50, 100], "min_requests": 25}))
    def logged(window: LogWindow, rows: int) -> bool:
        frame = monitors.read_window(monitors.get(monitor), window)
        return frame.height >= rows and frame["label"].is_not_null().sum() >= rows

    # Alerts fire on a change of status: first the monitor sees normal traffic.
    _until(lambda: logged(normal, normal.last or 1), timeout,
           "the normal traffic and its labels to reach the logs")
    monitors.run(monitor, window=normal)

    since = datetime.now(UTC)
    ids = send_traffic(server, drifted, labels)
    window = LogWindow(since=since)
    _until(lambda: logged(window, len(ids)), timeout,
           "the drifted traffic and its labels to reach the logs")
    run = monitors.run(monitor, window=window)
    drift = run.drift
    found = {c.name: round(float(c.score or 0.0), 3) for c in drift.columns.values()
             if c.drifted} if drift is not None else {}
    accuracy_before = run.performance.overall.values().get("accuracy")

    fired_runs = triggers.on_monitor_run(run)
    if not fired_runs:
        return LoopSummary(found, run.result.status, "not fired", "no alert of its kind", None,
                           "-", "not deployed", "the monitor raised no drift alert",
                           accuracy_before, None)
    fired = fired_runs[0]
    gates_summary = str(fired.gates.get("summary", "-")) if fired.gates else "-"
    if fired.status != "succeeded":
        return LoopSummary(found, run.result.status, fired.status, fired.reason,
                           fired.model_version, gates_summary, "not deployed", fired.reason,
                           accuracy_before, None)

    # The canary: more drifted traffic (with labels) until the controller decides.
    outcome, reason, after = run_canary(client, server, deployment, fired.model_version,
                                         unseen, unseen_labels, timeout)
    return LoopSummary(found, run.result.status, fired.status, fired.reason,
                       fired.model_version, gates_summary, outcome, reason, accuracy_before,
                       after)


def wait_logged(monitors: Any, monitor: str, window: LogWindow, rows: int,
                timeout: float = 120.0) -> None:
    """Until monitor *monitor*'s logs hold *rows* answered rows with labels in *window*."""
    def logged() -> bool:
        frame = monitors.read_window(monitors.get(monitor), window)
        return bool(frame.height >= rows and frame["label"].is_not_null().sum() >= rows)

    _until(logged, timeout, f"{rows} rows and their labels to reach the logs")


def run_canary(client: mc.Client, server: ModelServer, deployment: str,
               candidate: int | None, frame: pd.DataFrame, labels: pd.Series,
               timeout: float, *, concurrency: int = 1) -> tuple[str, str, float | None]:
    """*frame* and *labels* as traffic and feedback, again and again, until the controller
    promotes or rolls back the canary: (outcome, the event's reason, the stable's accuracy)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d = client.deployments.get(deployment)
        if d.candidate_version is None:
            event = client.deployments.history(deployment, max_results=1)[0]
            outcome = ("promoted" if d.stable_version == candidate else "rolled back")
            stats = client.deployments.status(deployment).stats.get(d.stable_version)
            return outcome, event.reason, None if stats is None else stats.accuracy
        send_traffic(server, frame, labels, concurrency=concurrency)
    return "still in canary", f"no decision within {timeout:.0f} s", None


def ensure(get: Any, create: Any) -> None:
    """*create* what *get* does not find (a monitor, a trigger kept from an earlier run)."""
    try:
        get()
    except NotFoundError:
        create()


def _until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise ServingError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


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
