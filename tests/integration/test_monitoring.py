"""Monitors on real prediction logs: a scikit-learn model trained on a versioned dataset is
served by the real deployment app, its logs and feedback are read back through DuckDB, and
monitors judge drift, quality and operations per window and segment, store results, fire alerts
to a real webhook server on 127.0.0.1, run from the scheduler and render an HTML report."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from starlette.testclient import TestClient

import mlcycle as mc
from mlcycle.errors import InvalidInputError, MonitorAlreadyExists
from mlcycle.monitoring.logs import LogWindow
from mlcycle.monitoring.performance import measure
from mlcycle.monitoring.service import MonitorService
from mlcycle.serving import ServingSettings, create_deployment_app
from mlcycle.serving.prediction_log import FeedbackRecord, ParquetLog, PredictionRecord

T0 = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)


def make_frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n) + shift * 20
    income = rng.normal(50, 10, n) + shift * 10
    region = rng.choice(["EU", "US", "APAC"], n)
    label = ((age / 80 + income / 100) > 1.1).astype(int)
    return pd.DataFrame({"age": age.astype(float), "income": income, "region": region,
                         "label": label})


@pytest.fixture
def client(tmp_path: Path) -> Iterator[mc.Client]:
    """A home with dataset ``train`` (its profile stored), model ``clf`` v1 trained on it,
    and deployment ``web`` serving it; prediction logs under ``<home>/logs``."""
    settings = mc.Settings(home=tmp_path / ".mlcycle", prediction_log_uri=str(tmp_path / "logs"))
    c = mc.Client(settings=settings)
    c.data.ingest("train", make_frame(2000, seed=0))
    with c.start_run(experiment="train", log_system=False) as run:
        train = c.data.load("train", format="pandas", run_id=run.run_id, context="train")
        model = LogisticRegression(max_iter=500).fit(train[["age", "income"]], train["label"])
        info = run.log_model(model, input_example=train[["age", "income"]].head(5))
    c.register_model(info.model_uri, "clf")
    c.deployments.deploy("web", "models:/clf/1")
    yield c
    c.close()


def clocked(c: mc.Client, at: list[float]) -> MonitorService:
    """``c.monitors`` with its clock read from ``at[0]``."""
    service = c.monitors
    service.clock = lambda: at[0]
    return service


def write_logs(root: str, frame: pd.DataFrame, start: datetime, *, step_s: float = 60,
               outputs: np.ndarray | None = None, latency_ms: float = 5.0, status: int = 200,
               prefix: str = "r", version: str = "1", labels: bool = True) -> None:
    """One request per row of *frame* every *step_s* seconds from *start*, written with the
    serving log writer, and feedback with each row's true label."""
    predictions = ParquetLog(root, "predictions", worker_id=f"w-{prefix}")
    feedback = ParquetLog(root, "feedback", worker_id=f"w-{prefix}")
    out = outputs if outputs is not None else frame["label"].to_numpy()
    for i, row in enumerate(frame.itertuples(index=False)):
        at = start.timestamp() + i * step_s
        rid = f"{prefix}{i}"
        predictions.append(PredictionRecord(
            rid, at, "web", "clf", version, "stable",
            {"age": [row.age], "income": [row.income], "region": [row.region]},
            [out[i]] if status < 400 else None, latency_ms + i % 10, status, 1))
        if labels:
            feedback.append(FeedbackRecord(rid, 0, int(row.label), at + 1, "web"))
    predictions.flush()
    feedback.flush()


# --- the logs and the join ------------------------------------------------------------------


