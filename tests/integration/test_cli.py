"""The ``mlcycle`` command line over a real SQLite store in a temporary folder (and, once, over
a live server): tables, ``--json``, prompts, errors and exit codes."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

import mlcycle as mc
from mlcycle import errors
from mlcycle.cli import output
from mlcycle.cli import server as server_cli
from mlcycle.cli.main import app, exit_code_for
from mlcycle.cli.output import jsonable

runner = CliRunner()


@dataclass(frozen=True)
class Store:
    uri: str
    runs: dict[str, str]  # run name -> run id

    def cli(self, *args: str, input: str | None = None) -> Result:
        return runner.invoke(app, ["--tracking-uri", self.uri, *args], input=input)

    def client(self) -> mc.Client:
        return mc.Client(self.uri)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """Experiment ``iris``: three finished runs (C = 0.1, 1.0, 10.0); ``mnist``: one run still
    'running', as a killed process leaves it."""
    monkeypatch.setenv("MLCYCLE_ARTIFACT_URI", str(tmp_path / "artifacts"))
    # Wide enough for every column of every table, whatever COLUMNS was at import.
    monkeypatch.setattr(output.console, "width", 200)
    uri = f"sqlite:///{tmp_path}/m.db"
    runs: dict[str, str] = {}
    with mc.Client(uri) as client:
        for c in (0.1, 1.0, 10.0):
            params = {"C": c, "kernel": "rbf"}
            with client.start_run(experiment="iris", name=f"svc-{c}", params=params,
                                  log_system=False) as run:
                for step in range(3):
                    run.log_metric("loss", 1 / (step + 1) / c, step)
                run.log_metric("acc", 0.9 + c / 100)
            runs[run.name] = run.run_id
        with client.start_run(run_id=runs["svc-0.1"]) as run:
            run.log_metric("grad", math.nan)
            run.log_text("hello", "model/notes.txt")
            run.log_result("confusion", [[5, 1], [0, 4]])
            run.log_input("iris-data", "v1", context={"role": "train"})
            run.set_tag("team", "[bold]vision")  # rich markup must come out as typed
        runs["stuck"] = client.start_run(experiment="mnist", name="stuck", log_system=False).run_id
    return Store(uri, runs)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.exit_code, result.output, result.exception)
    return result


def as_json(result: Result) -> Any:
    return json.loads(ok(result).stdout)


# --- runs list --------------------------------------------------------------------------------
def test_runs_list_shows_short_ids_params_and_metrics(store: Store) -> None:
    out = ok(store.cli("runs", "list", "--experiment", "iris")).stdout
    assert "3 runs" in out
    for name in ("svc-0.1", "svc-1.0", "svc-10.0"):
        assert store.runs[name][:8] in out and name in out
    assert store.runs["svc-0.1"] not in out  # full ids are for --json and `runs show`
    for column in ("run id", "status", "start (UTC)", "duration", "C", "kernel", "acc", "loss"):
        assert column in out
    assert "stuck" not in out


def test_runs_list_json_filters_orders_and_spells_out_non_finite_numbers(store: Store) -> None:
    data = as_json(store.cli("runs", "list", "--filter", "params.kernel = 'rbf'",
                             "--order-by", "metrics.acc DESC", "--json"))
    assert [r["name"] for r in data["runs"]] == ["svc-10.0", "svc-1.0", "svc-0.1"]
    assert data["next_page_token"] is None
    last = data["runs"][-1]
    assert last["metrics"]["grad"] == "NaN"
    assert last["params"] == {"C": "0.1", "kernel": "rbf"}
    assert last["start_time"].endswith("Z") and last["duration_s"] >= 0


def test_runs_list_pages(store: Store) -> None:
    first = as_json(store.cli("runs", "list", "--max", "2", "--json"))
    assert len(first["runs"]) == 2 and first["next_page_token"]
    rest = as_json(store.cli("runs", "list", "--max", "2", "--page-token",
                             first["next_page_token"], "--json"))
    every = as_json(store.cli("runs", "list", "--max", "1", "--all-pages", "--json"))
    names = [r["name"] for r in first["runs"] + rest["runs"]]
    assert names == [r["name"] for r in every["runs"]] and len(names) == 4
    table = store.cli("runs", "list", "--max", "2")
    assert "--all-pages" in ok(table).stderr


def test_runs_list_chosen_columns(store: Store) -> None:
    out = ok(store.cli("runs", "list", "-e", "iris", "-p", "C", "-m", "loss")).stdout
    assert "kernel" not in out and "acc" not in out
    assert "0.0333333" in out  # svc-10.0's last loss, 1/3/10


# --- show, history, artifacts ----------------------------------------------------------------
def test_runs_show_by_prefix(store: Store) -> None:
    run_id = store.runs["svc-0.1"]
    out = ok(store.cli("runs", "show", run_id[:6])).stdout
    for text in (run_id, "iris", "Params", "kernel", "Metrics", "NaN", "Tags", "[bold]vision",
                 "Results", "[[5,1],[0,4]]", "Inputs", "iris-data", "role=train",
                 "Artifacts", "model/notes.txt"):
        assert text in out, text


def test_runs_show_json(store: Store) -> None:
    data = as_json(store.cli("runs", "show", store.runs["svc-0.1"], "--json"))
    assert data["experiment_name"] == "iris"
    assert data["inputs"] == [{"dataset": "iris-data", "version": "v1", "digest": None,
                               "context": {"role": "train"}}]
    assert data["results"] == {"confusion": [[5, 1], [0, 4]]}
    assert [a["path"] for a in data["artifacts"]] == ["model/notes.txt"]
    assert data["artifacts"][0]["size"] == 5


def test_runs_history(store: Store) -> None:
    run_id = store.runs["svc-1.0"]
    out = ok(store.cli("runs", "history", run_id, "loss")).stdout
    assert "loss (3 points)" in out and "0.333333" in out
    data = as_json(store.cli("runs", "history", run_id, "loss", "--json"))
    assert data["steps"] == [0, 1, 2]
    assert data["values"] == pytest.approx([1.0, 0.5, 1 / 3])
    assert all(t.endswith("Z") for t in data["timestamps"])


def test_runs_history_of_an_unknown_metric_names_those_there(store: Store) -> None:
    result = store.cli("runs", "history", store.runs["svc-1.0"], "rmse")
    assert result.exit_code == 3
    assert "no metric 'rmse' (it has: acc, loss)" in result.stderr


def test_runs_artifacts_list_and_download(store: Store, tmp_path: Path) -> None:
    run_id = store.runs["svc-0.1"]
    assert "model/notes.txt" in ok(store.cli("runs", "artifacts", run_id)).stdout
    listed = as_json(store.cli("runs", "artifacts", run_id, "--json"))
    assert [a["path"] for a in listed["artifacts"]] == ["model/notes.txt"]
    dest = tmp_path / "download"
    out = ok(store.cli("runs", "artifacts", run_id, "--download", str(dest))).stdout
    assert "Downloaded 1 file (5 B)" in out
    assert (dest / "model" / "notes.txt").read_text() == "hello"
    missing = store.cli("runs", "artifacts", store.runs["svc-1.0"], "--download", str(dest))
    assert missing.exit_code == 3 and "has no artifacts" in missing.stderr


# --- compare ----------------------------------------------------------------------------------
def test_runs_compare_marks_differing_params(store: Store) -> None:
    a, b = store.runs["svc-0.1"], store.runs["svc-10.0"]
    out = ok(store.cli("runs", "compare", a[:8], b)).stdout
    assert "* C" in out and "* kernel" not in out and "kernel" in out
    assert "svc-0.1" in out and "svc-10.0" in out and a[:8] in out
    only = ok(store.cli("runs", "compare", a, b, "--only-diff")).stdout
    assert "kernel" not in only.split("Metrics")[0]


def test_runs_compare_json_aligns_histories(store: Store) -> None:
    a, b = store.runs["svc-0.1"], store.runs["svc-1.0"]
    data = as_json(store.cli("runs", "compare", a, b, "--json"))
    assert [r["run_id"] for r in data["runs"]] == [a, b]
    assert data["params"]["C"] == ["0.1", "1.0"] and data["differing_params"] == ["C"]
    assert data["metrics"]["grad"] == ["NaN", None]
    assert data["histories"]["loss"]["steps"] == [0, 1, 2]
    assert data["histories"]["loss"]["values"][1] == pytest.approx([1.0, 0.5, 1 / 3])
    assert data["histories"]["grad"] == {"steps": [0], "values": [["NaN"], [None]]}


def test_runs_compare_needs_two_runs(store: Store) -> None:
    result = store.cli("runs", "compare", store.runs["svc-0.1"])
    assert result.exit_code == 2 and "at least two" in result.output


# --- delete, restore, mark-failed -------------------------------------------------------------
def test_runs_delete_asks_then_restore(store: Store) -> None:
    run_id = store.runs["svc-1.0"]
    declined = store.cli("runs", "delete", run_id[:8], input="n\n")
    assert declined.exit_code == 1 and "Delete 1 run?" in declined.stderr
    assert run_id in listed_ids(store)

    ok(store.cli("runs", "delete", run_id[:8], input="y\n"))
    assert run_id not in listed_ids(store)
    assert run_id in listed_ids(store, "--all")
    with store.client() as client:
        assert client.get_run(run_id).lifecycle == "deleted"

    assert "Restored run" in ok(store.cli("runs", "restore", run_id)).stdout
    assert run_id in listed_ids(store)


def test_runs_delete_many_without_asking_and_hard(store: Store) -> None:
    ids = [store.runs["svc-0.1"], store.runs["svc-1.0"]]
    out = ok(store.cli("runs", "delete", *ids, "--hard", "--yes")).stdout
    assert "Deleted 2 runs permanently." in out
    with store.client() as client, pytest.raises(errors.RunNotFound):
        client.get_run(ids[0])
    assert set(listed_ids(store, "--all")).isdisjoint(ids)


def test_runs_mark_failed(store: Store) -> None:
    stuck = store.runs["stuck"]
    assert "failed" in ok(store.cli("runs", "mark-failed", stuck)).stdout
    with store.client() as client:
        run = client.get_run(stuck)
    assert run.status is mc.RunStatus.FAILED and run.end_time is not None

    again = store.cli("runs", "mark-failed", stuck)
    assert again.exit_code == 4
    assert "is failed; only a running run can be marked failed" in again.stderr


def listed_ids(store: Store, *options: str) -> list[str]:
    return [r["run_id"] for r in as_json(store.cli("runs", "list", "--json", *options))["runs"]]


# --- experiments ------------------------------------------------------------------------------
def test_experiments_lifecycle(store: Store) -> None:
    names = [e["name"] for e in as_json(store.cli("experiments", "list", "--json"))["experiments"]]
    assert sorted(names) == ["iris", "mnist"]

    ok(store.cli("experiments", "create", "cifar", "--description", "small images"))
    table = ok(store.cli("experiments", "list")).stdout
    assert "cifar" in table and "small images" in table

    ok(store.cli("experiments", "rename", "cifar", "cifar-10"))
    ok(store.cli("experiments", "delete", "cifar-10"))
    assert "cifar-10" not in ok(store.cli("experiments", "list")).stdout
    deleted = ok(store.cli("experiments", "list", "--all")).stdout
    assert "cifar-10" in deleted and "deleted" in deleted

    exp_id = next(e["experiment_id"] for e in as_json(
        store.cli("experiments", "list", "--all", "--json"))["experiments"]
        if e["name"] == "cifar-10")
    ok(store.cli("experiments", "restore", exp_id[:8]))
    assert "cifar-10" in ok(store.cli("experiments", "list")).stdout


def test_experiments_show_counts_runs(store: Store) -> None:
    data = as_json(store.cli("experiments", "show", "iris", "--json"))
    assert data["experiment"]["name"] == "iris" and data["run_count"] == 3
    out = ok(store.cli("experiments", "show", data["experiment"]["experiment_id"])).stdout
    assert "Experiment iris" in out and "runs" in out and "3" in out


def test_experiments_errors(store: Store) -> None:
    taken = store.cli("experiments", "create", "iris")
    assert taken.exit_code == 4 and "Error: Experiment already exists" in taken.stderr
    missing = store.cli("experiments", "show", "nosuch")
    assert missing.exit_code == 3 and "'nosuch'" in missing.stderr
    assert store.cli("runs", "list", "-e", "nosuch").exit_code == 3


# --- errors -----------------------------------------------------------------------------------
def test_unknown_run_names_the_id_without_a_traceback(store: Store) -> None:
    for ref in ("0123456789abcdef", "not-a-run"):
        result = store.cli("runs", "show", ref)
        assert result.exit_code == 3
        assert result.stderr.startswith("Error: Run not found: ")
        assert repr(ref) in result.stderr
        assert "Traceback" not in result.output
        assert result.stdout == ""


def test_debug_shows_the_traceback(store: Store) -> None:
    result = runner.invoke(app, ["--tracking-uri", store.uri, "--debug", "runs", "show", "nope"])
    assert result.exit_code == 3
    assert "Traceback" in result.stderr and "Error: Run not found" in result.stderr


def test_bad_filter_points_at_the_token(store: Store) -> None:
    result = store.cli("runs", "list", "--filter", "metrics.acc <<< 3")
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith("Error: Invalid filter: ") and "position 13" in lines[0]
    source, caret = lines[1], lines[2]
    assert source.strip() == "metrics.acc <<< 3"
    assert caret.index("^") == source.index("<<< 3") + 1  # under the second '<'
    assert "Traceback" not in result.output


def test_usage_errors_exit_2(store: Store) -> None:
    assert store.cli("runs", "list", "--max", "0").exit_code == 2
    assert store.cli("runs", "frobnicate").exit_code == 2


@pytest.mark.parametrize(("error", "code"), [
    (errors.InvalidFilter("x"), 2),
    (errors.InvalidInputError("x"), 2),
    (errors.RunNotFound("x"), 3),
    (errors.ExperimentNotFound("x"), 3),
    (errors.ExperimentAlreadyExists("x"), 4),
    (errors.InvalidStateError("x"), 4),
    (errors.AuthError("x"), 5),
    (errors.PermissionDenied("x"), 5),
    (errors.StoreError("x"), 1),
    (errors.MlcycleError("x"), 1),
])
def test_exit_codes(error: errors.MlcycleError, code: int) -> None:
    assert exit_code_for(error) == code


def test_jsonable_spells_non_finite_numbers() -> None:
    assert jsonable([math.nan, math.inf, -math.inf, 1.5]) == ["NaN", "Infinity", "-Infinity", 1.5]


# --- server -----------------------------------------------------------------------------------
def test_server_builds_the_app_from_its_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: calls.append((app, kw)))
    uri = f"sqlite:///{tmp_path}/server.db"
    ok(runner.invoke(app, ["server", "--tracking-uri", uri, "--port", "9123"]))
    served, options = calls[0]
    assert type(served).__name__ == "FastAPI"
    assert options == {"host": "127.0.0.1", "port": 9123, "log_level": "warning"}


def test_server_with_workers_hands_settings_over_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("MLCYCLE_TRACKING_URI", "MLCYCLE_ARTIFACT_URI"):
        monkeypatch.setenv(name, "overridden-below")  # so that the test restores them
    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: calls.append((app, kw)))
    uri = f"sqlite:///{tmp_path}/server.db"
    ok(runner.invoke(app, ["--tracking-uri", uri, "server", "--workers", "3",
                           "--artifact-uri", str(tmp_path / "art")]))
    target, options = calls[0]
    assert target == server_cli.APP_FACTORY
    assert options["factory"] is True and options["workers"] == 3
    assert os.environ["MLCYCLE_TRACKING_URI"] == uri
    assert os.environ["MLCYCLE_ARTIFACT_URI"] == str(tmp_path / "art")


def test_server_refuses_a_remote_tracking_uri() -> None:
    result = runner.invoke(app, ["server", "--tracking-uri", "http://example.com"])
    assert result.exit_code == 2 and "tracking_uri" in result.stderr


# --- the same commands against a server; the installed console script -------------------------
def test_cli_against_a_live_server(store: Store, tmp_path: Path) -> None:
    from mlcycle.config import Settings
    from mlcycle.testing.server import live_server

    settings = Settings(tracking_uri=store.uri, artifact_uri=str(tmp_path / "artifacts"))
    with live_server(settings) as url:
        remote = Store(url, store.runs)
        assert len(as_json(remote.cli("runs", "list", "--json"))["runs"]) == 4
        run_id = store.runs["svc-0.1"]
        data = as_json(remote.cli("runs", "show", run_id[:7], "--json"))
        assert data["run_id"] == run_id and data["metrics"]["grad"] == "NaN"
        missing = remote.cli("runs", "show", "not-a-run")
        assert missing.exit_code == 3 and "'not-a-run'" in missing.stderr


def test_console_script(store: Store) -> None:
    script = Path(sys.executable).with_name("mlcycle")
    done = subprocess.run([str(script), "--tracking-uri", store.uri, "runs", "list", "--json"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["runs"]) == 4
    failed = subprocess.run([str(script), "--tracking-uri", store.uri, "runs", "show", "nope"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert failed.returncode == 3
    assert failed.stderr.startswith("Error: Run not found") and "Traceback" not in failed.stderr
