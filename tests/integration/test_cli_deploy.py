"""``mlcycle deploy …`` over a real SQLite store: start (the default command), status, promote,
rollback, history and list; tables, JSON and exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import mlcycle as mc
from mlcycle.cli import output
from mlcycle.cli.main import app
from mlcycle.config import Settings
from mlcycle.deploy import VersionStats
from mlcycle.entities import WorkerReport

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
    with client.start_run(experiment="iris", log_system=False) as run:
        pass
    for _ in range(3):
        client.registry.register_model("iris", f"runs:/{run.run_id}/model")
    client.registry.set_alias("iris", "candidate", 2)
    yield client
    client.close()


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def test_deploy_name_is_deploy_start_name(cli: Cli, client: mc.Client) -> None:
    created = ok(cli("deploy", "web", "--model", "models:/iris/1"))
    assert "Created deployment web: iris v1 is stable" in created.output
    again = ok(cli("deploy", "web", "-m", "models:/iris/1"))
    assert "already serves version 1" in again.output
    switched = ok(cli("deploy", "start", "web", "--model", "models:/iris@candidate"))
    assert "v2 now answers (was v1)" in switched.output
    # Options before the name work too, and a deployment may be named like a sub-command.
    ok(cli("deploy", "--model", "models:/iris/1", "front"))
    ok(cli("deploy", "start", "status", "--model", "models:/iris/1"))
    names = [d["name"] for d in json.loads(ok(cli("deploy", "list", "--json")).output)
             ["deployments"]]
    assert names == ["front", "status", "web"]
    assert "3 deployments" in ok(cli("deploy", "list")).output


def test_canary_with_flags_and_a_config_file(cli: Cli, client: mc.Client,
                                              tmp_path: Path) -> None:
    ok(cli("deploy", "web", "--model", "models:/iris/1"))
    config = tmp_path / "deploy.yaml"
    config.write_text("steps: [10, 50, 100]\nmin_requests: 500\nmax_error_rate: 0.02\n")
    started = ok(cli("deploy", "web", "--model", "models:/iris/2", "--strategy", "canary",
                     "--config", str(config), "--steps", "20,100", "--sticky-key", "user-id",
                     "--json"))
    d = json.loads(started.output)
    assert (d["phase"], d["weight"], d["candidate_version"]) == ("canary", 20.0, 2)
    assert d["config"]["steps"] == [20.0, 100.0]  # the flag wins over the file
    assert d["config"]["min_requests"] == 500 and d["config"]["max_error_rate"] == 0.02
    assert d["config"]["sticky_key"] == "user-id"


def test_bad_input_exits_2_naming_the_field(cli: Cli, client: mc.Client,
                                            tmp_path: Path) -> None:
    ok(cli("deploy", "web", "--model", "models:/iris/1"))
    bad = cli("deploy", "web", "--model", "models:/iris/2", "--strategy", "canary",
              "--steps", "50,10")
    assert bad.exit_code == 2 and "steps" in bad.output
    config = tmp_path / "deploy.yaml"
    config.write_text("steps: [5, 100]\nmin_request: 10\n")
    bad = cli("deploy", "web", "--model", "models:/iris/2", "--config", str(config))
    assert bad.exit_code == 2
    assert "deploy.yaml line 2" in bad.output and "did you mean 'min_requests'" in bad.output
    assert cli("deploy", "web", "--model", "runs:/x/model").exit_code == 2
    assert cli("deploy", "status", "nope").exit_code == 3
    ok(cli("deploy", "web", "--model", "models:/iris/2", "--strategy", "shadow"))
    busy = cli("deploy", "web", "--model", "models:/iris/3")
    assert busy.exit_code == 4 and "promote or roll back first" in busy.output


def test_status_promote_rollback_and_history(cli: Cli, client: mc.Client) -> None:
    ok(cli("deploy", "web", "--model", "models:/iris/1"))
    ok(cli("deploy", "web", "--model", "models:/iris/2", "--strategy", "canary"))
    d = client.deployments.get("web")
    stable, cand = VersionStats(), VersionStats()
    for i in range(300):
        stable.observe(0.003, error=i < 3)
    for _ in range(40):
        cand.observe(0.004)
    client.deployments.store.report_worker(WorkerReport(
        deployment="web", worker_id="w1", heartbeat_at=datetime.now(UTC), revision=d.revision,
        rollout=d.rollout, ready_versions=(1, 2),
        stats={"1": stable.to_json(), "2": cand.to_json()}))

    shown = ok(cli("deploy", "status", "web"))
    assert "95%" in shown.output and "5%" in shown.output
    assert "1.00%" in shown.output and "1 live of 1" in shown.output
    assert "controller: wait" in shown.output and "60 more candidate requests" in shown.output
    body = json.loads(ok(cli("deploy", "status", "web", "--json")).output)
    assert [(v["version"], v["role"], v["requests"]) for v in body["versions"]] == \
        [(1, "stable", 300), (2, "candidate", 40)]
    assert body["verdict"]["action"] == "wait" and body["workers"][0]["live"] is True

    promoted = ok(cli("deploy", "promote", "web", "--reason", "looks good"))
    assert "v2 promoted" in promoted.output
    assert cli("deploy", "promote", "web").exit_code == 4  # nothing left to promote
    ok(cli("deploy", "rollback", "web", "-r", "pager went off"))
    assert client.deployments.get("web").stable_version == 1

    table = ok(cli("deploy", "history", "web"))
    assert "pager went off" in table.output and "looks good" in table.output
    events = json.loads(ok(cli("deploy", "history", "web", "--json", "-n", "2")).output)
    assert [e["kind"] for e in events["events"]] == ["rolled_back", "promoted"]
