"""One model behind ``create_serving_app`` and ``mlcycle serve``: the v2 protocol and
``/predict`` give the model's own predictions; bad input is a 422 naming the column, a big body
a 413, a failing model a 500 with an error id, and the server goes on."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from pydantic import SecretStr
from sklearn.linear_model import LogisticRegression
from starlette.testclient import TestClient

import mlcycle as mc
from mlcycle.models import PyFuncModel, PythonModel, load_model, save_model
from mlcycle.serving import BatchSettings, ServingSettings, create_serving_app


@pytest.fixture(scope="module")
def frame() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"age": rng.integers(18, 80, 200), "income": rng.normal(50, 10, 200)})
    y = pd.Series((X["age"] / 80 + X["income"] / 100 > 1.1).astype(int))
    return X, y


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory, frame) -> PyFuncModel:
    X, y = frame
    path = tmp_path_factory.mktemp("serving") / "model"
    save_model(LogisticRegression().fit(X, y), path, input_example=X.head(5))
    return load_model(path)


@pytest.fixture
def client(model: PyFuncModel):
    with TestClient(create_serving_app(model, name="clf", version="3",
                                       settings=ServingSettings(max_body_bytes=20_000))) as c:
        yield c


def test_ready_after_warm_up_and_live(model: PyFuncModel) -> None:
    app = create_serving_app(model, name="clf", version="3")
    plain = TestClient(app)  # without the lifespan: no warm-up has run
    assert plain.get("/v2/health/ready").status_code == 503
    assert plain.get("/v2/health/live").json() == {"live": True}
    with TestClient(app) as started:
        assert started.get("/v2/health/ready").json() == {"ready": True}


def test_metadata_lists_the_inputs(client: TestClient) -> None:
    meta = client.get("/v2/models/clf").json()
    assert meta["name"] == "clf" and meta["versions"] == ["3"] and meta["platform"] == "sklearn"
    assert meta["inputs"] == [{"name": "age", "datatype": "INT64", "shape": [-1]},
                              {"name": "income", "datatype": "FP64", "shape": [-1]}]
    assert client.get("/v2/models/other").status_code == 404


def test_openapi_describes_the_served_models_columns(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["info"]["title"] == "mlcycle serving: clf" and doc["info"]["version"] == "3"
    records, columns = doc["paths"]["/predict"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]["oneOf"]
    record = records["items"]
    assert record["required"] == ["age", "income"]
    assert record["properties"]["age"]["type"] == "integer"
    assert record["properties"]["income"]["type"] == "number"
    assert columns["properties"]["columns"]["example"] == ["age", "income"]
    assert {"/v2/models/clf/infer", "/feedback", "/v2/health/ready"} <= doc["paths"].keys()
    assert "422" in doc["paths"]["/predict"]["post"]["responses"]
    assert client.get("/docs").status_code == 200


def test_both_protocols_give_the_models_predictions(client: TestClient, model, frame) -> None:
    X, _ = frame
    rows = X.head(20)
    expected = model.predict(rows).tolist()
    records = client.post("/predict", json=rows.to_dict(orient="records"))
    assert records.status_code == 200 and records.json() == {"predictions": expected}
    columns = client.post("/predict", json={"columns": list(rows.columns),
                                            "data": [list(r) for r in zip(
                                                rows["age"].tolist(), rows["income"].tolist(),
                                                strict=True)]})
    assert columns.json()["predictions"] == expected
    proba = client.post("/predict?proba=true", json=rows.to_dict(orient="records")).json()
    np.testing.assert_allclose(proba["probabilities"], model.predict_proba(rows))
    v2 = client.post("/v2/models/clf/infer", json={"id": "r-1", "inputs": [
        {"name": "age", "shape": [20], "datatype": "INT64", "data": rows["age"].tolist()},
        {"name": "income", "shape": [20, 1], "datatype": "FP64",
         "data": [[v] for v in rows["income"]]},
    ]})
    assert v2.status_code == 200
    body = v2.json()
    assert body["id"] == "r-1" and body["model_version"] == "3"
    (out,) = body["outputs"]
    assert out["shape"] == [20] and out["datatype"] == "INT64" and out["data"] == expected


def test_invalid_input_is_422_naming_the_column_and_row(client: TestClient) -> None:
    bad = client.post("/predict", json=[{"age": 30, "income": 50.0},
                                        {"age": "forty", "income": 51.0}])
    assert bad.status_code == 422
    error = bad.json()["error"]
    assert error["code"] == "signature_mismatch"
    assert error["details"]["field"] == "age" and error["details"]["row"] == 1
    assert "'age'" in error["message"]
    missing = client.post("/v2/models/clf/infer", json={"inputs": [
        {"name": "age", "shape": [1], "datatype": "INT64", "data": [30]}]})
    assert missing.status_code == 422 and missing.json()["error"]["details"]["field"] == "income"
    assert client.post("/predict", content=b"{not json").status_code == 400


def test_a_body_over_the_limit_is_413(client: TestClient) -> None:
    big = [{"age": 30, "income": 50.0}] * 2000
    response = client.post("/predict", json=big)
    assert response.status_code == 413
    assert response.json()["error"]["details"]["limit"] == 20_000


class _Fragile(PythonModel):
    def predict(self, data):  # type: ignore[no-untyped-def]
        if (data["x"] < 0).any():
            raise RuntimeError("negative x")
        return data["x"] * 2


def test_a_failing_model_is_500_with_an_error_id_and_the_server_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    save_model(_Fragile(), tmp_path / "m", input_example=pd.DataFrame({"x": [1.0]}))
    app = create_serving_app(load_model(tmp_path / "m"), name="fragile", version="1")
    with TestClient(app) as c:
        failed = c.post("/predict", json=[{"x": -1.0}])
        assert failed.status_code == 500
        error_id = failed.json()["error"]["details"]["error_id"]
        assert error_id in failed.json()["error"]["message"]
        assert any(error_id in r.getMessage() for r in caplog.records)
        assert c.post("/predict", json=[{"x": 2.0}]).json() == {"predictions": [4.0]}
        text = c.get("/metrics").text
    assert 'mlcycle_serving_errors_total{endpoint="predict",kind="model",model="fragile"' in text


def test_metrics_count_requests_per_model_version(client: TestClient, frame) -> None:
    X, _ = frame
    for _ in range(3):
        client.post("/predict", json=X.head(2).to_dict(orient="records"))
    client.post("/predict", json=[{"age": "x", "income": 1.0}])
    text = client.get("/metrics").text
    assert ('mlcycle_serving_requests_total{endpoint="predict",model="clf",role="stable",'
            'status="200",version="3"} 3.0') in text
    assert 'status="422"' in text
    assert "mlcycle_serving_request_duration_seconds_bucket" in text
    assert 'mlcycle_serving_in_flight{model="clf",version="3"} 0.0' in text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory, frame) -> tuple[Path, list[int]]:
    """A home with ``models:/clf@production`` (version 1), and its predictions on five rows."""
    X, y = frame
    home = tmp_path_factory.mktemp("registry") / ".mlcycle"
    client = mc.Client(settings=mc.Settings(home=home))
    with client.start_run(experiment="serve", log_system=False) as run:
        info = run.log_model(LogisticRegression().fit(X, y), input_example=X.head(5))
    client.register_model(info.model_uri, "clf")
    client.registry.set_alias("clf", "production", 1)
    expected = client.load_model("models:/clf@production").predict(X.head(5)).tolist()
    client.close()
    return home, expected


def test_serve_with_workers_hands_the_model_over_in_the_environment(
        registered, frame, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from mlcycle.cli import serve as serve_cli
    from mlcycle.cli.main import app

    home, expected = registered
    for name in ("MLCYCLE_TRACKING_URI", serve_cli.MODEL_URI_VARIABLE, "MLCYCLE_SERVE_NAME",
                 serve_cli.DEPLOYMENT_VARIABLE, "PROMETHEUS_MULTIPROC_DIR",
                 "MLCYCLE_SERVE_MAX_BATCH_SIZE"):
        monkeypatch.setenv(name, "overridden-below")  # so that the test restores them
        monkeypatch.delenv(name)
    monkeypatch.setenv("MLCYCLE_HOME", str(home))
    started: list[tuple[object, list[socket.socket]]] = []

    class _Supervisor:  # uvicorn's, minus starting the processes
        def __init__(self, config: object, sockets: list[socket.socket]) -> None:
            started.append((config, sockets))

        def run(self) -> None:
            assert os.path.isdir(os.environ["PROMETHEUS_MULTIPROC_DIR"])

    monkeypatch.setattr("uvicorn.supervisors.Multiprocess", _Supervisor)
    result = CliRunner().invoke(app, ["serve", "models:/clf@production", "--workers", "2",
                                      "--name", "cancer", "--port", str(_free_port()),
                                      "--max-batch-size", "32"])
    assert result.exit_code == 0, result.output
    config, (sock,) = started[0]
    assert config.app == serve_cli.APP_FACTORY  # type: ignore[attr-defined]
    assert config.factory and config.workers == 2  # type: ignore[attr-defined]
    assert config.loop == "uvloop" and config.http == "httptools"  # type: ignore[attr-defined]
    # The listening socket the workers share has TCP_NODELAY, so its connections have it.
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    sock.close()
    assert os.environ[serve_cli.MODEL_URI_VARIABLE] == "models:/clf@production"
    assert os.environ["MLCYCLE_SERVE_MAX_BATCH_SIZE"] == "32"
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")  # removed with its folder
    with TestClient(serve_cli.app_from_env()) as worker:  # what each worker process builds
        assert worker.get("/v2/models/cancer").json()["versions"] == ["1"]
        X, _ = frame
        reply = worker.post("/predict", json=X.head(5).to_dict(orient="records"))
        assert reply.json() == {"predictions": expected}


@pytest.mark.slow
def test_mlcycle_serve_runs_a_registered_model(tmp_path: Path, registered, frame) -> None:
    X, _ = frame
    home, expected = registered
    port = _free_port()
    script = Path(sys.executable).parent / "mlcycle"
    env = {**os.environ, "MLCYCLE_HOME": str(home)}
    env.pop("MLCYCLE_TRACKING_URI", None)
    env.pop("MLCYCLE_ARTIFACT_URI", None)
    proc = subprocess.Popen([str(script), "serve", "models:/clf@production", "--port", str(port)],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[1].decode()
            try:
                if httpx.get(f"{base}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "mlcycle serve was not ready within 60 s"
            time.sleep(0.2)
        reply = httpx.post(f"{base}/predict", json=X.head(5).to_dict(orient="records"),
                           timeout=10)
        assert reply.json() == {"predictions": expected}
        assert httpx.get(f"{base}/v2/models/clf", timeout=5).json()["versions"] == ["1"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# --- micro-batching, logs, feedback and auth on a live server ---------------------------------

_GATE = threading.Event()
_GATE.set()


class _Gated(PythonModel):
    """Doubles ``x``; waits while the test holds ``_GATE``, so requests queue behind it."""

    def predict(self, data):  # type: ignore[no-untyped-def]
        assert _GATE.wait(30), "the test never released the model"
        return data["x"] * 2


@contextmanager
def _live(app: object) -> Iterator[str]:
    """*app* under uvicorn on a free loopback port, in a thread: its base URL."""
    import uvicorn

    from mlcycle.cli.serve import listening_socket

    sock = listening_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(300):
            if server.started:
                break
            assert thread.is_alive(), "the server stopped while starting"
            time.sleep(0.05)
        assert server.started, "the server did not start within 15 s"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def _metric(base: str, line_start: str) -> float | None:
    for line in httpx.get(f"{base}/metrics", timeout=5).text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return None


def _until(condition, what: str, attempts: int = 200) -> None:  # type: ignore[no-untyped-def]
    for _ in range(attempts):
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {attempts * 0.05:g} s")


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory) -> PyFuncModel:
    path = tmp_path_factory.mktemp("gated") / "m"
    save_model(_Gated(), path, input_example=pd.DataFrame({"x": [1.0]}))
    return load_model(path)


def test_concurrent_requests_share_one_model_call_and_a_full_queue_is_429(gated) -> None:
    app = create_serving_app(gated, name="gated", version="1", settings=ServingSettings(
        batch=BatchSettings(max_queue=4), log_uri=None))
    in_flight = 'mlcycle_serving_in_flight{model="gated",version="1"}'
    with _live(app) as base, ThreadPoolExecutor(4) as pool:
        def post(rows: list[dict]) -> httpx.Response:
            return httpx.post(f"{base}/predict", json=rows, timeout=30)

        _GATE.clear()
        try:
            first = pool.submit(post, [{"x": 1.0}])
            _until(lambda: _metric(base, in_flight) == 1, "the first request in the model")
            queued = [pool.submit(post, rows) for rows in
                      ([{"x": 2.0}, {"x": 3.0}], [{"x": 4.0}], [{"x": 5.0}])]
            _until(lambda: _metric(base, in_flight) == 4, "three requests queued")
            refused = post([{"x": 6.0}])  # 4 rows wait: the queue's bound
        finally:
            _GATE.set()
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["code"] == "overloaded"
        answers = [f.result().json()["predictions"] for f in (first, *queued)]
        assert answers == [[2.0], [4.0, 6.0], [8.0], [10.0]]
        labels = '{model="gated",version="1"}'
        # One call for the first request, one for the three queued behind it (4 rows).
        assert _metric(base, f"mlcycle_serving_batch_rows_count{labels}") == 2
        assert _metric(base, f"mlcycle_serving_batch_rows_sum{labels}") == 5
        assert _metric(base, f"mlcycle_serving_rejected_total{labels}") == 1


def _read_log(root: Path, kind: str) -> pd.DataFrame:
    import duckdb

    files = sorted(root.glob(f"{kind}/deployment=*/date=*/*.parquet"))
    if not files:
        return pd.DataFrame()
    return duckdb.sql(
        f"SELECT * FROM read_parquet({[str(f) for f in files]!r}, hive_partitioning=true, "
        "union_by_name=true) ORDER BY request_id, row").df()


def test_every_prediction_is_logged_to_parquet(model: PyFuncModel, frame, tmp_path: Path
                                               ) -> None:
    X, _ = frame
    settings = ServingSettings(log_uri=str(tmp_path / "logs"), log_flush_interval=0.05)
    sent: dict[str, pd.DataFrame] = {}
    with TestClient(create_serving_app(model, name="clf", version="3",
                                       settings=settings)) as c:
        for rows in (X.iloc[0:1], X.iloc[1:3], X.iloc[3:4]):
            reply = c.post("/predict", json=rows.to_dict(orient="records"))
            assert reply.headers["x-model-version"] == "3"
            sent[reply.headers["x-request-id"]] = rows
        given = c.post("/predict", json=X.iloc[4:5].to_dict(orient="records"),
                       headers={"x-request-id": "client-chosen-1"})
        assert given.headers["x-request-id"] == "client-chosen-1"
        sent["client-chosen-1"] = X.iloc[4:5]
        _until(lambda: len(_read_log(tmp_path / "logs", "predictions")) == 5, "5 logged rows")
    log = _read_log(tmp_path / "logs", "predictions")
    assert set(log["request_id"]) == set(sent)
    assert set(log["deployment"]) == {"clf"} and set(log["version"]) == {"3"}
    assert set(log["role"]) == {"stable"} and set(log["status"]) == {200}
    assert (log["latency_ms"] > 0).all() and str(log["time"].dt.tz).endswith("UTC")
    for request_id, rows in sent.items():
        logged = log[log["request_id"] == request_id]
        assert logged["row"].tolist() == list(range(len(rows)))
        assert logged["input_age"].tolist() == rows["age"].tolist()
        assert logged["output"].tolist() == model.predict(rows).tolist()


def test_a_stalled_log_drops_and_counts_instead_of_blocking(model: PyFuncModel, frame,
                                                             tmp_path: Path) -> None:
    X, _ = frame
    settings = ServingSettings(log_uri=str(tmp_path / "logs"), log_max_rows=2,
                               log_flush_interval=3600)  # the writer never gets to it
    with TestClient(create_serving_app(model, name="clf", version="3",
                                       settings=settings)) as c:
        for i in range(3):
            assert c.post("/predict", json=X.iloc[i:i + 1].to_dict(
                orient="records")).status_code == 200
        text = c.get("/metrics").text
    assert 'mlcycle_serving_log_dropped_total{log="predictions",reason="queue_full"} 1.0' in text
    assert len(_read_log(tmp_path / "logs", "predictions")) == 2  # what queued, at shutdown


def test_feedback_is_counted_for_the_version_and_logged(model: PyFuncModel, frame,
                                                        tmp_path: Path) -> None:
    X, _ = frame
    settings = ServingSettings(log_uri=str(tmp_path / "logs"), log_flush_interval=0.05)
    app = create_serving_app(model, name="clf", version="3", settings=settings)
    with TestClient(app) as c:
        reply = c.post("/predict", json=X.iloc[0:2].to_dict(orient="records"))
        request_id = reply.headers["x-request-id"]
        predictions = reply.json()["predictions"]
        accepted = c.post("/feedback", json=[
            {"request_id": request_id, "labels": predictions},  # both right
            {"request_id": "from-another-worker", "label": 1},
        ])
        assert accepted.json() == {"accepted": 3, "matched": 2}
        again = c.post("/feedback", json={"request_id": request_id, "row": 1, "label": 0})
        assert again.json() == {"accepted": 1, "matched": 0}  # row 1 was counted already
        bad = c.post("/feedback", json=[{"request_id": "a", "label": 1},
                                        {"request_id": "b", "row": -1, "label": 1}])
        assert bad.status_code == 422 and bad.json()["error"]["details"]["field"] == "[1].row"
        neither = c.post("/feedback", json={"request_id": "a"})
        assert neither.status_code == 422 and "label" in neither.json()["error"]["message"]
        stats = app.state.runtime.table.stable.stats
        assert stats.feedback == 2 and stats.correct == 2
        assert ('mlcycle_serving_feedback_total{deployment="clf",matched="true"} 2.0'
                in c.get("/metrics").text)
        _until(lambda: len(_read_log(tmp_path / "logs", "feedback")) == 4, "4 feedback rows")
    log = _read_log(tmp_path / "logs", "feedback")
    assert log[log["request_id"] == request_id]["row"].tolist() == [0, 1, 1]


def test_a_serve_token_guards_predictions_and_feedback_only(
        model: PyFuncModel, frame, caplog: pytest.LogCaptureFixture) -> None:
    X, _ = frame
    rows = X.head(1).to_dict(orient="records")
    settings = ServingSettings(token=SecretStr("s3cret-token"))
    with TestClient(create_serving_app(model, name="clf", version="3", settings=settings)) as c:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-token"}):
            refused = c.post("/predict", json=rows, headers=headers)
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"].startswith("Bearer")
        good = {"Authorization": "Bearer s3cret-token"}
        assert c.post("/predict", json=rows, headers=good).status_code == 200
        v2 = {"inputs": [{"name": "age", "shape": [1], "datatype": "INT64", "data": [30]},
                         {"name": "income", "shape": [1], "datatype": "FP64", "data": [5.0]}]}
        assert c.post("/v2/models/clf/infer", json=v2).status_code == 401
        assert c.post("/v2/models/clf/infer", json=v2, headers=good).status_code == 200
        feedback = {"request_id": "x", "label": 1}
        assert c.post("/feedback", json=feedback).status_code == 401
        assert c.post("/feedback", json=feedback, headers=good).status_code == 200
        for open_path in ("/v2/health/live", "/v2/health/ready", "/v2/models/clf", "/metrics"):
            assert c.get(open_path).status_code == 200, open_path
    assert "s3cret-token" not in caplog.text
