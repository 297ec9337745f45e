"""The main job, for now: versioned data, tracked training runs, then the run table.

``make demo`` runs ``python -m mlcycle.demo`` on scikit-learn's breast-cancer data (569 tumours,
30 features). The data goes through the data stage first: ingested as a versioned snapshot with
its profile, a contract inferred from it, validated per segment (large and small tumours), then
prepared by a declarative spec (duplicates dropped, contract breakers quarantined, a stratified
train/validation/test split, features scaled by a scikit-learn transformer fitted on train only),
each split recorded as its own version with the input as parent. Then a small hyperparameter
sweep of gradient-boosted and linear classifiers: each candidate is a nested run with its params,
a per-epoch validation curve, test metrics, a confusion matrix and the fitted model (transformer
included); the parent run records the winner and every dataset version it read. The store is the
embedded default (``./.mlcycle``) unless ``MLCYCLE_TRACKING_URI`` says otherwise.
"""

from __future__ import annotations

import argparse
import pickle
import time
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

import mlcycle as mc

EXPERIMENT = "breast-cancer"
DATASET = "breast-cancer"

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


def _prepare_data(console: Console) -> tuple[object, ...]:
    """Ingest, check and prepare the data; returns the prepared splits, as arrays."""
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
    return (prepared.transformer,
            prepared.X("train", transformed=True).to_numpy(), prepared.y("train").to_numpy(),
            prepared.X("validation", transformed=True).to_numpy(),
            prepared.y("validation").to_numpy(),
            prepared.X("test", transformed=True).to_numpy(), prepared.y("test").to_numpy())


def _train_sgd(run: mc.ActiveRun, X_tr, y_tr, X_va, y_va, *, alpha: float, epochs: int):
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import log_loss

    model = SGDClassifier(loss="log_loss", alpha=alpha, random_state=0)
    classes = np.unique(y_tr)
    for epoch in range(epochs):
        model.partial_fit(X_tr, y_tr, classes=classes)
        run.log_metrics(
            {"train_loss": log_loss(y_tr, model.predict_proba(X_tr)),
             "val_loss": log_loss(y_va, model.predict_proba(X_va))},
            step=epoch,
        )
    return model


def _train_gbm(run: mc.ActiveRun, X_tr, y_tr, X_va, y_va, *, learning_rate: float, depth: int):
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.metrics import log_loss

    model = GradientBoostingClassifier(n_estimators=60, learning_rate=learning_rate,
                                       max_depth=depth, random_state=0).fit(X_tr, y_tr)
    for step, proba in enumerate(model.staged_predict_proba(X_va)):
        if step % 5 == 0:
            run.log_metric("val_loss", log_loss(y_va, proba), step=step)
    return model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mlcycle.demo", description=__doc__)
    parser.add_argument("--fast", action="store_true", help="a smaller sweep")
    args = parser.parse_args(argv)

    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, roc_auc_score
    from sklearn.pipeline import make_pipeline

    console = Console()
    client = mc.get_client()
    console.print(f"[bold]mlcycle demo[/] — tracking to [cyan]{client.tracking_uri}[/]")

    candidates: list[tuple[str, dict[str, float | int]]] = [
        ("sgd", {"alpha": a, "epochs": 30}) for a in ((1e-4, 1e-2) if args.fast
                                                      else (1e-5, 1e-4, 1e-3, 1e-2))
    ] + [
        ("gbm", {"learning_rate": lr, "depth": d})
        for lr, d in (((0.1, 2),) if args.fast else ((0.05, 2), (0.1, 2), (0.1, 3)))
    ]
    started = time.perf_counter()
    mc.set_experiment(EXPERIMENT)
    with mc.start_run(name="sweep", tags={"dataset": DATASET}) as sweep:
        transformer, X_tr, y_tr, X_va, y_va, X_te, y_te = _prepare_data(console)
        best: tuple[float, str, str] | None = None
        with console.status("training") as status:
            for kind, params in candidates:
                status.update(f"training {kind} {params}")
                with mc.start_run(name=f"{kind}-" + "-".join(f"{v}" for v in params.values()),
                                  params={"model": kind, **params}) as run:
                    if kind == "sgd":
                        model = _train_sgd(run, X_tr, y_tr, X_va, y_va,
                                           alpha=float(params["alpha"]),
                                           epochs=int(params["epochs"]))
                    else:
                        model = _train_gbm(run, X_tr, y_tr, X_va, y_va,
                                           learning_rate=float(params["learning_rate"]),
                                           depth=int(params["depth"]))
                    pred = model.predict(X_te)
                    auc = roc_auc_score(y_te, model.predict_proba(X_te)[:, 1])
                    run.log_metrics({"test_accuracy": accuracy_score(y_te, pred),
                                     "test_f1": f1_score(y_te, pred), "test_auc": auc})
                    run.log_result("confusion_matrix", confusion_matrix(y_te, pred).tolist())
                    # The fitted feature transformer travels with the model: serving applies
                    # exactly what training did.
                    run.log_bytes(pickle.dumps(make_pipeline(transformer, model)),
                                  "model/model.pkl")
                if best is None or auc > best[0]:
                    best = (auc, run.run_id, run.name)
        assert best is not None
        sweep.set_tags({"best_run": best[1]})
        sweep.log_metric("best_test_auc", best[0])

    page = client.search_runs(
        experiments=[EXPERIMENT],
        filter=f"attributes.parent_run_id = '{sweep.run_id}'",
        order_by=["metrics.test_auc DESC"],
    )
    table = Table(
        title=f"{EXPERIMENT}: {len(page)} candidates of run {sweep.name} "
        f"({time.perf_counter() - started:.1f} s)"
    )
    for col in ("run", "name", "status", "model", "test_auc", "test_accuracy", "test_f1"):
        table.add_column(col, justify="right" if col.startswith("test") else "left")
    for run_ in page:
        table.add_row(run_.run_id[:8], run_.name, run_.status.value, run_.params.get("model", ""),
                      *(f"{run_.metrics.get(k, float('nan')):.4f}"
                        for k in ("test_auc", "test_accuracy", "test_f1")))
    console.print(table)
    console.print(f"best: [bold]{best[2]}[/] (test AUC {best[0]:.4f})")
    console.print(
        "\nLook closer:\n"
        f"  .venv/bin/mlcycle runs list --experiment {EXPERIMENT}\n"
        f"  .venv/bin/mlcycle runs show {best[1]}\n"
        f"  .venv/bin/mlcycle runs compare {' '.join(r.run_id for r in page.items[:2])}\n"
        f"  .venv/bin/mlcycle data show {DATASET}\n"
        f"  .venv/bin/mlcycle data profile {DATASET}@v1\n"
        f"  .venv/bin/mlcycle data validate {DATASET}@v1 --html report.html\n"
        "  .venv/bin/mlcycle server   # REST API and OpenAPI docs on http://127.0.0.1:8080/docs",
        soft_wrap=True,
    )


if __name__ == "__main__":
    main()
