"""The main job, for now: real tracked training runs on a bundled dataset, then the run table.

``make demo`` runs ``python -m mlcycle.demo``: a small hyperparameter sweep of gradient-boosted and
linear classifiers on scikit-learn's breast-cancer data (569 tumours, 30 features). Each candidate
is a nested run with its params, a per-epoch validation curve, test metrics, a confusion matrix and
the fitted model; the parent run records the winner. The store is the embedded default
(``./.mlcycle``) unless ``MLCYCLE_TRACKING_URI`` says otherwise.
"""

from __future__ import annotations

import argparse
import pickle
import time

import numpy as np
from rich.console import Console
from rich.table import Table

import mlcycle as mc

EXPERIMENT = "breast-cancer"


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

    from sklearn.datasets import load_breast_cancer
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    console = Console()
    client = mc.get_client()
    console.print(f"[bold]mlcycle demo[/] — tracking to [cyan]{client.tracking_uri}[/]")
    X, y = load_breast_cancer(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    X_tr, X_va, y_tr, y_va = train_test_split(X_tr, y_tr, test_size=0.2, random_state=0,
                                              stratify=y_tr)
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_va, X_te = scaler.transform(X_tr), scaler.transform(X_va), scaler.transform(X_te)

    candidates: list[tuple[str, dict[str, float | int]]] = [
        ("sgd", {"alpha": a, "epochs": 30}) for a in ((1e-4, 1e-2) if args.fast
                                                      else (1e-5, 1e-4, 1e-3, 1e-2))
    ] + [
        ("gbm", {"learning_rate": lr, "depth": d})
        for lr, d in (((0.1, 2),) if args.fast else ((0.05, 2), (0.1, 2), (0.1, 3)))
    ]
    started = time.perf_counter()
    mc.set_experiment(EXPERIMENT)
    with mc.start_run(name="sweep", tags={"dataset": "sklearn.breast_cancer"}) as sweep:
        sweep.log_input("sklearn.breast_cancer", "1", context={"rows": len(X), "split": "75/25"})
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
                    run.log_bytes(pickle.dumps(model), "model/model.pkl")
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
        "  .venv/bin/mlcycle server   # REST API and OpenAPI docs on http://127.0.0.1:8080/docs",
        soft_wrap=True,
    )


if __name__ == "__main__":
    main()
