"""``mlcycle ci``: the whole chain on a temporary git repository with scikit-learn's
breast-cancer data, a real SQLite store and real ``mlcycle serve`` processes on loopback."""

from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mlcycle.ci import CiProject
from mlcycle.ci.lock import hold
from mlcycle.cli.main import app
from mlcycle.client import Client, open_lock_store
from mlcycle.entities import Lock
from mlcycle.errors import InvalidInputError, LockHeld

pytest.importorskip("uvicorn")
pytest.importorskip("sklearn")

TRAIN = '''
import os

import mlcycle
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


class Skewed:
    """Answers like its model offline, and the opposite when served: training/serving skew."""

    def __init__(self, model):
        self.model = model

    def predict(self, data):
        predicted = self.model.predict(data)
        return 1 - predicted if os.environ.get("MLCYCLE_SERVE_DEPLOYMENT") else predicted

    def predict_proba(self, data):
        return self.model.predict_proba(data)


def train(data_ref, *, kind="logreg", C=1.0):
    client = mlcycle.Client()
    frame = client.data.load(data_ref, format="pandas")
    X, y = frame.drop(columns=["target"]), frame["target"]
    if kind == "dummy":
        return DummyClassifier(strategy="most_frequent").fit(X, y)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=500)).fit(X, y)
    return Skewed(model) if kind == "skewed" else model
'''

PROJECT = '''\
ci:
  model: bc-clf
  pipeline: train:train
  params: {C: 1.0}
  datasets: [bc]
  holdout: bc-holdout
  target: target
  gates:
    - {metric: roc_auc, min: 0.95}
    - {metric: accuracy, min: 0.9}
    - {metric: roc_auc, max_regression: 0.05, when_missing: skip}
  tests:
    invariance:
      - {column: mean texture, delta: 0.001}
    directional:
      - {column: worst concave points, delta: 0.05, expect: decrease}
    minimum_functionality:
      - {where: "`worst radius` > 25", expect: 0}
  latency: {max_ms_per_row: 1000, rows: 50}
  staging: {deployment: bc-staging}
  production: {deployment: bc-prod, strategy: direct}
  acceptance: {smoke_rows: 3, batch_rows: 100}
'''


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository holding train.py and mlcycle.yaml; the store beside it, in the
    environment (the pipeline's Client and the servers read it there)."""
    from sklearn.datasets import load_breast_cancer

    store = tmp_path / "store"
    monkeypatch.setenv("MLCYCLE_TRACKING_URI", f"sqlite:///{store / 'mlcycle.db'}")
    monkeypatch.setenv("MLCYCLE_ARTIFACT_URI", str(store / "artifacts"))
    monkeypatch.setenv("MLCYCLE_HOME", str(store))
    monkeypatch.delenv("MLCYCLE_SERVE_DEPLOYMENT", raising=False)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "train.py").write_text(TRAIN)
    (repo / "mlcycle.yaml").write_text(PROJECT)
    monkeypatch.setenv("MLCYCLE_CONFIG", str(repo / "mlcycle.yaml"))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "ci@example.com")
    git(repo, "config", "user.name", "ci")
    git(repo, "add", "train.py", "mlcycle.yaml")
    git(repo, "commit", "-q", "-m", "a model")
    frame = load_breast_cancer(as_frame=True).frame.sample(frac=1.0, random_state=0)
    with Client() as client:
        client.data.ingest("bc", frame.iloc[:400])
        client.data.ingest("bc-holdout", frame.iloc[400:])
        client.data.infer_contract("bc@v1")
    return repo


def ci(repo: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["ci", *args, "--config", str(repo / "mlcycle.yaml")])
    return result.exit_code, result.output


def edit(repo: Path, old: str, new: str, *, commit: bool = True) -> None:
    path = repo / "mlcycle.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    if commit:
        git(repo, "commit", "-q", "-am", f"{old} -> {new}")


def production(client: Client) -> tuple[int, int | None]:
    d = client.deployments.get("bc-prod")
    alias = client.registry.resolve("models:/bc-clf@production").version
    return d.stable_version, alias


