"""CI/CD for models: ``mlcycle ci run`` tests, releases and promotes the project that the
``ci:`` section of ``mlcycle.yaml`` declares (:mod:`mlcycle.ci.project`).

::

    project = CiProject.from_file("mlcycle.yaml")
    result = CiRunner(Client(), project).run()      # CiResult: outcome, exit_code, checks
    Path("junit.xml").write_text(to_junit(result))
    Path("summary.md").write_text(to_markdown(result))
"""

from mlcycle.ci.changes import Changes, Fingerprint, detect
from mlcycle.ci.junit import to_junit
from mlcycle.ci.project import CiProject
from mlcycle.ci.results import EXIT_CODES, STEPS, Check, CiResult
from mlcycle.ci.runner import CiRunner
from mlcycle.ci.summary import to_markdown
from mlcycle.ci.workflows import github_workflow, gitlab_workflow

__all__ = [
    "EXIT_CODES",
    "STEPS",
    "Changes",
    "Check",
    "CiProject",
    "CiResult",
    "CiRunner",
    "Fingerprint",
    "detect",
    "github_workflow",
    "gitlab_workflow",
    "to_junit",
    "to_markdown",
]
