from __future__ import annotations

import pickle

import pytest
from sklearn.datasets import load_diabetes, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mlcycle as mc


@pytest.fixture
def autolog():  # type: ignore[no-untyped-def]
    mc.autolog()
    yield
    mc.autolog(disable=True)


def test_fit_inside_a_run_logs_params_metrics_and_model(autolog) -> None:  # type: ignore[no-untyped-def]
    X, y = load_iris(return_X_y=True)
    with mc.start_run(experiment="iris", log_system=False) as run:
        model = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=5,
                                                                       random_state=0))
        model.fit(X, y)
    got = mc.get_run(run.run_id)
    assert got.params["randomforestclassifier__n_estimators"] == "5"
    assert got.params["steps"]  # nested estimators logged by name
    assert 0.9 < got.metrics["training_accuracy"] <= 1.0
    assert {"training_f1", "training_precision", "training_recall"} <= set(got.metrics)
    assert got.tags["mlcycle.autolog.estimator"] == "sklearn.pipeline.Pipeline"
    blob = mc.get_client().read_artifact(run.run_id, "model/model.pkl")
    assert (pickle.loads(blob).predict(X) == model.predict(X)).all()
    assert len(mc.search_runs()) == 1  # the pipeline's inner fits log nothing of their own


def test_fit_outside_a_run_makes_one(autolog) -> None:  # type: ignore[no-untyped-def]
    Ridge().fit(*load_diabetes(return_X_y=True))
    [run] = mc.search_runs().items
    assert run.name == "Ridge" and run.status is mc.RunStatus.FINISHED
    assert {"training_r2", "training_rmse", "training_mae"} <= set(run.metrics)


def test_disable_restores_fit() -> None:
    mc.autolog()
    mc.autolog(disable=True)
    Ridge().fit(*load_diabetes(return_X_y=True))
    assert len(mc.search_runs()) == 0
