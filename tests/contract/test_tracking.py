"""The tracking contract: every test runs on SQLite, on PostgreSQL and through a live server."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import mlcycle as mc
from mlcycle.errors import (
    ArtifactNotFound,
    ExperimentAlreadyExists,
    ExperimentNotFound,
    InvalidFilter,
    InvalidInputError,
    InvalidStateError,
    RunNotFound,
)


def test_experiments_create_rename_delete_restore(backend: mc.Client) -> None:
    exp = backend.create_experiment("churn", description="monthly churn")
    assert backend.get_experiment("churn").experiment_id == exp.experiment_id
    assert backend.get_experiment(exp.experiment_id).description == "monthly churn"
    with pytest.raises(ExperimentAlreadyExists):
        backend.create_experiment("churn")
    renamed = backend.rename_experiment("churn", "churn-v2")
    assert renamed.name == "churn-v2"
    backend.delete_experiment("churn-v2")
    assert "churn-v2" not in [e.name for e in backend.list_experiments()]
    assert "churn-v2" in [e.name for e in backend.list_experiments(include_deleted=True)]
    backend.restore_experiment(exp.experiment_id)
    assert "churn-v2" in [e.name for e in backend.list_experiments()]
    with pytest.raises(ExperimentNotFound):
        backend.get_experiment("no-such-experiment-id")


def test_run_status_follows_the_block(backend: mc.Client) -> None:
    with backend.start_run(experiment="e", name="ok", log_system=False) as ok:
        pass
    assert backend.get_run(ok.run_id).status is mc.RunStatus.FINISHED
    assert backend.get_run(ok.run_id).end_time is not None

    with pytest.raises(ZeroDivisionError):
        with backend.start_run(experiment="e", log_system=False) as bad:
            1 / 0  # noqa: B018
    assert backend.get_run(bad.run_id).status is mc.RunStatus.FAILED

    with pytest.raises(KeyboardInterrupt), backend.start_run(experiment="e", log_system=False) as k:
        raise KeyboardInterrupt
    assert backend.get_run(k.run_id).status is mc.RunStatus.KILLED


def test_nested_runs_record_their_parent(backend: mc.Client) -> None:
    with backend.start_run(experiment="e", name="sweep", log_system=False) as parent:
        with backend.start_run(name="trial-1", log_system=False) as child:
            child.log_metric("loss", 0.5)
        with backend.start_run(name="other", nested=False, log_system=False) as top:
            pass
    assert backend.get_run(child.run_id).parent_run_id == parent.run_id
    assert backend.get_run(child.run_id).experiment_id == parent.experiment_id
    assert backend.get_run(top.run_id).parent_run_id is None
    children = backend.search_runs(filter=f"attributes.parent_run_id = '{parent.run_id}'")
    assert [r.name for r in children] == ["trial-1"]


def test_params_tags_metrics_round_trip(backend: mc.Client) -> None:
    with backend.start_run(experiment="e", params={"depth": 3, "model": "rf"},
                           tags={"team": "ml"}, log_system=False) as run:
        run.log_param("lr", 0.1)
        run.set_tags({"stage": "dev"})
        for step in range(100):
            run.log_metric("loss", 1 / (step + 1), step=step)
        run.log_metrics({"acc": 0.9, "nan": math.nan, "inf": math.inf, "ninf": -math.inf})
    got = backend.get_run(run.run_id)
    assert got.params == {"depth": "3", "model": "rf", "lr": "0.1"}
    assert got.tags["team"] == "ml" and got.tags["stage"] == "dev"
    assert got.metrics["loss"] == pytest.approx(0.01)
    assert math.isnan(got.metrics["nan"])
    assert got.metrics["inf"] == math.inf and got.metrics["ninf"] == -math.inf
    history = backend.get_metric_history(run.run_id, "loss")
    assert list(history.steps) == list(range(100))
    assert history.values[0] == 1.0 and history.values[-1] == pytest.approx(0.01)
    assert len(history.timestamps) == 100


def test_a_param_is_set_once(backend: mc.Client) -> None:
    with backend.start_run(experiment="e", params={"depth": 3}, log_system=False) as run:
        run.log_param("depth", 3)  # the same value again is fine
        with pytest.raises(InvalidInputError, match="depth"):
            run.log_param("depth", 5)
    assert backend.get_run(run.run_id).params["depth"] == "3"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda r: r.log_metric("bad key!", 1.0), "metric key"),
        (lambda r: r.log_metric("loss", "high"), "metrics.loss"),
        (lambda r: r.log_metric("loss", 1.0, step=1.5), "metrics.loss"),
        (lambda r: r.log_param("", 1), "param key"),
        (lambda r: r.log_param("p", "x" * 7000), "params.p"),
        (lambda r: r.set_tag("../etc", "x"), "tag key"),
        (lambda r: r.log_metric("k" * 300, 1.0), "metric key"),
    ],
)
def test_bad_input_names_the_field(backend: mc.Client, call, field: str) -> None:  # type: ignore[no-untyped-def]
    with backend.start_run(experiment="e", log_system=False) as run:
        with pytest.raises(InvalidInputError) as err:
            call(run)
        assert field in str(err.value)
    assert backend.get_run(run.run_id).status is mc.RunStatus.FINISHED


def test_batched_metrics_bypass_validation_nowhere(backend: mc.Client) -> None:
    with backend.start_run(experiment="e", log_system=False) as run:
        with pytest.raises(InvalidInputError, match=r"metrics\.x"):
            run.log_batch(metrics=[("x", "nope", 0)])
        run.log_batch(metrics=[mc.Metric("x", 1.0, i, 1_700_000_000_000 + i) for i in range(1000)])
        assert len(backend.get_metric_history(run.run_id, "x")) == 1000


def test_unknown_run_is_not_found(backend: mc.Client) -> None:
    with pytest.raises(RunNotFound):
        backend.get_run("0" * 32)
    with pytest.raises(RunNotFound):
        backend.log_batch("0" * 32, params={"a": 1})
    with pytest.raises(RunNotFound):
        backend.get_metric_history("0" * 32, "loss")


def _make_runs(client: mc.Client) -> dict[str, str]:
    ids = {}
    specs = [
        ("a", "rf", "ml", 0.2), ("b", "rf", "data", 0.7), ("c", "gbm", "ml", 0.4),
        ("d", "lr", "ml", 0.9), ("e", "gbm", "ops", 0.1),
    ]
    for name, model, team, rmse in specs:
        with client.start_run(experiment="search", name=name, params={"model": model},
                              tags={"team": team}, log_system=False) as run:
            run.log_metric("rmse", rmse)
        ids[name] = run.run_id
    return ids


def test_search_filter_language(backend: mc.Client) -> None:
    _make_runs(backend)

    def names(expr: str, **kw) -> list[str]:  # type: ignore[no-untyped-def]
        page = backend.search_runs(experiments=["search"], filter=expr, **kw)
        return sorted(r.name for r in page)

    assert names("metrics.rmse < 0.5 and params.model = 'rf'") == ["a"]
    assert names("metrics.rmse <= 0.4") == ["a", "c", "e"]
    assert names("metrics.rmse >= 0.7 or params.model = 'gbm'") == ["b", "c", "d", "e"]
    assert names("tags.team != 'ml'") == ["b", "e"]
    assert names("params.model IN ('gbm', 'lr')") == ["c", "d", "e"]
    assert names("params.model NOT IN ('gbm', 'lr')") == ["a", "b"]
    assert names("params.model LIKE 'g%'") == ["c", "e"]
    assert names("params.model LIKE 'G%'") == []
    assert names("params.model ILIKE 'G%'") == ["c", "e"]
    assert names("attributes.status = 'finished' and metrics.rmse > 0.8") == ["d"]
    assert names("attributes.name = 'a' or (tags.team = 'ops' and metrics.rmse < 1)") == ["a", "e"]
    assert names("metrics.missing > 0") == []


def test_search_order_and_pages(backend: mc.Client) -> None:
    _make_runs(backend)
    ordered = backend.search_runs(experiments=["search"], order_by=["metrics.rmse DESC"])
    assert [r.name for r in ordered] == ["d", "b", "c", "a", "e"]
    seen: list[str] = []
    token = None
    while True:
        page = backend.search_runs(experiments=["search"], order_by=["metrics.rmse"],
                                   max_results=2, page_token=token)
        seen += [r.name for r in page]
        token = page.next_page_token
        if token is None:
            break
    assert seen == ["e", "a", "c", "b", "d"]


def test_invalid_filter_points_at_the_token(backend: mc.Client) -> None:
    with pytest.raises(InvalidFilter) as err:
        backend.search_runs(filter="metrics.rmse < 0.5 and params.model == rf")
    assert err.value.details["position"] == 39  # the unquoted rf
    assert "^^" in str(err.value)


def test_artifacts_are_stored_once_and_come_back(backend: mc.Client, tmp_path: Path) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(b"\x00weights" * 1000)
    folder = tmp_path / "report"
    (folder / "plots").mkdir(parents=True)
    (folder / "summary.txt").write_text("ok")
    (folder / "plots" / "roc.svg").write_text("<svg/>")
    with backend.start_run(experiment="e", log_system=False) as a:
        [rec] = a.log_artifact(model)
        a.log_artifact(folder)
        a.log_text("hello", "notes/readme.md")
    with backend.start_run(experiment="e", log_system=False) as b:
        [rec_b] = b.log_artifact(model, "weights/model.bin")
    assert rec.digest == rec_b.digest  # same bytes, one object
    paths = [x.path for x in backend.list_artifacts(a.run_id)]
    assert paths == ["model.bin", "notes/readme.md", "report/plots/roc.svg", "report/summary.txt"]
    assert [x.path for x in backend.list_artifacts(a.run_id, "report")] == [
        "report/plots/roc.svg", "report/summary.txt"]
    assert backend.read_artifact(a.run_id, "notes/readme.md") == b"hello"
    out = backend.download_artifacts(a.run_id, "report", tmp_path / "dl")
    assert (out / "plots" / "roc.svg").read_text() == "<svg/>"
    with pytest.raises(ArtifactNotFound):
        backend.read_artifact(a.run_id, "nope.txt")


@pytest.mark.parametrize("path", ["../escape.txt", "/etc/passwd", "a/../../b", "a\\b", "a//b"])
def test_artifact_paths_cannot_escape(backend: mc.Client, tmp_path: Path, path: str) -> None:
    src = tmp_path / "f.txt"
    src.write_text("x")
    with backend.start_run(experiment="e", log_system=False) as run:
        with pytest.raises(InvalidInputError, match="artifact path"):
            run.log_artifact(src, path)


def test_inputs_and_results(backend: mc.Client) -> None:
    with backend.start_run(experiment="e", log_system=False) as run:
        run.log_input("flights", "v3", digest="abc", context={"role": "train"})
        run.log_result("confusion_matrix", [[50, 2], [3, 45]])
        run.log_result("report", {"auc": 0.93, "classes": ["on-time", "late"]})
    got = backend.get_run(run.run_id)
    assert [(i.dataset, i.version, i.context["role"]) for i in got.inputs] == [
        ("flights", "v3", "train")]
    assert got.results["confusion_matrix"] == [[50, 2], [3, 45]]
    assert got.results["report"]["auc"] == 0.93


def test_compare_aligns_histories_by_step(backend: mc.Client) -> None:
    with backend.start_run(experiment="e", params={"lr": 0.1, "depth": 3}, log_system=False) as a:
        for s in (0, 1, 2):
            a.log_metric("loss", 1.0 - s / 10, step=s)
    with backend.start_run(experiment="e", params={"lr": 0.2, "depth": 3}, log_system=False) as b:
        for s in (1, 3):
            b.log_metric("loss", 2.0 - s / 10, step=s)
    cmp = backend.compare_runs([a.run_id, b.run_id])
    assert cmp.params["lr"] == ["0.1", "0.2"]
    assert cmp.differing_params == ["lr"]
    steps, rows = cmp.histories["loss"]
    assert steps == [0, 1, 2, 3]
    assert rows[0] == [1.0, 0.9, 0.8, None]
    assert rows[1] == [None, 1.9, None, 1.7]


def test_delete_soft_then_hard(backend: mc.Client) -> None:
    with backend.start_run(experiment="e", log_system=False) as run:
        run.log_metric("m", 1.0)
    backend.delete_run(run.run_id)
    assert backend.search_runs(experiments=["e"]).items == []
    assert len(backend.search_runs(experiments=["e"], include_deleted=True)) == 1
    with pytest.raises(InvalidStateError):
        backend.log_batch(run.run_id, params={"late": 1})
    backend.restore_run(run.run_id)
    assert len(backend.search_runs(experiments=["e"])) == 1
    backend.delete_run(run.run_id, hard=True)
    with pytest.raises(RunNotFound):
        backend.get_run(run.run_id)


def test_system_facts_are_captured(backend: mc.Client) -> None:
    with backend.start_run(experiment="e") as run:
        pass
    got = backend.get_run(run.run_id)
    assert got.tags["mlcycle.python"].count(".") == 2
    assert "mlcycle.command" in got.tags
    reqs = backend.read_artifact(run.run_id, "system/requirements.txt").decode()
    assert "mlcycle==" in reqs.lower() or "mlcycle ==" in reqs.lower()
