"""The main job, for now: versioned data, a tracked sweep, a pipeline, a registered model, served
and retrained when its traffic drifts.

``make demo`` runs ``python -m mlcycle.demo`` on scikit-learn's breast-cancer data (569 tumours,
30 features):

1. data: ingested as a versioned snapshot with its profile, a contract inferred from it,
   validated per segment (large and small tumours), then prepared by a declarative spec
   (duplicates dropped, contract breakers quarantined, a stratified train/validation/test split,
   features scaled by a transformer fitted on train only), each split its own version;
2. a hyperparameter sweep (Optuna TPE over SGD and gradient boosting): every trial is a nested
   run with its params, its validation curve and its validation AUC;
3. the winner is trained by a cached, recorded pipeline (``train_model`` → ``test_metrics``);
4. the model, with the fitted transformer in front, is logged with its signature and hashes,
   registered as the next version of ``breast-cancer-clf`` (lineage: run, datasets, commit),
   evaluated on the test version per segment and against the current production version, and
   moved to ``production`` only when the gates pass;
5. the production version is deployed (``breast-cancer``), served by ``mlcycle serve`` on
   127.0.0.1, sent the test rows as traffic and their labels as feedback; the deployment's
   counters and the Parquet prediction log show what it served;
6. the loop: a drift monitor sees that normal traffic (ok), then drifted traffic (larger,
   rougher tumours) with its labels (alert); the drift trigger retrains (``retrain``: the
   training split plus the labelled production rows), the gates compare the new version with
   production, and a canary under more drifted traffic (rows the retraining never saw) is
   promoted or rolled back by the serving worker's controller.

The store is the embedded default (``./.mlcycle``) unless ``MLCYCLE_TRACKING_URI`` says
otherwise. A second run finds the data unchanged and the pipeline's steps cached.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

import mlcycle as mc
from mlcycle.config import redact_uri
from mlcycle.demo_serving import LoopSummary, close_the_loop, model_server, serve_production
from mlcycle.monitoring import LogWindow

EXPERIMENT = "breast-cancer"
DATASET = "breast-cancer"
DEPLOYMENT = "breast-cancer"

#: How raw rows become training data; stored with the versions it makes (its digest is their
#: code hash).
PREPARE: dict[str, Any] = {
    "target": "target",
    "steps": [{"op": "drop_duplicates"}],
    "features": [{"op": "scale", "columns": "__features__", "method": "standard"}],
    "split": {"method": "stratified", "column": "target", "test": 0.25, "validation": 0.15,
              "seed": 0},
}
SEGMENTS = {"large": '"mean radius" >= 15', "small": '"mean radius" < 15'}


def _prepare_data(console: Console) -> tuple[Any, Any, tuple[Any, ...]]:
    """Ingest, check and prepare the data; returns the prepared data, its fitted transformer
    and the splits as arrays (train, validation, test: X then y)."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    raw = mc.data.ingest(DATASET, frame, description="scikit-learn's breast-cancer data")
    client = mc.get_client()
    try:
        contract = client.data.get_contract(DATASET)
    except mc.errors.NotFoundError:
        contract = mc.data.infer_contract(raw.ref)
    mc.data.set_segments(DATASET, SEGMENTS)
    report = mc.data.validate(raw.ref)
    console.print(f"data: [bold]{raw.ref}[/] ({raw.num_rows} rows, digest {raw.digest[:12]}); "
                  f"contract: {sum(c.passed for c in report.checks)}/{len(report.checks)} "
                  f"checks pass; segments: "
                  + ", ".join(f"{k} {v['rows']}" for k, v in report.segments.items()))
    features = [c for c in frame.columns if c != "target"]
    spec = {**PREPARE, "steps": [*PREPARE["steps"],
                                 {"op": "contract", "contract": contract.to_dict(),
                                  "action": "quarantine"}],
            "features": [{**PREPARE["features"][0], "columns": features}]}
    out = mc.data.prepare(raw.ref, spec)
    prepared = out.prepared
    console.print("prepared: " + ", ".join(f"{k} {v.ref} ({v.num_rows})"
                                            for k, v in out.versions.items()))
    # Frames, not arrays: the served pipeline (transformer → model) passes named columns.
    arrays = (prepared.X("train", transformed=True), prepared.y("train").to_numpy(),
              prepared.X("validation", transformed=True), prepared.y("validation").to_numpy(),
              prepared.X("test", transformed=True), prepared.y("test").to_numpy())
    return prepared, prepared.transformer, arrays


def _fit(kind: str, strength: float, X_tr, y_tr, X_va, y_va):
    """One candidate; its validation curve goes to the active run. *strength* is SGD's alpha
    or the boosting learning rate."""
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import log_loss

    if kind == "sgd":
        model = SGDClassifier(loss="log_loss", alpha=strength, random_state=0)
        classes = np.unique(y_tr)
        for epoch in range(30):
            model.partial_fit(X_tr, y_tr, classes=classes)
            mc.log_metrics({"train_loss": log_loss(y_tr, model.predict_proba(X_tr)),
                            "val_loss": log_loss(y_va, model.predict_proba(X_va))}, step=epoch)
        return model
    model = GradientBoostingClassifier(n_estimators=60, learning_rate=strength, max_depth=2,
                                       random_state=0).fit(X_tr, y_tr)
    for step, proba in enumerate(model.staged_predict_proba(X_va)):
        if step % 5 == 0:
            mc.log_metric("val_loss", log_loss(y_va, proba), step=step)
    return model


