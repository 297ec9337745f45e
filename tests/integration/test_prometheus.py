"""Debian's ``prometheus`` scrapes a real ``mlcycle serve``: its HTTP API reports the target up
and the request counter of the served model version with the number of predictions sent."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import mlcycle as mc

pytestmark = pytest.mark.slow

PG_ENV = "MLCYCLE_TEST_POSTGRES_URI"
PREDICTIONS = 5


def _prometheus_binary() -> str:
    """The ``prometheus`` binary; under `make test` (which installs it) its absence fails."""
    binary = shutil.which("prometheus")
    if binary is None:
        message = ("prometheus is not on PATH: `make test` installs Debian's package through "
                   "scripts/prometheus.sh")
        if os.environ.get(PG_ENV) or os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _log_tail(path: Path) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-30:]) if path.exists() else ""


@pytest.fixture
def registered_home(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """A home with ``models:/clf@production`` (version 1) and rows to send to it."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"age": rng.integers(18, 80, 200), "income": rng.normal(50, 10, 200)})
    y = (X["age"] / 80 + X["income"] / 100 > 1.1).astype(int)
    home = tmp_path / "registry" / ".mlcycle"
    client = mc.Client(settings=mc.Settings(home=home))
    with client.start_run(experiment="serve", log_system=False) as run:
        info = run.log_model(LogisticRegression().fit(X, y), input_example=X.head(5))
    client.register_model(info.model_uri, "clf")
    client.registry.set_alias("clf", "production", 1)
    client.close()
    return home, X


@pytest.fixture
def served(tmp_path: Path, registered_home) -> Iterator[tuple[str, pd.DataFrame]]:
    """``mlcycle serve models:/clf@production`` on a free loopback port: its base URL."""
    home, X = registered_home
    port = _free_port()
    env = {**os.environ, "MLCYCLE_HOME": str(home)}
    for name in ("MLCYCLE_TRACKING_URI", "MLCYCLE_ARTIFACT_URI"):
        env.pop(name, None)
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "mlcycle"), "serve", "models:/clf@production",
             "--host", "127.0.0.1", "--port", str(port)],
            env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"mlcycle serve exited:\n{_log_tail(log)}"
            try:
                if httpx.get(f"{base}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"mlcycle serve not ready:\n{_log_tail(log)}"
            time.sleep(0.2)
        yield base, X
    finally:
        _stop(proc)


@pytest.fixture
def prometheus(tmp_path: Path, served) -> Iterator[str]:
    """A Prometheus server on a free loopback port scraping the model server every second."""
    binary = _prometheus_binary()
    base, _ = served
    target = base.removeprefix("http://")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 1s\n"
        "scrape_configs:\n"
        "  - job_name: mlcycle-serve\n"
        "    metrics_path: /metrics\n"
        f"    static_configs:\n      - targets: ['{target}']\n")
    port = _free_port()
    log = tmp_path / "prometheus.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"prometheus exited:\n{_log_tail(log)}"
            try:
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"prometheus not ready:\n{_log_tail(log)}"
            time.sleep(0.2)
        yield url
    finally:
        _stop(proc)


def _query(url: str, promql: str) -> list[dict]:
    reply = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=5)
    reply.raise_for_status()
    body = reply.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_prometheus_scrapes_the_request_counter_of_the_served_model(served, prometheus) -> None:
    base, X = served
    for i in range(PREDICTIONS):
        reply = httpx.post(f"{base}/predict", json=X.iloc[i: i + 2].to_dict(orient="records"),
                           timeout=10)
        assert reply.status_code == 200, reply.text

    counter = ('mlcycle_serving_requests_total{job="mlcycle-serve",model="clf",version="1",'
               'endpoint="predict",status="200"}')
    deadline = time.monotonic() + 30
    up: list[dict] = []
    requests: list[dict] = []
    while time.monotonic() < deadline:
        up = _query(prometheus, 'up{job="mlcycle-serve"}')
        requests = _query(prometheus, counter)
        if (up and up[0]["value"][1] == "1" and requests
                and float(requests[0]["value"][1]) == PREDICTIONS):
            break
        time.sleep(0.5)
    assert up and up[0]["value"][1] == "1", f"target not up in Prometheus: {up}"
    assert requests, f"Prometheus has no {counter} after 30 s"
    (series,) = requests
    assert float(series["value"][1]) == PREDICTIONS
    assert series["metric"]["instance"] == base.removeprefix("http://")
    # The latency histogram came along in the same scrape.
    buckets = _query(prometheus, 'mlcycle_serving_request_duration_seconds_count'
                                 '{job="mlcycle-serve",model="clf"}')
    assert buckets and float(buckets[0]["value"][1]) >= PREDICTIONS
