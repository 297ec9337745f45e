"""CI system workflows that run ``mlcycle ci run``: GitHub Actions and GitLab CI, written by
``mlcycle ci init --github`` / ``--gitlab`` from the templates beside this module."""

from __future__ import annotations

from importlib import resources
from string import Template

__all__ = ["GITHUB_PATH", "GITLAB_PATH", "github_workflow", "gitlab_workflow"]

#: Where each CI system looks for its workflow, relative to the repository's root.
GITHUB_PATH = ".github/workflows/mlcycle-ci.yml"
GITLAB_PATH = ".gitlab-ci.yml"


def _render(name: str, *, config: str, branch: str, schedule: str, python: str) -> str:
    text = resources.files("mlcycle.ci").joinpath("templates", name).read_text()
    return Template(text).substitute(config=config, branch=branch, schedule=schedule,
                                     python=python)


def github_workflow(*, config: str = "mlcycle.yaml", branch: str = "main",
                    schedule: str = "0 4 * * *", python: str = "3.11") -> str:
    """A GitHub Actions workflow: on push to *branch*, pull requests, the cron *schedule* and
    by hand; the plan, then the run with its JUnit report and Markdown job summary."""
    return _render("github.yml", config=config, branch=branch, schedule=schedule,
                   python=python)


def gitlab_workflow(*, config: str = "mlcycle.yaml", branch: str = "main",
                    schedule: str = "0 4 * * *", python: str = "3.11") -> str:
    """A ``.gitlab-ci.yml``: the plan, then the run (one at a time: a resource group) on
    pushes to *branch*, merge requests and pipeline schedules; JUnit as a test report."""
    return _render("gitlab.yml", config=config, branch=branch, schedule=schedule,
                   python=python)