def test_served_predictions_and_feedback_are_joined_by_request_and_row(
        client: mc.Client, tmp_path: Path) -> None:
    frame = make_frame(40, seed=1)
    rows = frame[["age", "income"]].to_dict(orient="records")

    def load(model: str, version: int):  # type: ignore[no-untyped-def]
        return client.load_model(f"models:/{model}/{version}")

    app = create_deployment_app(client.deployments, "web", load, settings=ServingSettings(
        poll_interval=0.05, report_interval=0.1, log_uri=str(tmp_path / "logs"),
        log_flush_interval=0.05))
    with TestClient(app) as http:
        for _ in range(100):
            if http.get("/v2/health/ready").status_code == 200:
                break
            time.sleep(0.05)
        answers = []
        for i in range(0, 40, 4):  # ten requests of four rows
            reply = http.post("/predict", json=rows[i:i + 4])
            assert reply.status_code == 200, reply.text
            answers.append((reply.headers["x-request-id"], reply.json()))
        # ground truth for the first row of every request but the last
        for k, (rid, _) in enumerate(answers[:-1]):
            assert http.post("/feedback", json={"request_id": rid, "row": 0,
                                                "label": int(frame["label"][4 * k])}
                             ).status_code in (200, 202, 204)
    logged = client.monitors.logs.read("web")
    assert logged.height == 40
    assert logged["request_id"].n_unique() == 10
    assert sorted(c for c in logged.columns if c.startswith("input_")) == \
        ["input_age", "input_income"]
    labelled = logged.filter(logged["label"].is_not_null())
    assert labelled.height == 9 and set(labelled["row"].to_list()) == {0}
    expected = {answers[k][0]: int(frame["label"][4 * k]) for k in range(9)}
    assert dict(zip(labelled["request_id"].to_list(), labelled["label"].to_list(),
                    strict=True)) == expected
    report = measure(logged)
    assert report.overall.operations.requests == 10 and report.overall.operations.rows == 40
    assert report.overall.quality is not None and report.overall.quality.labelled == 9


def test_windows_last_n_versions_and_the_newest_label(client: mc.Client,
                                                      tmp_path: Path) -> None:
    logs = str(tmp_path / "logs")
    write_logs(logs, make_frame(48, seed=2), T0, step_s=3600)  # two days, hourly
    write_logs(logs, make_frame(5, seed=3), T0 + timedelta(days=3), prefix="v2-",
               version="2", labels=False)
    # a corrected label for r0 arrives later: the newest wins
    fb = ParquetLog(logs, "feedback", worker_id="w2")
    fb.append(FeedbackRecord("r0", 0, 7, (T0 + timedelta(days=4)).timestamp(), "web"))
    fb.flush()
    reader = client.monitors.logs
    assert reader.read("web").height == 53
    day_one = reader.read("web", LogWindow(since=T0, until=T0 + timedelta(days=1)))
    assert day_one.height == 24 and day_one["time"].max() < T0 + timedelta(days=1)
    assert reader.read("web", LogWindow(last=5))["version"].to_list() == ["2"] * 5
    assert reader.read("web", version="1").height == 48
    assert reader.read("web", LogWindow(until=T0 + timedelta(hours=1)))["label"].to_list() == [7]
    report = measure(reader.read("web"), task="classification")
    assert set(report.by_version) == {"1", "2"}
    assert report.by_version["2"].quality is not None
    assert report.by_version["2"].quality.labelled == 0
    with pytest.raises(InvalidInputError, match="since"):
        LogWindow(since=T0, until=T0)
    with pytest.raises(InvalidInputError, match="last"):
        LogWindow(last=0)


