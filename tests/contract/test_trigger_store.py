"""The trigger store contract: every test runs on SQLite, on PostgreSQL and through a live
server (``RestTriggerStore`` against the real routes). The guards are the store's: one run of a
deployment at a time, and a cool-down after each run that ran; both record the refused firing
as ``skipped`` with the reason."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

import mlcycle as mc
from mlcycle.client import open_trigger_store
from mlcycle.entities import Trigger, TriggerRun
from mlcycle.errors import (
    InvalidInputError,
    InvalidStateError,
    TriggerAlreadyExists,
    TriggerNotFound,
    TriggerRunNotFound,
)
from mlcycle.store.base import TriggerStore
from mlcycle.store.rest.triggers import RestTriggerStore
from mlcycle.store.sql.triggers import SqlTriggerStore

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(request: pytest.FixtureRequest, backend: mc.Client) -> TriggerStore:
    ts = open_trigger_store(backend.service.store)
    expected = RestTriggerStore if request.node.callspec.params["backend"] == "http" \
        else SqlTriggerStore
    assert isinstance(ts, expected)
    return ts


def trigger(name: str = "retrain", **fields: object) -> Trigger:
    fields.setdefault("deployment", "web")
    fields.setdefault("kinds", ("drift",))
    fields.setdefault("pipeline", "flows.retrain:train")
    fields.setdefault("dataset", "train")
    return Trigger(name=name, created_at=T0, updated_at=T0, **fields)  # type: ignore[arg-type]


def run(name: str = "retrain", at: datetime = T0, **cause: object) -> TriggerRun:
    cause.setdefault("kind", "drift")
    return TriggerRun(run_id=0, trigger=name, deployment="", status="running", started_at=at,
                      cause=cause)  # type: ignore[arg-type]


def test_create_and_get_round_trip_every_field(store: TriggerStore) -> None:
    made = store.create_trigger(trigger(
        kinds=("schedule", "quality"), schedule="0 3 * * *", monitor="web-daily",
        target="label", evaluation_data="holdout@v2",
        gates={"gates": [{"metric": "roc_auc", "min": 0.9}]}, params={"C": 0.5},
        canary={"steps": [10, 50], "min_requests": 20}, cooldown_s=600,
        description="nightly", seen_version=3))
    got = store.get_trigger("retrain")
    assert got == made
    assert got.kinds == ("schedule", "quality") and got.schedule == "0 3 * * *"
    assert got.gates == {"gates": [{"metric": "roc_auc", "min": 0.9}]}
    assert got.canary == {"steps": [10, 50], "min_requests": 20} and got.seen_version == 3
    assert got.created_at != T0 and got.enabled
    with pytest.raises(TriggerAlreadyExists, match="retrain"):
        store.create_trigger(trigger())
    store.create_trigger(trigger("other", deployment="api"))
    assert [t.name for t in store.list_triggers()] == ["other", "retrain"]
    assert [t.name for t in store.list_triggers(deployment="api")] == ["other"]


@pytest.mark.parametrize(("fields", "field"), [
    ({"name": "no spaces"}, "name"),
    ({"deployment": "a/b"}, "deployment"),
    ({"kinds": ("drift", "vibes")}, "kinds"),
    ({"kinds": ()}, "kinds"),
    ({"pipeline": "not a target"}, "pipeline"),
    ({"kinds": ("schedule",)}, "schedule"),
    ({"schedule": "* * * * *"}, "schedule"),
    ({"cooldown_s": -1}, "cooldown_s"),
    ({"dataset": ""}, "dataset"),
])
def test_bad_fields_are_refused_by_name(store: TriggerStore, fields: dict[str, object],
                                        field: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        store.create_trigger(trigger(**fields))
    assert err.value.details["field"] == field
    assert store.list_triggers() == []


def test_update_pause_and_watermark(store: TriggerStore) -> None:
    store.create_trigger(trigger())
    assert not store.update_trigger("retrain", enabled=False).enabled
    moved = store.update_trigger("retrain", seen_version=4)
    assert moved.seen_version == 4 and not moved.enabled
    with pytest.raises(TriggerNotFound):
        store.update_trigger("ghost", enabled=True)


def test_a_run_records_its_links_and_its_outcome_is_final(store: TriggerStore) -> None:
    store.create_trigger(trigger())
    started = store.start_run(run(alert_id=7, monitor="web-daily"), cooldown_s=0)
    assert started.status == "running" and started.deployment == "web"
    assert started.cause == {"kind": "drift", "alert_id": 7, "monitor": "web-daily"}
    store.update_run(started.run_id, pipeline_run_id="p" * 32, training_run_id="r" * 32,
                     data={"dataset": "train@v2", "feedback": "train.feedback@v1"})
    done = store.update_run(started.run_id, status="succeeded", ended_at=T0 + timedelta(
        minutes=5), model="clf", model_version=2, gates={"passed": True}, rollout=3,
                            reason="canary started")
    assert done == store.get_run(started.run_id)
    assert (done.pipeline_run_id, done.model, done.model_version, done.rollout) == \
        ("p" * 32, "clf", 2, 3)
    assert done.data == {"dataset": "train@v2", "feedback": "train.feedback@v1"}
    assert done.ended_at == T0 + timedelta(minutes=5) and done.kind == "drift"
    with pytest.raises(InvalidStateError, match="ended"):
        store.update_run(started.run_id, status="failed")
    assert store.get_run(started.run_id).status == "succeeded"
    with pytest.raises(TriggerRunNotFound):
        store.get_run(999_999)
    again = store.start_run(run(), cooldown_s=0)
    with pytest.raises(InvalidInputError, match="status"):
        store.update_run(again.run_id, status="done")


def test_one_run_of_a_deployment_at_a_time(store: TriggerStore) -> None:
    store.create_trigger(trigger())
    store.create_trigger(trigger("nightly", kinds=("schedule",), schedule="0 3 * * *"))
    store.create_trigger(trigger("elsewhere", deployment="api"))
    first = store.start_run(run(), cooldown_s=0)
    second = store.start_run(run("nightly", kind="schedule"), cooldown_s=0)
    assert second.status == "skipped" and second.ended_at is not None
    assert f"run {first.run_id} of trigger 'retrain'" in second.reason
    assert store.start_run(run("elsewhere"), cooldown_s=0).status == "running"
    with pytest.raises(InvalidStateError, match="retraining"):
        store.delete_trigger("retrain")
    store.update_run(first.run_id, status="failed", ended_at=T0, reason="boom")
    assert store.start_run(run("nightly", kind="schedule"), cooldown_s=0).status == "running"
    assert [r.status for r in store.list_runs(deployment="web")] == \
        ["running", "skipped", "failed"]


def test_a_run_left_running_for_hours_is_abandoned_not_blocking(store: TriggerStore) -> None:
    store.create_trigger(trigger())
    stuck = store.start_run(run(at=T0), cooldown_s=0)  # its process died mid-retraining
    soon = store.start_run(run(at=T0 + timedelta(hours=1)), cooldown_s=0)
    assert soon.status == "skipped"
    later = store.start_run(run(at=T0 + timedelta(hours=7)), cooldown_s=0)
    assert later.status == "running"
    gone = store.get_run(stuck.run_id)
    assert gone.status == "failed" and gone.reason.startswith("abandoned")


def test_concurrent_starts_let_exactly_one_run(store: TriggerStore) -> None:
    store.create_trigger(trigger())
    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda _: store.start_run(run(), cooldown_s=0), range(4)))
    assert sorted(r.status for r in runs) == ["running", "skipped", "skipped", "skipped"]


def test_cool_down_skips_with_the_reason(store: TriggerStore) -> None:
    store.create_trigger(trigger())
    first = store.start_run(run(at=T0), cooldown_s=600)
    store.update_run(first.run_id, status="rejected", ended_at=T0 + timedelta(seconds=30))
    early = store.start_run(run(at=T0 + timedelta(seconds=599)), cooldown_s=600)
    assert early.status == "skipped" and "cool-down" in early.reason
    assert (T0 + timedelta(seconds=600)).isoformat() in early.reason
    # skipped runs do not extend the cool-down
    assert store.start_run(run(at=T0 + timedelta(seconds=600)), cooldown_s=600).status == \
        "running"
    assert [r.status for r in store.list_runs("retrain")] == ["running", "skipped", "rejected"]
    assert len(store.list_runs("retrain", max_results=1)) == 1
    with pytest.raises(TriggerNotFound):
        store.list_runs("ghost")


def test_delete_removes_the_trigger_and_its_runs(store: TriggerStore) -> None:
    store.create_trigger(trigger())
    done = store.start_run(run(), cooldown_s=0)
    store.update_run(done.run_id, status="succeeded", ended_at=T0)
    store.delete_trigger("retrain")
    with pytest.raises(TriggerNotFound):
        store.get_trigger("retrain")
    with pytest.raises(TriggerRunNotFound):
        store.get_run(done.run_id)
    with pytest.raises(TriggerNotFound):
        store.delete_trigger("retrain")