def test_the_chain_releases_skips_and_stops(project: Path, tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    summary = tmp_path / "summary.md"

    # --dry-run: the plan, nothing done
    code, out = ci(project, "run", "--dry-run")
    assert code == 0, out
    assert "first release" in out and "train:train(bc@v1" in out
    with Client() as client:
        assert client.registry.list_models() == []

    # first release: staging, then production
    code, out = ci(project, "run", "--junit", str(junit), "--summary", str(summary))
    assert code == 0, out
    with Client() as client:
        assert production(client) == (1, 1)
        assert client.deployments.get("bc-staging").stable_version == 1
        v1 = client.registry.get_version("bc-clf", 1)
        assert "staging" in v1.aliases
        assert v1.tags["mlcycle.ci.datasets"] == "bc@v1,bc-holdout@v1"
        assert v1.evaluation["passed"] is True
    suites = ET.parse(junit).getroot()
    assert suites.get("failures") == "0"
    names = {case.get("name") for case in suites.iter("testcase")}
    assert {"holdout predictions match offline", "latency budget",
            "gate: roc_auc >= 0.95"} <= names
    assert "released" in summary.read_text() and "| roc_auc |" in summary.read_text()

    # nothing changed: exit 0, nothing done
    code, out = ci(project, "run")
    assert code == 0, out
    assert "nothing changed" in out
    with Client() as client:
        assert sorted(v.version for v in client.registry.list_versions("bc-clf")) == [1]

    # a new data version that passes: a new model, promoted
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.sample(frac=1.0, random_state=0)
    with Client() as client:
        client.data.ingest("bc", frame.iloc[:380])
    code, out = ci(project, "run", "--dry-run")
    assert code == 0 and "data: bc@v1 → bc@v2" in out, out
    code, out = ci(project, "run")
    assert code == 0, out
    with Client() as client:
        assert production(client) == (2, 2)

    # a change that fails a gate: production untouched, exit 12, JUnit shows it
    edit(project, "params: {C: 1.0}", "params: {kind: dummy}")
    code, out = ci(project, "run", "--junit", str(junit), "--summary", str(summary))
    assert code == 12, out
    assert "roc_auc" in out and "production is untouched" in out
    with Client() as client:
        assert production(client) == (2, 2)
        assert sorted(v.version for v in client.registry.list_versions("bc-clf")) == [1, 2]
        runs = client.search_runs(experiments=["ci-bc-clf"],
                                  filter="tags.`mlcycle.ci.outcome` = 'gates_failed'").items
        assert len(runs) == 1 and "failed the gates" in runs[0].tags["mlcycle.ci.reason"]
    failures = [case for case in ET.parse(junit).getroot().iter("testcase")
                if case.find("failure") is not None]
    assert any("roc_auc >= 0.95" in str(case.get("name")) for case in failures)
    skipped = {case.get("name") for case in ET.parse(junit).getroot().iter("testcase")
               if case.find("skipped") is not None}
    assert {"acceptance", "promotion"} <= skipped
    assert "❌ gates failed" in summary.read_text()

    # an endpoint that answers differently from the offline predictions: exit 14
    edit(project, "params: {kind: dummy}", "params: {kind: skewed}")
    code, out = ci(project, "run", "--json")
    assert code == 14, out
    assert '"outcome": "acceptance_failed"' in out
    assert "served predictions equal the offline ones" in out
    with Client() as client:
        assert production(client) == (2, 2)
        assert client.deployments.get("bc-staging").stable_version == 3  # staging has it

    # canary: the rollout starts; the production alias waits for the controller's verdict
    edit(project, "params: {kind: skewed}", "params: {C: 0.5}")
    edit(project, "strategy: direct}", "strategy: canary, config: {min_requests: 5}}")
    code, out = ci(project, "run")
    assert code == 0, out
    with Client() as client:
        d = client.deployments.get("bc-prod")
        assert (d.stable_version, d.candidate_version, d.phase) == (2, 4, "canary")
        assert production(client) == (2, 2)
    code, out = ci(project, "run")  # the rollout under way is the production candidate
    assert code == 0 and "nothing changed" in out, out
    with Client() as client:  # the controller promotes it later, after the ci run ended
        client.deployments.promote("bc-prod", reason="the canary held")
    code, out = ci(project, "run")  # the next run moves the alias after it
    assert code == 0 and "nothing changed" in out, out
    with Client() as client:
        assert production(client) == (4, 4)


def test_blue_green_waits_for_the_production_servers_to_switch(project: Path) -> None:
    from mlcycle.ci.endpoint import served

    code, out = ci(project, "run")
    assert code == 0, out
    edit(project, "params: {C: 1.0}", "params: {C: 0.3}")
    edit(project, "strategy: direct}", "strategy: blue-green, wait_s: 60}")
    with Client() as client, served(client, "bc-prod", 1, cwd=project):
        # a production server follows the deployment: it warms v2, then the switch comes
        code, out = ci(project, "run")
    assert code == 0, out
    with Client() as client:
        assert production(client) == (2, 2)
        assert client.deployments.get("bc-prod").candidate_version is None


def test_data_that_breaks_its_contract_stops_before_training(project: Path) -> None:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.iloc[:300].drop(columns=["mean radius"])
    with Client() as client:
        client.data.ingest("bc", frame)
    code, out = ci(project, "run", "--json")
    assert code == 10, out
    assert '"outcome": "data_failed"' in out and "mean radius" in out
    with Client() as client:
        assert client.registry.list_models() == []  # nothing trained, nothing registered


def test_a_pipeline_that_fails_stops_the_chain(project: Path) -> None:
    edit(project, "pipeline: train:train", "pipeline: train:trian")
    code, out = ci(project, "run", "--json")
    assert code == 11, out
    assert "cannot import 'train:trian'" in out
    (project / "train.py").write_text(TRAIN.replace("frame = client", "raise RuntimeError("
                                                    "'no GPU here')\n    frame = client"))
    edit(project, "pipeline: train:trian", "pipeline: train:train")
    code, out = ci(project, "run", "--json")
    assert code == 11, out
    assert "RuntimeError: no GPU here" in out
    with Client() as client:
        assert client.registry.list_models() == []


def test_a_second_run_refuses_while_the_lock_is_held(project: Path) -> None:
    with Client() as client:
        store = open_lock_store(client.service.store)
        with hold(store, "ci:bc-clf", owner="another run"):
            code, out = ci(project, "run")
            assert code == 16, out
            assert "another ci run holds 'ci:bc-clf'" in " ".join(out.split())
            with pytest.raises(LockHeld):
                with hold(store, "ci:bc-clf", owner="a third"):
                    pass
        # released on exit: a fresh holder gets it
        with hold(store, "ci:bc-clf", owner="next") as lock:
            assert store.find_lock("ci:bc-clf") == lock
        assert store.find_lock("ci:bc-clf") is None


def test_a_stale_lock_is_broken_and_force_breaks_a_live_one(project: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    with Client() as client:
        store = open_lock_store(client.service.store)
        import socket

        gone = Lock("ci:x", "crashed", dead.pid, socket.gethostname(), datetime.now(UTC))
        assert store.acquire_lock(gone) == gone
        with hold(store, "ci:x", owner="me") as lock:  # its process is gone: broken
            assert lock.owner == "me"
        old = Lock("ci:y", "elsewhere", 1, "another-host",
                   (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0))
        store.acquire_lock(old)
        with hold(store, "ci:y", owner="me"):  # a day old on another host: stale
            pass
        live = Lock("ci:z", "alive", os.getpid(), "another-host",
                    datetime.now(UTC).replace(microsecond=0))
        store.acquire_lock(live)
        with pytest.raises(LockHeld, match="--force"):
            with hold(store, "ci:z", owner="me"):
                pass
        with hold(store, "ci:z", owner="me", force=True) as lock:
            assert store.find_lock("ci:z") == lock


@pytest.mark.parametrize(("text", "line", "key"), [
    ("ci:\n  model: m\n  pipline: train:train\n", 3, "ci.pipline"),
    (PROJECT.replace("{metric: accuracy, min: 0.9}", "{metric: acuracy, min: 0.9}"), 10,
     "ci.gates[1].metric"),
    (PROJECT.replace("strategy: direct", "strategy: canery"), 21, "ci.production.strategy"),
    (PROJECT.replace("expect: decrease", "expect: down"), 16,
     "ci.tests.directional[0].expect"),
    (PROJECT.replace("  target: target\n", "  target: target\n  target: y\n"), 8, "ci.target"),
    ("ci:\n  model: [m\n", 3, None),
])
def test_a_broken_project_file_names_line_and_key(text: str, line: int, key: str | None
                                                  ) -> None:
    with pytest.raises(InvalidInputError) as caught:
        CiProject.from_yaml(text, source="mlcycle.yaml")
    assert caught.value.details.get("line") == line, caught.value.message
    assert f"mlcycle.yaml line {line}" in caught.value.message
    if key is not None:
        assert caught.value.details["field"] == key
        assert key in caught.value.message


def test_a_broken_project_file_exits_2_from_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "mlcycle.yaml"
    path.write_text("ci:\n  model: m\n  pipline: train:train\n")
    result = CliRunner().invoke(app, ["ci", "run", "--config", str(path)])
    assert result.exit_code == 2
    assert "line 3" in result.output and "ci.pipline" in result.output
    assert "did you mean 'pipeline'" in result.output


@pytest.mark.parametrize(("flag", "path"), [("--github", ".github/workflows/mlcycle-ci.yml"),
                                            ("--gitlab", ".gitlab-ci.yml")])
def test_init_writes_a_workflow_that_runs_ci(tmp_path: Path, flag: str, path: str) -> None:
    result = CliRunner().invoke(app, ["ci", "init", flag, "--dir", str(tmp_path),
                                      "--branch", "trunk"])
    assert result.exit_code == 0, result.output
    workflow = yaml.safe_load((tmp_path / path).read_text())
    if flag == "--github":
        on = workflow[True]  # YAML 1.1 reads the key `on` as true; GitHub reads it as "on"
        assert on["push"]["branches"] == ["trunk"]
        assert on["schedule"][0]["cron"] == "0 4 * * *"
        commands = [s.get("run", "") for s in workflow["jobs"]["ci"]["steps"]]
    else:
        assert {"if": '$CI_PIPELINE_SOURCE == "schedule"'} in workflow["mlcycle-ci"]["rules"]
        assert workflow["mlcycle-ci"]["artifacts"]["reports"]["junit"] == "mlcycle-junit.xml"
        commands = workflow["mlcycle-plan"]["script"] + workflow["mlcycle-ci"]["script"]
    assert "mlcycle ci run --config mlcycle.yaml --dry-run" in commands
    assert any(c.startswith("mlcycle ci run --config mlcycle.yaml --junit mlcycle-junit.xml")
               for c in commands)
    again = CliRunner().invoke(app, ["ci", "init", flag, "--dir", str(tmp_path)])
    assert again.exit_code == 2 and "--overwrite" in again.output