def test_a_reader_never_sees_a_log_file_half_written(client: mc.Client, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow.parquet as pq

    logs = str(tmp_path / "logs")
    writer = ParquetLog(logs, "predictions", worker_id="w")
    write_table = pq.write_table
    seen: list[object] = []

    def write_and_read(table: object, where: object, **options: object) -> None:
        write_table(table, where, **options)
        # The file is written but not closed: what a monitor reading now would meet.
        try:
            seen.append(client.monitors.logs.read("web").height)
        except Exception as exc:  # the assertion below names it
            seen.append(exc)

    monkeypatch.setattr(pq, "write_table", write_and_read)
    for i in range(3):
        writer.append(PredictionRecord(
            f"r{i}", T0.timestamp() + i, "web", "clf", "1", "stable",
            {"age": [30, 40], "income": [1.5, 2.5], "region": ["EU", "US"]}, [0, 1], 5.0, 200,
            2))
        writer.flush()  # one file each
    assert seen == [0, 2, 4]  # only the files already complete
    assert client.monitors.logs.read("web").height == 6
    assert not [p for p in (tmp_path / "logs").rglob("*") if p.name.endswith(".tmp")]


def test_quality_per_segment_and_per_bucket(client: mc.Client, tmp_path: Path) -> None:
    frame = make_frame(240, seed=4)
    truth = frame["label"].to_numpy()
    wrong_in_eu = np.where(frame["region"] == "EU", 1 - truth, truth)  # EU always wrong
    write_logs(str(tmp_path / "logs"), frame, T0, step_s=60, outputs=wrong_in_eu)
    report = measure(client.monitors.logs.read("web"), segments={
        "eu": "region == 'EU'", "not_eu": "region <> 'EU'", "old": "age >= 65"},
        bucket="hour")
    assert report.task == "classification"
    assert report.by_segment["eu"].quality.metrics["accuracy"] == 0.0  # type: ignore[union-attr]
    assert report.by_segment["not_eu"].quality.metrics["accuracy"] == 1.0  # type: ignore[union-attr]
    eu_share = float((frame["region"] == "EU").mean())
    assert report.overall.quality.metrics["accuracy"] == pytest.approx(1 - eu_share)  # type: ignore[union-attr]
    assert [s.start for s in report.series] == [T0 + timedelta(hours=h) for h in range(4)]
    assert [s.operations.requests for s in report.series] == [60] * 4
    assert report.series[0].operations.throughput_rps == pytest.approx(60 / 3600)
    assert len(report.segment_series["eu"]) == 4
    for name, expr in (("bad", "region = = 'EU'"), ("ghost", "height > 2")):
        with pytest.raises(InvalidInputError, match=name):
            measure(client.monitors.logs.read("web"), segments={name: expr})


def test_regression_scores_roc_auc_latency_and_errors(client: mc.Client,
                                                      tmp_path: Path) -> None:
    frame = make_frame(100, seed=5)
    scores = np.where(frame["label"] == 1, 0.8, 0.3)
    scores[:10] = 1 - scores[:10]  # ten confidently wrong
    write_logs(str(tmp_path / "logs"), frame, T0, outputs=scores)
    write_logs(str(tmp_path / "logs"), frame.head(25), T0 + timedelta(hours=2), status=500,
               prefix="e", labels=False, latency_ms=100)
    report = measure(client.monitors.logs.read("web"))
    quality = report.overall.quality
    assert quality is not None and quality.metrics["accuracy"] == pytest.approx(0.9)
    from sklearn.metrics import f1_score, roc_auc_score

    y = frame["label"].to_numpy()
    assert quality.metrics["roc_auc"] == pytest.approx(roc_auc_score(y, scores))
    assert quality.metrics["f1"] == pytest.approx(f1_score(y, scores >= 0.5))
    ops = report.overall.operations
    assert (ops.requests, ops.errors) == (125, 25) and ops.error_rate == pytest.approx(0.2)
    latencies = np.r_[5 + np.arange(100) % 10, 100 + np.arange(25) % 10]
    assert ops.latency_p99_ms == pytest.approx(np.percentile(latencies, 99))
    regression = measure(client.monitors.logs.read("web").filter(
        client.monitors.logs.read("web")["status"] == 200), task="regression")
    assert regression.overall.quality is not None
    assert regression.overall.quality.metrics["mae"] == pytest.approx(np.mean(np.abs(scores - y)))


# --- monitors -------------------------------------------------------------------------------


class Webhook:
    """A real HTTP server on 127.0.0.1 that records what is POSTed to it."""

    def __init__(self, status: int = 200) -> None:
        self.received: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                hook.received.append(json.loads(body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


def test_a_monitor_run_stores_results_and_alerts_on_verdict_changes(
        client: mc.Client, tmp_path: Path, webhook: Webhook) -> None:
    logs = str(tmp_path / "logs")
    now = [(T0 + timedelta(days=1)).timestamp()]
    service = clocked(client, now)
    monitor = service.create("web-daily", "web", {
        "window": "1d", "interval": "1d", "segments": {"eu": "region = 'EU'"},
        "thresholds": {"accuracy": {"warning": 0.9, "alert": 0.8}}, "webhook": webhook.url})
    assert service.reference_of(monitor) == "train@v1"
    with pytest.raises(MonitorAlreadyExists):
        service.create("web-daily", "web")

    # day 1: like the training data, always right
    day1 = make_frame(500, seed=6)
    write_logs(logs, day1, T0, step_s=150)
    first = service.run("web-daily")
    assert first.result.status == "ok", first.result.details
    assert first.alert is None and webhook.received == []
    assert first.drift is not None and first.drift.verdict == "ok"
    assert first.result.metrics["performance.accuracy"] == 1.0
    assert first.result.metrics["performance.accuracy[eu]"] == 1.0
    assert "drift.score.age" in first.result.metrics
    assert "operations.latency_p95_ms" in first.result.metrics

    # day 2: inputs shifted and the model wrong on a third of the rows
    day2 = make_frame(500, seed=7, shift=1.0)
    wrong = day2["label"].to_numpy().copy()
    wrong[::3] = 1 - wrong[::3]
    write_logs(logs, day2, T0 + timedelta(days=1), step_s=150, outputs=wrong, prefix="d2-")
    now[0] = (T0 + timedelta(days=2)).timestamp()
    second = service.run("web-daily")
    assert second.result.status == "alert"
    assert second.drift is not None and set(second.drift.drifted) >= {"age", "income"}
    assert second.result.metrics["performance.accuracy"] == pytest.approx(
        float(np.mean(wrong == day2["label"])))
    assert second.alert is not None and second.alert.delivery == "sent"
    [posted] = webhook.received
    assert (posted["monitor"], posted["previous"], posted["status"]) == \
        ("web-daily", "ok", "alert")
    assert any("accuracy" in r for r in posted["reasons"])
    assert any(r.startswith("drift in") for r in posted["reasons"])

    # the same verdict again: no new alert
    now[0] += 60
    assert service.run("web-daily").alert is None
    assert [a.status for a in service.alerts("web-daily")] == ["alert"]
    assert [r.status for r in service.results("web-daily")] == ["alert", "alert", "ok"]
    assert service.get("web-daily").status == "alert"


def test_a_failing_webhook_is_recorded_not_raised(client: mc.Client, tmp_path: Path) -> None:
    hook = Webhook(status=500)
    try:
        now = [(T0 + timedelta(hours=2)).timestamp()]
        service = clocked(client, now)
        service.create("ops", "web", {"checks": ["operations"], "window": "2h",
                                      "thresholds": {"error_rate": {"alert": 0.1}},
                                      "webhook": hook.url})
        write_logs(str(tmp_path / "logs"), make_frame(20, seed=8), T0, status=503,
                   labels=False)
        run = service.run("ops")
        assert run.result.status == "alert"
        assert run.alert is not None and run.alert.delivery == "failed: HTTP 500"
        assert len(hook.received) == 1
    finally:
        hook.close()
    service.store.delete_monitor("ops")
    service.create("ops", "web", {"checks": ["operations"], "webhook": "http://127.0.0.1:9/x",
                                  "thresholds": {"error_rate": 0.1}})
    run = service.run("ops")  # nothing listens on port 9
    assert run.alert is not None and run.alert.delivery.startswith("failed: ConnectError")


def test_no_data_and_an_unknown_reference_never_raise(client: mc.Client) -> None:
    service = client.monitors
    service.create("empty", "web")
    run = service.run("empty")
    assert run.result.status == "no_data" and run.alert is None
    service.create("bad-ref", "web", {"reference": "nope@v9", "checks": ["drift"]})
    details = service.run("bad-ref").result.details
    assert "not found" in details["checks"]["drift"]["error"].lower()  # type: ignore[index]


def test_spec_errors_name_the_key_and_line(client: mc.Client) -> None:
    from mlcycle.monitoring.config import MonitorSpec

    text = "window: 1d\nthresholds:\n  acuracy: {alert: 0.8}\n"
    with pytest.raises(InvalidInputError, match=r"line 3: thresholds.acuracy: unknown metric "
                                                r"\(did you mean 'accuracy'\?\)"):
        MonitorSpec.from_yaml(text)
    for text, line, field in (
            ("checks: [drift, vibes]\n", 1, "checks[1]"),
            ("window: 1d\ninterval: soon\n", 2, "interval"),
            ("segments:\n  eu: \"region = = 'EU'\"\n", 2, "segments.eu"),
            ("thresholds:\n  accuracy: {warning: 0.7, alert: 0.8}\n", 2,
             "thresholds.accuracy.warning"),
            ("thresholds:\n  drift: {alpah: 0.1}\n", 2, "thresholds.drift.alpah"),
            ("webhook: ftp://x\n", 1, "webhook")):
        with pytest.raises(InvalidInputError) as info:
            MonitorSpec.from_yaml(text)
        assert (info.value.details["line"], info.value.details["field"]) == (line, field), \
            info.value.message


def test_due_monitors_run_from_the_scheduler(client: mc.Client, tmp_path: Path) -> None:
    from mlcycle.monitoring.scheduler import MonitorScheduler

    now = [(T0 + timedelta(hours=1)).timestamp()]
    service = clocked(client, now)
    service.create("hourly", "web", {"interval": "1h", "window": "1h",
                                     "checks": ["operations"]})
    service.create("paused", "web", {"interval": "1h", "checks": ["operations"]})
    service.pause("paused")
    write_logs(str(tmp_path / "logs"), make_frame(30, seed=9), T0, step_s=60, labels=False)
    scheduler = MonitorScheduler(service, poll_interval=0.01)
    assert [m.name for m in service.due()] == ["hourly"]

    async def two_polls() -> None:
        task = asyncio.create_task(scheduler.run_forever())
        while not service.results("hourly"):
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(asyncio.wait_for(two_polls(), 30))
    [result] = service.results("hourly")
    assert result.metrics["operations.requests"] == 30
    assert service.due() == [] and service.results("paused") == []
    now[0] += 3600
    assert [m.name for m in service.due()] == ["hourly"]


# --- the HTML report ------------------------------------------------------------------------


def _drifted_history(client: mc.Client, tmp_path: Path, webhook_url: str | None = None
                     ) -> tuple[MonitorService, list[float]]:
    """Monitor ``web-daily`` run at the end of two days of logs: one like training, one
    shifted (inputs drifted, a third of answers wrong)."""
    logs = str(tmp_path / "logs")
    now = [(T0 + timedelta(days=1)).timestamp()]
    service = clocked(client, now)
    service.create("web-daily", "web", {
        "window": "1d", "segments": {"eu": "region = 'EU'", "apac": "region = 'APAC'"},
        "thresholds": {"accuracy": {"warning": 0.9, "alert": 0.8}},
        **({"webhook": webhook_url} if webhook_url else {})})
    write_logs(logs, make_frame(500, seed=6), T0, step_s=150)
    service.run("web-daily")
    day2 = make_frame(500, seed=7, shift=1.0)
    wrong = day2["label"].to_numpy().copy()
    wrong[::3] = 1 - wrong[::3]
    write_logs(logs, day2, T0 + timedelta(days=1), step_s=150, outputs=wrong, prefix="d2-")
    now[0] = (T0 + timedelta(days=2)).timestamp()
    service.run("web-daily")
    return service, now


def test_the_html_report_is_self_contained_with_its_plots(client: mc.Client,
                                                          tmp_path: Path) -> None:
    from mlcycle.monitoring.report import render_report

    service, _ = _drifted_history(client, tmp_path)
    html = render_report(service, "web-daily", since=T0, until=T0 + timedelta(days=2))
    (tmp_path / "report.html").write_text(html)
    from plotly.offline import get_plotlyjs

    page = html.replace(get_plotlyjs(), "")  # plotly.js inlined, and nothing fetched
    assert len(html) - len(page) > 1_000_000
    assert "<script src=" not in page and "<link" not in page and "http" not in page
    assert "Plotly.newPlot" in page
    plots = json.loads(html.split('<script type="application/json" id="plots">')[1]
                       .split("</script>")[0])
    titles = [p["layout"]["title"]["text"] for p in plots]
    assert any(t.startswith("age: drift") for t in titles)  # a distribution overlay
    assert "Drift over time (per run)" in titles
    assert "accuracy over time, per segment" in titles
    assert "Latency and errors over time" in titles
    quality = next(p for p in plots if p["layout"]["title"]["text"].startswith("accuracy"))
    assert [trace["name"] for trace in quality["data"]] == ["all", "eu", "apac"]
    assert len(quality["data"][0]["x"]) == 2 * 21  # 500 requests 150 s apart fill 21 hours a day
    overlay = next(p for p in plots if p["layout"]["title"]["text"].startswith("age"))
    assert [t["name"] for t in overlay["data"]] == ["reference", "current"]
    assert sum(overlay["data"][0]["y"]) == pytest.approx(1.0, abs=0.02)
    assert "web-daily" in html and 'class="badge alert"' in html


def test_the_report_escapes_what_users_wrote(client: mc.Client, tmp_path: Path) -> None:
    from mlcycle.monitoring.report import render_report

    service = client.monitors
    service.create("x", "web", {"segments": {"<b>bold</b>": "region = '</script><i>'"},
                                "checks": ["performance"]})
    write_logs(str(tmp_path / "logs"), make_frame(10, seed=1), datetime.now(UTC)
               - timedelta(hours=1))
    html = render_report(service, "x")
    assert "<b>bold</b>" not in html and "</script><i>" not in html
    assert "\\u003cb\\u003ebold" in html  # the segment's name, in the plots' JSON


# --- the CLI --------------------------------------------------------------------------------


def test_the_cli_creates_runs_lists_reports_and_shows_alerts(
        client: mc.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from mlcycle.cli import output
    from mlcycle.cli.main import app

    monkeypatch.setattr(output.console, "width", 200)
    monkeypatch.setenv("MLCYCLE_PREDICTION_LOG_URI", str(tmp_path / "logs"))
    runner = CliRunner()

    def cli(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result.output

    spec = tmp_path / "monitor.yaml"
    spec.write_text("window: 2h\nsegments:\n  eu: \"region = 'EU'\"\n"
                    "thresholds:\n  accuracy: {warning: 0.95, alert: 0.9}\n")
    assert "Created monitor web-hourly of web" in cli(
        "monitor", "create", "web-hourly", "--deployment", "web", "--config", str(spec))
    spec.write_text("window: 2h\nthresholds:\n  accuracy: {warn: 0.9}\n")
    assert "monitor.yaml line 3: thresholds.accuracy" in cli(
        "monitor", "create", "other", "-d", "web", "-c", str(spec), code=2)
    assert "Deployment not found" in cli("monitor", "create", "x", "-d", "nope", code=3)

    frame = make_frame(120, seed=11)
    wrong = frame["label"].to_numpy().copy()
    wrong[::2] = 1 - wrong[::2]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=90)
    write_logs(str(tmp_path / "logs"), frame, start, step_s=30, outputs=wrong)
    ran = cli("monitor", "run", "web-hourly")
    assert "web-hourly (web): alert" in ran and "accuracy 0.5 (alert)" in ran
    assert "performance.accuracy[eu]" in ran and "new → alert" in ran
    listed = json.loads(cli("monitor", "list", "--json"))
    assert [(m["name"], m["status"]) for m in listed] == [("web-hourly", "alert")]
    assert "web-hourly" in cli("monitor", "list")
    [alert] = json.loads(cli("monitor", "alerts", "web-hourly", "--json"))
    assert (alert["previous"], alert["status"]) == (None, "alert")
    [res] = json.loads(cli("monitor", "results", "web-hourly", "--json"))
    assert res["metrics"]["performance.accuracy"] == 0.5
    half = (start + timedelta(minutes=30)).isoformat()
    report = json.loads(cli("monitor", "report", "web-hourly", "--since", half, "--json"))
    assert report["performance"]["overall"]["operations"]["requests"] == 60
    html = tmp_path / "out.html"
    assert "Wrote" in cli("monitor", "report", "web-hourly", "--html", str(html),
                          "--since", "3h")
    assert "Plotly.newPlot" in html.read_text()
    assert "since: expected an ISO 8601 time" in cli("monitor", "report", "web-hourly",
                                                     "--since", "yesterday", code=2)
    assert "Monitor not found" in cli("monitor", "run", "nope", code=3)


# --- the server: scheduler, /metrics, the Grafana dashboard ---------------------------------


def test_the_server_runs_due_monitors_and_exports_their_results(
        client: mc.Client, tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from mlcycle.server import create_app

    service = client.monitors
    service.create("web-live", "web", {"window": "2h", "interval": "1h",
                                       "segments": {"eu": "region = 'EU'"},
                                       "thresholds": {"accuracy": {"alert": 0.99}}})
    frame = make_frame(300, seed=12)
    wrong = frame["label"].to_numpy().copy()
    wrong[::10] = 1 - wrong[::10]
    write_logs(str(tmp_path / "logs"), frame, datetime.now(UTC) - timedelta(minutes=100),
               step_s=20, outputs=wrong)
    app = create_app(client.settings, stores=(client.service.store, client.service.artifacts),
                     monitor_poll_interval=0.05)
    with TestClient(app) as http:
        for _ in range(400):
            if service.results("web-live"):
                break
            time.sleep(0.05)
        [result] = service.results("web-live")  # one run: the next is an hour away
        assert result.status == "alert"
        scraped = http.get("/metrics")
    assert scraped.status_code == 200
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(scraped.text)
               for s in family.samples}
    base = (("deployment", "web"), ("monitor", "web-live"))
    assert samples[("mlcycle_monitor_status", base)] == 2
    assert samples[("mlcycle_monitor_quality",
                    (*base[:1], ("metric", "accuracy"), base[1], ("segment", "all")))] == \
        pytest.approx(0.9, abs=0.005)
    assert ("mlcycle_monitor_quality",
            (*base[:1], ("metric", "accuracy"), base[1], ("segment", "eu"))) in samples
    assert samples[("mlcycle_monitor_drift_score",
                    (*base[:1], ("feature", "age"), base[1]))] >= 0
    assert ("mlcycle_monitor_operations",
            (*base[:1], ("metric", "latency_p95_ms"), base[1], ("segment", "all"))) in samples


def test_one_server_process_holds_the_scheduler_lease_and_another_takes_over(
        client: mc.Client) -> None:
    from mlcycle.entities import Lock
    from mlcycle.server.monitoring import SchedulerLease
    from mlcycle.store.sql.locks import SqlLockStore

    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    store = SqlLockStore(client.service.store.engine)
    a, b = (SchedulerLease(store, stale_after_s=90, clock=lambda: now[0]) for _ in range(2))
    assert a() is True and b() is False  # one leads
    now[0] += timedelta(seconds=60)
    assert a() is True and b() is False  # the leader renews
    now[0] += timedelta(seconds=100)  # the leader stopped renewing: its lease is stale
    assert b() is True and a() is False
    b.release()
    assert a() is True  # a released lease is free at once
    # A holder whose process is gone (on this host) is replaced at once, however fresh.
    a.release()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    store.acquire_lock(Lock(SchedulerLease.NAME, "gone", int(dead.stdout), socket.gethostname(),
                            now[0]))
    assert b() is True


def test_of_two_server_processes_over_one_store_one_runs_a_due_monitor(
        client: mc.Client, tmp_path: Path) -> None:
    from mlcycle.server import create_app

    service = client.monitors
    service.create("web-once", "web", {"window": "2h", "interval": "1h"})
    write_logs(str(tmp_path / "logs"), make_frame(200, seed=13),
               datetime.now(UTC) - timedelta(minutes=60), step_s=10)
    stores = (client.service.store, client.service.artifacts)
    apps = [create_app(client.settings, stores=stores, monitor_poll_interval=0.05)
            for _ in range(2)]
    with TestClient(apps[0]), TestClient(apps[1]):
        for _ in range(200):
            if service.results("web-once"):
                break
            time.sleep(0.05)
        time.sleep(0.5)  # ten more beats of each: the follower must not run it again
    assert len(service.results("web-once")) == 1


def test_every_grafana_expr_names_an_exported_metric() -> None:
    import re

    from mlcycle.monitoring.prometheus import METRIC_NAMES

    path = Path(__file__).parents[2] / "deploy" / "grafana" / "mlcycle-monitoring.json"
    dashboard = json.loads(path.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 8
    for expr in exprs:
        names = set(re.findall(r"\bmlcycle_[a-z_]+", expr))
        assert names and names <= set(METRIC_NAMES), expr
    assert {n for e in exprs for n in re.findall(r"\bmlcycle_[a-z_]+", e)} == set(METRIC_NAMES)
