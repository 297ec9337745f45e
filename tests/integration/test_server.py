"""``mlcycle server``: the REST API, its errors and tokens, and the REST stores that speak it.

Most tests serve the app in-process (``TestClient``); those marked ``slow`` start a real uvicorn
server on loopback with ``live_server``.
"""

from __future__ import annotations

import io
import math
import socket
import uuid
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from starlette.testclient import TestClient

from mlcycle.config import Settings
from mlcycle.entities import Artifact, Metric, Run
from mlcycle.errors import (
    AuthError,
    ExperimentAlreadyExists,
    InvalidFilter,
    InvalidInputError,
    PermissionDenied,
    RunNotFound,
    StoreError,
)
from mlcycle.server import create_app
from mlcycle.store.artifacts import FsspecArtifactStore, digest_bytes
from mlcycle.store.base import ArtifactStore, TrackingStore
from mlcycle.store.rest import RestArtifactStore, RestTrackingStore, http_client
from mlcycle.store.sql import SqlTrackingStore
from mlcycle.testing.server import live_server
from mlcycle.types import RunStatus

API = "/api/v1"
WRITE, READ = "write-token-1", "read-token-1"
Stores = tuple[TrackingStore, ArtifactStore]


def _settings(home: Path, *, token: str | None = None, read_tokens: list[str] | None = None
              ) -> Settings:
    # Every field the server reads is given, so no MLCYCLE_* variable can leak in.
    return Settings(home=home, tracking_uri=None, artifact_uri=None,
                    token=SecretStr(token) if token else None,
                    read_tokens=[SecretStr(t) for t in read_tokens or []])


# --- fixtures: one database for the module, several apps over it -----------------------------


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    settings = _settings(tmp_path_factory.mktemp("server"))
    tracking = SqlTrackingStore.from_uri(settings.resolved_tracking_uri)
    yield tracking, FsspecArtifactStore(settings.resolved_artifact_uri)
    tracking.close()


