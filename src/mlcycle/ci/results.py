"""What a ``ci run`` found: every check of every step, the outcome, and its exit code.

======  ==============  ====================================================================
 exit   outcome         meaning
======  ==============  ====================================================================
 0      released        the model passed every step and reached production (or its rollout
                        started: ``production.wait_s`` 0)
 0      unchanged       nothing changed since the production model: no work done
 0      planned         ``--dry-run``: the plan was printed, nothing done
 2      (error)         a broken ``mlcycle.yaml`` (line and key named), bad arguments
 10     data_failed     a dataset broke its contract
 11     pipeline_failed the pipeline raised or returned no model
 12     gates_failed    an evaluation gate failed
 13     tests_failed    a behavioural test or the latency budget failed
 14     acceptance_failed  the staging endpoint failed a smoke request or answered differently
                        from the offline predictions
 15     promotion_failed   the production rollout was refused or rolled back
 16     locked          another ``ci run`` of the project holds the lock
======  ==============  ====================================================================

Every failure leaves production untouched (the production deployment and alias move only in
the last step) and is recorded with its reason on the ``ci`` run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = ["EXIT_CODES", "STEPS", "Check", "CiResult", "Outcome"]

Outcome = Literal["released", "unchanged", "planned", "data_failed", "pipeline_failed",
                  "gates_failed", "tests_failed", "acceptance_failed", "promotion_failed",
                  "locked"]
Status = Literal["passed", "failed", "skipped"]

EXIT_CODES: Final[Mapping[str, int]] = {
    "released": 0, "unchanged": 0, "planned": 0, "data_failed": 10, "pipeline_failed": 11,
    "gates_failed": 12, "tests_failed": 13, "acceptance_failed": 14, "promotion_failed": 15,
    "locked": 16,
}

#: The steps in order: (name, what it does).
STEPS: Final = (
    ("changes", "detect what changed since the production model"),
    ("data", "validate every dataset against its contract"),
    ("pipeline", "run the training pipeline"),
    ("model", "gates, behavioural tests and the latency budget on the holdout"),
    ("register", "register the model, move the `staging` alias"),
    ("acceptance", "deploy to staging, test its HTTP endpoint"),
    ("promotion", "promote to production"),
)


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report (one JUnit test case): *step* is one of :data:`STEPS`."""

    step: str
    name: str
    status: Status
    message: str = ""
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "name": self.name, "status": self.status,
                "message": self.message, "seconds": round(self.seconds, 3)}


@dataclass(slots=True)
class CiResult:
    """A ``ci run`` as it went: the checks in order, the outcome and why."""

    project: str
    outcome: Outcome = "released"
    reason: str = ""
    checks: list[Check] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    model_version: str | None = None
    production_before: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    baseline_metrics: dict[str, float] | None = None
    gates: list[dict[str, Any]] = field(default_factory=list)
    ci_run_id: str | None = None
    links: dict[str, str] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    def add(self, step: str, name: str, passed: bool | None, message: str = "",
            seconds: float = 0.0) -> Check:
        """Record a check: *passed* None means skipped."""
        status: Status = "skipped" if passed is None else "passed" if passed else "failed"
        check = Check(step, name, status, message, seconds)
        self.checks.append(check)
        return check

    def to_dict(self) -> dict[str, Any]:
        return {"project": self.project, "outcome": self.outcome, "exit_code": self.exit_code,
                "reason": self.reason, "changes": list(self.changes),
                "model_version": self.model_version,
                "production_before": self.production_before, "metrics": dict(self.metrics),
                "baseline_metrics": self.baseline_metrics, "gates": list(self.gates),
                "ci_run_id": self.ci_run_id, "links": dict(self.links),
                "checks": [c.to_dict() for c in self.checks]}
