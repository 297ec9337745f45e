"""Train the serving bench's model and save it in one tool's format (run by that tool's venv).

Usage: ``python _serving_model.py FORMAT OUT_DIR`` with FORMAT one of ``mlcycle`` (logged and
registered as versions 1-3 of ``cancer``, ``@production`` on 1, in ``OUT_DIR/.mlcycle``), ``mlflow``
(``mlflow.sklearn.save_model`` to ``OUT_DIR/model``) or ``pickle`` (``OUT_DIR/model.pkl``, for
BentoML's service and the bare FastAPI endpoint). Every venv trains the same estimator on the
same data with the same deterministic solver, so each format holds the same model without
unpickling across scikit-learn versions; the orchestrator checks that every server answers the
reference predictions printed here. Prints one JSON line.
"""

from __future__ import annotations

import contextlib
import json
import pickle
import sys
import warnings
from pathlib import Path

import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

MODEL_NAME = "cancer"
CHECK_ROWS = 20


def dataset() -> tuple[pd.DataFrame, pd.Series]:
    """Breast cancer (569 rows, 30 numeric features), bundled with scikit-learn."""
    data = load_breast_cancer(as_frame=True)
    return data.data, data.target


def train() -> object:
    """Logistic regression on the raw features (lbfgs converges in ~2,300 iterations: no
    warning, and deterministic for a given scikit-learn)."""
    X, y = dataset()
    return LogisticRegression(max_iter=10_000).fit(X, y)


def installed_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("mlcycle", "mlflow", "bentoml", "fastapi", "uvicorn", "scikit-learn"):
        with contextlib.suppress(PackageNotFoundError):
            out[dist] = version(dist)
    return out


def main() -> None:
    fmt, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    X, _ = dataset()
    model = train()
    info: dict[str, object] = {"format": fmt}
    if fmt == "mlcycle":
        import mlcycle as mc

        client = mc.Client(settings=mc.Settings(home=out / ".mlcycle"))
        # Three versions of the same model: 1 is served, 2 and 3 are what the deployment
        # switches of the bench roll out and back (identical answers, other version numbers).
        for _ in range(3):
            with client.start_run(experiment="bench-serving", log_system=False) as run:
                logged = run.log_model(model, input_example=X.head(5))
            client.register_model(logged.model_uri, MODEL_NAME)
        client.registry.set_alias(MODEL_NAME, "production", 1)
        client.close()
        info |= {"home": str(out / ".mlcycle"), "uri": f"models:/{MODEL_NAME}@production"}
    elif fmt == "mlflow":
        import mlflow
        import mlflow.sklearn

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mlflow.sklearn.save_model(model, out / "model", input_example=X.head(5))
        info |= {"path": str(out / "model")}
    elif fmt == "pickle":
        with open(out / "model.pkl", "wb") as f:
            pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)
        info |= {"path": str(out / "model.pkl")}
    else:
        sys.exit(f"unknown format {fmt!r}")
    info["versions"] = installed_versions()
    info["predictions"] = model.predict(X.head(CHECK_ROWS)).tolist()  # type: ignore[attr-defined]
    print(json.dumps(info))


if __name__ == "__main__":
    main()
