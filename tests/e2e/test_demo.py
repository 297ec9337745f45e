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


def test_demo_fast_runs_the_lifecycle_so_far(tmp_path: Path) -> None:
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
    assert "served: deployment breast-cancer (v1)" in out.stdout
    status = client.deployments.status("breast-cancer")
    assert status.deployment.stable_version == 1 and status.deployment.phase == "stable"
    assert status.stats[1].requests == len(test) and status.stats[1].errors == 0
    assert status.stats[1].feedback == len(test) and status.stats[1].accuracy > 0.9
    assert not status.live_workers  # the server said goodbye when the demo stopped it
    logs = tmp_path / ".mlcycle" / "artifacts" / "logs"
    logged = pd.read_parquet(logs / "predictions" / "deployment=breast-cancer")
    assert len(logged) == len(test) and set(logged["version"]) == {"1"}
    assert "input_mean radius" in logged.columns

    # A second run: the data is unchanged and the pipeline's steps come from the cache.
    again = _demo(tmp_path)
    assert again.returncode == 0, again.stderr
    assert data.get_version("breast-cancer").version == 1
    store = open_pipeline_store(client.service.store)
    runs_ = store.list_pipeline_runs()
    assert len(runs_) == 2
    second = max(runs_, key=lambda r: r.created_at)
    assert all(s.cache_hit for s in store.list_step_runs(second.pipeline_run_id))
    assert client.registry.get_version("breast-cancer-clf", 2).evaluation["passed"] is True
    # ... and the new production version replaced the first blue-green, under the controller.
    assert client.deployments.get("breast-cancer").stable_version == 2
    kinds = [e.kind for e in client.deployments.history("breast-cancer")]
    assert kinds[:2] == ["switched", "rollout_started"]
    client.close()
