"""The web UI's pages over HTTP, without a browser (``tests/e2e/test_ui.py`` drives chromium):
what each page answers, its errors as pages, the token cookie, ``mlcycle ui``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import mlcycle as mc
from mlcycle.cli.main import app as cli
from mlcycle.server.app import create_app
from mlcycle.server.ui._session import safe_next

TOKEN = "pages-token"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / ".mlcycle"
    client = mc.Client(settings=mc.Settings(home=home))
    try:
        for i in range(3):
            with client.start_run(experiment="exp", name=f"run-{i}", log_system=False) as run:
                run.log_params({"lr": str(i), "with space": "x"})
                run.log_metric("loss", float("nan") if i == 2 else 1.0 / (i + 1), step=0)
                run.log_metric("loss", 0.5, step=1)
                if i == 0:
                    run.log_text("<script>alert(1)</script>", "report.html")
    finally:
        client.close()
    return home


@pytest.fixture
def web(home: Path) -> Iterator[TestClient]:
    with TestClient(create_app(mc.Settings(home=home))) as client:
        yield client


def _experiment(web: TestClient) -> str:
    match = re.search(r'href="/experiments/([0-9a-f]+)"', web.get("/experiments").text)
    assert match
    return match.group(1)


def _run_ids(html: str) -> list[str]:
    return re.findall(r'name="run_id" value="([0-9a-f]+)"', html)


def test_runs_table_pages_with_the_stores_tokens(web: TestClient) -> None:
    url = f"/experiments/{_experiment(web)}"
    first = web.get(url, params={"page_size": 2})
    assert first.status_code == 200 and len(_run_ids(first.text)) == 2
    token = re.search(r'page_token=([^&"]+)', first.text)
    assert token
    second = web.get(url, params={"page_size": 2, "page_token": token.group(1), "page": 2})
    assert len(_run_ids(second.text)) == 1
    assert not set(_run_ids(first.text)) & set(_run_ids(second.text))
    assert "Next page" not in second.text and "First page" in second.text


def test_a_filter_error_is_shown_in_the_page(web: TestClient) -> None:
    page = web.get(f"/experiments/{_experiment(web)}", params={"filter": "metrics.loss <<"})
    assert page.status_code == 200
    assert 'role="alert"' in page.text and "position" in page.text
    assert _run_ids(page.text) == []


def test_a_column_key_with_a_space_sorts(web: TestClient) -> None:
    page = web.get(f"/experiments/{_experiment(web)}",
                   params={"col": "params.with space", "order_by": "params.`with space` ASC"})
    assert page.status_code == 200 and 'role="alert"' not in page.text
    assert len(_run_ids(page.text)) == 3


def test_unknown_things_are_error_pages(web: TestClient) -> None:
    missing = web.get("/runs/nope")
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
    assert "nope" in missing.text
    assert web.get("/experiments/nope").status_code == 404
    bad_column = web.get(f"/experiments/{_experiment(web)}", params={"col": "tags.x"})
    assert bad_column.status_code == 400 and "params.&lt;key&gt;" in bad_column.text
    assert web.get("/compare", params={"run_id": "a"}).status_code == 400


def test_metrics_json_has_every_point_and_no_nan(web: TestClient) -> None:
    ids = _run_ids(web.get(f"/experiments/{_experiment(web)}").text)
    for run_id in ids:
        body = web.get(f"/runs/{run_id}/metrics.json").json()
        assert body["status"] == "finished"
        assert body["metrics"]["loss"]["steps"] == [0, 1]
    values = [web.get(f"/runs/{r}/metrics.json").json()["metrics"]["loss"]["values"][0]
              for r in ids]
    assert None in values  # the NaN, as a gap


def test_compare_embeds_its_data_escaped(web: TestClient) -> None:
    ids = _run_ids(web.get(f"/experiments/{_experiment(web)}").text)
    page = web.get("/compare", params={"run_id": ids})
    assert page.status_code == 200
    assert 'id="compare-data"' in page.text and "NaN" not in page.text


def test_html_artifacts_are_sandboxed(web: TestClient) -> None:
    ids = _run_ids(web.get(f"/experiments/{_experiment(web)}").text)
    run_id = next(r for r in ids if "report.html" in web.get(f"/runs/{r}").text)
    raw = web.get(f"/runs/{run_id}/raw/report.html")
    assert raw.headers["content-security-policy"] == "sandbox"
    assert raw.text == "<script>alert(1)</script>"
    assert "<iframe" in web.get(f"/runs/{run_id}/artifacts/report.html").text


def test_plotly_is_served_from_the_installed_package(web: TestClient) -> None:
    js = web.get("/static/plotly.min.js")
    assert js.status_code == 200 and b"plotly" in js.content[:2000].lower()
    assert web.get("/static/ui.css").status_code == 200
    assert web.get("/static/nope.js").status_code == 404


def test_pages_need_the_token_and_login_keeps_it(home: Path) -> None:
    with TestClient(create_app(mc.Settings(home=home, token=TOKEN))) as web:
        page = web.get("/experiments?x=1", follow_redirects=False)
        assert page.status_code == 303
        assert page.headers["location"] == "/login?next=%2Fexperiments%3Fx%3D1"
        assert web.get("/runs/x/metrics.json", follow_redirects=False).status_code == 303
        wrong = web.post("/login", data={"token": "nope", "next": "/experiments"})
        assert wrong.status_code == 401 and "not valid" in wrong.text
        ok = web.post("/login", data={"token": TOKEN, "next": "https://evil.example/"},
                      follow_redirects=False)
        assert ok.status_code == 303 and ok.headers["location"] == "/"
        cookie = ok.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert web.get("/experiments").status_code == 200
        # The API still wants its header: the cookie is the pages' only.
        assert web.get("/api/v1/experiments").status_code == 401


@pytest.mark.parametrize(("value", "expected"), [
    ("/runs/x?a=1", "/runs/x?a=1"), ("//evil.example", "/"), ("https://x", "/"),
    ("/\\evil", "/"), ("", "/"), (None, "/"),
])
def test_login_only_sends_back_to_this_server(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


def test_mlcycle_ui_serves_the_local_store_on_loopback(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: calls.append((app, kw)))
    result = CliRunner().invoke(cli, ["--tracking-uri", f"sqlite:///{home / 'mlcycle.db'}",
                                      "ui", "--port", "5055"])
    assert result.exit_code == 0, result.output
    served, options = calls[0]
    assert type(served).__name__ == "FastAPI"
    assert options == {"host": "127.0.0.1", "port": 5055, "log_level": "warning"}


def test_dataset_pages(home: Path) -> None:
    import pandas as pd

    client = mc.Client(settings=mc.Settings(home=home))
    try:
        client.data.ingest("points", pd.DataFrame({"x": [1.0, 2.0, 2.0, 5.0], "c": list("aabb")}))
    finally:
        client.close()
    with TestClient(create_app(mc.Settings(home=home))) as web:
        assert 'href="/datasets/points"' in web.get("/datasets").text
        page = web.get("/datasets/points/versions/1")
        assert page.status_code == 200
        assert 'aria-label="Schema"' in page.text and 'id="profile-data"' in page.text
        assert web.get("/datasets/points/versions/9").status_code == 404
        assert web.get("/datasets/nope").status_code == 404


def test_empty_registry_and_deployments_say_so(web: TestClient) -> None:
    for path, text in [("/models", "No registered models yet"),
                       ("/deployments", "No deployments yet"),
                       ("/datasets", "No datasets yet"),
                       ("/monitors", "No monitors yet")]:
        page = web.get(path)
        assert page.status_code == 200 and text in page.text


def test_monitor_series_gather_features_and_segments() -> None:
    from datetime import UTC, datetime

    from mlcycle.entities import MonitorResult
    from mlcycle.server.ui._monitors import series_charts

    result = MonitorResult(
        result_id=1, monitor="m", run_at=datetime(2026, 1, 1, tzinfo=UTC), window_start=None,
        window_end=datetime(2026, 1, 1, tzinfo=UTC), status="ok",
        metrics={"drift.score.age": 0.1, "drift.score.plan": 0.2, "drift.share": 0.5,
                 "performance.accuracy[eu]": 0.9, "performance.accuracy": float("nan"),
                 "operations.error_rate": 0.0})
    charts = {c["title"]: {line["name"]: line["y"] for line in c["lines"]}
              for c in series_charts([result])}
    assert list(charts) == ["drift.score", "drift.share", "performance.accuracy",
                            "operations.error_rate"]
    assert charts["drift.score"] == {"age": [0.1], "plan": [0.2]}
    assert charts["performance.accuracy"] == {"eu": [0.9], "overall": [None]}


def test_model_page_shows_the_lineage_from_data_to_deployment(home: Path) -> None:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    client = mc.Client(settings=mc.Settings(home=home))
    try:
        frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0, 0, 1, 1]})
        client.data.ingest("points", frame)
        with client.start_run(experiment="exp", name="fit", log_system=False) as run:
            rows = client.data.load("points", format="pandas", run_id=run.run_id,
                                    context="train")
            model = LogisticRegression().fit(rows[["x"]], rows["y"])
            info = run.log_model(model, input_example=rows[["x"]].head(2))
        client.register_model(info.model_uri, "points-clf")
        client.register_model(info.model_uri, "points-clf")
        client.deployments.deploy("web", "models:/points-clf/1")
        client.deployments.deploy("web", "models:/points-clf/2", strategy="canary")
        client.registry.set_alias("points-clf", "production", 1)
        client.evaluate_model("models:/points-clf/2", frame, target="y",
                              gates="gates:\n  - {metric: accuracy, min: 0.5}\n")
        run_id = run.run_id
    finally:
        client.close()
    with TestClient(create_app(mc.Settings(home=home))) as web:
        page = web.get("/models/points-clf").text
    # The evaluation as tables: metrics against the baseline, the gates, and JSON without curves.
    evaluation = page[page.index("Evaluations and gate"):]
    assert "v2: gates passed" in evaluation
    metrics = evaluation[evaluation.index('aria-label="Metrics of v2"'):]
    assert "<td>accuracy</td>" in metrics[:metrics.index("</table>")]
    assert "production" in metrics[:metrics.index("</tbody>")]  # the baseline's column
    gates = evaluation[evaluation.index('aria-label="Gates of v2"'):]
    assert "accuracy &gt;= 0.5" in gates[:gates.index("</table>")]
    raw = evaluation[evaluation.index('aria-label="Evaluation of v2"'):]
    assert "confusion_matrix" not in raw and "curves" not in raw
    lineage = page[page.index('aria-label="Lineage"'):page.index("Evaluations and gate")]
    assert lineage.index("<strong>v2</strong>") < lineage.index("<strong>v1</strong>")
    assert 'href="/datasets/points/versions/1"' in lineage and "(train)" in lineage
    assert f'href="/runs/{run_id}"' in lineage
    assert '<a href="/deployments/web">web</a> (candidate)' in lineage
    assert '<a href="/deployments/web">web</a> (stable)' in lineage


def test_deployment_buttons_act_on_what_was_shown_and_only_from_this_site(home: Path) -> None:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    client = mc.Client(settings=mc.Settings(home=home))
    try:
        frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0, 0, 1, 1]})
        with client.start_run(experiment="exp", name="fit", log_system=False) as run:
            info = run.log_model(LogisticRegression().fit(frame[["x"]], frame["y"]),
                                 input_example=frame[["x"]].head(2))
        for _ in range(2):
            client.register_model(info.model_uri, "points-clf")
        client.deployments.deploy("web", "models:/points-clf/1")
        shown = client.deployments.deploy("web", "models:/points-clf/2", strategy="canary")
    finally:
        client.close()
    with TestClient(create_app(mc.Settings(home=home))) as web:
        page = web.get("/deployments/web").text
        assert f'name="revision" value="{shown.revision}"' in page
        elsewhere = web.post("/deployments/web/promote", data={"revision": shown.revision},
                             headers={"Sec-Fetch-Site": "cross-site"})
        assert elsewhere.status_code == 403
        assert web.post("/deployments/web/promote", data={"revision": shown.revision},
                        headers={"Origin": "http://evil.example"}).status_code == 403
        stale = web.post("/deployments/web/rollback", data={"revision": shown.revision - 1},
                         follow_redirects=False)
        assert stale.status_code == 409 and "changed since the page was shown" in stale.text
        done = web.post("/deployments/web/promote", data={"revision": shown.revision},
                        headers={"Sec-Fetch-Site": "same-origin"}, follow_redirects=False)
        assert done.status_code == 303
    check = mc.Client(settings=mc.Settings(home=home))
    try:
        assert check.deployments.get("web").stable_version == 2
    finally:
        check.close()


def test_artifact_links_survive_odd_file_names(home: Path) -> None:
    client = mc.Client(settings=mc.Settings(home=home))
    try:
        with client.start_run(experiment="exp", name="odd", log_system=False) as run:
            run.log_text("hello", "notes/odd name #1?.txt")
    finally:
        client.close()
    with TestClient(create_app(mc.Settings(home=home))) as web:
        listing = web.get(f"/runs/{run.run_id}?prefix=notes").text
        link = re.search(r'href="(/runs/[^"]+/artifacts/[^"]+)"', listing)
        assert link and "%23" in link.group(1) and "%3F" in link.group(1)
        page = web.get(link.group(1).replace("&amp;", "&"))
        assert page.status_code == 200 and "hello" in page.text
        raw = re.search(r'href="(/runs/[^"]+/raw/[^"]+)" download', page.text)
        assert raw and web.get(raw.group(1)).text == "hello"
