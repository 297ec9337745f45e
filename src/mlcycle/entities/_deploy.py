"""Deployments: which registered model versions a serving endpoint answers with, and how traffic
moves from one to the next.

A deployment serves one registered model. It holds a ``stable`` version, at most one
``candidate`` (being warmed, canaried or shadowed) and the ``previous`` stable version (kept
loaded, so a rollback is instant). Every change bumps ``revision``; serving workers poll it and
apply the new state without a restart, and every change is written together with a
:class:`DeploymentEvent` that says who or what made it and why.

Workers report what they have loaded and what they have seen (:class:`WorkerReport`), per
rollout: the canary controller decides from the sum of those reports.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from mlcycle.errors import InvalidInputError
from mlcycle.types import JSONValue

__all__ = [
    "DEPLOYMENT_EVENT_KINDS",
    "DEPLOYMENT_PHASES",
    "DEPLOYMENT_STRATEGIES",
    "Deployment",
    "DeploymentEvent",
    "WorkerReport",
    "check_deployment_name",
]

#: How a new version replaces the stable one.
#: ``direct``: at once, each worker as soon as it has loaded it.
#: ``blue-green``: loaded and warmed beside the stable one on every live worker, then all
#: traffic switches at once.
#: ``canary``: a growing share of traffic (``config["steps"]``); the controller promotes or
#: rolls back by its rule.
#: ``shadow``: a copy of the traffic; its answers are logged and compared, never returned.
DEPLOYMENT_STRATEGIES: Final = ("direct", "blue-green", "canary", "shadow")

#: ``stable``: no candidate. ``warming``: a blue-green candidate is loading on the workers.
#: ``canary`` / ``shadow``: a candidate takes a share / a copy of the traffic.
DEPLOYMENT_PHASES: Final = ("stable", "warming", "canary", "shadow")

#: What a :class:`DeploymentEvent` may record. ``step``: a canary moved to its next weight;
#: ``switched``: a blue-green or direct switch; ``decision``: the controller looked and
#: waited (recorded only when its verdict changes, never once per tick).
DEPLOYMENT_EVENT_KINDS: Final = (
    "created",
    "rollout_started",
    "step",
    "switched",
    "promoted",
    "rolled_back",
    "decision",
    "config_changed",
)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


def check_deployment_name(name: str) -> str:
    """*name* if it is a valid deployment name (letters, digits, ``_ . -``; at most 128)."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InvalidInputError(
            f"deployment name {name!r}: use letters, digits, '_', '.', '-' (start with a "
            "letter or digit, at most 128 characters)", details={"field": "name"})
    return name


@dataclass(frozen=True, slots=True)
class Deployment:
    """The state every serving worker of deployment *name* follows.

    ``weight`` is the percent of requests the candidate answers (canary) or receives a copy
    of (shadow); ``step`` indexes ``config["steps"]`` during a canary. ``rollout`` counts the
    rollouts started (a worker's statistics belong to one rollout). ``config`` holds the
    strategy's settings (canary steps, minimum requests, sticky key, decision thresholds) as
    JSON; ``revision`` increases with every change.
    """

    name: str
    model: str
    stable_version: int
    revision: int
    created_at: datetime
    updated_at: datetime
    candidate_version: int | None = None
    previous_version: int | None = None
    strategy: str = "direct"
    phase: str = "stable"
    weight: float = 0.0
    step: int = 0
    rollout: int = 0
    config: Mapping[str, JSONValue] = field(default_factory=dict)
    description: str = ""

    @property
    def versions(self) -> tuple[int, ...]:
        """The versions a worker should hold loaded: stable, candidate, previous."""
        out = [self.stable_version]
        for v in (self.candidate_version, self.previous_version):
            if v is not None and v not in out:
                out.append(v)
        return tuple(out)


@dataclass(frozen=True, slots=True)
class DeploymentEvent:
    """One change of a deployment (or a controller verdict): ``revision`` is the deployment's
    revision after it; ``details`` holds the versions, weights and, for a controller decision,
    the statistics behind it."""

    event_id: int
    deployment: str
    kind: str
    time: datetime
    revision: int
    reason: str = ""
    actor: str | None = None
    details: Mapping[str, JSONValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WorkerReport:
    """What one serving worker last said about a deployment.

    ``revision``: the deployment revision it has applied. ``ready_versions``: the versions it
    has loaded and warmed. ``stats``: its counters for ``rollout``, keyed by model version as a
    string: ``{"3": {"requests": n, "errors": n, "latency_buckets": [...], "latency_sum": s,
    "feedback": n, "correct": n, "abs_error_sum": x}}`` (cumulative since the rollout began on
    this worker). ``info``: host, pid, start time.
    """

    deployment: str
    worker_id: str
    heartbeat_at: datetime
    revision: int
    rollout: int
    ready_versions: Sequence[int] = ()
    stats: Mapping[str, Any] = field(default_factory=dict)
    info: Mapping[str, JSONValue] = field(default_factory=dict)
