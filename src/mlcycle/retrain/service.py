"""``TriggerService``: turn a monitor's verdict, a schedule or new data into a retrained model
that reaches production only through the gates and a canary.

Firing a trigger (:meth:`TriggerService.fire`) records a :class:`TriggerRun` first; the store
refuses a second retraining of the same deployment while one runs, and any run within the
trigger's cool-down, by storing that firing as ``skipped`` with the reason. A run that starts:

1. **data**: the newest version of the trigger's dataset, and the production rows that got
   feedback ingested as a version of ``<dataset>.feedback`` (:mod:`mlcycle.retrain.feedback`);
2. **train**: calls the retraining pipeline (the contract below); a ``@mc.pipeline`` runs
   tracked, its pipeline run id recorded;
3. **register**: the model becomes the next version of the deployment's model, lineage: the
   two dataset versions (roles ``train`` and ``feedback``), the training run, its commit; tags
   ``mlcycle.trigger`` / ``mlcycle.trigger_run`` point back at the run;
4. **evaluate**: on the trigger's evaluation dataset, against the deployment's stable version,
   with the trigger's gates; the report is kept on the model version and summarised on the run;
5. **deploy**: only when every gate passed, a canary rollout (``DeploymentService.deploy(...,
   strategy="canary")``, actor ``trigger-run:<id>``) that the serving workers' controller
   promotes or rolls back. Otherwise the run ends ``rejected`` and production is untouched.

The retraining pipeline contract — ``module:function``, called as::

    fn(data_ref: str, feedback_ref: str | None, **params) -> model | "runs:/…" | "models:/…"

*data_ref* is ``"<dataset>@v<n>"`` (the newest version), *feedback_ref* the feedback version
or ``None``; *params* are the trigger's. It returns a fitted model (logged here, with the
first rows of the training data as its input example), a ``runs:/<id>/<path>`` of a model it
logged, or a ``models:/name/<n>`` it registered. A ``@mc.pipeline`` returns any of those as
its output; a plain function runs inside a tracking run of experiment ``retrain-<trigger>``.
"""

from __future__ import annotations

import builtins
import importlib
import logging
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mlcycle.client import Client, open_trigger_store
from mlcycle.entities import Alert, RunInput, Trigger, TriggerRun
from mlcycle.errors import InvalidInputError, MlcycleError
from mlcycle.retrain.feedback import ingest_feedback
from mlcycle.retrain.schedule import check_cron, last_fire_time
from mlcycle.store.base import TriggerStore
from mlcycle.types import JSONValue

if TYPE_CHECKING:
    from mlcycle.entities import DatasetVersion, ModelVersion
    from mlcycle.monitoring.service import MonitorRun

__all__ = ["TRIGGER_RUN_TAG", "TRIGGER_TAG", "TriggerService"]

logger = logging.getLogger("mlcycle.retrain")

#: Tags of a model version a trigger made: the trigger's name and its run's id.
TRIGGER_TAG = "mlcycle.trigger"
TRIGGER_RUN_TAG = "mlcycle.trigger_run"

