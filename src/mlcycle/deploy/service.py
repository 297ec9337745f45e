"""``DeploymentService``: deploy a registered model version, promote or roll it back, and the
controller that moves traffic on its own (:meth:`DeploymentService.tick`).

Every serving worker calls ``tick(name)`` about once a second. Each call takes one look at the
deployment and the workers' reports and makes at most one change, written as a compare-and-set
on the deployment's revision: when several workers decide at the same moment one of them wins
and the others get ``RevisionConflict``, which ``tick`` answers with ``None``. So there is no
controller process to run, and none to lose.

>>> service = DeploymentService(store, registry)                       # doctest: +SKIP
>>> service.deploy("churn", "models:/churn@candidate", strategy="canary")  # doctest: +SKIP
>>> service.tick("churn")       # on every worker, about once a second  # doctest: +SKIP
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlcycle.deploy.canary import Verdict, decide
from mlcycle.deploy.config import STEP_STATE_KEY, DeploymentConfig
from mlcycle.deploy.stats import VersionStats, merge_stats
from mlcycle.entities import (
    DEPLOYMENT_STRATEGIES,
    Deployment,
    DeploymentEvent,
    WorkerReport,
    check_deployment_name,
)
from mlcycle.errors import (
    DeploymentNotFound,
    InvalidInputError,
    InvalidStateError,
    RevisionConflict,
)
from mlcycle.registry.service import RegistryService, default_actor
from mlcycle.store.base import DeploymentStore
from mlcycle.types import JSONValue

__all__ = ["CONTROLLER", "DeploymentService", "DeploymentStatus", "WorkerStatus"]

#: The actor of the changes the controller makes.
CONTROLLER = "controller"

#: How often a promote or rollback by hand re-reads and retries when a controller changed the
#: deployment in between (each retry checks its preconditions again).
_RETRIES = 5


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """A worker's last report and whether it is live (reported within ``worker_timeout_s``,
    and not stopped: a worker that shuts down cleanly sends a last report with
    ``info["stopped"]``)."""

    report: WorkerReport
    live: bool
    age_s: float


@dataclass(frozen=True, slots=True)
class DeploymentStatus:
    """A deployment as the controller sees it now.

    ``stats``: per model version, the sum of every worker's counters for the current rollout
    (workers that died since included: what they served still counts). ``verdict``: what the
    controller would do now (``None`` with no candidate, or in shadow, where nothing is
    automatic).
    """

    deployment: Deployment
    config: DeploymentConfig
    stats: Mapping[int, VersionStats]
    workers: tuple[WorkerStatus, ...]
    verdict: Verdict | None

    @property
    def live_workers(self) -> tuple[WorkerStatus, ...]:
        return tuple(w for w in self.workers if w.live)


class DeploymentService:
    """Deployments over a ``DeploymentStore``; versions resolve through *registry*.

    *clock* (seconds since the epoch) is the one source of time, so tests step it by hand.
    """

    def __init__(self, store: DeploymentStore, registry: RegistryService, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock

    # --- reading --------------------------------------------------------------------------
    def get(self, name: str) -> Deployment:
        return self.store.get_deployment(name)

    def list(self) -> builtins.list[Deployment]:
        return self.store.list_deployments()

    def history(self, name: str, max_results: int = 100) -> builtins.list[DeploymentEvent]:
        """The deployment's events, newest first: who or what changed it, and why."""
        return self.store.list_deployment_events(name, max_results=max_results)

    def status(self, name: str) -> DeploymentStatus:
        d = self.store.get_deployment(name)
        reports = self.store.list_worker_reports(name)
        config = DeploymentConfig.from_mapping(d.config)
        return DeploymentStatus(
            deployment=d, config=config, stats=_rollout_stats(d, reports),
            workers=self._workers(reports, config), verdict=self._verdict(d, config, reports))

    # --- changing by hand -----------------------------------------------------------------
    def deploy(
        self,
        name: str,
        model_uri: str,
        *,
        strategy: str = "direct",
        config: Mapping[str, Any] | DeploymentConfig | None = None,
        actor: str | None = None,
        description: str = "",
    ) -> Deployment:
        """Start serving the version *model_uri* (``models:/name@alias`` or ``models:/name/3``)
        names, by *strategy*.

        The first deploy of *name* creates it, that version stable at once whatever the
        strategy (there is nothing to compare with). Later: ``direct`` switches at once;
        ``blue-green`` warms the version on every worker, then the controller switches;
        ``canary`` gives it ``config.steps[0]`` percent of the traffic; ``shadow`` a copy of
        ``config.shadow_percent`` percent. *config* keys given replace the stored ones, the
        others stay. Deploying the stable version again changes nothing and returns the
        deployment as it is.
        """
        check_deployment_name(name)
        if strategy not in DEPLOYMENT_STRATEGIES:
            raise InvalidInputError(
                f"The 'strategy' parameter must be one of "
                f"{', '.join(map(repr, DEPLOYMENT_STRATEGIES))}. Got {strategy!r} instead.",
                details={"field": "strategy"})
        version = self._resolve(model_uri)
        actor = actor if actor is not None else default_actor()
        try:
            current = self.store.get_deployment(name)
        except DeploymentNotFound:
            settings = _config(config, {})
            return self.store.create_deployment(
                name, model=version.name, version=version.version,
                config=settings.to_json(), description=description, actor=actor,
                reason=f"first deployment: {model_uri} (version {version.version}) is stable "
                       f"at once" + (f"; {strategy} applies from the next deploy"
                                     if strategy != "direct" else ""))
        if version.name != current.model:
            raise InvalidInputError(
                f"model_uri: deployment {name!r} serves model {current.model!r}; "
                f"{model_uri!r} is a version of {version.name!r}",
                details={"field": "model_uri", "deployment": name, "model": current.model})
        if current.candidate_version is not None:
            raise InvalidStateError(
                f"deployment {name!r} is already rolling out version "
                f"{current.candidate_version} ({current.phase}): promote or roll back first",
                details={"deployment": name, "candidate_version": current.candidate_version})
        if version.version == current.stable_version:
            return current  # nothing to do: that version answers already
        settings = _config(config, current.config)
        return self._start(current, version.version, strategy, settings, model_uri,
                           actor=actor, description=description)

    def _start(self, d: Deployment, version: int, strategy: str, config: DeploymentConfig,
               model_uri: str, *, actor: str | None, description: str) -> Deployment:
        now = self.clock()
        details: dict[str, JSONValue] = {
            "model_uri": model_uri, "version": version, "stable_version": d.stable_version,
            "strategy": strategy, "rollout": d.rollout + 1}
        common: dict[str, Any] = dict(
            expected_revision=d.revision, actor=actor, details=details, strategy=strategy,
            rollout=d.rollout + 1, step=0,
            description=description if description else d.description)
        if strategy == "direct":
            return self.store.update_deployment(
                d.name, event="switched",
                reason=f"direct: version {version} replaces version {d.stable_version} at once",
                stable_version=version, previous_version=d.stable_version,
                candidate_version=None, phase="stable", weight=0.0,
                config=_without_state(config), **common)
        state = config.replace(extra={**config.extra, STEP_STATE_KEY: {
            "started_at": now, "candidate_requests": 0}}).to_json()
        if strategy == "blue-green":
            phase, weight = "warming", 0.0
            reason = (f"blue-green: warming version {version} beside version "
                      f"{d.stable_version} on every worker")
        elif strategy == "canary":
            phase, weight = "canary", config.steps[0]
            reason = (f"canary: version {version} takes {weight:g}% of the traffic "
                      f"(steps {', '.join(f'{s:g}' for s in config.steps)})")
        else:
            phase, weight = "shadow", config.shadow_percent
            reason = (f"shadow: version {version} receives a copy of {weight:g}% of the "
                      "traffic; its answers are logged, never returned")
        return self.store.update_deployment(
            d.name, event="rollout_started", reason=reason, candidate_version=version,
            phase=phase, weight=weight, config=state, **common)

    def promote(self, name: str, *, actor: str | None = None, reason: str = "") -> Deployment:
        """Make the candidate stable now; the old stable version becomes ``previous``."""
        actor = actor if actor is not None else default_actor()

        def change(d: Deployment) -> dict[str, Any]:
            if d.candidate_version is None:
                raise InvalidStateError(
                    f"deployment {name!r} has no candidate to promote (version "
                    f"{d.stable_version} is stable)", details={"deployment": name})
            return dict(event="promoted",
                        reason=_why(reason, f"version {d.candidate_version} promoted over "
                                            f"version {d.stable_version} ({d.phase})"),
                        **_promotion(d))

        return self._change(name, change, actor=actor)

    def rollback(self, name: str, *, actor: str | None = None, reason: str = "") -> Deployment:
        """Drop the candidate, if there is one; otherwise switch back to the previous version
        (instant: workers keep it loaded)."""
        actor = actor if actor is not None else default_actor()

        def change(d: Deployment) -> dict[str, Any]:
            if d.candidate_version is not None:
                return dict(event="rolled_back",
                            reason=_why(reason, f"candidate version {d.candidate_version} "
                                                f"dropped; version {d.stable_version} stays"),
                            **_drop_candidate(d))
            if d.previous_version is None:
                raise InvalidStateError(
                    f"deployment {name!r} has nothing to roll back to: no candidate and no "
                    f"previous version (version {d.stable_version} is its first)",
                    details={"deployment": name})
            return dict(event="rolled_back",
                        reason=_why(reason, f"back to version {d.previous_version} from "
                                            f"version {d.stable_version}"),
                        stable_version=d.previous_version, previous_version=d.stable_version,
                        details={"stable_version": d.previous_version,
                                 "from_version": d.stable_version})

        return self._change(name, change, actor=actor)

    def _change(self, name: str, change: Callable[[Deployment], dict[str, Any]], *,
                actor: str | None) -> Deployment:
        """Read, decide, compare-and-set; again on a conflict (a controller stepped in)."""
        for attempt in range(_RETRIES):
            d = self.store.get_deployment(name)
            try:
                return self.store.update_deployment(name, expected_revision=d.revision,
                                                    actor=actor, **change(d))
            except RevisionConflict:
                if attempt == _RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    # --- the controller -------------------------------------------------------------------
    def report(self, report: WorkerReport) -> None:
        """Record what a serving worker says about its deployment: the revision it applied,
        the versions it has ready, its counters for the current rollout."""
        self.store.report_worker(report)

    def tick(self, name: str) -> DeploymentEvent | None:
        """One look at deployment *name*; at most one change, returned as its event.

        ``None`` when there is nothing to do, or when another worker changed the deployment
        first. A ``wait`` is recorded (as a ``decision``) only when it follows another kind of
        event, so the history shows what the controller is waiting for without one event per
        tick.
        """
        d = self.store.get_deployment(name)
        if d.candidate_version is None or d.phase not in ("warming", "canary"):
            return None
        config = DeploymentConfig.from_mapping(d.config)
        reports = self.store.list_worker_reports(name)
        verdict = self._verdict(d, config, reports)
        assert verdict is not None  # a candidate warming or in canary always has one
        kind, changes = self._apply(d, config, verdict, reports)
        if kind == "decision":
            last = self.store.list_deployment_events(name, max_results=1)
            if last and last[0].kind == "decision" and last[0].revision == d.revision:
                return None
        try:
            self.store.update_deployment(
                name, expected_revision=d.revision, event=kind, reason=verdict.reason,
                details={"action": verdict.action, **verdict.details}, actor=CONTROLLER,
                **changes)
        except RevisionConflict:
            return None  # another worker decided first; the next tick looks again
        for event in self.store.list_deployment_events(name, max_results=5):
            if event.kind == kind:
                return event
        return None  # a newer change already buried it; ours was applied all the same

    def _apply(self, d: Deployment, config: DeploymentConfig, verdict: Verdict,
               reports: Sequence[WorkerReport]) -> tuple[str, dict[str, Any]]:
        """The event kind and the fields a verdict changes."""
        if verdict.action == "rollback":
            return "rolled_back", _drop_candidate(d)
        if verdict.action == "promote":
            return ("switched" if d.phase == "warming" else "promoted"), _promotion(d)
        if verdict.action == "step":
            nxt = min(d.step + 1, len(config.steps) - 1)
            cand = _rollout_stats(d, reports).get(d.candidate_version or 0, VersionStats())
            state = {"started_at": self.clock(), "candidate_requests": cand.requests}
            return "step", {"step": nxt, "weight": config.steps[nxt],
                            "config": {**d.config, STEP_STATE_KEY: state}}
        return "decision", {}

    def _verdict(self, d: Deployment, config: DeploymentConfig,
                 reports: Sequence[WorkerReport]) -> Verdict | None:
        if d.candidate_version is None:
            return None
        state = d.config.get(STEP_STATE_KEY)
        state = state if isinstance(state, Mapping) else {}
        started_at = _number(state.get("started_at"), default=d.updated_at.timestamp())
        elapsed = max(self.clock() - started_at, 0.0)
        if d.phase == "warming":
            return self._warming(d, config, reports, elapsed)
        if d.phase != "canary":
            return None
        stats = _rollout_stats(d, reports)
        step = min(d.step, len(config.steps) - 1)
        return decide(stats.get(d.stable_version, VersionStats()),
                      stats.get(d.candidate_version, VersionStats()), config=config, step=step,
                      at_step_start=int(_number(state.get("candidate_requests"), default=0)),
                      step_seconds=elapsed)

    def _warming(self, d: Deployment, config: DeploymentConfig, reports: Sequence[WorkerReport],
                 elapsed: float) -> Verdict:
        live = [w.report for w in self._workers(reports, config) if w.live]
        waiting = sorted(r.worker_id for r in live
                         if d.candidate_version not in r.ready_versions or r.revision < d.revision)
        details: dict[str, Any] = {"live_workers": len(live), "not_ready": waiting,
                                   "elapsed_s": elapsed,
                                   "switch_timeout_s": config.switch_timeout_s}
        version = d.candidate_version
        if not live:
            return Verdict("promote", f"no live workers: switched to version {version} at once",
                           details)
        if not waiting:
            return Verdict("promote", f"every live worker ({len(live)}) has version {version} "
                           "ready: switched", details)
        if elapsed > config.switch_timeout_s:
            return Verdict("rollback", f"blue-green switch timed out after "
                           f"{config.switch_timeout_s:g} s: not ready with version {version}: "
                           f"{', '.join(waiting)}", details)
        return Verdict("wait", f"waiting for {len(waiting)} of {len(live)} live workers to have "
                       f"version {version} ready: {', '.join(waiting)}", details)

    def _workers(self, reports: Sequence[WorkerReport], config: DeploymentConfig
                 ) -> tuple[WorkerStatus, ...]:
        now = self.clock()
        out = []
        for r in reports:
            age = now - r.heartbeat_at.timestamp()
            stopped = bool(r.info.get("stopped"))  # said goodbye: never waited for
            out.append(WorkerStatus(r, live=not stopped and age <= config.worker_timeout_s,
                                    age_s=age))
        return tuple(out)

    # --- helpers --------------------------------------------------------------------------
    def _resolve(self, model_uri: str) -> Any:
        if not isinstance(model_uri, str) or not model_uri.startswith("models:/"):
            raise InvalidInputError(
                f"model_uri: expected models:/NAME@ALIAS or models:/NAME/VERSION, "
                f"got {model_uri!r}", details={"field": "model_uri"})
        return self.registry.resolve(model_uri)


