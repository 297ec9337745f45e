"""Serving a deployment: the workers follow its state in the real SQLite store. A promotion or
a rollback is picked up without a restart; blue-green switches under load with no failed
request; a canary splits traffic by weight (sticky by a key) and is rolled back by the
controller when the candidate fails; a shadow is logged, never returned; a restarted
``mlcycle serve --deployment`` resumes the recorded state."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from starlette.testclient import TestClient

import mlcycle as mc
from mlcycle.models import PythonModel
from mlcycle.serving import ServingSettings, create_deployment_app

from .test_serving import _free_port, _live, _read_log, _until


class _Failing(PythonModel):
    """A broken candidate: raises on every request (after a successful warm-up)."""

    def predict(self, data):  # type: ignore[no-untyped-def]
        if len(data) == 5:  # the input example: warm-up passes
            return np.zeros(5, dtype=int)
        raise RuntimeError("this candidate is broken")


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"age": rng.integers(18, 80, 200), "income": rng.normal(50, 10, 200)})


@pytest.fixture
def client(tmp_path: Path, frame: pd.DataFrame) -> Iterator[mc.Client]:
    """A home with model ``clf``: version 1 (logistic), 2 (always 1), 3 (always fails)."""
    y = (frame["age"] / 80 + frame["income"] / 100 > 1.1).astype(int)
    c = mc.Client(settings=mc.Settings(home=tmp_path / ".mlcycle"))
    for model in (LogisticRegression().fit(frame, y),
                  DummyClassifier(strategy="constant", constant=1).fit(frame, y), _Failing()):
        with c.start_run(experiment="serve", log_system=False) as run:
            info = run.log_model(model, input_example=frame.head(5))
        c.register_model(info.model_uri, "clf")
    c.deployments.deploy("clf", "models:/clf/1")
    yield c
    c.close()


def _app(client: mc.Client, **settings: object):  # type: ignore[no-untyped-def]
    def load(model: str, version: int):  # type: ignore[no-untyped-def]
        return client.load_model(f"models:/{model}/{version}")

    return create_deployment_app(client.deployments, "clf", load, settings=ServingSettings(
        poll_interval=0.05, report_interval=0.1, **settings))  # type: ignore[arg-type]


def _version(c: TestClient, rows: list[dict], **headers: str) -> str:
    reply = c.post("/predict", json=rows, headers=headers)
    assert reply.status_code == 200, reply.text
    return reply.headers["x-model-version"]


def _ready(c: TestClient) -> None:
    _until(lambda: c.get("/v2/health/ready").status_code == 200, "the stable version ready")


def test_a_promotion_and_a_rollback_are_picked_up_live(client: mc.Client, frame) -> None:
    rows = frame.head(2).to_dict(orient="records")
    with TestClient(_app(client)) as c:
        _ready(c)
        assert _version(c, rows) == "1"
        client.deployments.deploy("clf", "models:/clf/2", strategy="direct")
        _until(lambda: _version(c, rows) == "2", "version 2 answering after the deploy")
        client.deployments.rollback("clf")
        _until(lambda: _version(c, rows) == "1", "version 1 answering after the rollback")
        assert c.get("/v2/models/clf").json()["versions"] == ["1"]
        assert ('mlcycle_serving_deployment_revision{deployment="clf"} 3.0'
                in c.get("/metrics").text)


def test_blue_green_switches_under_load_without_a_failed_request(client: mc.Client, frame
                                                                 ) -> None:
    rows = frame.head(3).to_dict(orient="records")
    statuses: Counter[int] = Counter()
    versions: Counter[str] = Counter()
    stop = threading.Event()
    with _live(_app(client)) as base:
        _until(lambda: httpx.get(f"{base}/v2/health/ready").status_code == 200, "ready")

        def load() -> None:
            with httpx.Client(base_url=base, timeout=10) as http:
                for _ in range(20_000):  # bounded; the test stops it long before
                    if stop.is_set():
                        return
                    reply = http.post("/predict", json=rows)
                    statuses[reply.status_code] += 1
                    versions[reply.headers.get("x-model-version", "?")] += 1

        loader = threading.Thread(target=load)
        loader.start()
        try:
            _until(lambda: versions["1"] > 20, "traffic on version 1")
            client.deployments.deploy("clf", "models:/clf/2", strategy="blue-green")
            _until(lambda: client.deployments.get("clf").stable_version == 2,
                   "the controller switching once the worker has version 2 warm")
            _until(lambda: versions["2"] > 20, "traffic on version 2")
        finally:
            stop.set()
            loader.join(30)
    assert set(statuses) == {200}, statuses
    assert set(versions) == {"1", "2"}
    kinds = [e.kind for e in client.deployments.history("clf")]
    assert kinds[0] == "switched"


def test_a_canary_splits_by_weight_and_sticks_by_key(client: mc.Client, frame) -> None:
    rows = frame.head(1).to_dict(orient="records")
    client.deployments.deploy("clf", "models:/clf/2", strategy="canary", config={
        "steps": [30, 100], "min_requests": 100_000, "sticky_key": "x-user"})
    with TestClient(_app(client)) as c:
        _ready(c)
        _until(lambda: _version(c, rows, **{"x-user": "probe"}) in ("1", "2")
               and c.get("/v2/models/clf").json()["versions"] == ["1", "2"], "the canary")
        seen = Counter(_version(c, rows, **{"x-user": f"user-{i}"}) for i in range(400))
        assert 0.2 < seen["2"] / 400 < 0.4, seen  # 30 % of users, by a stable hash
        for user in ("alice", "bob", "carol"):
            assert len({_version(c, rows, **{"x-user": user}) for _ in range(10)}) == 1
        text = c.get("/metrics").text
        assert 'role="candidate",status="200",version="2"' in text


def test_a_failing_canary_is_rolled_back_by_the_controller(client: mc.Client, frame) -> None:
    rows = frame.head(1).to_dict(orient="records")
    client.deployments.deploy("clf", "models:/clf/3", strategy="canary", config={
        "steps": [50, 100], "min_requests": 20})
    statuses: Counter[int] = Counter()
    with TestClient(_app(client)) as c:
        _ready(c)
        for _ in range(2000):  # until the controller has seen enough and rolled back
            reply = c.post("/predict", json=rows)
            statuses[reply.status_code] += 1
            if client.deployments.get("clf").candidate_version is None:
                break
        deployment = client.deployments.get("clf")
        assert deployment.candidate_version is None and deployment.stable_version == 1

        def only_stable() -> bool:
            replies = [c.post("/predict", json=rows) for _ in range(20)]
            return all(r.status_code == 200 and r.headers["x-model-version"] == "1"
                       for r in replies)

        _until(only_stable, "only version 1 answering")
    assert statuses[500] > 0  # the broken candidate did answer some requests
    event = next(e for e in client.deployments.history("clf") if e.kind == "rolled_back")
    assert event.actor != os.environ.get("USER") and event.reason


def test_a_shadow_is_logged_and_compared_never_returned(client: mc.Client, frame,
                                                        tmp_path: Path) -> None:
    rows = frame.head(4).to_dict(orient="records")
    client.deployments.deploy("clf", "models:/clf/2", strategy="shadow",
                              config={"shadow_percent": 100})
    logs = tmp_path / "logs"
    with TestClient(_app(client, log_uri=str(logs), log_flush_interval=0.05)) as c:
        _ready(c)
        _until(lambda: c.get("/v2/models/clf").json()["versions"] == ["1", "2"], "the shadow")
        ids = set()
        for _ in range(10):
            reply = c.post("/predict", json=rows)
            assert reply.headers["x-model-version"] == "1"
            ids.add(reply.headers["x-request-id"])

        def shadowed() -> bool:
            log = _read_log(logs, "predictions")
            return not log.empty and set(log[log["role"] == "shadow"]["request_id"]) == ids

        _until(shadowed, "a shadow row for every request")
        text = c.get("/metrics").text
    log = _read_log(logs, "predictions")
    shadow = log[log["role"] == "shadow"]
    assert set(shadow["version"]) == {"2"} and set(shadow["output"]) == {1}
    assert set(log[log["role"] == "stable"]["version"]) == {"1"}
    assert 'mlcycle_serving_shadow_answers_total{agreement=' in text


@pytest.mark.slow
def test_mlcycle_serve_deployment_follows_and_resumes_the_recorded_state(
        client: mc.Client, frame, tmp_path: Path) -> None:
    rows = frame.head(2).to_dict(orient="records")
    home = client.settings.home
    script = Path(sys.executable).parent / "mlcycle"
    env = {**os.environ, "MLCYCLE_HOME": str(home)}
    for name in ("MLCYCLE_TRACKING_URI", "MLCYCLE_ARTIFACT_URI", "MLCYCLE_SERVE_TOKEN"):
        env.pop(name, None)

    def start() -> tuple[subprocess.Popen[bytes], str]:
        port = _free_port()
        proc = subprocess.Popen([str(script), "serve", "--deployment", "clf", "--port",
                                 str(port), "--workers", "2"], env=env, cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            assert proc.poll() is None, proc.communicate()[1].decode()
            try:
                return httpx.get(f"{base}/v2/health/ready", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        _until(ready, "mlcycle serve --deployment ready", attempts=1200)
        return proc, base

    def versions(base: str, n: int = 10) -> set[str]:
        with httpx.Client(base_url=base, timeout=10) as http:
            answers = [http.post("/predict", json=rows) for _ in range(n)]
            return {a.headers.get("x-model-version", f"status {a.status_code}")
                    for a in answers}

    proc, base = start()
    try:
        assert versions(base) == {"1"}
        client.deployments.deploy("clf", "models:/clf/2")  # direct
        _until(lambda: versions(base) == {"2"}, "both workers on version 2")
        assert "mlcycle_serving_requests_total" in httpx.get(f"{base}/metrics").text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    proc, base = start()  # a restart reads the recorded state
    try:
        assert versions(base) == {"2"}
        client.deployments.rollback("clf")
        _until(lambda: versions(base) == {"1"}, "both workers back on version 1")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
