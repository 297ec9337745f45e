"""``mlcycle models …`` over a real SQLite store: list, show, alias, unalias, archive, restore,
diff and events (tables, JSON, exit codes). Versions are registered through the SDK, as a
training job would."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import mlcycle as mc
from mlcycle.cli import output
from mlcycle.cli.main import app
from mlcycle.config import Settings

runner = CliRunner()

Cli = Callable[..., Result]


@pytest.fixture
def uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/m.db"


@pytest.fixture
def cli(uri: str, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setattr(output.console, "width", 200)

    def run(*args: str) -> Result:
        return runner.invoke(app, ["--tracking-uri", uri, *args])

    return run


@pytest.fixture
def client(uri: str, tmp_path: Path) -> Iterator[mc.Client]:
    client = mc.Client(uri, settings=Settings(home=tmp_path / ".mlcycle"))
    yield client
    client.close()


@pytest.fixture
def churn(client: mc.Client) -> list[str]:
    """Two versions of ``churn`` from two runs that read different dataset versions."""
    run_ids = []
    for c, acc, data in ((1.0, 0.81, "v1"), (10.0, 0.88, "v2")):
        with client.start_run(experiment="churn", params={"C": c}, log_system=False,
                              tags={"mlcycle.git.commit": "ab" * 20}) as run:
            run.log_metric("accuracy", acc)
            run.log_input("orders", data, context={"role": "train"})
        run_ids.append(run.run_id)
        client.registry.register_model(
            "churn", f"runs:/{run.run_id}/model", flavor="sklearn",
            signature={"inputs": [{"name": "age", "type": "int64" if c == 1.0 else "float64"}]},
            evaluation={"auc": acc - 0.1})
    return run_ids


def test_list_and_show(cli: Cli, client: mc.Client, churn: list[str]) -> None:
    client.registry.set_alias("churn", "production", 1)
    listing = cli("models", "list")
    assert listing.exit_code == 0, listing.output
    assert "churn" in listing.output and "v2" in listing.output
    assert "production→v1" in listing.output
    body = json.loads(cli("models", "list", "--json").output)
    assert [m["name"] for m in body["models"]] == ["churn"]
    assert body["models"][0]["aliases"] == {"production": 1}
    assert json.loads(cli("models", "list", "-n", "xyz", "--json").output) == {"models": []}

    shown = cli("models", "show", "churn")
    assert shown.exit_code == 0, shown.output
    assert "2 versions" in shown.output and churn[0][:8] in shown.output
    model = json.loads(cli("models", "show", "churn", "--json").output)
    assert [v["version"] for v in model["versions"]] == [2, 1]

    for ref in ("churn@production", "models:/churn@production", "churn/1"):
        one = cli("models", "show", ref)
        assert one.exit_code == 0, one.output
        assert "models:/churn/1" in one.output and "orders@v1" in one.output
        assert "ab" * 20 in one.output and "sklearn" in one.output
    latest = json.loads(cli("models", "show", "models:/churn/latest", "--json").output)
    assert latest["version"] == 2 and latest["run_id"] == churn[1]
    assert latest["datasets"] == [{"dataset": "orders", "version": "v2", "digest": None,
                                   "context": {"role": "train"}}]
    assert latest["evaluation"]["auc"] == pytest.approx(0.78)


def test_alias_move_unalias_and_events(cli: Cli, client: mc.Client, churn: list[str]) -> None:
    first = cli("models", "alias", "churn", "production", "1")
    assert first.exit_code == 0, first.output
    assert "production now points at churn v1" in first.output
    moved = cli("models", "alias", "churn", "production", "2")
    assert "production moved from churn v1 to v2" in moved.output
    same = cli("models", "alias", "churn", "production", "2")
    assert same.exit_code == 0 and "already" in same.output
    as_json = json.loads(cli("models", "alias", "churn", "staging", "1", "--json").output)
    assert as_json["aliases"] == ["staging"] and as_json["version"] == 1
    gone = cli("models", "unalias", "churn", "staging")
    assert gone.exit_code == 0 and "it pointed at churn v1" in gone.output
    assert client.registry.get_model("churn").aliases == {"production": 2}

    history = cli("models", "events", "churn")
    assert history.exit_code == 0, history.output
    assert "moved from v1" in history.output and "alias_deleted" in history.output
    events = json.loads(cli("models", "events", "churn", "--json").output)["events"]
    assert [e["kind"] for e in events] == [
        "alias_deleted", "alias_set", "alias_set", "alias_set",
        "version_created", "version_created", "model_created"]
    assert all(e["actor"] for e in events)
    assert events[0]["at"].endswith("Z")
    only_v1 = json.loads(cli("models", "events", "churn", "-v", "1", "--json").output)
    assert {e["version"] for e in only_v1["events"]} == {1}


def test_errors_have_exit_codes_and_are_recorded(cli: Cli, client: mc.Client,
                                                 churn: list[str]) -> None:
    client.registry.set_alias("churn", "production", 2)
    unknown = cli("models", "show", "churn@staging")
    assert unknown.exit_code == 3
    assert "Model alias not found" in unknown.output and "production" in unknown.output
    assert cli("models", "show", "churn/7").exit_code == 3
    assert cli("models", "show", "nope").exit_code == 3
    assert cli("models", "show", "churn/x").exit_code == 2
    bad = cli("models", "alias", "churn", "latest", "1")
    assert bad.exit_code == 2 and "reserved" in bad.output
    assert cli("models", "alias", "churn", "staging", "9").exit_code == 3
    assert cli("models", "unalias", "churn", "staging").exit_code == 3
    held = cli("models", "archive", "churn", "2")
    assert held.exit_code == 4 and "move or delete it first" in held.output
    assert client.registry.get_model("churn").aliases == {"production": 2}  # nothing changed
    events = json.loads(cli("models", "events", "churn", "--json").output)["events"]
    refused = [e["details"]["operation"] for e in events if e["kind"] == "rejected"]
    assert refused == ["set_version_status", "delete_alias", "set_alias", "set_alias"]
    table = cli("models", "events", "churn", "-n", "1")
    assert "rejected" in table.output and "set_version_status" in table.output


def test_archive_restore(cli: Cli, client: mc.Client, churn: list[str]) -> None:
    archived = cli("models", "archive", "churn", "2")
    assert archived.exit_code == 0 and "Archived churn v2" in archived.output
    assert json.loads(cli("models", "show", "churn", "--json").output)["versions"][0][
        "status"] == "archived"
    active = json.loads(cli("models", "show", "churn", "--no-archived", "--json").output)
    assert [v["version"] for v in active["versions"]] == [1]
    assert json.loads(cli("models", "show", "churn", "--json")
                      .output)["model"]["latest_version"] == 2
    assert json.loads(cli("models", "show", "churn/latest", "--json").output)["version"] == 1
    assert cli("models", "restore", "churn", "2").exit_code == 0
    assert json.loads(cli("models", "show", "churn/latest", "--json").output)["version"] == 2


def test_diff(cli: Cli, churn: list[str]) -> None:
    shown = cli("models", "diff", "churn/1", "churn/2")
    assert shown.exit_code == 0, shown.output
    for text in ("param", "C", "accuracy", "0.07", "inputs[0].type", "float64", "orders@v2"):
        assert text in shown.output, text
    body = json.loads(cli("models", "diff", "churn/1", "models:/churn/latest", "--json").output)
    assert body["params"] == {"C": {"a": "1.0", "b": "10.0"}}
    assert body["metrics"]["accuracy"]["delta"] == pytest.approx(0.07)
    assert body["lineage"]["datasets"] == {"a": ["orders@v1"], "b": ["orders@v2"]}
    assert "code_commit" not in body["lineage"]  # the same commit
    same = cli("models", "diff", "churn/1", "churn/1")
    assert same.exit_code == 0 and "do not differ" in same.output
