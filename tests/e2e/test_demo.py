from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

import mlcycle as mc
from mlcycle.client import open_pipeline_store
from mlcycle.config import Settings


def _demo(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlcycle.demo", "--fast"], cwd=cwd, capture_output=True,
        text=True, timeout=300, env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    )


def test_demo_fast_runs_the_lifecycle_and_closes_the_loop(tmp_path: Path) -> None:
    out = _demo(tmp_path)
    assert out.returncode == 0, out.stderr
    assert "sweep: 4 trials" in out.stdout and "gates" in out.stdout
    assert "Warning" not in out.stderr, out.stderr
    client = mc.Client(settings=Settings(home=tmp_path / ".mlcycle"))
    runs = client.search_runs(experiments=["breast-cancer"]).items
    demo = next(r for r in runs if r.name == "demo")
    sweep = next(r for r in runs if r.name == "sweep")
    trials = [r for r in runs if r.parent_run_id == sweep.run_id]
    assert sweep.parent_run_id == demo.run_id and len(trials) == 4
    assert all("val_auc" in t.metrics and "val_loss" in t.metrics for t in trials)
    assert client.get_run(demo.tags["best_run"]).parent_run_id == sweep.run_id

    # The data went through the data stage, and the demo run records what it read and made.
    data = client.data
    raw = data.get_version("breast-cancer@v1")
    assert raw.num_rows == 569 and raw.profile_digest
    train = data.get_version("breast-cancer.train")
    assert train.parents == ("breast-cancer@v1",) and train.code_hash
    inputs = {(i.dataset, i.version) for i in client.get_run(demo.run_id).inputs}
    assert {("breast-cancer", "v1"), ("breast-cancer.train", "v1"),
            ("breast-cancer.test", "v1")} <= inputs
    assert data.get_dataset("breast-cancer").segments.keys() == {"large", "small"}

    # The winner was registered with its lineage, evaluated with gates, and promoted.
    version = client.registry.get_version("breast-cancer-clf", 1)
    assert version.run_id == demo.run_id and version.flavor == "sklearn"
    assert ("breast-cancer", "v1") in {(d.dataset, d.version) for d in version.datasets}
    assert version.evaluation["passed"] is True
    assert client.registry.resolve("models:/breast-cancer-clf@production").version == 1
    model = client.load_model("models:/breast-cancer-clf@production")
    test = data.load("breast-cancer.test", format="pandas")
    assert (model.predict(test.drop(columns="target")) == test["target"]).mean() > 0.9

    # The production version was deployed, served on loopback, sent the test rows as traffic
    # and their labels as feedback; the worker counted them and the prediction log holds them.
    said = " ".join(out.stdout.split())  # rich wraps lines at the terminal's width
    assert "served: deployment breast-cancer (v1)" in said
    assert "142 requests, 0 errors" in said and "142 labels sent back" in said
    logs = tmp_path / ".mlcycle" / "artifacts" / "logs"
    logged = pd.read_parquet(logs / "predictions" / "deployment=breast-cancer")
    assert "input_mean radius" in logged.columns
    assert (logged["version"] == "1").sum() >= len(test)

    # The closed loop: the monitor saw normal traffic (ok), then drifted traffic (alert); the
    # trigger retrained on the training split plus the labelled production rows, the gates
    # passed against v1, and the serving worker's controller promoted v2 through a canary.
    monitors = client.monitors
    statuses = [r.status for r in monitors.results("breast-cancer-drift")]
    assert sorted(statuses) == ["alert", "ok"], statuses
    drift = next(r for r in monitors.results("breast-cancer-drift") if r.status == "alert")
    drifted = {k for k, v in drift.metrics.items() if k.startswith("drift.score.")}
    assert "drift.score.mean radius" in drifted
    from mlcycle.retrain import TriggerService

    [retrained] = TriggerService(client).runs("breast-cancer-retrain")
    assert retrained.status == "succeeded" and retrained.model_version == 2, retrained.reason
    assert retrained.data["feedback"] == "breast-cancer.train.feedback@v1"
    assert client.registry.get_version("breast-cancer-clf", 2).evaluation["passed"] is True
    deployment = client.deployments.get("breast-cancer")
    assert (deployment.stable_version, deployment.previous_version, deployment.phase) == \
        (2, 1, "stable")
    events = [(e.kind, e.actor) for e in client.deployments.history("breast-cancer")]
    assert events[0] == ("promoted", "controller")
    assert ("rollout_started", f"trigger-run:{retrained.run_id}") in events
    assert "canary │ promoted" in said.replace("  ", " ") or "promoted (accuracy" in said
    assert not client.deployments.status("breast-cancer").live_workers  # it said goodbye

    # A second run: the data is unchanged and the pipeline's steps come from the cache.
    again = _demo(tmp_path)
    assert again.returncode == 0, again.stderr
    assert data.get_version("breast-cancer").version == 1
    store = open_pipeline_store(client.service.store)
    runs_ = store.list_pipeline_runs(pipeline="train_final")
    assert len(runs_) == 2
    second = max(runs_, key=lambda r: r.created_at)
    assert all(s.cache_hit for s in store.list_step_runs(second.pipeline_run_id))
    # v3 (the re-registered sweep winner) went live blue-green, and the loop ran again: v4.
    assert client.registry.get_version("breast-cancer-clf", 3).evaluation["passed"] is True
    assert client.deployments.get("breast-cancer").stable_version == 4
    kinds = [e.kind for e in client.deployments.history("breast-cancer")]
    assert kinds[0] == "promoted" and "switched" in kinds[:6]
    client.close()
