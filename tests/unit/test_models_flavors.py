"""Every flavor passes ``check_flavor``: save, load, equal predictions, signature enforced,
tampering refused before anything is deserialised."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from mlcycle.datasets.prepare import Encode, Impute, PrepareSpec, Scale
from mlcycle.errors import InvalidInputError
from mlcycle.models import (
    ModelContext,
    PythonModel,
    TensorSpec,
    detect_flavor,
    load_model,
    save_model,
    sklearn_to_onnx,
)
from mlcycle.testing.flavors import check_flavor


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture(scope="module")
def mixed() -> tuple[pd.DataFrame, np.ndarray]:
    """Numbers with nulls and a category: what the data stage's preparation handles."""
    rng = np.random.default_rng(0)
    n = 120
    age = rng.normal(40, 10, n)
    age[::7] = np.nan
    frame = pd.DataFrame({
        "age": age,
        "income": rng.lognormal(10, 1, n),
        "city": rng.choice(["Oslo", "Lima", "Pune"], n),
    })
    y = ((np.nan_to_num(age, nan=40) > 40) ^ (frame["city"] == "Lima")).to_numpy().astype(int)
    return frame, y


# --- scikit-learn -------------------------------------------------------------------------------


def test_sklearn_pipeline(cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = cancer
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    info = check_flavor("sklearn", model, X.head(30))
    assert info.requirements[:2] == (
        f"scikit-learn=={_version('scikit-learn')}", f"cloudpickle=={_version('cloudpickle')}")
    assert info.signature is not None and info.signature.input_names == list(X.columns)


def test_sklearn_with_the_data_stages_preparation(mixed: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = mixed
    spec = PrepareSpec.from_dict({"features": [
        {"op": "impute", "columns": ["age"], "strategy": "median"},
        {"op": "scale", "columns": ["age", "income"]},
        {"op": "encode", "columns": ["city"], "method": "onehot"},
    ]})
    assert isinstance(spec.features[0], Impute) and isinstance(spec.features[2], Encode)
    assert isinstance(spec.features[1], Scale)
    pipeline = spec.feature_transformer()
    pipeline.steps.append(("model", LogisticRegression()))
    pipeline.fit(X, y)
    info = check_flavor("sklearn", pipeline, X.head(25))
    sig = info.signature
    assert sig is not None and isinstance(sig.inputs, tuple)
    types = {c.name: (c.type, c.nullable) for c in sig.inputs}
    assert types == {"age": ("float64", True), "income": ("float64", False),
                     "city": ("string", False)}
    # the preparation transformer alone is a model too: its output is the prediction
    check_flavor("sklearn", spec.feature_transformer().fit(X), X.head(10))


def test_sklearn_lambda_is_pickled_by_value() -> None:
    X = np.arange(20, dtype=float).reshape(10, 2)
    model = make_pipeline(FunctionTransformer(lambda a: a * 2), LinearRegression())
    model.fit(X, X.sum(axis=1))
    info = check_flavor("sklearn", model, X)
    assert info.signature is not None
    assert info.signature.to_dict()["inputs"] == {"tensor": {"dtype": "float64",
                                                             "shape": [-1, 2]}}


def test_sklearn_requirements_follow_what_is_pickled(tmp_path: Path) -> None:
    """A scikit-learn pipeline ending in an XGBoost model needs xgboost where it is loaded."""
    import xgboost as xgb

    X = np.random.default_rng(0).random((40, 3))
    pipe = make_pipeline(StandardScaler(), xgb.XGBRegressor(n_estimators=3)).fit(X, X[:, 0])
    assert detect_flavor(pipe) == "sklearn"
    info = save_model(pipe, tmp_path / "m", input_example=X[:3])
    assert f"xgboost=={_version('xgboost')}" in info.requirements
    assert (tmp_path / "m" / "requirements.txt").read_text().splitlines() == list(
        info.requirements)


def test_unfitted_or_class_instead_of_model(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="LogisticRegression is not fitted"):
        save_model(LogisticRegression(), tmp_path / "a")
    with pytest.raises(InvalidInputError, match="pass a fitted instance"):
        save_model(LogisticRegression, tmp_path / "b")


def test_sklearn_polars_example(cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = cancer
    frame = pl.from_pandas(X)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, y)
    # a polars example: the model gets polars frames, whatever the caller passes
    info = check_flavor("sklearn", model, frame.head(20))
    assert info.signature is not None and info.signature.input_format == "polars"


# --- XGBoost and LightGBM -----------------------------------------------------------------------


def test_xgboost_classifier_and_booster(cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    import xgboost as xgb

    X, y = cancer
    clf = xgb.XGBClassifier(n_estimators=8, max_depth=3).fit(X, y)
    info = check_flavor("xgboost", clf, X.head(40))
    assert info.flavor_options["format"] == "ubj"
    assert not any(name.endswith(".pkl") for name in info.files)
    booster = xgb.train({"max_depth": 2}, xgb.DMatrix(X.to_numpy(), label=y), 5)
    check_flavor("xgboost", booster, X.to_numpy()[:30])


def test_lightgbm_classifier_regressor_and_categoricals(
        mixed: tuple[pd.DataFrame, np.ndarray]) -> None:
    import lightgbm as lgb

    X, y = mixed
    X = X.assign(city=X["city"].astype("category"))
    clf = lgb.LGBMClassifier(n_estimators=10, min_child_samples=5, verbose=-1).fit(X, y)
    info = check_flavor("lightgbm", clf, X.head(40))
    assert info.flavor_options["classes"] == [0, 1]
    multi = np.array(["a", "b", "c"])[np.arange(len(X)) % 3]
    clf3 = lgb.LGBMClassifier(n_estimators=5, min_child_samples=5, verbose=-1).fit(X, multi)
    check_flavor("lightgbm", clf3, X.head(30))
    reg = lgb.LGBMRegressor(n_estimators=5, min_child_samples=5, verbose=-1).fit(
        X, X["income"].to_numpy())
    check_flavor("lightgbm", reg, X.head(30))


# --- PyTorch ------------------------------------------------------------------------------------


class TinyNet(torch.nn.Module):
    """Importable by reference (``<this module>.TinyNet``), as the pytorch flavor needs."""

    def __init__(self, n_in: int, hidden: int = 4) -> None:
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(n_in, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2))

    def forward(self, x: Any) -> Any:
        return self.layers(x)


def _torch_net() -> Any:
    torch.manual_seed(0)
    return TinyNet(n_in=30, hidden=8)


def test_pytorch_state_dict_on_cpu(tmp_path: Path,
                                   cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    X, _ = cancer
    net = _torch_net()
    example = X.to_numpy(dtype=np.float32)[:16]
    info = check_flavor("pytorch", net, example, device="cpu",
                        flavor_options={"init_kwargs": {"n_in": 30, "hidden": 8}})
    assert info.flavor_options["class"] == [__name__, "TinyNet"]
    assert info.signature is not None and info.signature.outputs is not None
    assert info.signature.outputs == TensorSpec("float32", (-1, 2))
    save_model(net, tmp_path / "m", input_example=example,
               flavor_options={"init_kwargs": {"n_in": 30, "hidden": 8}})
    loaded = load_model(tmp_path / "m", device="cpu")
    assert str(next(loaded.raw.parameters()).device) == "cpu"
    assert loaded.raw.training is False  # loaded in eval mode
    # float64 input is converted to the float32 the model was saved with
    assert loaded.predict(example.astype(np.float64)).dtype == np.float32


def test_pytorch_gpu_when_present(cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no GPU here")
    X, _ = cancer
    check_flavor("pytorch", _torch_net(), X.to_numpy(dtype=np.float32)[:16], device="cuda",
                 flavor_options={"init_kwargs": {"n_in": 30, "hidden": 8}}, rtol=1e-4,
                 atol=1e-5)


def test_pytorch_wrong_init_kwargs_and_local_class_are_refused(tmp_path: Path) -> None:
    net = _torch_net()
    with pytest.raises(InvalidInputError, match="does not rebuild the model") as err:
        save_model(net, tmp_path / "a", flavor_options={"init_kwargs": {"n_in": 30}})
    assert err.value.details["field"] == "flavor_options.init_kwargs"

    class Local(torch.nn.Module):
        def forward(self, x: Any) -> Any:
            return x

    with pytest.raises(InvalidInputError, match="cannot be imported where the model is loaded"):
        save_model(Local(), tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# --- ONNX ---------------------------------------------------------------------------------------


def test_onnx_from_sklearn_frame_and_array(cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = cancer
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    proto = sklearn_to_onnx(pipe, X)
    assert detect_flavor(proto) == "onnx"
    info = check_flavor("onnx", proto, X.head(20))
    assert any(r.startswith("onnxruntime==") for r in info.requirements)
    arr = X.to_numpy(dtype=np.float32)
    proto_arr = sklearn_to_onnx(LogisticRegression(max_iter=3000).fit(arr, y), arr)
    check_flavor("onnx", proto_arr, arr[:20])


def test_onnx_predictions_match_sklearn(tmp_path: Path,
                                        cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = cancer
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    save_model(sklearn_to_onnx(pipe, X), tmp_path / "m", input_example=X.head(5))
    loaded = load_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(X), pipe.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), pipe.predict_proba(X), atol=1e-5)


# --- python -------------------------------------------------------------------------------------


class Threshold(PythonModel):
    """A rule with its threshold in an artifact file, read in ``load_context``."""

    def __init__(self) -> None:
        self.threshold = 0.0

    def load_context(self, context: ModelContext) -> None:
        self.threshold = json.loads(context.artifacts["config"].read_text())["threshold"]

    def predict(self, data: Any) -> Any:
        return (data["mean radius"] > self.threshold).to_numpy().astype(int)


def test_python_model_with_artifacts_and_load_context(
        tmp_path: Path, cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    X, _ = cancer
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"threshold": 15.0}))
    model = Threshold()
    model.load_context(ModelContext(tmp_path, {"config": config}))
    info = check_flavor("python", model, X.head(30),
                        flavor_options={"artifacts": {"config": str(config)}})
    assert "artifacts/config/config.json" in info.files
    assert info.requirements[0].startswith("cloudpickle==")
    save_model(Threshold(), tmp_path / "m", input_example=X.head(3),
               flavor_options={"artifacts": {"config": str(config)}})
    loaded = load_model(tmp_path / "m")
    assert loaded.raw.threshold == 15.0  # set by load_context, not pickled
    assert not hasattr(loaded, "predict_proba")


def test_python_plain_object_with_predict_proba(cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    X, _ = cancer

    class Rule:  # defined in a function: cloudpickle stores the class by value
        def predict(self, data: Any) -> Any:
            return (data["mean area"] > 700).to_numpy()

        def predict_proba(self, data: Any) -> Any:
            p = (data["mean area"] / 2500).clip(0, 1).to_numpy()
            return np.column_stack([1 - p, p])

    assert detect_flavor(Rule()) == "python"
    check_flavor("python", Rule(), X.head(20))


# --- detection ----------------------------------------------------------------------------------


def test_detection(cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    import lightgbm as lgb
    import xgboost as xgb

    assert detect_flavor(LogisticRegression()) == "sklearn"
    assert detect_flavor(xgb.XGBRegressor()) == "xgboost"  # before sklearn: it subclasses it
    assert detect_flavor(lgb.LGBMRegressor()) == "lightgbm"
    assert detect_flavor(_torch_net()) == "pytorch"
    with pytest.raises(InvalidInputError, match=r"no flavor saves a builtins\.dict") as err:
        detect_flavor({"a": 1})
    assert err.value.details["field"] == "model"
    with pytest.raises(InvalidInputError, match="flavor must be one of"):
        save_model(LogisticRegression(), "x", flavor="scikit")


def _version(dist: str) -> str:
    from importlib import metadata

    return metadata.version(dist)


def test_sklearn_estimators_get_matching_frames_as_arrays_without_a_warning() -> None:
    import warnings

    from sklearn.compose import make_column_transformer
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mlcycle.models.flavors.sklearn import SklearnFlavor

    X, y = load_iris(return_X_y=True, as_frame=True)
    plain = LogisticRegression(max_iter=500).fit(X, y)
    routed = make_pipeline(make_column_transformer((StandardScaler(), list(X.columns[::-1]))),
                           LogisticRegression(max_iter=500)).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for native in (plain, routed):
            predictor = SklearnFlavor().predictor(native, {})
            assert predictor.predict_proba is not None
            assert (predictor.predict(X) == native.predict(X)).all()
            np.testing.assert_allclose(predictor.predict_proba(X), native.predict_proba(X))
    # Columns in another order are not the fitted features: the frame goes as it is, and
    # scikit-learn says what is wrong.
    with pytest.raises(ValueError, match="feature names"):
        SklearnFlavor().predictor(plain, {}).predict(X[X.columns[::-1]])