@mc.step
def train_model(kind: str, strength: float, X_tr, y_tr, X_va, y_va):
    return _fit(kind, strength, X_tr, y_tr, X_va, y_va)


@mc.step
def test_metrics(model, X_te, y_te) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    pred = model.predict(X_te)
    return {"test_auc": float(roc_auc_score(y_te, model.predict_proba(X_te)[:, 1])),
            "test_accuracy": float(accuracy_score(y_te, pred)),
            "test_f1": float(f1_score(y_te, pred))}


@mc.pipeline
def train_final(kind: str, strength: float, X_tr, y_tr, X_va, y_va, X_te, y_te):
    """The winner of the sweep, trained as a cached, recorded pipeline."""
    model = train_model(kind, strength, X_tr, y_tr, X_va, y_va)
    return model, test_metrics(model, X_te, y_te)


@mc.step
def fit_on_newest(data_ref: str, feedback_ref: str | None):
    """A scaled logistic regression on the newest training rows and the labelled production
    rows, raw columns in (the model carries its scaler)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frames = [mc.data.load(data_ref, format="pandas")]
    if feedback_ref is not None:
        frames.append(mc.data.load(feedback_ref, format="pandas"))
    frame = pd.concat(frames, ignore_index=True)
    X, y = frame.drop(columns="target"), frame["target"].astype(int)
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(X, y)


@mc.pipeline
def retrain(data_ref: str, feedback_ref: str | None = None):
    """The pipeline the retraining trigger runs (``mlcycle.demo:retrain``)."""
    return fit_on_newest(data_ref, feedback_ref)


def drifted(frame: Any) -> Any:
    """Production drifts: larger, rougher tumours than the training data had."""
    out = frame.copy()
    for column in ("mean radius", "mean perimeter", "worst radius", "worst perimeter"):
        out[column] = out[column] * 1.25
    out["mean area"] = out["mean area"] * 1.5
    out["mean texture"] = out["mean texture"] + 4.0
    return out


#: What a model must show before it becomes `production` (see mlcycle.evaluation.gates).
GATES = """
gates:
  - {metric: roc_auc, min: 0.95}
  - {metric: accuracy, min: 0.90}
  - {metric: roc_auc, max_regression: 0.02, when_missing: skip}   # the first model has no baseline
