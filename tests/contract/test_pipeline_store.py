"""The pipeline store contract: every test runs on SQLite, on PostgreSQL and through a live server.

The store comes from ``open_pipeline_store`` over the backend's tracking store, the path the
runner takes, so the http case exercises ``RestPipelineStore`` against the real routes. The
last part covers what only the server has (times on the wire, tokens, wiring) and a pipeline
driven end to end through a ``Client`` on a live server: cached, failed and resumed.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

import mlcycle as mc
from mlcycle.client import open_pipeline_store
from mlcycle.config import Settings
from mlcycle.entities import StepOutput, from_ms, now_ms
from mlcycle.errors import (
    InvalidInputError,
    InvalidStateError,
    PermissionDenied,
    PipelineRunNotFound,
    StepFailed,
    StoreError,
)
from mlcycle.pipelines import PipelineRunner
from mlcycle.server import create_app
from mlcycle.store.artifacts import FsspecArtifactStore
from mlcycle.store.base import PipelineStore, TrackingStore
from mlcycle.store.rest.pipelines import RestPipelineStore
from mlcycle.store.sql import SqlTrackingStore
from mlcycle.store.sql.pipelines import SqlPipelineStore
from mlcycle.testing.server import live_server

UNKNOWN = "0" * 32


def digest(seed: object) -> str:
    return hashlib.sha256(str(seed).encode()).hexdigest()


def new_run(store: PipelineStore, pipeline: str = "train", *, created_at: int | None = None,
            **fields: Any) -> str:
    kwargs: dict[str, Any] = {"target": None, "executor": "local", "params": {}, "cache": True,
                              "created_at": created_at or now_ms(), **fields}
    return store.create_pipeline_run(pipeline, **kwargs).pipeline_run_id


@pytest.fixture
def store(request: pytest.FixtureRequest, backend: mc.Client) -> PipelineStore:
    ps = open_pipeline_store(backend.service.store)
    expected = RestPipelineStore if request.node.callspec.params["backend"] == "http" \
        else SqlPipelineStore
    assert isinstance(ps, expected)
    return ps


# --- pipeline runs --------------------------------------------------------------------------


def test_every_field_of_a_pipeline_run_round_trips(store: PipelineStore) -> None:
    created_at = 1_700_000_000_123
    made = store.create_pipeline_run(
        "train", target="flows.train:train", executor="process",
        params={"n": 3, "lr": 0.5, "tags": ["a", "b"], "nested": {"x": None, "ok": True}},
        cache=False, created_at=created_at, spec_digest=digest("spec"), run_id="a" * 32,
        resumed_from="b" * 32)
    got = store.get_pipeline_run(made.pipeline_run_id)
    assert got == made
    assert got.status == "running" and got.created_at == from_ms(created_at)
    assert got.target == "flows.train:train" and got.executor == "process" and got.cache is False
    assert got.params == {"n": 3, "lr": 0.5, "tags": ["a", "b"], "nested": {"x": None, "ok": True}}
    assert got.spec_digest == digest("spec") and got.run_id == "a" * 32
    assert got.resumed_from == "b" * 32 and got.error is None and got.ended_at is None


def test_update_pipeline_run_changes_the_given_fields_only(store: PipelineStore) -> None:
    prid = new_run(store)
    error = {"type": "StepFailed", "message": "step 'x' failed", "node": "x",
             "details": {"attempts": 2}}
    store.update_pipeline_run(prid, status="failed", ended_at=1_700_000_001_000, error=error)
    got = store.get_pipeline_run(prid)
    assert got.status == "failed" and got.ended_at == from_ms(1_700_000_001_000)
    assert got.error == error
    store.update_pipeline_run(prid, status="running")  # the rest stays
    assert store.get_pipeline_run(prid).error == error
    store.update_pipeline_run(prid, error=None, ended_at=None)  # None clears
    got = store.get_pipeline_run(prid)
    assert got.error is None and got.ended_at is None and got.status == "running"
    store.update_pipeline_run(prid)  # nothing to change
    with pytest.raises(InvalidInputError, match="status"):
        store.update_pipeline_run(prid, status="done")


def test_list_pipeline_runs_newest_first_filtered_and_paged(store: PipelineStore) -> None:
    base = 1_700_000_000_000
    ids = [new_run(store, "a" if i % 2 == 0 else "b", created_at=base + i) for i in range(5)]
    store.update_pipeline_run(ids[4], status="finished")
    everything = store.list_pipeline_runs()
    assert [r.pipeline_run_id for r in everything] == ids[::-1]
    assert everything.next_page_token is None
    first = store.list_pipeline_runs(max_results=2)
    second = store.list_pipeline_runs(max_results=2, page_token=first.next_page_token)
    third = store.list_pipeline_runs(max_results=2, page_token=second.next_page_token)
    assert [r.pipeline_run_id for r in [*first, *second, *third]] == ids[::-1]
    assert third.next_page_token is None
    assert [r.pipeline_run_id for r in store.list_pipeline_runs(pipeline="a")] == \
        [ids[4], ids[2], ids[0]]
    assert [r.pipeline_run_id for r in store.list_pipeline_runs(status="finished")] == [ids[4]]
    assert [r.pipeline_run_id for r in
            store.list_pipeline_runs(pipeline="b", status="running")] == [ids[3], ids[1]]
    assert len(store.list_pipeline_runs(pipeline="nope")) == 0
    with pytest.raises(InvalidInputError, match="status"):
        store.list_pipeline_runs(status="done")
    with pytest.raises(InvalidInputError, match="max_results"):
        store.list_pipeline_runs(max_results=0)
    with pytest.raises(InvalidInputError, match="page_token"):
        store.list_pipeline_runs(page_token="not a token!")


# --- step runs ------------------------------------------------------------------------------


def test_step_runs_are_created_pending_and_listed_in_call_order(store: PipelineStore) -> None:
    prid = new_run(store)
    nodes = [("load", "load", []), ("split", "split", ["load"]),
             ("train#2", "train", ["split", "load"]), ("report", "report", ["train#2"])]
    created = store.create_step_runs(prid, nodes)
    listed = store.list_step_runs(prid)
    assert listed == created
    assert [(s.node, s.step, list(s.upstream)) for s in listed] == \
        [(n, s, list(u)) for n, s, u in nodes]
    for s in listed:
        assert s.pipeline_run_id == prid and s.status == "pending" and s.attempts == 0
        assert s.outputs == () and s.params == {} and s.inputs == {} and s.logs == ""
        assert not s.cache_hit and s.error is None and s.started_at is None
    other = new_run(store)
    assert store.list_step_runs(other) == []  # a run with no steps yet


def test_every_field_of_a_step_run_round_trips(store: PipelineStore) -> None:
    prid = new_run(store)
    step = store.create_step_runs(prid, [("train", "train", [])])[0]
    outputs = [StepOutput("return", digest(1), "pickle", 120),
               StepOutput("model", digest(2), "file/model.bin", 0),
               StepOutput("frame", digest(3), "parquet/pandas", 4096)]
    error = {"type": "ValueError", "message": "bad row 3",
             "traceback": "Traceback (most recent call last):\n  ...\nValueError: bad row 3\n"}
    logs = "epoch 1: loss 0.5\népoque 2 ✓\n"
    store.update_step_run(
        step.step_run_id, status="failed", cache_key=digest("key"), code_hash=digest("code"),
        cache_hit=False, reused_from="c" * 32, params={"lr": 0.1, "layers": [2, 3]},
        inputs={"data": digest(0), "parts[1]": digest(9)}, outputs=outputs, attempts=3,
        run_id="d" * 32, error=error, logs=logs, started_at=1_700_000_000_001,
        ended_at=1_700_000_002_500)
    got = store.list_step_runs(prid)[0]
    assert got.status == "failed" and got.cache_key == digest("key")
    assert got.code_hash == digest("code") and got.cache_hit is False
    assert got.reused_from == "c" * 32 and got.run_id == "d" * 32 and got.attempts == 3
    assert got.params == {"lr": 0.1, "layers": [2, 3]}
    assert got.inputs == {"data": digest(0), "parts[1]": digest(9)}
    assert list(got.outputs) == outputs and got.output("model").digest == digest(2)
    assert got.error == error and got.logs == logs
    assert got.started_at == from_ms(1_700_000_000_001)
    assert got.ended_at == from_ms(1_700_000_002_500) and got.duration == 2.499
    assert got.created_at == step.created_at and got.upstream == ()

    # UNSET leaves a field alone; None clears the ones that may be empty.
    store.update_step_run(step.step_run_id, status="retrying", cache_hit=True, outputs=[])
    store.update_step_run(step.step_run_id, error=None, reused_from=None, run_id=None,
                          cache_key=None, code_hash=None, started_at=None, ended_at=None)
    got = store.list_step_runs(prid)[0]
    assert got.status == "retrying" and got.cache_hit is True and got.outputs == ()
    assert got.error is None and got.reused_from is None and got.run_id is None
    assert got.cache_key is None and got.code_hash is None
    assert got.started_at is None and got.ended_at is None
    assert got.logs == logs and got.attempts == 3 and got.params == {"lr": 0.1, "layers": [2, 3]}
    store.update_step_run(step.step_run_id)  # nothing to change
    with pytest.raises(InvalidInputError, match="status"):
        store.update_step_run(step.step_run_id, status="done")


def test_long_logs_keep_their_tail(store: PipelineStore) -> None:
    prid = new_run(store)
    step = store.create_step_runs(prid, [("s", "s", [])])[0]
    logs = "".join(f"line {i}\n" for i in range(5_000))
    store.update_step_run(step.step_run_id, logs=logs)
    kept = store.list_step_runs(prid)[0].logs
    assert logs.endswith(kept) and kept.endswith("line 4999\n") and 0 < len(kept) < len(logs)


# --- the cache lookup -----------------------------------------------------------------------


def test_find_cached_step_run_answers_the_newest_finished_one(store: PipelineStore) -> None:
    key = digest("key")
    assert store.find_cached_step_run(key) is None
    prid = new_run(store)
    old, new, failed, other = store.create_step_runs(
        prid, [("a", "s", []), ("b", "s", []), ("c", "s", []), ("d", "s", [])])
    store.update_step_run(failed.step_run_id, status="failed", cache_key=key,
                          ended_at=1_700_000_009_000)
    assert store.find_cached_step_run(key) is None  # only finished step runs count
    store.update_step_run(old.step_run_id, status="finished", cache_key=key,
                          ended_at=1_700_000_001_000,
                          outputs=[StepOutput("return", digest("old"), "pickle", 1)])
    store.update_step_run(new.step_run_id, status="finished", cache_key=key,
                          ended_at=1_700_000_002_000,
                          outputs=[StepOutput("return", digest("new"), "pickle", 2)])
    store.update_step_run(other.step_run_id, status="finished", cache_key=digest("other"),
                          ended_at=1_700_000_003_000)
    found = store.find_cached_step_run(key)
    assert found is not None and found.step_run_id == new.step_run_id
    assert found.output().digest == digest("new") and found == store.list_step_runs(prid)[1]
    assert store.find_cached_step_run(digest("nothing")) is None
    assert store.find_cached_step_run("") is None


# --- unknown ids ----------------------------------------------------------------------------

_ON_UNKNOWN = {
    "get_pipeline_run": lambda s, i: s.get_pipeline_run(i),
    "update_pipeline_run": lambda s, i: s.update_pipeline_run(i, status="failed"),
    "create_step_runs": lambda s, i: s.create_step_runs(i, [("a", "a", [])]),
    "list_step_runs": lambda s, i: s.list_step_runs(i),
}


@pytest.mark.parametrize("call", list(_ON_UNKNOWN), ids=list(_ON_UNKNOWN))
@pytest.mark.parametrize("prid", [UNKNOWN, "no/such"], ids=["unknown", "slash"])
def test_unknown_pipeline_run_raises_pipeline_run_not_found(store: PipelineStore, call: str,
                                                            prid: str) -> None:
    with pytest.raises(PipelineRunNotFound):
        _ON_UNKNOWN[call](store, prid)


def test_unknown_step_run_is_a_store_error(store: PipelineStore) -> None:
    with pytest.raises(StoreError, match="no step run"):
        store.update_step_run(UNKNOWN, status="running")


# --- the server only ------------------------------------------------------------------------

WRITE, READ = "write-token-pl", "read-token-pl"


@pytest.fixture
def tracking(tmp_path: Path) -> Iterator[SqlTrackingStore]:
    store = SqlTrackingStore.from_uri(f"sqlite:///{tmp_path / 'server.db'}")
    yield store
    store.close()


def _app_client(tmp_path: Path, tracking: TrackingStore, *, token: str | None = None,
                pipelines: PipelineStore | None = None, secured: bool = False) -> TestClient:
    settings = Settings(home=tmp_path / "home", tracking_uri=None, artifact_uri=None,
                        token=SecretStr(WRITE) if secured else None,
                        read_tokens=[SecretStr(READ)] if secured else [])
    artifacts = FsspecArtifactStore(str(tmp_path / "artifacts"))
    app = create_app(settings, stores=(tracking, artifacts), pipelines=pipelines)
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return TestClient(app, headers=headers)


@pytest.fixture
def http(tmp_path: Path, tracking: SqlTrackingStore) -> Iterator[TestClient]:
    with _app_client(tmp_path, tracking) as client:
        yield client


def test_millisecond_times_and_statuses_on_the_wire(http: TestClient) -> None:
    created = http.post("/api/v1/pipelines/runs", json={
        "pipeline": "p", "executor": "local", "created_at": 1_700_000_000_123})
    assert created.status_code == 201
    body = created.json()
    assert body["created_at"] == 1_700_000_000_123 and body["status"] == "running"
    prid = body["pipeline_run_id"]
    patched = http.patch(f"/api/v1/pipelines/runs/{prid}", json={"ended_at": 1_700_000_000_456})
    assert patched.status_code == 204
    assert http.get(f"/api/v1/pipelines/runs/{prid}").json()["ended_at"] == 1_700_000_000_456
    steps = http.post(f"/api/v1/pipelines/runs/{prid}/steps",
                      json={"nodes": [{"node": "a", "step": "a"}]})
    assert steps.status_code == 201
    srid = steps.json()["step_runs"][0]["step_run_id"]
    assert isinstance(steps.json()["step_runs"][0]["created_at"], int)
    assert http.patch(f"/api/v1/pipelines/steps/{srid}",
                      json={"started_at": 5, "ended_at": 7}).status_code == 204
    listed = http.get(f"/api/v1/pipelines/runs/{prid}/steps").json()["step_runs"][0]
    assert (listed["started_at"], listed["ended_at"]) == (5, 7)
    missing = http.get(f"/api/v1/pipelines/runs/{UNKNOWN}")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "pipeline_run_not_found"
    assert http.get(f"/api/v1/pipelines/steps/cached/{digest(1)}").json() == {"step_run": None}
    page = http.get("/api/v1/pipelines/runs", params={"max_results": 1}).json()
    assert [r["pipeline_run_id"] for r in page["pipeline_runs"]] == [prid]
    assert page["next_page_token"] is None


def test_server_refuses_malformed_bodies_naming_the_field(http: TestClient) -> None:
    store = RestPipelineStore(http)
    prid = new_run(store)
    srid = store.create_step_runs(prid, [("a", "a", [])])[0].step_run_id
    cases = [
        ("post", "/api/v1/pipelines/runs", {"pipeline": "p", "executor": "local"},
         "created_at"),
        ("post", "/api/v1/pipelines/runs",
         {"pipeline": "p" * 257, "executor": "local", "created_at": 1}, "pipeline"),
        ("patch", f"/api/v1/pipelines/runs/{prid}", {"status": None}, "status"),
        ("patch", f"/api/v1/pipelines/runs/{prid}", {"statuss": "failed"}, "statuss"),
        ("patch", f"/api/v1/pipelines/steps/{srid}", {"logs": None}, "logs"),
        ("patch", f"/api/v1/pipelines/steps/{srid}", {"attempts": -1}, "attempts"),
        ("patch", f"/api/v1/pipelines/steps/{srid}",
         {"outputs": [{"name": "r", "digest": "xyz", "format": "pickle", "size": 1}]},
         "outputs[0].digest"),
    ]
    for method, path, body, field in cases:
        response = getattr(http, method)(path, json=body)
        assert response.status_code == 400, (path, body, response.text)
        assert response.json()["error"]["details"]["field"] == field
    with pytest.raises(InvalidInputError, match="status"):
        store.update_pipeline_run(prid, status="s" * 17)
    got = store.list_step_runs(prid)[0]
    assert got.status == "pending" and got.attempts == 0 and got.outputs == ()


def test_writes_need_the_write_token(tmp_path: Path, tracking: SqlTrackingStore) -> None:
    with _app_client(tmp_path, tracking, token=WRITE, secured=True) as http:
        writer = RestPipelineStore(http)
        prid = new_run(writer)
        srid = writer.create_step_runs(prid, [("a", "a", [])])[0].step_run_id
        writer.update_step_run(srid, status="finished", cache_key=digest("k"))
    with _app_client(tmp_path, tracking, token=READ, secured=True) as http:
        reader = RestPipelineStore(http)
        assert reader.get_pipeline_run(prid).status == "running"
        assert [r.pipeline_run_id for r in reader.list_pipeline_runs()] == [prid]
        assert len(reader.list_step_runs(prid)) == 1
        assert reader.find_cached_step_run(digest("k")) is not None
        for write in (lambda: new_run(reader),
                      lambda: reader.update_pipeline_run(prid, status="failed"),
                      lambda: reader.create_step_runs(prid, [("b", "b", [])]),
                      lambda: reader.update_step_run(srid, status="failed")):
            with pytest.raises(PermissionDenied):
                write()
        assert reader.get_pipeline_run(prid).status == "running"
        assert [s.status for s in reader.list_step_runs(prid)] == ["finished"]
    with _app_client(tmp_path, tracking, secured=True) as http:
        with pytest.raises(mc.errors.AuthError):
            RestPipelineStore(http).list_pipeline_runs()


def test_a_server_without_sql_tracking_needs_a_pipeline_store(tmp_path: Path,
                                                             tracking: SqlTrackingStore) -> None:
    wrapped = mock.create_autospec(TrackingStore, instance=True)
    with _app_client(tmp_path, wrapped) as http:
        with pytest.raises(InvalidStateError, match="no pipeline records"):
            RestPipelineStore(http).list_pipeline_runs()
    handed = SqlPipelineStore(tracking.engine)
    with _app_client(tmp_path, wrapped, pipelines=handed) as http:
        prid = new_run(RestPipelineStore(http), "via-handed-store")
    assert handed.get_pipeline_run(prid).pipeline == "via-handed-store"


# --- a pipeline through a live server -------------------------------------------------------

CALLS: Counter[str] = Counter()
FAIL = {"scale": False}


@mc.step
def numbers(n: int) -> list[int]:
    CALLS["numbers"] += 1
    return list(range(n))


@mc.step
def scale(xs: list[int], factor: int) -> list[int]:
    CALLS["scale"] += 1
    if FAIL["scale"]:
        raise ValueError("scale is broken")
    return [x * factor for x in xs]


@mc.step
def total(xs: list[int]) -> int:
    CALLS["total"] += 1
    print(f"summing {len(xs)} numbers")
    return sum(xs)


@mc.pipeline
def remote_flow(n: int = 4, factor: int = 3):
    return total(scale(numbers(n), factor))


def test_a_pipeline_runs_caches_and_resumes_through_a_live_server(
        tmp_path: Path, settings: Settings) -> None:
    CALLS.clear()
    FAIL["scale"] = False
    with live_server(Settings(home=tmp_path / "server")) as url, \
            mc.Client(url, settings=settings) as client:
        first = remote_flow.run(n=4, factor=3, client=client)
        assert first.output == 18 and first.run.status == "finished"
        assert all(s.status == "finished" and not s.cache_hit for s in first.steps)
        assert "summing 4 numbers" in {s.node: s for s in first.steps}["total"].logs

        second = remote_flow.run(n=4, factor=3, client=client)
        assert second.output == 18 and all(s.cache_hit for s in second.steps)
        assert [s.reused_from for s in second.steps] == [s.step_run_id for s in first.steps]
        assert CALLS == {"numbers": 1, "scale": 1, "total": 1}

        FAIL["scale"] = True
        with pytest.raises(StepFailed, match="scale is broken") as info:
            remote_flow.run(n=5, factor=2, client=client)
        prid = info.value.details["pipeline_run_id"]
        FAIL["scale"] = False
        with PipelineRunner(client) as runner:
            assert isinstance(runner.store, RestPipelineStore)
            failed = {s.node: s for s in runner.store.list_step_runs(prid)}
            assert runner.store.get_pipeline_run(prid).status == "failed"
            assert failed["scale"].status == "failed"
            assert failed["scale"].error is not None
            assert "scale is broken" in str(failed["scale"].error)
            assert failed["total"].status == "skipped"
            resumed = runner.resume(prid)
        steps = {s.node: s for s in resumed.steps}
        assert resumed.output == sum(x * 2 for x in range(5))
        assert resumed.run.resumed_from == prid
        assert steps["numbers"].cache_hit
        assert steps["numbers"].reused_from == failed["numbers"].step_run_id
        assert not steps["scale"].cache_hit and steps["scale"].status == "finished"
        assert CALLS == {"numbers": 2, "scale": 3, "total": 2}
        # What the server recorded is what a later client reads back.
        runs = open_pipeline_store(client.service.store).list_pipeline_runs()
        assert [r.status for r in runs] == ["finished", "failed", "finished", "finished"]
