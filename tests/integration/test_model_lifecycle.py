"""A model from training to ``models:/name@alias``: logged with its signature and hashes,
registered with the run's lineage, resolved by alias on every backend, refused when tampered."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mlcycle as mc
from mlcycle.errors import ModelAliasNotFound, ModelIntegrityError, SignatureMismatch


@pytest.fixture(scope="module")
def data():
    frame = load_breast_cancer(as_frame=True).frame
    return frame.drop(columns="target"), frame["target"]


def test_log_register_alias_and_load(backend: mc.Client, data) -> None:
    X, y = data
    version = backend.data.ingest("cancer", X.assign(target=y))
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    with backend.start_run(experiment="cancer", log_system=False) as run:
        backend.data.load(version.ref, run_id=run.run_id)
        info = run.log_model(model, input_example=X.head(5))
    mv = backend.register_model(info.model_uri, "cancer-clf")
    assert (mv.version, mv.flavor, mv.run_id) == (1, "sklearn", run.run_id)
    assert mv.manifest_digest == info.manifest_digest
    assert [(d.dataset, d.version) for d in mv.datasets] == [("cancer", "v1")]
    backend.registry.set_alias("cancer-clf", "production", 1)
    loaded = backend.load_model("models:/cancer-clf@production")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    with pytest.raises(SignatureMismatch):
        loaded.predict(X.drop(columns=["mean radius"]))
    with pytest.raises(ModelAliasNotFound):
        backend.load_model("models:/cancer-clf@staging")


def test_a_tampered_cached_model_is_fetched_again_and_a_bad_digest_refused(
        tmp_path: Path, data) -> None:
    X, y = data
    client = mc.Client(settings=mc.Settings(home=tmp_path / ".mlcycle"))
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    with client.start_run(experiment="t", log_system=False) as run:
        info = run.log_model(model, input_example=X.head(3))
    client.register_model(info.model_uri, "clf")
    client.load_model("models:/clf/1")  # fills the local cache
    cached = next((tmp_path / ".mlcycle" / "cache" / "models").rglob("model.pkl"))
    os.chmod(cached, 0o644)
    cached.write_bytes(b"not the model")
    again = client.load_model("models:/clf/1")  # verified, found changed, downloaded anew
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    from mlcycle.models import load_model

    with pytest.raises(ModelIntegrityError):
        load_model(info.model_uri, client=client, expected_digest="0" * 64)
    client.close()


def test_sdk_functions(data) -> None:
    X, y = data
    with mc.start_run(experiment="sdk", log_system=False):
        info = mc.log_model(make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y),
                            input_example=X.head(2))
    mv = mc.register_model(info.model_uri, "sdk-model")
    assert mc.load_model(f"models:/sdk-model/{mv.version}").predict(X.head(3)).shape == (3,)


def test_evaluate_against_production_with_gates_and_segments(tmp_path: Path, data,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    from typer.testing import CliRunner

    from mlcycle.cli import output
    from mlcycle.cli.main import app

    X, y = data
    uri = f"sqlite:///{tmp_path}/m.db"
    monkeypatch.setenv("MLCYCLE_ARTIFACT_URI", str(tmp_path / "artifacts"))
    client = mc.Client(uri)
    holdout = client.data.ingest("holdout", X.assign(target=y))
    client.data.set_segments("holdout", {"large": '"mean radius" >= 15'})
    strong = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    weak = make_pipeline(StandardScaler(), LogisticRegression(C=1e-4)).fit(X[["mean texture"]], y)
    for name, model, example in (("strong", strong, X.head(3)),
                                 ("weak", weak, X[["mean texture"]].head(3))):
        with client.start_run(experiment="eval", name=name, log_system=False) as run:
            info = run.log_model(model, input_example=example)
        client.register_model(info.model_uri, "clf")
    client.registry.set_alias("clf", "production", 1)
    gates = ("gates:\n  - {metric: roc_auc, max_regression: 0.01}\n"
             "  - {metric: accuracy, min: 0.5}\n")
    result, report = client.evaluate_model("models:/clf/2", holdout.ref, target="target",
                                           gates=gates)
    assert result.baseline_metrics is not None and result.deltas["roc_auc"] < -0.05
    assert result.find_segment("large").rows == int((X["mean radius"] >= 15).sum())
    assert not report.passed and "roc_auc" in report.summary()
    stored = client.registry.get_version("clf", 2).evaluation
    assert stored["passed"] is False and stored["data"] == "holdout@v1"
    client.close()

    monkeypatch.setattr(output.console, "width", 200)
    (tmp_path / "gates.yaml").write_text(gates)
    out = CliRunner().invoke(app, ["--tracking-uri", uri, "models", "evaluate", "models:/clf/1",
                                   "--data", "holdout@v1", "--target", "target",
                                   "--gates", str(tmp_path / "gates.yaml")])
    assert out.exit_code == 0, out.output  # production compared with itself: no regression
    assert "roc_auc" in out.output
    failed = CliRunner().invoke(app, ["--tracking-uri", uri, "models", "evaluate",
                                      "models:/clf/2", "--data", "holdout@v1", "--target",
                                      "target", "--gates", str(tmp_path / "gates.yaml")])
    assert failed.exit_code == 1, failed.output
