from __future__ import annotations

import subprocess
from pathlib import Path

import mlcycle as mc
from mlcycle.tracking.system import capture


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_a_run_records_the_commit_branch_and_uncommitted_diff(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q", "-b", "trunk")
    (tmp_path / "train.py").write_text("lr = 0.1\n")
    _git(tmp_path, "add", "train.py")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "one")
    (tmp_path / "train.py").write_text("lr = 0.2\n")  # an uncommitted change

    with mc.start_run(experiment="git") as run:
        pass
    got = mc.get_run(run.run_id)
    assert got.tags["mlcycle.git.commit"] == _git(tmp_path, "rev-parse", "HEAD")
    assert got.tags["mlcycle.git.branch"] == "trunk"
    assert got.tags["mlcycle.git.dirty"] == "true"
    diff = mc.get_client().read_artifact(run.run_id, "system/git.diff").decode()
    assert "-lr = 0.1" in diff and "+lr = 0.2" in diff


def test_outside_a_repository_there_are_no_git_facts(tmp_path: Path) -> None:
    facts = capture(str(tmp_path))
    assert "mlcycle.git.commit" not in facts.tags and facts.diff is None
    assert facts.tags["mlcycle.python"].startswith("3.")
    assert b"mlcycle==" in facts.requirements.lower()
