from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlcycle as mc
from mlcycle.config import Settings


def test_demo_fast_tracks_real_runs(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mlcycle.demo", "--fast"], cwd=tmp_path, capture_output=True,
        text=True, timeout=180, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr
    assert "best:" in out.stdout and "test_auc" in out.stdout
    client = mc.Client(settings=Settings(home=tmp_path / ".mlcycle"))
    runs = client.search_runs(experiments=["breast-cancer"]).items
    assert len(runs) == 4  # the sweep and its three candidates
    sweep = next(r for r in runs if r.name == "sweep")
    best = client.get_run(sweep.tags["best_run"])
    assert best.parent_run_id == sweep.run_id
    assert best.metrics["test_auc"] == sweep.metrics["best_test_auc"]
    assert [a.path for a in client.list_artifacts(best.run_id, "model")] == ["model/model.pkl"]
    # The data went through the data stage, and the sweep records what it read and made.
    data = client.data
    raw = data.get_version("breast-cancer@v1")
    assert raw.num_rows == 569 and raw.profile_digest
    train = data.get_version("breast-cancer.train")
    assert train.parents == ("breast-cancer@v1",) and train.code_hash
    inputs = {(i.dataset, i.version) for i in client.get_run(sweep.run_id).inputs}
    assert {("breast-cancer", "v1"), ("breast-cancer.train", "v1"),
            ("breast-cancer.test", "v1")} <= inputs
    assert data.get_dataset("breast-cancer").segments.keys() == {"large", "small"}
