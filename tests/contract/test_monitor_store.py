"""The monitor store contract: every test runs on SQLite, on PostgreSQL and through a live
server (``RestMonitorStore`` against the real routes); the last part covers the wire shape,
field errors and tokens, which only the server has."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

import mlcycle as mc
from mlcycle.client import open_monitor_store
from mlcycle.config import Settings
from mlcycle.entities import Alert, Monitor, MonitorResult
from mlcycle.errors import (
    InvalidInputError,
    MonitorAlreadyExists,
    MonitorNotFound,
    PermissionDenied,
)
from mlcycle.server import create_app
from mlcycle.store.artifacts import FsspecArtifactStore
from mlcycle.store.base import MonitorStore
from mlcycle.store.rest.monitors import RestMonitorStore
from mlcycle.store.sql import SqlTrackingStore
from mlcycle.store.sql.monitors import SqlMonitorStore

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(request: pytest.FixtureRequest, backend: mc.Client) -> MonitorStore:
    ms = open_monitor_store(backend.service.store)
    expected = RestMonitorStore if request.node.callspec.params["backend"] == "http" \
        else SqlMonitorStore
    assert isinstance(ms, expected)
    return ms


def monitor(name: str = "web-daily", **fields: object) -> Monitor:
    fields.setdefault("deployment", "web")
    return Monitor(name=name, created_at=T0, updated_at=T0, **fields)  # type: ignore[arg-type]


def result(name: str, at: datetime, status: str = "ok", **metrics: float) -> MonitorResult:
    return MonitorResult(result_id=0, monitor=name, run_at=at, window_start=at - timedelta(hours=1),
                         window_end=at, status=status, metrics=metrics,
                         details={"drift": {"age": {"drifted": False}}})


def test_create_and_get_round_trip_every_field(store: MonitorStore) -> None:
    made = store.create_monitor(monitor(
        checks=("drift", "performance"), window_s=3600, interval_s=600,
        thresholds={"accuracy": {"warning": 0.9, "alert": 0.8}},
        segments={"eu": "region = 'EU'"}, reference="train@v2", task="classification",
        webhook_url="http://127.0.0.1:9/hook", description="hourly look"))
    got = store.get_monitor("web-daily")
    assert got == made
    assert got.checks == ("drift", "performance") and got.window_s == 3600
    assert got.thresholds == {"accuracy": {"warning": 0.9, "alert": 0.8}}
    assert got.segments == {"eu": "region = 'EU'"} and got.reference == "train@v2"
    assert got.enabled and got.last_run_at is None and got.status is None
    assert got.created_at.tzinfo is not None and got.created_at != T0


def test_a_duplicate_name_is_refused(store: MonitorStore) -> None:
    store.create_monitor(monitor(window_s=60))
    with pytest.raises(MonitorAlreadyExists, match="web-daily"):
        store.create_monitor(monitor(window_s=120))
    assert store.get_monitor("web-daily").window_s == 60


@pytest.mark.parametrize(("fields", "field"), [
    ({"name": "no spaces"}, "name"),
    ({"deployment": "a/b"}, "deployment"),
    ({"checks": ("drift", "vibes")}, "checks"),
    ({"checks": ()}, "checks"),
    ({"window_s": 0}, "window_s"),
    ({"interval_s": 1.5}, "interval_s"),
    ({"task": "ranking"}, "task"),
    ({"webhook_url": "ftp://x"}, "webhook_url"),
])
def test_bad_monitors_are_refused_naming_the_field(store: MonitorStore, fields: dict,
                                                   field: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        store.create_monitor(monitor(**fields))
    assert info.value.details["field"] == field
    assert store.list_monitors() == []


def test_list_filters_by_deployment_and_sorts_by_name(store: MonitorStore) -> None:
    for name, dep in (("b", "web"), ("a", "web"), ("c", "api")):
        store.create_monitor(monitor(name, deployment=dep))
    assert [m.name for m in store.list_monitors()] == ["a", "b", "c"]
    assert [m.name for m in store.list_monitors(deployment="web")] == ["a", "b"]


def test_results_are_a_time_series_and_set_the_status(store: MonitorStore) -> None:
    store.create_monitor(monitor())
    for i, status in enumerate(("ok", "warning", "alert")):
        stored = store.log_result(result("web-daily", T0 + timedelta(hours=i), status,
                                         **{"performance.accuracy": 0.9 - i / 10}))
        assert stored.result_id > 0
    got = store.get_monitor("web-daily")
    assert (got.status, got.last_run_at) == ("alert", T0 + timedelta(hours=2))
    series = store.list_results("web-daily")
    assert [r.status for r in series] == ["alert", "warning", "ok"]
    assert series[0].metrics == {"performance.accuracy": pytest.approx(0.7)}
    assert series[0].details == {"drift": {"age": {"drifted": False}}}
    assert series[0].window_start == T0 + timedelta(hours=1)
    window = store.list_results("web-daily", since=T0 + timedelta(hours=1),
                                until=T0 + timedelta(hours=2))
    assert [r.status for r in window] == ["warning"]
    assert len(store.list_results("web-daily", max_results=1)) == 1


def test_bad_results_are_refused_and_nothing_is_stored(store: MonitorStore) -> None:
    store.create_monitor(monitor())
    with pytest.raises(InvalidInputError) as info:
        store.log_result(result("web-daily", T0, "fine"))
    assert info.value.details["field"] == "status"
    with pytest.raises(InvalidInputError) as info:
        store.log_result(result("web-daily", T0, **{"x": float("nan")}))
    assert info.value.details["field"] == "metrics.x"
    assert store.list_results("web-daily") == []
    assert store.get_monitor("web-daily").status is None


def test_alerts_are_kept_newest_first(store: MonitorStore) -> None:
    store.create_monitor(monitor())
    r = store.log_result(result("web-daily", T0, "alert"))
    store.log_alert(Alert(alert_id=0, monitor="web-daily", time=T0, status="warning",
                          previous="ok", message="accuracy 0.86 < 0.9"))
    second = store.log_alert(Alert(alert_id=0, monitor="web-daily", time=T0, status="alert",
                                   previous="warning", message="accuracy 0.7 < 0.8",
                                   result_id=r.result_id, delivery="failed: timed out",
                                   details={"crossed": ["accuracy"]}))
    alerts = store.list_alerts("web-daily")
    assert [a.status for a in alerts] == ["alert", "warning"]
    assert alerts[0] == second and alerts[0].result_id == r.result_id
    assert alerts[0].delivery == "failed: timed out"


def test_pause_and_delete(store: MonitorStore) -> None:
    store.create_monitor(monitor())
    store.log_result(result("web-daily", T0))
    assert store.set_monitor_enabled("web-daily", False).enabled is False
    assert store.get_monitor("web-daily").enabled is False
    store.delete_monitor("web-daily")
    with pytest.raises(MonitorNotFound):
        store.get_monitor("web-daily")
    store.create_monitor(monitor())  # the name is free again, with no old results
    assert store.list_results("web-daily") == []


def test_unknown_monitors_are_not_found(store: MonitorStore) -> None:
    for call in (lambda: store.get_monitor("nope"),
                 lambda: store.delete_monitor("nope"),
                 lambda: store.set_monitor_enabled("nope", True),
                 lambda: store.list_results("nope"),
                 lambda: store.list_alerts("nope"),
                 lambda: store.log_result(result("nope", T0)),
                 lambda: store.log_alert(Alert(alert_id=0, monitor="nope", time=T0,
                                               status="ok", previous=None, message=""))):
        with pytest.raises(MonitorNotFound, match="nope"):
            call()


# --- the server only ------------------------------------------------------------------------

WRITE, READ = "write-token-mon", "read-token-mon"


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
        created = http.post("/api/v1/monitors", json={"name": "m", "deployment": "web"})
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["checks"] == ["drift", "performance", "operations"]
        assert isinstance(body["created_at"], int) and body["last_run_at"] is None
        for path, payload, field in (
                ("/api/v1/monitors", {"name": "x", "deployment": "web", "window_s": 0},
                 "window_s"),
                ("/api/v1/monitors", {"name": "x", "deployment": "web", "windw_s": 5},
                 "windw_s"),
                ("/api/v1/monitors", {"name": "x", "deployment": "web", "checks": ["vibes"]},
                 "checks"),
                ("/api/v1/monitors/m/results", {"run_at": 1, "window_end": 1,
                                                "status": "great"}, "status")):
            response = http.post(path, json=payload)
            assert response.status_code == 400, (path, response.text)
            assert response.json()["error"]["details"]["field"] == field
        assert http.get("/api/v1/monitors/nope").json()["error"]["code"] == "monitor_not_found"


def test_writes_need_the_write_token(tmp_path: Path, tracking: SqlTrackingStore) -> None:
    with _app_client(tmp_path, tracking, token=WRITE, secured=True) as http:
        RestMonitorStore(http).create_monitor(monitor())
    with _app_client(tmp_path, tracking, token=READ, secured=True) as http:
        reader = RestMonitorStore(http)
        assert reader.get_monitor("web-daily").enabled
        for write in (lambda: reader.create_monitor(monitor("other")),
                      lambda: reader.log_result(result("web-daily", T0)),
                      lambda: reader.set_monitor_enabled("web-daily", False),
                      lambda: reader.delete_monitor("web-daily")):
            with pytest.raises(PermissionDenied):
                write()
        assert reader.list_results("web-daily") == []