@pytest.fixture(scope="module")
def app(stores: Stores, tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return create_app(_settings(tmp_path_factory.mktemp("open")), stores=stores)


@pytest.fixture(scope="module")
def secured_app(stores: Stores, tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    settings = _settings(tmp_path_factory.mktemp("secured"), token=WRITE, read_tokens=[READ])
    return create_app(settings, stores=stores)


@pytest.fixture
def http(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture
def store(http: TestClient) -> RestTrackingStore:
    return RestTrackingStore(http)


@pytest.fixture
def run(store: RestTrackingStore) -> Run:
    exp = store.create_experiment(f"exp-{uuid.uuid4().hex[:8]}")
    return store.create_run(exp.experiment_id, name="r", start_time=1_700_000_000_000)


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The error of *response*, after checking its status, its code and the body's shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


# --- health and docs ------------------------------------------------------------------------


def test_health_needs_no_token_and_reports_the_version(secured_app: FastAPI) -> None:
    with TestClient(secured_app) as client:
        response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": metadata.version("mlcycle")}


def test_openapi_describes_the_api_and_the_log_batch_body(http: TestClient) -> None:
    doc = http.get("/openapi.json").json()
    assert {f"{API}/runs/search", f"{API}/runs/{{run_id}}/log-batch",
            f"{API}/artifacts/objects/{{digest}}"} <= set(doc["paths"])
    body = doc["paths"][f"{API}/runs/{{run_id}}/log-batch"]["post"]["requestBody"]
    assert set(body["content"]["application/json"]["schema"]["properties"]) == {
        "metrics", "params", "tags"}
    assert http.get("/docs").status_code == 200


# --- errors: one status and one shape each ---------------------------------------------------


def test_unknown_run_is_404_run_not_found(http: TestClient) -> None:
    error = _error(http.get(f"{API}/runs/{'0' * 32}"), 404, "run_not_found")
    assert error["details"] == {"run_id": "0" * 32}


def test_unknown_route_and_wrong_method_keep_the_shape(http: TestClient) -> None:
    assert "/api/v1/nothing" in _error(http.get(f"{API}/nothing"), 404, "not_found")["message"]
    _error(http.put(f"{API}/experiments"), 405, "method_not_allowed")


def test_duplicate_experiment_is_409(http: TestClient) -> None:
    name = f"dup-{uuid.uuid4().hex[:8]}"
    assert http.post(f"{API}/experiments", json={"name": name}).status_code == 201
    error = _error(http.post(f"{API}/experiments", json={"name": name}), 409,
                   "experiment_already_exists")
    assert error["details"]["name"] == name


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"metrics": [["bad key!", 1.0, 0, 1]]}, "metric key"),
        ({"metrics": [["loss", "high", 0, 1]]}, "metrics.loss"),
        ({"metrics": [["loss", 1.0, 0.5, 1]]}, "metrics.loss"),
        ({"metrics": [["loss", 1.0]]}, "metrics[0]"),
        ({"metrics": {"loss": 1.0}}, "metrics"),
        ({"params": ["lr", 0.1]}, "params"),
        ({"params": {"p": "x" * 7000}}, "params.p"),
        ({"metric": []}, "metric"),
        ([], "body"),
    ],
)
def test_bad_log_batch_is_400_naming_the_field(http: TestClient, run: Run, body: Any,
                                               field: str) -> None:
    response = http.post(f"{API}/runs/{run.run_id}/log-batch", json=body)
    error = _error(response, 400, "invalid_input")
    assert field in error["details"]["field"]
    assert field in error["message"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/runs", {}, "experiment_id"),
        ("/experiments", {"name": "x", "tagz": {}}, "tagz"),
        ("/experiments", {"name": 5}, "name"),
        ("/runs/search", {"max_results": "many"}, "max_results"),
    ],
)
def test_schema_violations_are_400_naming_the_field(http: TestClient, path: str, body: Any,
                                                    field: str) -> None:
    error = _error(http.post(f"{API}{path}", json=body), 400, "invalid_input")
    assert error["details"]["field"] == field
    assert error["message"].startswith(f"{field}: ")


@pytest.mark.parametrize("path", ["/experiments", "/runs/{run_id}/log-batch"])
def test_malformed_json_is_400(http: TestClient, run: Run, path: str) -> None:
    response = http.post(API + path.format(run_id=run.run_id), content=b'{"name": ',
                         headers={"content-type": "application/json"})
    error = _error(response, 400, "invalid_input")
    assert error["details"]["field"] == "body"
    assert "not valid JSON" in error["message"]


def test_bad_filter_is_400_with_the_position(http: TestClient) -> None:
    source = "metrics.rmse < 0.5 and params.model == rf"
    error = _error(http.post(f"{API}/runs/search", json={"filter": source}), 400,
                   "invalid_filter")
    assert error["details"]["position"] == 39
    assert "^" in error["message"]


def test_patch_leaves_out_what_is_not_sent_and_refuses_null_names(http: TestClient,
                                                                  run: Run) -> None:
    url = f"{API}/runs/{run.run_id}"
    ended = http.patch(url, json={"status": "finished", "end_time": 1_700_000_000_500}).json()
    assert (ended["status"], ended["end_time"], ended["name"]) == ("finished", 1_700_000_000_500,
                                                                   "r")
    assert http.patch(url, json={"end_time": None}).json()["end_time"] is None
    _error(http.patch(url, json={"name": None}), 400, "invalid_input")
    _error(http.patch(url, json={"status": "exploded"}), 400, "invalid_input")