"""
MODEL = "breast-cancer-clf"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mlcycle.demo", description=__doc__)
    parser.add_argument("--fast", action="store_true", help="a smaller sweep")
    args = parser.parse_args(argv)

    import optuna
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the trials are runs: no log lines
    console = Console()
    client = mc.get_client()
    console.print(f"[bold]mlcycle demo[/] — tracking to "
                  f"[cyan]{redact_uri(client.tracking_uri)}[/]")
    started = time.perf_counter()
    mc.set_experiment(EXPERIMENT)
    with mc.start_run(name="demo", tags={"dataset": DATASET}) as demo:
        prepared, transformer, (X_tr, y_tr, X_va, y_va, X_te, y_te) = _prepare_data(console)

        def objective(model: str, strength: float) -> float:
            fitted = _fit(model, strength, X_tr, y_tr, X_va, y_va)
            return float(roc_auc_score(y_va, fitted.predict_proba(X_va)[:, 1]))

        with console.status("sweeping"):
            sweep = mc.sweep(
                objective,
                {"model": ["sgd", "gbm"],
                 "strength": mc.pipelines.Float(1e-4, 0.3, log=True)},
                n_trials=4 if args.fast else 12, direction="maximize", metric="val_auc",
                sampler="tpe", seed=0, name="sweep")
        best = sweep.best_params
        console.print(f"sweep: {len(sweep.trials)} trials, best {best} "
                      f"(validation AUC {sweep.best_value:.4f})")

        with console.status("training the winner"):
            final = train_final.run(str(best["model"]), float(best["strength"]),
                                    X_tr, y_tr, X_va, y_va, X_te, y_te)
        model, metrics = final.output
        demo.log_metrics(metrics)
        # The fitted feature transformer travels with the model: serving applies exactly
        # what training did, and the model takes the raw columns.
        raw_test = prepared.X("test")
        info = demo.log_model(make_pipeline(transformer, model), input_example=raw_test.head(5))
        version = client.register_model(info.model_uri, MODEL,
                                        description=f"{best['model']} from sweep {sweep.run_id}")
        _, gates = client.evaluate_model(version.uri, f"{DATASET}.test", target="target",
                                              gates=GATES)
        if gates.passed:
            client.registry.set_alias(MODEL, "production", version.version)
        demo.set_tags({"best_run": sweep.best_run_id or "", "model_version": version.uri})

    traffic = loop = None
    production = client.registry.resolve(f"models:/{MODEL}@production").version
    # Blue-green: the first deploy goes live at once; a later one warms beside the old one.
    client.deployments.deploy(DEPLOYMENT, f"models:/{MODEL}@production",
                              strategy="blue-green", actor="demo")
    with model_server(client, DEPLOYMENT) as server:
        with console.status("serving: the production model, the test rows as traffic"):
            traffic = serve_production(client, server, DEPLOYMENT, production, raw_test, y_te)
        with console.status("the loop: drifted traffic, monitor, retraining, canary"):
            shifted = pd.concat([prepared.X("validation"), prepared.X("train")]).head(200)
            labels = pd.concat([prepared.y("validation"), prepared.y("train")]).head(200)
            loop = close_the_loop(
                client, server, deployment=DEPLOYMENT, dataset=f"{DATASET}.train",
                evaluation=f"{DATASET}.test", pipeline="mlcycle.demo:retrain", gates=GATES,
                drifted=drifted(shifted), labels=labels,
                normal=LogWindow(last=traffic.requests), unseen=drifted(raw_test),
                unseen_labels=pd.Series(y_te))

    table = Table(title=f"{EXPERIMENT}: {len(sweep.trials)} trials of the sweep "
                        f"({time.perf_counter() - started:.1f} s in all)")
    for col in ("trial", "run", "model", "strength", "val_auc"):
        table.add_column(col, justify="left" if col in ("run", "model") else "right")
    for trial in sorted(sweep.trials, key=lambda t: -(t.value or 0.0)):
        table.add_row(str(trial.number), trial.run_id[:8], str(trial.params["model"]),
                      f"{trial.params['strength']:.4g}",
                      f"{trial.value:.4f}" if trial.value is not None else "-")
    console.print(table)
    verdict = "[green]passed[/]" if gates.passed else "[red]failed[/]"
    console.print(f"final: pipeline run {final.pipeline_run_id[:8]}, test AUC "
                  f"{metrics['test_auc']:.4f}; registered {version.uri}; gates {verdict}"
                  + (f"; [bold]{MODEL}@production[/] → v{version.version}" if gates.passed
                     else ""))
    console.print(gates.summary())
    if traffic is not None:
        p95 = "-" if traffic.p95_ms is None else f"{traffic.p95_ms:.3g} ms"
        accuracy = "-" if traffic.accuracy is None else f"{traffic.accuracy:.1%}"
        console.print(
            f"served: deployment [bold]{traffic.deployment}[/] (v{traffic.version}) on "
            f"{traffic.url}: {traffic.requests} requests, {traffic.errors} errors, p95 {p95}; "
            f"{traffic.feedback} labels sent back, live accuracy {accuracy}; the prediction "
            f"log holds {traffic.logged_rows} rows ({traffic.log_uri}/predictions)")
    if loop is not None:
        _print_loop(console, loop)
    console.print(
        "\nLook closer:\n"
        f"  .venv/bin/mlcycle runs list --experiment {EXPERIMENT}\n"
        f"  .venv/bin/mlcycle runs show {demo.run_id}\n"
        f"  .venv/bin/mlcycle data show {DATASET}\n"
        f"  .venv/bin/mlcycle data validate {DATASET}@v1 --html report.html\n"
        f"  .venv/bin/mlcycle pipeline show {final.pipeline_run_id}\n"
        f"  .venv/bin/mlcycle models show {MODEL}\n"
        f"  .venv/bin/mlcycle models events {MODEL}\n"
        f"  .venv/bin/mlcycle deploy status {DEPLOYMENT}\n"
        f"  .venv/bin/mlcycle serve --deployment {DEPLOYMENT}   # then POST /predict\n"
        "  .venv/bin/mlcycle server   # REST API and OpenAPI docs on http://127.0.0.1:8080/docs",
        soft_wrap=True,
    )


def _print_loop(console: Console, loop: LoopSummary) -> None:
    table = Table(title="the closed loop", show_header=False)
    table.add_column("stage", style="bold")
    table.add_column("what happened")
    drift = ", ".join(f"{c} ({score:g})" for c, score in loop.drifted.items()) or "none"
    table.add_row("drift found", f"{drift}; monitor status {loop.monitor_status}")
    before = "-" if loop.accuracy_before is None else f"{loop.accuracy_before:.1%}"
    table.add_row("accuracy on drifted traffic", f"{before} (production version)")
    table.add_row("retraining", f"{loop.trigger_status}: {loop.trigger_reason}")
    if loop.new_version is not None:
        table.add_row("new version", f"v{loop.new_version}; {loop.gates}")
    after = "" if loop.accuracy_after is None else f" (accuracy {loop.accuracy_after:.1%})"
    table.add_row("canary", f"{loop.outcome}{after}: {loop.outcome_reason}")
    console.print(table)


if __name__ == "__main__":
    main()
