"""The deployment store contract: every test runs on SQLite, on PostgreSQL and through a live
server (``RestDeploymentStore`` against the real routes). The last part covers what only the
server has: the wire shape, field errors, tokens, and a controller driven over HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

import mlcycle as mc
from mlcycle.client import open_deployment_store
from mlcycle.config import Settings
from mlcycle.entities import WorkerReport
from mlcycle.errors import (
    DeploymentAlreadyExists,
    DeploymentNotFound,
    InvalidInputError,
    PermissionDenied,
    RevisionConflict,
)
from mlcycle.server import create_app
from mlcycle.store.artifacts import FsspecArtifactStore
from mlcycle.store.base import DeploymentStore
from mlcycle.store.rest.deployments import RestDeploymentStore
from mlcycle.store.sql import SqlTrackingStore
from mlcycle.store.sql.deployments import SqlDeploymentStore

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(request: pytest.FixtureRequest, backend: mc.Client) -> DeploymentStore:
    ds = open_deployment_store(backend.service.store)
    expected = RestDeploymentStore if request.node.callspec.params["backend"] == "http" \
        else SqlDeploymentStore
    assert isinstance(ds, expected)
    return ds


def worker(name: str, worker_id: str, *, at: datetime = NOW, revision: int = 1,
           **fields: object) -> WorkerReport:
    return WorkerReport(deployment=name, worker_id=worker_id, heartbeat_at=at,
                        revision=revision, rollout=fields.pop("rollout", 0),  # type: ignore[arg-type]
                        **fields)  # type: ignore[arg-type]


# --- deployments ----------------------------------------------------------------------------


def test_create_and_get_round_trip_every_field(store: DeploymentStore) -> None:
    made = store.create_deployment("web", model="iris", version=3,
                                   config={"steps": [5, 100], "sticky_key": None},
                                   description="the front door", actor="ann",
                                   reason="first deployment")
    got = store.get_deployment("web")
    assert got == made
    assert (got.model, got.stable_version, got.candidate_version, got.previous_version) == \
        ("iris", 3, None, None)
    assert (got.strategy, got.phase, got.weight, got.step, got.rollout, got.revision) == \
        ("direct", "stable", 0.0, 0, 0, 1)
    assert got.config == {"steps": [5, 100], "sticky_key": None}
    assert got.description == "the front door" and got.created_at.tzinfo is not None
    [event] = store.list_deployment_events("web")
    assert (event.kind, event.revision, event.actor, event.reason) == \
        ("created", 1, "ann", "first deployment")


def test_a_duplicate_name_is_refused(store: DeploymentStore) -> None:
    store.create_deployment("web", model="iris", version=1)
    with pytest.raises(DeploymentAlreadyExists, match="web"):
        store.create_deployment("web", model="iris", version=2)
    assert store.get_deployment("web").stable_version == 1


def test_bad_names_and_versions_are_refused_naming_the_field(store: DeploymentStore) -> None:
    with pytest.raises(InvalidInputError) as info:
        store.create_deployment("no spaces", model="iris", version=1)
    assert info.value.details["field"] == "name"
    with pytest.raises(InvalidInputError) as info:
        store.create_deployment("web", model="iris", version=0)
    assert info.value.details["field"] == "version"
    store.create_deployment("web", model="iris", version=1)
    for bad, field in (({"phase": "paused"}, "phase"), ({"weight": 101.0}, "weight"),
                       ({"strategy": "rolling"}, "strategy"), ({"step": -1}, "step"),
                       ({"candidate_version": 0}, "candidate_version")):
        with pytest.raises(InvalidInputError) as info:
            store.update_deployment("web", expected_revision=1, event="step",
                                    **bad)  # type: ignore[arg-type]
        assert info.value.details["field"] == field
    with pytest.raises(InvalidInputError) as info:
        store.update_deployment("web", expected_revision=1, event="exploded")
    assert info.value.details["field"] == "event"
    assert store.get_deployment("web").revision == 1
    assert len(store.list_deployment_events("web")) == 1


def test_unknown_deployments_are_not_found(store: DeploymentStore) -> None:
    for call in (lambda: store.get_deployment("nope"),
                 lambda: store.update_deployment("nope", expected_revision=1, event="step",
                                                 weight=5.0),
                 lambda: store.update_deployment("nope", expected_revision=1,
                                                 event="decision"),
                 lambda: store.delete_deployment("nope"),
                 lambda: store.list_deployment_events("nope"),
                 lambda: store.list_worker_reports("nope"),
                 lambda: store.report_worker(worker("nope", "w1"))):
        with pytest.raises(DeploymentNotFound, match="nope"):
            call()


def test_update_is_a_compare_and_set_with_its_event(store: DeploymentStore) -> None:
    store.create_deployment("web", model="iris", version=1)
    d = store.update_deployment(
        "web", expected_revision=1, event="rollout_started", reason="canary of 2",
        details={"p95_s": float("inf"), "counts": [1, 2]}, actor="ann", candidate_version=2,
        strategy="canary", phase="canary", weight=5, rollout=1, config={"steps": [5, 100]})
    assert (d.revision, d.candidate_version, d.phase, d.weight, d.rollout) == \
        (2, 2, "canary", 5.0, 1)
    assert d.stable_version == 1 and d.config == {"steps": [5, 100]}
    with pytest.raises(RevisionConflict) as info:
        store.update_deployment("web", expected_revision=1, event="promoted", stable_version=2)
    assert info.value.details == {"deployment": "web", "expected": 1, "actual": 2}
    with pytest.raises(RevisionConflict):  # a decision needs the current revision too
        store.update_deployment("web", expected_revision=1, event="decision")
    assert store.get_deployment("web") == d
    latest = store.list_deployment_events("web")[0]
    assert (latest.kind, latest.revision, latest.reason, latest.actor) == \
        ("rollout_started", 2, "canary of 2", "ann")
    assert latest.details == {"p95_s": "Infinity", "counts": [1, 2]}  # JSON has no inf
    d = store.update_deployment("web", expected_revision=2, event="promoted",
                                stable_version=2, previous_version=1, candidate_version=None,
                                phase="stable", weight=0.0)
    assert (d.revision, d.stable_version, d.previous_version, d.candidate_version) == \
        (3, 2, 1, None)


def test_a_decision_without_changes_keeps_the_revision(store: DeploymentStore) -> None:
    made = store.create_deployment("web", model="iris", version=1)
    d = store.update_deployment("web", expected_revision=1, event="decision", reason="waiting",
                                details={"needed": 40})
    assert d.revision == 1 and d.updated_at == made.updated_at
    assert store.list_deployment_events("web")[0].details == {"needed": 40}


def test_events_newest_first_and_limited(store: DeploymentStore) -> None:
    store.create_deployment("web", model="iris", version=1)
    for revision in range(1, 5):
        store.update_deployment("web", expected_revision=revision, event="step",
                                step=revision, reason=f"to step {revision}")
    events = store.list_deployment_events("web")
    assert [e.reason for e in events] == [f"to step {i}" for i in (4, 3, 2, 1)] + \
        ["created, serving iris version 1"]
    assert [e.revision for e in events] == [5, 4, 3, 2, 1]
    assert [e.event_id for e in events] == sorted((e.event_id for e in events), reverse=True)
    assert [e.reason for e in store.list_deployment_events("web", max_results=2)] == \
        ["to step 4", "to step 3"]
    with pytest.raises(InvalidInputError, match="max_results"):
        store.list_deployment_events("web", max_results=0)


def test_list_and_delete(store: DeploymentStore) -> None:
    for name in ("b", "a", "C"):
        store.create_deployment(name, model="iris", version=1)
    store.report_worker(worker("a", "w1"))
    assert [d.name for d in store.list_deployments()] == ["C", "a", "b"]
    store.delete_deployment("a")
    assert [d.name for d in store.list_deployments()] == ["C", "b"]
    with pytest.raises(DeploymentNotFound):
        store.list_worker_reports("a")
    store.create_deployment("a", model="iris", version=2)  # the name is free again, history too
    assert [e.kind for e in store.list_deployment_events("a")] == ["created"]
    assert store.list_worker_reports("a") == []


# --- worker reports -------------------------------------------------------------------------


def test_a_worker_report_is_replaced_not_appended(store: DeploymentStore) -> None:
    store.create_deployment("web", model="iris", version=1)
    stats = {"1": {"requests": 10, "errors": 1, "latency_buckets": [0] * 15}}
    store.report_worker(worker("web", "host-a:101", revision=1, ready_versions=(1,),
                               stats=stats, info={"pid": 101}))
    store.report_worker(worker("web", "host-b:7", at=NOW - timedelta(seconds=5)))
    newer = {"1": {"requests": 25, "errors": 1}, "2": {"requests": 3}}
    store.report_worker(worker("web", "host-a:101", at=NOW + timedelta(seconds=1), revision=2,
                               rollout=1, ready_versions=(1, 2), stats=newer,
                               info={"pid": 101}))
    reports = store.list_worker_reports("web")
    assert [r.worker_id for r in reports] == ["host-a:101", "host-b:7"]  # newest first
    a = reports[0]
    assert (a.heartbeat_at, a.revision, a.rollout, tuple(a.ready_versions)) == \
        (NOW + timedelta(seconds=1), 2, 1, (1, 2))
    assert a.stats == newer and a.info == {"pid": 101}


def test_worker_ids_may_hold_any_character(store: DeploymentStore) -> None:
    store.create_deployment("web", model="iris", version=1)
    store.report_worker(worker("web", "pod/web-7f9c:8080 #2"))
    assert [r.worker_id for r in store.list_worker_reports("web")] == ["pod/web-7f9c:8080 #2"]


def test_concurrent_compare_and_sets_apply_exactly_one(store: DeploymentStore) -> None:
    """Eight threads, each a compare-and-set from the same revision: one wins."""
    store.create_deployment("web", model="iris", version=1)
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            store.update_deployment("web", expected_revision=1, event="step", step=i)
            outcomes.append("applied")
        except RevisionConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["applied"] + ["conflict"] * 7
    assert store.get_deployment("web").revision == 2
    assert [e.kind for e in store.list_deployment_events("web")] == ["step", "created"]


# --- the server only ------------------------------------------------------------------------

WRITE, READ = "write-token-dep", "read-token-dep"


@pytest.fixture
def tracking(tmp_path: Path) -> Iterator[SqlTrackingStore]:
    store = SqlTrackingStore.from_uri(f"sqlite:///{tmp_path / 'server.db'}")
    yield store
    store.close()


def _app_client(tmp_path: Path, tracking: SqlTrackingStore, *, token: str | None = None,
                secured: bool = False) -> TestClient:
    settings = Settings(home=tmp_path / "home", tracking_uri=None, artifact_uri=None,
                        token=SecretStr(WRITE) if secured else None,
                        read_tokens=[SecretStr(READ)] if secured else [])
    app = create_app(settings, stores=(tracking, FsspecArtifactStore(str(tmp_path / "a"))))
    return TestClient(app, headers={"authorization": f"Bearer {token}"} if token else {})


def test_the_wire_shape_and_field_errors(tmp_path: Path, tracking: SqlTrackingStore) -> None:
    with _app_client(tmp_path, tracking) as http:
        created = http.post("/api/v1/deployments",
                            json={"name": "web", "model": "iris", "version": 1})
        assert created.status_code == 201
        body = created.json()
        assert body["revision"] == 1 and isinstance(body["created_at"], int)
        conflict = http.patch("/api/v1/deployments/web",
                              json={"expected_revision": 7, "event": "step", "weight": 5})
        assert conflict.status_code == 409
        assert conflict.json()["error"]["code"] == "revision_conflict"
        for path, method, payload, field in (
                ("/api/v1/deployments", "post", {"name": "x", "model": "iris", "version": 0},
                 "version"),
                ("/api/v1/deployments/web", "patch",
                 {"expected_revision": 1, "event": "step", "weight": 150}, "weight"),
                ("/api/v1/deployments/web", "patch",
                 {"expected_revision": 1, "event": "step", "phase": None}, "phase"),
                ("/api/v1/deployments/web", "patch",
                 {"expected_revision": 1, "event": "step", "wieght": 5}, "wieght"),
                ("/api/v1/deployments/web/workers/w1", "put", {"revision": 1, "rollout": 0},
                 "heartbeat_at")):
            response = getattr(http, method)(path, json=payload)
            assert response.status_code == 400, (path, response.text)
            assert response.json()["error"]["details"]["field"] == field
        assert http.get("/api/v1/deployments/web").json()["revision"] == 1


def test_writes_need_the_write_token(tmp_path: Path, tracking: SqlTrackingStore) -> None:
    with _app_client(tmp_path, tracking, token=WRITE, secured=True) as http:
        writer = RestDeploymentStore(http)
        writer.create_deployment("web", model="iris", version=1)
        writer.report_worker(worker("web", "w1"))
    with _app_client(tmp_path, tracking, token=READ, secured=True) as http:
        reader = RestDeploymentStore(http)
        assert reader.get_deployment("web").revision == 1
        assert len(reader.list_worker_reports("web")) == 1
        assert len(reader.list_deployment_events("web")) == 1
        for write in (lambda: reader.create_deployment("x", model="iris", version=1),
                      lambda: reader.update_deployment("web", expected_revision=1,
                                                       event="step", weight=5.0),
                      lambda: reader.report_worker(worker("web", "w2")),
                      lambda: reader.delete_deployment("web")):
            with pytest.raises(PermissionDenied):
                write()
        assert reader.get_deployment("web").weight == 0.0
