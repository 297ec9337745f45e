"""Pipelines and sweeps: steps, caching, a failure and its resume, a sweep (a test runs this).

    python docs/pipelines.py
"""

from pathlib import Path

import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

import mlcycle as mc
from mlcycle.errors import StepFailed


@mc.step
def make_data(n: int) -> pd.DataFrame:
    """Frames are stored as Parquet; everything else with cloudpickle."""
    x = pd.Series(range(n), dtype="float64")
    return pd.DataFrame({"x": x, "noise": (x * 7919) % 13, "y": (x % 3 == 0).astype(int)})


@mc.step(outputs=("train", "test"))
def split(df: pd.DataFrame, test: float = 0.25) -> tuple[pd.DataFrame, pd.DataFrame]:
    cut = int(len(df) * (1 - test))
    return df.iloc[:cut], df.iloc[cut:]


@mc.step(retries=2, backoff=0.1)
def fit(train: pd.DataFrame, C: float) -> LogisticRegression:
    if Path("broken").exists():  # a stand-in for a bug, fixed below
        raise RuntimeError("the training data looks wrong")
    model = LogisticRegression(C=C).fit(train[["x", "noise"]], train["y"])
    mc.log_metric("train_accuracy", model.score(train[["x", "noise"]], train["y"]))
    return model


@mc.step
def evaluate(model: LogisticRegression, test: pd.DataFrame) -> float:
    return float(model.score(test[["x", "noise"]], test["y"]))


@mc.pipeline
def train(n: int = 400, C: float = 1.0):
    train_df, test_df = split(make_data(n))
    return evaluate(fit(train_df, C), test_df)  # split runs once; fit and evaluate after


# 1. The first run executes every step; the second finds each one in the cache.
first = train(n=400, C=1.0)
print("accuracy", round(first.output, 3), "pipeline run", first.pipeline_run_id[:8])
again = train(n=400, C=1.0)
print("cached steps:", [s.node for s in again.steps if s.cache_hit])
assert all(s.cache_hit for s in again.steps)

# 2. A new C reruns fit and evaluate only: make_data and split have the same key as before.
other = train(n=400, C=0.1)
print("reran:", [s.node for s in other.steps if not s.cache_hit])

# 3. A failing step is retried, recorded as failed, and the run can be resumed from it.
Path("broken").touch()
try:
    train(n=400, C=10.0)
except StepFailed as exc:
    failed_id = exc.details["pipeline_run_id"]
    print("failed:", exc.message.split(".")[0])
Path("broken").unlink()
resumed = mc.pipelines.resume(failed_id, client=mc.get_client())
print("resumed; reused:", [s.node for s in resumed.steps if s.reused_from],
      "accuracy", round(resumed.output, 3))


# 4. A sweep: every trial is a run nested in the sweep's run.
def objective(C: float) -> float:
    df = make_data(300)  # a step called outside a pipeline is a plain function call
    model = LogisticRegression(C=C)
    return float(cross_val_score(model, df[["x", "noise"]], df["y"], cv=3).mean())


result = mc.sweep(objective, {"C": mc.pipelines.Float(1e-3, 1e2, log=True)}, n_trials=8,
                  sampler="tpe", direction="maximize", seed=0)
print("best C", round(result.best_params["C"], 4), "accuracy", round(result.best_value, 3),
      "in run", result.best_run_id[:8])
