"""The web UI in a real browser: Debian's ``chromium`` driven by Playwright against a real
``mlcycle server`` app on 127.0.0.1, filled with runs logged through the SDK.

Each test saves a screenshot of the page it checks: into ``$MLCYCLE_SCREENSHOTS`` when set
(``MLCYCLE_SCREENSHOTS=docs/screenshots`` refreshes the README's pictures), else into a temporary
folder, so a test run leaves the working tree as it was.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import mlcycle as mc
from mlcycle.server.app import create_app

pytestmark = pytest.mark.slow

PG_ENV = "MLCYCLE_TEST_POSTGRES_URI"
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("MLCYCLE_SCREENSHOTS")
                   or Path(tempfile.gettempdir()) / "mlcycle-ui-screenshots")
TOKEN = "ui-test-token"
READ_TOKEN = "ui-test-read-token"
#: How long the browser may take to show something (not a timing under test: a bound).
WAIT_MS = 20_000


def _required(message: str) -> None:
    """Under `make test` (which installs chromium) a missing piece fails; elsewhere it skips."""
    if os.environ.get(PG_ENV) or os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _required("playwright is not installed: pip install -e '.[dev]'")
    expect.set_options(timeout=WAIT_MS)  # a bound on a loaded machine, not a timing
    if not os.path.exists(CHROMIUM):
        _required(f"{CHROMIUM} is missing: `make test` installs Debian's chromium through "
                  "scripts/chromium.sh")
    with sync_playwright() as p:
        # Never a downloaded browser: Debian's, headless. Running as root needs --no-sandbox.
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox"])
        yield browser
        browser.close()


@contextmanager
def _live(app: Any) -> Iterator[str]:
    """*app* under uvicorn on a free loopback port, in a thread: its base URL."""
    import uvicorn

    from mlcycle.cli.serve import listening_socket

    sock = listening_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(300):
            if server.started:
                break
            assert thread.is_alive(), "the server stopped while starting"
            time.sleep(0.05)
        assert server.started, "the server did not start within 15 s"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def _fill(home: Path) -> None:
    """Six runs of one experiment: two models, a learning rate each, a loss curve, and one run
    with a text artifact and a dataset version as its input."""
    import numpy as np
    import pandas as pd

    client = mc.Client(settings=mc.Settings(home=home))
    try:
        rng = np.random.default_rng(0)
        customers = client.data.ingest("customers", pd.DataFrame({
            "age": rng.normal(40, 12, 500).round(), "plan": rng.choice(["free", "pro"], 500)}))
        for i, (model, lr) in enumerate([("rf", 0.1), ("rf", 0.2), ("rf", 0.3),
                                         ("gbm", 0.1), ("gbm", 0.2), ("gbm", 0.3)]):
            with client.start_run(experiment="churn", name=f"{model}-{lr}",
                                  log_system=False) as run:
                run.log_params({"model": model, "lr": lr, "depth": 3 + i % 2})
                for step in range(10):
                    run.log_metric("loss", (1 + i) / (step + 1), step=step)
                run.log_metric("accuracy", 0.7 + i / 50)
                if i == 0:
                    run.log_text("trained on the churn table\n", "notes/readme.txt")
                    run.log_input("customers", f"v{customers.version}", digest=customers.digest,
                                  context={"role": "train"})
    finally:
        client.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    home = tmp_path_factory.mktemp("ui") / ".mlcycle"
    _fill(home)
    with _live(create_app(mc.Settings(home=home))) as base:
        yield base, home


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    yield page
    context.close()


def _shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def _open_experiment(page: Any, base: str) -> None:
    page.goto(f"{base}/")
    page.get_by_role("link", name="churn").click()
    page.get_by_role("table", name="Runs").wait_for()


def test_filter_runs(server: tuple[str, Path], page: Any) -> None:
    from playwright.sync_api import expect

    base, _ = server
    _open_experiment(page, base)
    rows = page.get_by_role("table", name="Runs").locator("tbody tr")
    expect(rows).to_have_count(6)
    _shot(page, "runs")

    page.get_by_label("Filter", exact=True).fill("params.model = 'gbm' and metrics.accuracy > 0.77")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(2)
    expect(page.get_by_role("link", name="gbm-0.2")).to_be_visible()
    expect(page.get_by_role("link", name="rf-0.1")).to_have_count(0)

    # A filter that does not parse: the page says where, and shows no runs.
    page.get_by_label("Filter", exact=True).fill("metrics.loss <")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_role("alert")).to_contain_text("expected a value")
    expect(page.get_by_role("table", name="Runs")).to_have_count(0)


def test_sort_choose_columns_and_page(server: tuple[str, Path], page: Any) -> None:
    from playwright.sync_api import expect

    base, _ = server
    _open_experiment(page, base)
    page.get_by_text("Columns", exact=True).click()
    page.get_by_role("checkbox", name="params.depth").uncheck()
    page.get_by_role("button", name="Show columns").click()
    table = page.get_by_role("table", name="Runs")
    expect(table.get_by_role("columnheader", name=re.compile("params.depth"))).to_have_count(0)
    expect(table.get_by_role("columnheader", name=re.compile("metrics.accuracy"))).to_be_visible()

    page.get_by_role("link", name="Sort by metrics.accuracy descending").click()
    first = table.locator("tbody tr").first
    expect(first).to_contain_text("gbm-0.3")  # the highest accuracy
    page.get_by_role("link", name="Sort by metrics.accuracy ascending").click()
    expect(first).to_contain_text("rf-0.1")

    # Two rows a page: three pages, walked with the server's page tokens.
    page.goto(page.url.split("?")[0] + "?page_size=2")
    rows = table.locator("tbody tr")
    seen: list[str] = []
    for _ in range(3):
        expect(rows).to_have_count(2)
        seen += rows.get_by_role("link").all_inner_texts()
        if len(seen) < 6:
            page.get_by_role("link", name="Next page").click()
    expect(page.get_by_role("link", name="Next page")).to_have_count(0)
    assert sorted(seen) == sorted(["rf-0.1", "rf-0.2", "rf-0.3", "gbm-0.1", "gbm-0.2", "gbm-0.3"])
    page.get_by_role("link", name="First page").click()
    expect(rows).to_have_count(2)


def test_run_page_and_artifact(server: tuple[str, Path], page: Any) -> None:
    from playwright.sync_api import expect

    base, _ = server
    _open_experiment(page, base)
    page.get_by_role("link", name="rf-0.1").click()
    expect(page.get_by_role("heading", name="rf-0.1")).to_be_visible()
    params = page.get_by_role("table", name="Params")
    expect(params.get_by_role("row", name="model rf")).to_be_visible()
    chart = page.locator('figure[data-metric="loss"]')
    expect(chart).to_have_attribute("data-points", "10")
    expect(chart.locator(".main-svg").first).to_be_visible()
    _shot(page, "run")

    inputs = page.get_by_role("table", name="Inputs")
    expect(inputs.get_by_role("row", name="customers v1 train")).to_be_visible()

    page.get_by_role("link", name="notes/").click()
    page.get_by_role("link", name="readme.txt").click()
    expect(page.get_by_label("Preview")).to_contain_text("trained on the churn table")


def test_dataset_version_from_a_runs_input(server: tuple[str, Path], page: Any) -> None:
    from playwright.sync_api import expect

    base, _ = server
    _open_experiment(page, base)
    page.get_by_role("link", name="rf-0.1").click()
    page.get_by_role("table", name="Inputs").get_by_role("link", name="v1").click()
    expect(page.get_by_role("heading", name="customers v1")).to_be_visible()
    schema = page.get_by_role("table", name="Schema")
    expect(schema.get_by_role("row", name=re.compile("^age double"))).to_be_visible()
    expect(page.locator('figure[data-metric="plan"]')).to_have_attribute("data-points", "2")
    expect(page.locator('figure[data-metric="age"] .main-svg').first).to_be_visible()
    _shot(page, "dataset")
    page.get_by_role("link", name="customers", exact=True).click()
    expect(page.get_by_role("table", name="Versions").locator("tbody tr")).to_have_count(1)


def test_compare_two_runs(server: tuple[str, Path], page: Any) -> None:
    from playwright.sync_api import expect

    base, _ = server
    _open_experiment(page, base)
    page.get_by_role("checkbox", name="Select rf-0.1").check()
    page.get_by_role("checkbox", name="Select gbm-0.2").check()
    page.get_by_role("button", name="Compare selected").click()
    expect(page.get_by_role("heading", name="Compare runs")).to_be_visible()
    params = page.get_by_role("table", name="Params compared")
    expect(params.get_by_role("row", name=re.compile("^model (rf gbm|gbm rf)$"))).to_be_visible()
    expect(page.locator('figure[data-metric="loss"]')).to_have_attribute("data-points", "10")
    expect(page.locator("#parallel")).to_have_attribute("data-lines", "2")
    # Only the params that differ: depth is 3 for both, so it goes.
    page.get_by_label("Only params that differ").check()
    expect(params.get_by_role("row", name=re.compile("^depth"))).to_be_hidden()
    expect(params.get_by_role("row", name=re.compile("^lr"))).to_be_visible()
    _shot(page, "compare")


def test_chart_follows_a_running_run(server: tuple[str, Path], page: Any) -> None:
    """The run page polls while the run runs: points logged after it opened show up."""
    from playwright.sync_api import expect

    base, home = server
    client = mc.Client(settings=mc.Settings(home=home))
    try:
        run = client.start_run(experiment="churn", name="live", log_system=False)
        for step in range(3):
            run.log_metric("val_loss", 1 / (step + 1), step=step)
        run.flush()
        page.goto(f"{base}/runs/{run.run_id}")
        chart = page.locator('figure[data-metric="val_loss"]')
        expect(chart).to_have_attribute("data-points", "3")
        for step in range(3, 8):
            run.log_metric("val_loss", 1 / (step + 1), step=step)
        run.flush()
        expect(chart).to_have_attribute("data-points", "8")
        run.end()
        expect(page.locator("#run-status")).to_have_text("finished")
    finally:
        client.close()


def _deploy_canary(home: Path) -> None:
    """Model ``churn`` with versions 1 and 2 (registered from the first two runs) and the
    deployment ``web``: version 1 stable, version 2 a canary, with traffic counted for both."""
    from datetime import UTC, datetime

    from mlcycle.deploy import DeploymentService
    from mlcycle.deploy.stats import VersionStats
    from mlcycle.entities import WorkerReport
    from mlcycle.registry import RegistryService

    client = mc.Client(settings=mc.Settings(home=home))
    try:
        runs = client.search_runs(experiments=["churn"], order_by=["attributes.name ASC"])
        # The registry without the tracking store: these runs logged no model files.
        registry = RegistryService(client.registry.store, actor="tester")
        for run in runs.items[:2]:
            registry.register_model("churn", f"runs:/{run.run_id}/model")
        registry.set_alias("churn", "production", 1)
        deploy = DeploymentService(client.deployments.store, registry)
        deploy.deploy("web", "models:/churn/1", actor="tester")
        d = deploy.deploy("web", "models:/churn/2", strategy="canary", actor="tester")
        stats = {1: VersionStats(), 2: VersionStats()}
        for i in range(200):
            stats[1 if i % 10 else 2].observe(0.004, error=i == 50)
        deploy.report(WorkerReport(
            deployment="web", worker_id="w1", heartbeat_at=datetime.now(UTC),
            revision=d.revision, rollout=d.rollout, ready_versions=(1, 2),
            stats={str(v): s.to_json() for v, s in stats.items()}))
    finally:
        client.close()


def test_models_and_deployment_promote_rollback(server: tuple[str, Path], page: Any) -> None:
    from playwright.sync_api import expect

    base, home = server
    _deploy_canary(home)
    page.goto(f"{base}/models")
    page.get_by_role("link", name="churn").click()
    versions = page.get_by_role("table", name="Versions")
    expect(versions.locator("tbody tr")).to_have_count(2)
    expect(versions.get_by_role("row", name=re.compile("^v1 @production"))).to_be_visible()

    page.get_by_role("link", name="Deployments").click()
    page.get_by_role("link", name="web").click()
    expect(page.locator("#phase")).to_have_text("canary")
    rows = page.get_by_role("table", name="Versions")
    expect(rows.get_by_role("row", name=re.compile(r"^v2 candidate \d+% 20 "))).to_be_visible()
    _shot(page, "deployment")

    # Saying no to the confirmation changes nothing.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Promote v2").click()
    expect(page.locator("#phase")).to_have_text("canary")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Promote v2").click()
    expect(page.locator("#phase")).to_have_text("stable")
    history = page.get_by_role("table", name="History")
    expect(history.get_by_role("row", name=re.compile("promoted .* web-ui"))).to_be_visible()
    expect(rows.get_by_role("row", name=re.compile("^v2 stable 100%"))).to_be_visible()

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Roll back to v1").click()
    expect(rows.get_by_role("row", name=re.compile("^v1 stable 100%"))).to_be_visible()
    expect(history.get_by_role("row", name=re.compile("rolled_back .* web-ui"))).to_be_visible()


def _monitor_results(home: Path) -> None:
    """Monitor ``web-watch`` of deployment ``web`` with six hourly results, as the monitor
    service stores them (drift per feature, accuracy per segment, latency), drift rising in
    the last two, and the alert that turned it red."""
    from datetime import UTC, datetime, timedelta

    from mlcycle.entities import Alert, Monitor, MonitorResult

    client = mc.Client(settings=mc.Settings(home=home))
    try:
        store = client.monitors.store
        now = datetime.now(UTC).replace(microsecond=0)
        store.create_monitor(Monitor(name="web-watch", deployment="web", created_at=now,
                                     updated_at=now))
        for hour in range(6):
            drifting = hour >= 4
            stored = store.log_result(MonitorResult(
                result_id=0, monitor="web-watch", run_at=now + timedelta(hours=hour),
                window_start=now + timedelta(hours=hour - 1),
                window_end=now + timedelta(hours=hour), status="alert" if drifting else "ok",
                metrics={"drift.score.age": 0.4 if drifting else 0.05,
                         "drift.score.plan": 0.02, "performance.accuracy": 0.9,
                         "performance.accuracy[eu]": 0.92, "performance.accuracy[us]": 0.88,
                         "operations.latency_p95_ms": 4.0 + hour}))
            if hour == 4:
                store.log_alert(Alert(alert_id=0, monitor="web-watch", time=stored.run_at,
                                      status="alert", previous="ok", result_id=stored.result_id,
                                      message="drift in 1 of 2 features (age)"))
    finally:
        client.close()


def test_monitor_drift_chart(server: tuple[str, Path], page: Any) -> None:
    from playwright.sync_api import expect

    base, home = server
    _monitor_results(home)
    page.goto(f"{base}/")
    page.get_by_role("link", name="Monitors").click()
    page.get_by_role("link", name="web-watch").click()
    drift = page.locator('figure[data-metric="drift.score"]')
    expect(drift).to_have_attribute("data-lines", "2")  # age and plan
    expect(drift).to_have_attribute("data-points", "6")
    expect(drift.locator(".main-svg").first).to_be_visible()
    accuracy = page.locator('figure[data-metric="performance.accuracy"]')
    expect(accuracy).to_have_attribute("data-lines", "3")  # eu, overall, us
    alerts = page.get_by_role("table", name="Alerts")
    expect(alerts.get_by_role("row", name=re.compile("alert ok drift in 1 of 2"))).to_be_visible()
    _shot(page, "monitor")
    # The deployment links back to what watches it.
    page.get_by_role("main").get_by_role("link", name="web", exact=True).click()
    expect(page.get_by_role("link", name="web-watch")).to_be_visible()
    expect(page.get_by_text("No retraining has been triggered")).to_be_visible()


def test_pages_fit_800_px(server: tuple[str, Path], browser: Any) -> None:
    base, _ = server
    context = browser.new_context(viewport={"width": 800, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        _open_experiment(page, base)
        # Wide tables scroll in their own box; the page itself does not scroll sideways.
        assert page.evaluate("document.documentElement.scrollWidth") <= 800
        _shot(page, "runs-800px")
        page.get_by_role("link", name="rf-0.1").click()
        page.locator('figure[data-metric="loss"][data-points="10"]').wait_for()
        assert page.evaluate("document.documentElement.scrollWidth") <= 800
    finally:
        context.close()


def test_empty_and_missing_pages(tmp_path: Path, browser: Any) -> None:
    from playwright.sync_api import expect

    with _live(create_app(mc.Settings(home=tmp_path / ".mlcycle"))) as base:
        context = browser.new_context(viewport={"width": 1280, "height": 700})
        try:
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            page.goto(f"{base}/")
            expect(page.get_by_text("No experiments yet")).to_be_visible()
            response = page.goto(f"{base}/runs/no-such-run")
            assert response is not None and response.status == 404
            expect(page.get_by_role("alert")).to_contain_text("no-such-run")
            page.goto(f"{base}/compare")
            expect(page.get_by_role("alert")).to_contain_text("between 2 and 20 runs")
        finally:
            context.close()


def test_token_login(tmp_path: Path, browser: Any) -> None:
    """With tokens set, pages need one, as the API does: a login form, then a cookie; a
    read-only token may look but not promote."""
    from playwright.sync_api import expect

    home = tmp_path / ".mlcycle"
    _fill(home)
    _deploy_canary(home)
    settings = mc.Settings(home=home, token=TOKEN, read_tokens=[READ_TOKEN])
    with _live(create_app(settings)) as base:
        context = browser.new_context(viewport={"width": 1280, "height": 700})
        try:
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            page.goto(f"{base}/experiments")
            expect(page.get_by_role("heading", name="Log in")).to_be_visible()
            _shot(page, "login")
            page.get_by_label("Token").fill("wrong")
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_role("alert")).to_contain_text("not valid")
            page.get_by_label("Token").fill(TOKEN)
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_role("link", name="churn")).to_be_visible()
            page.get_by_role("button", name="Log out").click()
            expect(page.get_by_role("heading", name="Log in")).to_be_visible()

            page.goto(f"{base}/deployments/web")
            page.get_by_label("Token").fill(READ_TOKEN)
            page.get_by_role("button", name="Log in").click()
            expect(page.locator("#phase")).to_have_text("canary")
            page.once("dialog", lambda dialog: dialog.accept())
            page.get_by_role("button", name="Promote v2").click()
            expect(page.get_by_role("alert")).to_contain_text("may only read")
            page.goto(f"{base}/deployments/web")
            expect(page.locator("#phase")).to_have_text("canary")
        finally:
            context.close()