def _rollout_stats(d: Deployment, reports: Sequence[WorkerReport]) -> dict[int, VersionStats]:
    merged = merge_stats(r.stats for r in reports if r.rollout == d.rollout)
    out = {}
    for key, value in merged.items():
        if key.isdigit():
            out[int(key)] = value
    return out


def _promotion(d: Deployment) -> dict[str, Any]:
    return {"stable_version": d.candidate_version, "previous_version": d.stable_version,
            "candidate_version": None, "phase": "stable", "weight": 0.0, "step": 0,
            "config": _without_state(d.config)}


def _drop_candidate(d: Deployment) -> dict[str, Any]:
    return {"candidate_version": None, "phase": "stable", "weight": 0.0, "step": 0,
            "config": _without_state(d.config)}


def _without_state(config: Mapping[str, Any] | DeploymentConfig) -> dict[str, JSONValue]:
    data = config.to_json() if isinstance(config, DeploymentConfig) else dict(config)
    data.pop(STEP_STATE_KEY, None)
    return data


def _config(given: Mapping[str, Any] | DeploymentConfig | None,
            stored: Mapping[str, Any]) -> DeploymentConfig:
    if isinstance(given, DeploymentConfig):
        return given
    base = {k: v for k, v in stored.items() if k != STEP_STATE_KEY}
    return DeploymentConfig.from_mapping({**base, **(given or {})})


def _why(given: str, what: str) -> str:
    return f"{given}: {what}" if given else what


def _number(value: Any, *, default: float) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else default