_DURATION_RE = re.compile(r"^(\d+)\s*([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}
_SPEC_KEYS = ("kinds", "pipeline", "dataset", "target", "schedule", "monitor",
              "evaluation_data", "gates", "params", "canary", "cooldown", "cooldown_s",
              "enabled", "description")
_RUN_SCAN = 200  # runs read back to find a schedule trigger's last scheduled time


class TriggerService:
    """Triggers over a ``TriggerStore``, retraining through *client* (its data, runs,
    registry and deployments). *clock* (seconds since the epoch) is the one source of time,
    so tests set it by hand."""

    def __init__(self, client: Client, *, store: TriggerStore | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.store = store or open_trigger_store(client.service.store)
        self.clock = clock

    # --- definitions ----------------------------------------------------------------------
    def create(self, name: str, deployment: str, spec: Mapping[str, Any] | None = None,
               **fields: Any) -> Trigger:
        """A new trigger of *deployment* from *spec* and *fields* (the keys of
        :class:`~mlcycle.entities.Trigger`; ``cooldown`` also takes ``"30m"``, ``gates`` also
        YAML text). The deployment, the schedule and the gates are checked before anything is
        stored; a ``new_data`` trigger starts from the dataset's newest version."""
        given = {**dict(spec or {}), **fields}
        unknown = sorted(set(given) - set(_SPEC_KEYS))
        if unknown:
            raise InvalidInputError(
                f"{unknown[0]}: unknown trigger field; expected one of {', '.join(_SPEC_KEYS)}",
                details={"field": unknown[0]})
        if "cooldown" in given:
            given["cooldown_s"] = _seconds(given.pop("cooldown"), "cooldown")
        kinds = given.get("kinds")
        given["kinds"] = tuple([kinds] if isinstance(kinds, str) else kinds or ())
        if given.get("schedule") is not None:
            check_cron(given["schedule"])
        given["gates"] = _gates(given.get("gates"))
        deployed = self.client.deployments.get(deployment)  # DeploymentNotFound first
        del deployed
        dataset = given.get("dataset")
        seen = None
        if isinstance(dataset, str) and "new_data" in given["kinds"]:
            seen = self.client.data.get_dataset(dataset).latest_version
        now = self._now()
        return self.store.create_trigger(Trigger(
            name=name, deployment=deployment, created_at=now, updated_at=now,
            seen_version=seen, **given))

    def get(self, name: str) -> Trigger:
        return self.store.get_trigger(name)

    def list(self, deployment: str | None = None) -> builtins.list[Trigger]:
        return self.store.list_triggers(deployment=deployment)

    def delete(self, name: str) -> None:
        self.store.delete_trigger(name)

    def pause(self, name: str) -> Trigger:
        return self.store.update_trigger(name, enabled=False)

    def resume(self, name: str) -> Trigger:
        return self.store.update_trigger(name, enabled=True)

    def runs(self, name: str | None = None, *, deployment: str | None = None,
             max_results: int = 100) -> builtins.list[TriggerRun]:
        """Runs, newest first."""
        return self.store.list_runs(name, deployment=deployment, max_results=max_results)

    # --- firing ---------------------------------------------------------------------------
    def fire(self, trigger: str | Trigger, cause: Mapping[str, JSONValue] | None = None
             ) -> TriggerRun:
        """Retrain now for *cause* (default ``{"kind": "manual"}``); returns the ended run:
        ``succeeded`` (a canary started), ``rejected``, ``failed`` or ``skipped``."""
        trig = trigger if isinstance(trigger, Trigger) else self.store.get_trigger(trigger)
        cause = dict(cause or {"kind": "manual"})
        run = self.store.start_run(TriggerRun(
            run_id=0, trigger=trig.name, deployment=trig.deployment, status="running",
            started_at=self._now(), cause=cause), cooldown_s=trig.cooldown_s)
        if run.status != "running":
            logger.info("trigger %s: %s (%s)", trig.name, run.status, run.reason)
            return run
        try:
            return self._retrain(trig, run)
        except Exception as exc:
            reason = (f"{exc.headline}: {exc.message}" if isinstance(exc, MlcycleError)
                      else f"{type(exc).__name__}: {exc}")
            logger.warning("trigger %s: run %s failed: %s", trig.name, run.run_id, reason)
            return self.store.update_run(run.run_id, status="failed", ended_at=self._now(),
                                         reason=reason)
        except BaseException as exc:  # interrupted (Ctrl-C, shutdown): recorded, then raised
            try:
                self.store.update_run(run.run_id, status="failed", ended_at=self._now(),
                                      reason=f"interrupted: {type(exc).__name__}")
            finally:
                raise

    def on_monitor_run(self, monitor_run: MonitorRun) -> builtins.list[TriggerRun]:
        """Fire the enabled ``drift`` / ``quality`` triggers of the monitor's deployment when
        its run raised an alert of that kind."""
        alert = monitor_run.alert
        if alert is None or alert.status != "alert":
            return []
        result = monitor_run.result
        checks: Mapping[str, Any] = result.details.get("checks") or {}  # type: ignore[assignment]
        found = {kind for kind, check in (("drift", "drift"), ("quality", "performance"))
                 if (checks.get(check) or {}).get("status") == "alert"}
        deployment = self.client.monitors.get(result.monitor).deployment
        fired = []
        for trig in self.store.list_triggers(deployment=deployment):
            kinds = found & set(trig.kinds)
            if not trig.enabled or not kinds or trig.monitor not in (None, result.monitor):
                continue
            fired.append(self.fire(trig, _alert_cause(sorted(kinds)[0], alert)))
        return fired

    def due(self, now: datetime | None = None
            ) -> builtins.list[tuple[Trigger, dict[str, JSONValue]]]:
        """The enabled ``schedule`` triggers whose cron time came since their last scheduled
        run, and the ``new_data`` triggers whose dataset has a newer version than they saw,
        each with the cause it would fire for."""
        now = now or self._now()
        out: builtins.list[tuple[Trigger, dict[str, JSONValue]]] = []
        for trig in self.store.list_triggers():
            if not trig.enabled:
                continue
            if "schedule" in trig.kinds and trig.schedule is not None:
                at = last_fire_time(trig.schedule, now)
                if at > max(trig.created_at, self._last_scheduled(trig) or trig.created_at):
                    out.append((trig, {"kind": "schedule", "time": at.isoformat()}))
                    continue
            if "new_data" in trig.kinds:
                latest = self.client.data.get_dataset(trig.dataset).latest_version
                if latest is not None and latest > (trig.seen_version or 0):
                    out.append((trig, {"kind": "new_data", "dataset": trig.dataset,
                                       "version": latest}))
        return out

    def run_due(self, now: datetime | None = None) -> builtins.list[TriggerRun]:
        """Fire every due trigger once; a ``new_data`` trigger marks the version seen first,
        so a skipped firing is recorded once, not at every poll."""
        runs = []
        for trig, cause in self.due(now):
            if cause["kind"] == "new_data":
                version = cause["version"]
                assert isinstance(version, int)
                trig = self.store.update_trigger(trig.name, seen_version=version)
            runs.append(self.fire(trig, cause))
        return runs

    def _last_scheduled(self, trig: Trigger) -> datetime | None:
        for run in self.store.list_runs(trig.name, max_results=_RUN_SCAN):
            at = run.cause.get("time")
            if run.kind == "schedule" and isinstance(at, str):
                return datetime.fromisoformat(at)
        return None

    # --- the loop -------------------------------------------------------------------------
    def _retrain(self, trig: Trigger, run: TriggerRun) -> TriggerRun:
        client, store = self.client, self.store
        data = client.data.get_version(trig.dataset)
        feedback = ingest_feedback(client, trig)
        refs: dict[str, JSONValue] = {"dataset": data.ref,
                                      "feedback": feedback.ref if feedback else None}
        store.update_run(run.run_id, data=refs)
        pipeline_run_id, training_run_id, source = self._train(trig, run, data, feedback)
        store.update_run(run.run_id, pipeline_run_id=pipeline_run_id,
                         training_run_id=training_run_id)
        version = self._register(trig, run, source, training_run_id, data, feedback)
        store.update_run(run.run_id, model=version.name, model_version=version.version)
        report = self._evaluate(trig, version)
        gates: dict[str, JSONValue] = {
            "passed": report.passed, "summary": report.summary(),
            "failed": [c.gate.label for c in report.failed]}
        if not report.passed:
            return store.update_run(
                run.run_id, status="rejected", ended_at=self._now(), gates=gates,
                reason=f"{version.uri} failed the gates; production is untouched: "
                       + "; ".join(f"{c.gate.label}: {c.message}" for c in report.failed))
        deployment = client.deployments.deploy(
            trig.deployment, version.uri, strategy="canary", config=dict(trig.canary) or None,
            actor=f"trigger-run:{run.run_id}")
        return store.update_run(
            run.run_id, status="succeeded", ended_at=self._now(), gates=gates,
            rollout=deployment.rollout,
            reason=f"{version.uri} passed the gates; canary rollout {deployment.rollout} of "
                   f"deployment {trig.deployment!r} started ({deployment.phase}, "
                   f"{deployment.weight:g}% of the traffic)")

    def _train(self, trig: Trigger, run: TriggerRun, data: DatasetVersion,
               feedback: DatasetVersion | None) -> tuple[str | None, str, str]:
        """Run the pipeline; returns (pipeline run id, training run id, model source URI)."""
        from mlcycle.pipelines import Pipeline

        fn = _import_target(trig.pipeline)
        args = (data.ref, feedback.ref if feedback else None)
        params: dict[str, Any] = dict(trig.params)
        tags = {TRIGGER_TAG: trig.name, TRIGGER_RUN_TAG: str(run.run_id)}
        if isinstance(fn, Pipeline):
            result = fn.run(*args, client=self.client, experiment=f"retrain-{trig.name}",
                            **params)
            training_run_id = result.run.run_id
            assert training_run_id is not None
            self.client.service.log_batch(training_run_id, tags=tags)
            return (result.pipeline_run_id, training_run_id,
                    self._source(result.output, training_run_id, data, trig.target))
        with self.client.start_run(experiment=f"retrain-{trig.name}", name=trig.name,
                                   params=params, tags=tags, nested=False) as active:
            output = fn(*args, **params)
            return None, active.run_id, self._source(output, active.run_id, data, trig.target)

    def _source(self, output: Any, run_id: str, data: DatasetVersion, target: str) -> str:
        if isinstance(output, str):
            if not output.startswith(("runs:/", "models:/")):
                raise InvalidInputError(
                    f"the retraining pipeline returned {output!r}; expected a fitted model, "
                    "a runs:/ or a models:/ URI", details={"field": "pipeline"})
            return output
        example = self.client.data.load(data, format="pandas").head(5).drop(columns=[target])
        info = self.client.log_model(run_id, output, input_example=example)
        return str(info.model_uri)

    def _register(self, trig: Trigger, run: TriggerRun, source: str, training_run_id: str,
                  data: DatasetVersion, feedback: DatasetVersion | None) -> ModelVersion:
        tags = {TRIGGER_TAG: trig.name, TRIGGER_RUN_TAG: str(run.run_id)}
        registry = self.client.registry
        if source.startswith("models:/"):
            version = registry.resolve(source)
            return registry.update_version(version.name, version.version, tags={
                **dict(version.tags), **tags})
        model = self.client.deployments.get(trig.deployment).model
        inputs = [RunInput(data.dataset, f"v{data.version}", data.digest, {"role": "train"})]
        if feedback is not None:
            inputs.append(RunInput(feedback.dataset, f"v{feedback.version}", feedback.digest,
                                   {"role": "feedback"}))
        return self.client.register_model(
            source, model, datasets=inputs, tags=tags,
            description=f"retrained by trigger {trig.name!r} (run {run.run_id}, cause "
                        f"{_describe(run.cause)}) on {data.ref}"
                        + (f" + {feedback.ref}" if feedback else ""))

    def _evaluate(self, trig: Trigger, version: ModelVersion) -> Any:
        """The gate report of *version* on the evaluation data, against the stable version;
        kept on the model version."""
        from mlcycle.evaluation import GateSet, evaluate

        client = self.client
        ref = client.data.get_version(trig.evaluation_data or trig.dataset)
        frame = client.data.load(ref, format="pandas")
        segments = client.data.segments_for(ref)
        stable = client.deployments.get(trig.deployment).stable_version
        candidate = client.load_model(version.uri)
        baseline = client.load_model(f"models:/{version.name}/{stable}")
        result = evaluate(candidate, frame, target=trig.target, segments=segments,
                          baseline=baseline, baseline_name=f"stable v{stable}",
                          model_size=sum(f.size for f in candidate.info.files.values()))
        report = GateSet.from_dict(dict(trig.gates)).check(result)
        client.registry.update_version(version.name, version.version, evaluation={
            "data": ref.ref, "baseline": f"models:/{version.name}/{stable}",
            "result": result.to_dict(), "gates": report.to_dict(), "passed": report.passed})
        return report

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)


def _import_target(target: str) -> Callable[..., Any]:
    """The function at ``module:qualname``; errors name the ``pipeline`` field."""
    module_name, _, qualname = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise InvalidInputError(f"pipeline: cannot import {target!r}: {exc}",
                                details={"field": "pipeline"}) from exc
    if not callable(obj):
        raise InvalidInputError(f"pipeline: {target} is a {type(obj).__name__}, not a function",
                                details={"field": "pipeline"})
    return obj


def _alert_cause(kind: str, alert: Alert) -> dict[str, JSONValue]:
    return {"kind": kind, "monitor": alert.monitor, "alert_id": alert.alert_id,
            "result_id": alert.result_id, "status": alert.status, "message": alert.message}


def _describe(cause: Mapping[str, JSONValue]) -> str:
    kind = cause.get("kind")
    if kind in ("drift", "quality"):
        return f"{kind} alert {cause.get('alert_id')} of monitor {cause.get('monitor')}"
    if kind == "schedule":
        return f"schedule {cause.get('time')}"
    if kind == "new_data":
        return f"new data {cause.get('dataset')}@v{cause.get('version')}"
    return str(kind)


def _seconds(value: Any, field: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = _DURATION_RE.match(str(value).strip())
    if not m:
        raise InvalidInputError(
            f"{field}: expected seconds or a duration like 30m, 2h, 1d; got {value!r}",
            details={"field": field})
    return int(m.group(1)) * _UNITS[m.group(2)]


def _gates(value: Any) -> dict[str, JSONValue]:
    """The gate set *value* (a mapping or YAML text) as a checked mapping."""
    from mlcycle.evaluation import GateSet

    if value is None or value == {}:
        raise InvalidInputError(
            "gates: a trigger needs gates (e.g. {gates: [{metric: roc_auc, max_regression: "
            "0.01}]}): a retrained model reaches production only through them",
            details={"field": "gates"})
    gate_set = GateSet.from_yaml(value, source="gates") if isinstance(value, str) \
        else GateSet.from_dict(value)
    return gate_set.to_dict()