def test_an_unexpected_exception_is_a_bare_500_and_logged(
    stores: Stores, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(_settings(tmp_path), stores=(_Exploding(stores[0]), stores[1]))
    with TestClient(app) as client:  # raises what escapes the app: nothing may
        response = client.get(f"{API}/runs/{'0' * 32}")
        _error(response, 500, "internal")
        assert "hunter2" not in response.text and "Traceback" not in response.text
        assert client.get(f"{API}/experiments").status_code == 200
    assert "hunter2" in caplog.text  # the operator gets the details, in the server's log


def test_the_server_refuses_to_front_another_server(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, tracking_uri="http://127.0.0.1:9", token=None)
    with pytest.raises(InvalidInputError, match="tracking_uri"):
        create_app(settings)


# --- tokens -----------------------------------------------------------------------------------


@pytest.fixture
def secured(secured_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(secured_app) as client:
        yield client


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {WRITE}", "Bearer "])
def test_missing_or_wrong_token_is_401(secured: TestClient, header: str | None) -> None:
    headers = {"authorization": header} if header is not None else {}
    response = secured.get(f"{API}/experiments", headers=headers)
    _error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    assert WRITE not in response.text


def test_a_read_token_reads_and_searches_but_may_not_write(secured: TestClient) -> None:
    read = _bearer(READ)
    assert secured.get(f"{API}/experiments", headers=read).status_code == 200
    assert secured.post(f"{API}/runs/search", json={}, headers=read).status_code == 200
    assert secured.head(f"{API}/artifacts/objects/{'0' * 64}", headers=read).status_code == 404
    _error(secured.post(f"{API}/experiments", json={"name": "nope"}, headers=read), 403,
           "forbidden")
    _error(secured.put(f"{API}/artifacts/objects/{digest_bytes(b'x')}", content=b"x",
                       headers=read), 403, "forbidden")
    _error(secured.delete(f"{API}/runs/{'0' * 32}", headers=read), 403, "forbidden")


def test_the_write_token_writes(secured: TestClient) -> None:
    response = secured.post(f"{API}/experiments", json={"name": f"w-{uuid.uuid4().hex[:8]}"},
                            headers=_bearer(WRITE))
    assert response.status_code == 201


def test_rest_store_raises_the_auth_errors(secured_app: FastAPI) -> None:
    with TestClient(secured_app) as anonymous, pytest.raises(AuthError):
        RestTrackingStore(anonymous).list_experiments()
    with TestClient(secured_app, headers=_bearer(READ)) as reader:
        assert isinstance(RestTrackingStore(reader).list_experiments(), list)
        with pytest.raises(PermissionDenied):
            RestTrackingStore(reader).create_experiment("read-only-attempt")


# --- artifacts --------------------------------------------------------------------------------


def test_upload_with_a_wrong_digest_is_refused(http: TestClient) -> None:
    claimed = digest_bytes(b"what the client says")
    response = http.put(f"{API}/artifacts/objects/{claimed}", content=b"what it sends")
    error = _error(response, 400, "invalid_input")
    assert error["details"] == {"field": "digest", "expected": claimed,
                                "received": digest_bytes(b"what it sends")}
    assert http.head(f"{API}/artifacts/objects/{claimed}").status_code == 404
    _error(http.put(f"{API}/artifacts/objects/NOT-A-DIGEST", content=b"x"), 400, "invalid_input")


def test_objects_upload_once_and_stream_back(http: TestClient) -> None:
    data = uuid.uuid4().bytes * 100_000  # 1.6 MB: more than one chunk each way
    digest = digest_bytes(data)
    url = f"{API}/artifacts/objects/{digest}"
    assert http.head(url).status_code == 404
    assert http.put(url, content=data).json() == {"digest": digest, "size": len(data)}
    assert http.head(url).status_code == 200
    got = http.get(url)
    assert got.content == data and got.headers["content-length"] == str(len(data))


@pytest.mark.parametrize("path", ["../../etc/passwd", "/abs", "a/../b", "a\\b", "a//b", "./a"])
def test_manifest_paths_cannot_escape_the_run(http: TestClient, run: Run, path: str) -> None:
    digest = digest_bytes(b"payload")
    http.put(f"{API}/artifacts/objects/{digest}", content=b"payload")
    body = {"artifacts": [{"path": path, "digest": digest, "size": 7}]}
    error = _error(http.post(f"{API}/runs/{run.run_id}/artifacts", json=body), 400,
                   "invalid_input")
    assert error["details"]["field"] == "artifact path"
    assert http.get(f"{API}/runs/{run.run_id}/artifacts").json() == {"artifacts": []}


def test_manifest_entries_must_point_at_stored_objects(http: TestClient, run: Run) -> None:
    url = f"{API}/runs/{run.run_id}/artifacts"
    missing = digest_bytes(b"never uploaded")
    body = {"artifacts": [{"path": "a.txt", "digest": missing, "size": 14}]}
    assert _error(http.post(url, json=body), 404, "artifact_not_found")["details"]["field"] == (
        "artifacts[0].digest")
    digest = digest_bytes(b"seven!!")
    http.put(f"{API}/artifacts/objects/{digest}", content=b"seven!!")
    body = {"artifacts": [{"path": "a.txt", "digest": digest, "size": 1000}]}
    _error(http.post(url, json=body), 400, "invalid_input")
    body["artifacts"][0]["size"] = 7
    assert http.post(url, json=body).status_code == 204
    assert http.get(url, params={"prefix": "a.txt"}).json() == {
        "artifacts": [{"path": "a.txt", "digest": digest, "size": 7}]}


def test_rest_artifact_store_round_trip(http: TestClient, tmp_path: Path) -> None:
    artifacts = RestArtifactStore(http)
    src = tmp_path / "model.bin"
    src.write_bytes(b"\x00weights" * 50_000)
    digest, size = artifacts.put_file(str(src))
    assert (digest, size) == (digest_bytes(src.read_bytes()), src.stat().st_size)
    assert artifacts.exists(digest)
    assert artifacts.put_file(str(src)) == (digest, size)  # skipped: the server has it
    artifacts.get_file(digest, str(tmp_path / "out" / "model.bin"))
    assert (tmp_path / "out" / "model.bin").read_bytes() == src.read_bytes()
    with artifacts.open(digest) as fh:
        assert fh.read() == src.read_bytes()
    assert artifacts.put_bytes(b"tiny") == (digest_bytes(b"tiny"), 4)
    assert not artifacts.exists(digest_bytes(b"never uploaded"))


def test_rest_artifact_store_refuses_corrupted_downloads(stores: Stores, tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path), stores=(stores[0], _Lying(stores[1])))
    with TestClient(app) as client:
        artifacts = RestArtifactStore(client)
        digest, _ = artifacts.put_bytes(b"the real bytes")
        with pytest.raises(StoreError, match="corrupted"):
            artifacts.get_bytes(digest)
        with pytest.raises(StoreError, match="corrupted"):
            artifacts.get_file(digest, str(tmp_path / "f"))
    assert not (tmp_path / "f").exists() and not (tmp_path / "f.partial").exists()


# --- the REST tracking store ------------------------------------------------------------------


def test_nan_and_infinities_round_trip(store: RestTrackingStore, run: Run) -> None:
    values = [math.nan, math.inf, -math.inf, 0.5, -0.0]
    store.log_batch(run.run_id, metrics=[Metric("m", v, i, 1_700_000_000_000 + i)
                                         for i, v in enumerate(values)])
    history = store.get_metric_history(run.run_id, "m")
    assert math.isnan(history.values[0])
    assert list(history.values[1:]) == [math.inf, -math.inf, 0.5, -0.0]
    assert list(history.steps) == [0, 1, 2, 3, 4]
    store.log_batch(run.run_id, metrics=[Metric("last", v, i, 1) for i, v in enumerate(values[:3])])
    assert store.get_run(run.run_id).metrics["last"] == -math.inf
    store.log_batch(run.run_id, metrics=[Metric("nan", math.nan, 0, 1)])
    assert math.isnan(store.get_run(run.run_id).metrics["nan"])


def test_non_finite_values_travel_as_strings(http: TestClient, run: Run) -> None:
    url = f"{API}/runs/{run.run_id}"
    rows = [["x", "NaN", 0, 1], ["x", "Infinity", 1, 2], ["x", "-Infinity", 2]]
    assert http.post(f"{url}/log-batch", json={"metrics": rows}).status_code == 204
    history = http.get(f"{url}/metrics/x/history").json()
    assert history["values"] == ["NaN", "Infinity", "-Infinity"]
    assert history["timestamps"][:2] == [1, 2]  # the third was stamped by the server
    assert http.get(url).json()["metrics"] == {"x": "-Infinity"}
    cmp = http.get(f"{API}/runs/compare", params={"run_id": [run.run_id]}).json()
    assert cmp["histories"]["x"] == {"steps": [0, 1, 2], "values": [["NaN", "Infinity",
                                                                       "-Infinity"]]}


def test_error_classes_are_rebuilt(store: RestTrackingStore, run: Run) -> None:
    missing = "0" * 32
    with pytest.raises(RunNotFound) as err:
        store.get_run(missing)
    assert err.value.details == {"run_id": missing}
    with pytest.raises(RunNotFound):
        store.log_batch(missing, params={"a": "1"})
    with pytest.raises(RunNotFound):
        store.get_metric_history(missing, "loss")
    exp = store.get_experiment(run.experiment_id)
    with pytest.raises(ExperimentAlreadyExists):
        store.create_experiment(exp.name)
    with pytest.raises(InvalidFilter) as bad:
        store.search_runs(filter="metrics.rmse <")
    assert isinstance(bad.value.details["position"], int)
    with pytest.raises(InvalidInputError, match="params are set once"):
        store.log_batch(run.run_id, params={"p": "1"})
        store.log_batch(run.run_id, params={"p": "2"})


def test_names_and_keys_with_slashes_and_dots_reach_their_route(store: RestTrackingStore) -> None:
    # (A literal "%2F" in a name is tested on the live server: TestClient decodes paths twice.)
    name = f"team/{uuid.uuid4().hex[:6]} ."
    exp = store.create_experiment(name)
    assert store.find_experiment(name) == exp
    assert store.find_experiment(name + "/missing") is None
    run = store.create_run(exp.experiment_id, name="r", start_time=1)
    for key in ("a/b", ".", "a/./b", "x:y z"):
        store.log_batch(run.run_id, metrics=[Metric(key, 1.0, 0, 1)], tags={key: "t"})
        assert list(store.get_metric_history(run.run_id, key).values) == [1.0]
        store.log_result(run.run_id, key, {"k": [1, 2]})
        store.delete_tag(run.run_id, key)
    got = store.get_run(run.run_id)
    assert got.tags == {} and got.results["a/./b"] == {"k": [1, 2]}


def test_run_lifecycle_through_the_rest_store(store: RestTrackingStore, run: Run) -> None:
    child = store.create_run(run.experiment_id, name="child", start_time=5,
                             parent_run_id=run.run_id, params={"lr": "0.1"}, tags={"t": "1"})
    assert (child.parent_run_id, child.params, child.tags) == (run.run_id, {"lr": "0.1"},
                                                               {"t": "1"})
    store.update_run(child.run_id, status=RunStatus.FINISHED, end_time=9, name="c2")
    ended = store.get_run(child.run_id)
    assert (ended.status, ended.name, ended.duration) == (RunStatus.FINISHED, "c2", 0.004)
    store.update_run(child.run_id, lifecycle="deleted")
    assert store.get_run(child.run_id).lifecycle == "deleted"
    store.update_run(child.run_id, lifecycle="active", end_time=None)
    restored = store.get_run(child.run_id)
    assert (restored.lifecycle, restored.end_time) == ("active", None)
    with pytest.raises(RunNotFound):
        store.update_run("0" * 32)
    store.delete_run(child.run_id, hard=True)
    with pytest.raises(RunNotFound):
        store.get_run(child.run_id)
    exp = store.update_experiment(run.experiment_id, description="about", lifecycle="deleted")
    assert (exp.description, exp.lifecycle) == ("about", "deleted")
    assert store.update_experiment(run.experiment_id, lifecycle="active").lifecycle == "active"
    store.record_artifacts(run.run_id, [])
    assert store.list_artifacts(run.run_id) == []


# --- a real server on loopback ----------------------------------------------------------------


@pytest.mark.slow
def test_live_server_with_tokens(tmp_path: Path) -> None:
    settings = _settings(tmp_path, token=WRITE, read_tokens=[READ])
    with live_server(settings) as url:
        assert httpx.get(f"{url}/health").json()["status"] == "ok"
        writer = RestTrackingStore(http_client(url, token=WRITE))
        exp = writer.create_experiment("live/100%2F ..")
        assert writer.find_experiment("live/100%2F ..") == exp
        run = writer.create_run(exp.experiment_id, name="r", start_time=1)
        for batch in range(2):
            writer.log_batch(run.run_id, metrics=[
                Metric("loss", 1 / (i + 1), batch * 1000 + i, 1) for i in range(1000)])
        assert len(writer.get_metric_history(run.run_id, "loss")) == 2000
        artifacts = RestArtifactStore(writer.http)
        digest, size = artifacts.put_bytes(b"model")
        writer.record_artifacts(run.run_id, [Artifact("model.bin", digest, size)])

        reader = RestTrackingStore(http_client(url, token=READ))
        assert reader.get_run(run.run_id).metrics["loss"] == pytest.approx(1 / 1000)
        assert RestArtifactStore(reader.http).get_bytes(digest) == b"model"
        with pytest.raises(PermissionDenied):
            reader.log_batch(run.run_id, params={"x": "1"})
        with pytest.raises(AuthError):
            RestTrackingStore(http_client(url, token="wrong")).get_run(run.run_id)
        writer.close()
        reader.close()


@pytest.mark.slow
def test_live_server_survives_an_unexpected_exception(stores: Stores, tmp_path: Path) -> None:
    with live_server(_settings(tmp_path), stores=(_Exploding(stores[0]), stores[1])) as url:
        with httpx.Client(base_url=url) as client:
            response = client.get(f"{API}/runs/{'0' * 32}")
            _error(response, 500, "internal")
            assert "hunter2" not in response.text
            assert client.get("/health").status_code == 200
            assert client.get(f"{API}/experiments").status_code == 200
        store = RestTrackingStore(http_client(url))
        with pytest.raises(StoreError):
            store.get_run("0" * 32)
        store.close()


def test_an_unreachable_server_is_a_store_error_naming_it() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    store = RestTrackingStore(http_client(url, timeout=2))
    with pytest.raises(StoreError, match=f"could not reach the mlcycle server at {url}") as err:
        store.list_experiments()
    assert err.value.details == {"url": url}
    store.close()


# --- stores that misbehave on purpose ---------------------------------------------------------


class _Exploding(SqlTrackingStore):
    """A store whose ``get_run`` fails in a way nobody planned for."""

    def __init__(self, base: TrackingStore) -> None:
        assert isinstance(base, SqlTrackingStore)
        super().__init__(base.engine)

    def get_run(self, run_id: str) -> Run:
        raise RuntimeError("connection to postgresql://admin:hunter2@db failed")

    def close(self) -> None:  # the engine belongs to the module's store
        pass


class _Lying(ArtifactStore):
    """Stores objects faithfully and hands back other bytes."""

    def __init__(self, real: ArtifactStore) -> None:
        self.real = real

    def put_file(self, path: str, *, digest: str | None = None) -> tuple[str, int]:
        return self.real.put_file(path, digest=digest)

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        return self.real.put_bytes(data)

    def exists(self, digest: str) -> bool:
        return self.real.exists(digest)

    def open(self, digest: str) -> IO[bytes]:
        return io.BytesIO(b"something else entirely")

    def get_file(self, digest: str, dest: str) -> None:
        raise NotImplementedError
