"""The closed loop on real data: scikit-learn's breast-cancer tumours, a weak model v1 served by
the real deployment app, drifted traffic with ground-truth feedback, a drift monitor that
alerts, and a trigger that retrains on the newest data plus the feedback rows, checks the gates
against the stable version and starts a canary; gate failures, cool-downs, one-at-a-time,
schedules on a fake clock, lineage and the CLI."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from croniter import croniter
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from starlette.testclient import TestClient
from typer.testing import CliRunner

import mlcycle as mc
from mlcycle.entities import TriggerRun
from mlcycle.lineage import trace
from mlcycle.retrain import TriggerService
from mlcycle.serving import ServingSettings, create_deployment_app

FEATURES = ["mean_radius", "mean_texture", "mean_smoothness", "mean_compactness",
            "mean_concavity", "mean_symmetry"]
GATES = {"gates": [{"metric": "roc_auc", "max_regression": 0.02},
                   {"metric": "accuracy", "min": 0.85}]}


@mc.step
def fit(data_ref: str, feedback_ref: str | None, C: float) -> object:
    frames = [mc.data.load(data_ref, format="pandas")]
    if feedback_ref is not None:
        frames.append(mc.data.load(feedback_ref, format="pandas"))
    frame = pd.concat(frames, ignore_index=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000))
    return model.fit(frame[FEATURES], frame["target"])


@mc.pipeline
def retrain(data_ref: str, feedback_ref: str | None, C: float = 1.0):  # type: ignore[no-untyped-def]
    """The retraining pipeline of the contract: data refs in, a fitted model out."""
    return fit(data_ref, feedback_ref, C)


PIPELINE = f"{__name__}:retrain"


def cancer() -> pd.DataFrame:
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    return frame[[*FEATURES, "target"]].sample(frac=1.0, random_state=0).reset_index(drop=True)


@dataclass
class Loop:
    client: mc.Client
    triggers: TriggerService
    traffic: pd.DataFrame  # the served rows, drifted, with their true labels
    request_ids: list[str]


@pytest.fixture
def loop(tmp_path: Path) -> Iterator[Loop]:
    """``cancer`` (training rows) and ``cancer.test`` (holdout); model ``cancer-clf`` v1, fitted
    on 25 rows only, serving deployment ``cancer``; 120 drifted rows served through the real app
    with their labels sent back as feedback."""
    settings = mc.Settings(home=tmp_path / ".mlcycle", prediction_log_uri=str(tmp_path / "logs"))
    client = mc.Client(settings=settings)
    data = cancer()
    train, test, traffic = data.iloc[:300], data.iloc[300:449], data.iloc[449:].copy()
    client.data.ingest("cancer", train)
    client.data.ingest("cancer.test", test)
    with client.start_run(experiment="cancer", log_system=False) as run:
        rows = client.data.load("cancer", format="pandas", run_id=run.run_id, context="train")
        weak = LogisticRegression(max_iter=1000).fit(rows[FEATURES].head(25),
                                                    rows["target"].head(25))
        info = run.log_model(weak, input_example=rows[FEATURES].head(5))
    client.register_model(info.model_uri, "cancer-clf")
    client.deployments.deploy("cancer", "models:/cancer-clf/1")
    # Production drifts: bigger, rougher tumours than in training.
    traffic["mean_radius"] *= 1.6
    traffic["mean_texture"] += 8.0
    ids = serve(client, tmp_path, traffic)
    triggers = TriggerService(client)
    yield Loop(client, triggers, traffic, ids)
    client.close()


def serve(client: mc.Client, tmp_path: Path, frame: pd.DataFrame) -> list[str]:
    """Send each row of *frame* as one /predict request to the deployment app and its label
    as feedback; returns the request ids."""
    def load(model: str, version: int):  # type: ignore[no-untyped-def]
        return client.load_model(f"models:/{model}/{version}")

    app = create_deployment_app(client.deployments, "cancer", load, settings=ServingSettings(
        poll_interval=0.05, report_interval=0.1, log_uri=str(tmp_path / "logs"),
        log_flush_interval=0.05))
    ids = []
    with TestClient(app) as http:
        for _ in range(200):
            if http.get("/v2/health/ready").status_code == 200:
                break
            time.sleep(0.05)
        for record in frame[FEATURES].to_dict(orient="records"):
            answer = http.post("/predict", json=[record])
            assert answer.status_code == 200, answer.text
            ids.append(answer.headers["x-request-id"])
        feedback = [{"request_id": rid, "label": int(label)}
                    for rid, label in zip(ids, frame["target"], strict=True)]
        assert http.post("/feedback", json=feedback).status_code in (200, 202, 204)
    return ids


def drift_alert(loop: Loop) -> mc.monitoring.MonitorRun:
    monitors = loop.client.monitors
    monitors.create("drift-watch", "cancer", {"checks": ["drift"], "window": "7d"})
    run = monitors.run("drift-watch")
    assert run.alert is not None and run.alert.status == "alert", run.result.details
    return run


def create(loop: Loop, name: str = "retrain", **fields: object) -> None:
    spec: dict[str, object] = {
        "kinds": ["drift"], "pipeline": PIPELINE, "dataset": "cancer", "target": "target",
        "evaluation_data": "cancer.test", "gates": GATES, "params": {"C": 1.0},
        "canary": {"steps": [10, 50]}, "cooldown": "1h"}
    loop.triggers.create(name, "cancer", {**spec, **fields})


# --- the loop -------------------------------------------------------------------------------


def test_drift_alert_retrains_on_feedback_and_starts_a_canary(loop: Loop) -> None:
    client = loop.client
    create(loop)
    monitor_run = drift_alert(loop)
    [run] = loop.triggers.on_monitor_run(monitor_run)

    assert run.status == "succeeded", run.reason
    assert run.cause["kind"] == "drift" and run.cause["alert_id"] == monitor_run.alert.alert_id  # type: ignore[union-attr]
    # newest data: the training rows and every production row that got a label
    assert run.data == {"dataset": "cancer@v1", "feedback": "cancer.feedback@v1"}
    feedback = client.data.get_version("cancer.feedback@v1")
    assert feedback.num_rows == len(loop.traffic)
    fed = client.data.load(feedback, format="pandas").sort_values("mean_radius")
    assert sorted(fed.columns) == sorted([*FEATURES, "target"])
    assert fed["target"].tolist() == \
        loop.traffic.sort_values("mean_radius")["target"].tolist()
    # the pipeline ran, tracked, on those refs
    assert run.pipeline_run_id is not None
    from mlcycle.client import open_pipeline_store

    pipeline_run = open_pipeline_store(client.service.store).get_pipeline_run(
        run.pipeline_run_id)
    assert pipeline_run.status == "finished"
    assert pipeline_run.params["feedback_ref"] == "cancer.feedback@v1"
    # registered with its lineage and a link back to the trigger run
    version = client.registry.get_version("cancer-clf", 2)
    assert (run.model, run.model_version) == ("cancer-clf", 2)
    assert version.run_id == run.training_run_id == pipeline_run.run_id
    assert version.tags["mlcycle.trigger_run"] == str(run.run_id)
    assert {f"{d.dataset}@{d.version}" for d in version.datasets} == \
        {"cancer@v1", "cancer.feedback@v1"}
    assert version.evaluation["passed"] is True
    assert version.evaluation["baseline"] == "models:/cancer-clf/1"
    # the gates passed, so a canary of v2 is rolling out, started by the trigger run
    assert run.gates["passed"] is True and "gates passed" in str(run.gates["summary"])
    deployment = client.deployments.get("cancer")
    assert (deployment.stable_version, deployment.candidate_version, deployment.phase) == \
        (1, 2, "canary")
    assert run.rollout == deployment.rollout
    event = client.deployments.history("cancer")[0]
    assert event.kind == "rollout_started" and event.actor == f"trigger-run:{run.run_id}"

    # the lineage of a served prediction, and of the retrained version
    chain = trace(client, loop.request_ids[0])
    assert chain.prediction is not None and chain.prediction["deployment"] == "cancer"
    assert chain.model["uri"] == "models:/cancer-clf/1"
    assert [d["ref"] for d in chain.datasets] == ["cancer@v1"]
    assert chain.run is not None and chain.trigger_run is None
    made = trace(client, "models:/cancer-clf/2")
    assert made.trigger_run is not None and made.trigger_run["run_id"] == run.run_id
    assert made.pipeline_run is not None
    assert made.pipeline_run["pipeline_run_id"] == run.pipeline_run_id
    assert made.alert is not None and made.alert["alert_id"] == run.cause["alert_id"]
    assert made.monitor_result is not None
    assert made.monitor_result["checks"]["drift"]["status"] == "alert"
    assert made.missing == []

    # Once v2 is served, drift compares with what v2 learned from: the training rows and the
    # production rows the retraining added (their stored profiles merged, no rows read).
    monitors = client.monitors
    monitor = monitors.get("drift-watch")
    assert monitors.reference_of(monitor) == "cancer@v1"
    client.deployments.promote("cancer", reason="test")
    ref, profile = monitors.reference_profile(monitor)
    assert ref == "cancer@v1 + cancer.feedback@v1"
    assert profile is not None
    assert profile.num_rows == client.data.get_version("cancer@v1").num_rows + feedback.num_rows
    assert monitors.run("drift-watch").result.details["checks"]["drift"]["reference"] == ref


def test_the_retrained_model_is_promoted_by_the_canary_under_served_traffic(
        loop: Loop, tmp_path: Path) -> None:
    """The loop closed: drift alert → retraining → gates → a canary that the serving worker's
    controller steps through and promotes while traffic flows."""
    client = loop.client
    create(loop, canary={"steps": [50, 100], "min_requests": 15})
    [run] = loop.triggers.on_monitor_run(drift_alert(loop))
    assert run.status == "succeeded", run.reason
    assert client.deployments.get("cancer").phase == "canary"

    def load(model: str, version: int):  # type: ignore[no-untyped-def]
        return client.load_model(f"models:/{model}/{version}")

    app = create_deployment_app(client.deployments, "cancer", load, settings=ServingSettings(
        poll_interval=0.02, report_interval=0.05, log_uri=str(tmp_path / "logs")))
    rows = loop.traffic[FEATURES].to_dict(orient="records")
    answered: dict[str, int] = {}
    with TestClient(app) as http:
        for _ in range(400):
            if http.get("/v2/health/ready").status_code == 200:
                break
            time.sleep(0.05)
        for i in range(2000):  # bounded: the controller needs ~45 candidate requests
            answer = http.post("/predict", json=[rows[i % len(rows)]])
            assert answer.status_code == 200, answer.text
            version = answer.headers["x-model-version"]
            answered[version] = answered.get(version, 0) + 1
            deployment = client.deployments.get("cancer")
            if deployment.phase == "stable" and deployment.stable_version == 2:
                break
            time.sleep(0.002)
    deployment = client.deployments.get("cancer")
    assert (deployment.stable_version, deployment.previous_version, deployment.phase) == \
        (2, 1, "stable")
    assert answered.get("2", 0) >= 15 and answered.get("1", 0) > 0  # both served meanwhile
    kinds = [(e.kind, e.actor) for e in client.deployments.history("cancer")]
    assert kinds[0] == ("promoted", "controller")
    assert ("step", "controller") in kinds
    assert ("rollout_started", f"trigger-run:{run.run_id}") in kinds


def test_failed_gates_reject_and_leave_production_alone(loop: Loop) -> None:
    create(loop, gates={"gates": [{"metric": "accuracy", "min": 0.999}]})
    [run] = loop.triggers.on_monitor_run(drift_alert(loop))
    assert run.status == "rejected"
    assert "accuracy" in run.reason and "production is untouched" in run.reason
    assert run.gates["passed"] is False and len(run.gates["failed"]) == 1  # type: ignore[arg-type]
    deployment = loop.client.deployments.get("cancer")
    assert (deployment.stable_version, deployment.candidate_version) == (1, None)
    assert loop.client.registry.get_version("cancer-clf", 2).evaluation["passed"] is False


def test_cool_down_and_one_at_a_time_are_recorded_as_skipped(loop: Loop) -> None:
    now = [time.time()]
    loop.triggers.clock = lambda: now[0]
    create(loop, gates={"gates": [{"metric": "accuracy", "min": 0.999}]}, kinds=["quality"])
    first = loop.triggers.fire("retrain")
    assert first.status == "rejected" and first.kind == "manual"
    now[0] += 60
    again = loop.triggers.fire("retrain", {"kind": "quality"})
    assert again.status == "skipped" and "cool-down" in again.reason
    # another trigger of the deployment is mid-retraining: a second firing is refused
    create(loop, "nightly", kinds=["schedule"], schedule="0 3 * * *", cooldown=0)
    busy = loop.triggers.store.start_run(TriggerRun(
        run_id=0, trigger="nightly", deployment="", status="running",
        started_at=loop.triggers._now(), cause={"kind": "manual"}), cooldown_s=0)
    assert busy.status == "running"
    now[0] += 7200
    refused = loop.triggers.fire("retrain")
    assert refused.status == "skipped"
    assert f"run {busy.run_id} of trigger 'nightly' is still retraining" in refused.reason
    assert [r.status for r in loop.triggers.runs("retrain")] == \
        ["skipped", "skipped", "rejected"]
    # one retraining made one version
    assert sorted(v.version for v in loop.client.registry.list_versions("cancer-clf")) == [1, 2]


def test_schedule_and_new_data_are_due_by_the_clock(loop: Loop) -> None:
    create(loop, "nightly", kinds=["schedule", "new_data"], schedule="0 3 * * *",
           gates={"gates": [{"metric": "accuracy", "min": 0.999}]}, cooldown=0)
    trig = loop.triggers.get("nightly")
    assert trig.seen_version == 1  # existing data does not fire
    at = croniter("0 3 * * *", trig.created_at).get_next(type(trig.created_at))
    assert loop.triggers.due(at - timedelta(minutes=1)) == []
    [(due, cause)] = loop.triggers.due(at)
    assert due.name == "nightly" and cause == {"kind": "schedule", "time": at.isoformat()}
    [run] = loop.triggers.run_due(at + timedelta(minutes=2))
    assert run.kind == "schedule" and run.status == "rejected"
    assert loop.triggers.due(at + timedelta(hours=1)) == []  # that 03:00 is done
    loop.client.data.ingest("cancer", cancer().iloc[:320])
    [(_, cause)] = loop.triggers.due(at + timedelta(hours=1))
    assert cause == {"kind": "new_data", "dataset": "cancer", "version": 2}
    [run] = loop.triggers.run_due(at + timedelta(hours=1))
    assert run.data["dataset"] == "cancer@v2"
    assert loop.triggers.get("nightly").seen_version == 2
    assert loop.triggers.due(at + timedelta(hours=2)) == []


def test_the_monitor_scheduler_fires_triggers_after_an_alert_and_by_the_clock(
        loop: Loop) -> None:
    from mlcycle.monitoring.scheduler import MonitorScheduler

    create(loop, kinds=["drift", "new_data"],
           gates={"gates": [{"metric": "accuracy", "min": 0.999}]}, cooldown=0)
    loop.client.monitors.create("drift-watch", "cancer", {"checks": ["drift"], "window": "7d"})
    scheduler = MonitorScheduler(loop.client.monitors, reactions=loop.triggers)
    [monitor_run] = asyncio.run(scheduler.tick())
    assert monitor_run.alert is not None
    [run] = loop.triggers.runs("retrain")
    assert run.cause["alert_id"] == monitor_run.alert.alert_id and run.status == "rejected"
    loop.client.data.ingest("cancer", cancer().iloc[:310])
    assert asyncio.run(scheduler.tick()) == []  # the monitor is not due again yet
    newest = loop.triggers.runs("retrain")[0]
    assert newest.cause == {"kind": "new_data", "dataset": "cancer", "version": 2}


def test_bad_specs_name_their_field(loop: Loop) -> None:
    for fields, field in (({"schedule": "0 25 * * *", "kinds": ["schedule"]}, "schedule"),
                          ({"gates": None}, "gates"), ({"cooldown": "soon"}, "cooldown"),
                          ({"pipleine": "x:y"}, "pipleine"), ({"kinds": ["vibes"]}, "kinds")):
        with pytest.raises(mc.errors.InvalidInputError) as err:
            create(loop, **fields)
        assert err.value.details["field"] == field
    assert loop.triggers.list() == []


# --- the CLI --------------------------------------------------------------------------------


def test_cli_creates_lists_fires_shows_runs_and_lineage(loop: Loop, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from mlcycle.cli.main import app

    monkeypatch.setenv("MLCYCLE_HOME", str(tmp_path / ".mlcycle"))
    monkeypatch.setenv("MLCYCLE_PREDICTION_LOG_URI", str(tmp_path / "logs"))
    runner = CliRunner()

    def cli(*args: str) -> str:
        out = runner.invoke(app, list(args))
        assert out.exit_code == 0, out.output
        return out.output

    spec = tmp_path / "trigger.yaml"
    spec.write_text(f"kinds: [quality]\npipeline: {PIPELINE}\ndataset: cancer\n"
                    "evaluation_data: cancer.test\ncooldown: 1h\n"
                    "gates:\n  gates:\n    - {metric: accuracy, min: 0.999}\n")
    assert "retrain" in cli("trigger", "create", "retrain", "--deployment", "cancer",
                            "--spec", str(spec))
    listed = json.loads(cli("trigger", "list", "--json"))
    assert [t["name"] for t in listed] == ["retrain"]
    assert "rejected" in cli("trigger", "fire", "retrain")
    runs = json.loads(cli("trigger", "runs", "retrain", "--json"))
    assert [r["status"] for r in runs] == ["rejected"]
    bad = runner.invoke(app, ["trigger", "create", "x", "--deployment", "cancer", "--spec",
                              str(spec), "--cooldown", "soon"])
    assert bad.exit_code != 0 and "cooldown" in bad.output
    tree = cli("lineage", loop.request_ids[0])
    assert "models:/cancer-clf/1" in tree and "cancer@v1" in tree
    chain = json.loads(cli("lineage", "models:/cancer-clf/2", "--json"))
    assert chain["trigger_run"]["trigger"] == "retrain"
    assert {d["ref"] for d in chain["datasets"]} == {"cancer@v1", "cancer.feedback@v1"}
