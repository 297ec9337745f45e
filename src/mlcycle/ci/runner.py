"""``CiRunner``: one ``mlcycle ci run`` — change detection, data, pipeline, model tests,
registration, staging acceptance, promotion — stopping at the first step that fails.

>>> runner = CiRunner(Client(), CiProject.from_file("mlcycle.yaml"))   # doctest: +SKIP
>>> result = runner.run()          # holds the project's lock while it runs  # doctest: +SKIP
>>> result.outcome, result.exit_code                                  # doctest: +SKIP
('released', 0)

Production is touched only by the last step: a failure before it leaves the production
deployment and the ``production`` alias as they were. Every run that does work is recorded as a
tracking run of experiment ``ci-<project>`` with its outcome and reason as tags and its JUnit
report and Markdown summary as artifacts (``ci/junit.xml``, ``ci/summary.md``).
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pandas as pd

from mlcycle.ci.changes import Changes, Fingerprint, detect
from mlcycle.ci.checks import measure_latency, run_tests
from mlcycle.ci.endpoint import served
from mlcycle.ci.junit import to_junit
from mlcycle.ci.lock import DEFAULT_STALE_AFTER_S, hold
from mlcycle.ci.project import CiProject
from mlcycle.ci.results import STEPS, CiResult, Outcome
from mlcycle.ci.summary import to_markdown
from mlcycle.client import Client, open_lock_store
from mlcycle.entities import RunInput
from mlcycle.errors import (
    ContractNotFound,
    DeploymentNotFound,
    InvalidInputError,
    MlcycleError,
)
from mlcycle.registry.service import default_actor
from mlcycle.types import RunStatus

if TYPE_CHECKING:
    from mlcycle.entities import DatasetVersion, ModelVersion

__all__ = ["CI_RUN_TAG", "CiRunner"]

#: The tag of a model version (and of its training run) naming the ci run that made it.
CI_RUN_TAG = "mlcycle.ci.run"
_OUTCOME_TAG = "mlcycle.ci.outcome"
_REASON_TAG = "mlcycle.ci.reason"
_POLL_S = 0.2


class _Stop(Exception):
    """A step failed: the chain ends with *outcome*, for *reason*."""

    def __init__(self, outcome: Outcome, reason: str) -> None:
        super().__init__(reason)
        self.outcome: Outcome = outcome
        self.reason = reason


class CiRunner:
    """Runs *project* against *client*'s stores. ``force`` breaks a lock another run holds."""

    def __init__(self, client: Client, project: CiProject, *, force: bool = False,
                 stale_after_s: float = DEFAULT_STALE_AFTER_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.project = project
        self.force = force
        self.stale_after_s = stale_after_s
        self.clock = clock

    # --- the plan ---------------------------------------------------------------------------
    def plan(self) -> tuple[Changes, list[tuple[str, str]]]:
        """What :meth:`run` would do now, step by step; nothing is written."""
        p = self.project
        changes = detect(self.client, p)
        if not changes.changed:
            return changes, [("changes", "nothing changed since "
                              f"{_uri(changes.production)}: nothing to do")]
        refs = changes.current.datasets
        gates = p.gates.get("gates", [])
        tests = sum(len(t) for t in p.tests.values())
        args = ", ".join([*refs[:len(p.datasets)],
                          *(f"{k}={v!r}" for k, v in p.params.items())])
        latency = (f", latency <= {p.latency.max_ms_per_row:g} ms/row"
                   if p.latency else "")
        steps = [
            ("changes", "; ".join(changes.reasons)),
            ("data", "validate " + ", ".join(refs) + " against "
             + (p.contract or "each dataset's newest contract")),
            ("pipeline", f"{p.pipeline}({args})"),
            ("model", f"{len(gates)} gates, {tests} behavioural tests{latency} on "
                      f"{refs[-1] if p.holdout else refs[0]}, against {_uri(changes.production)}"),
            ("register", f"next version of {p.model}, alias staging"),
            ("acceptance", f"deploy to {p.staging.deployment} (direct), serve it on 127.0.0.1, "
                           f"{p.acceptance.smoke_rows} smoke requests, the holdout through "
                           "/predict against the offline predictions"),
            ("promotion", f"deploy to {p.production.deployment} ({p.production.strategy}), "
                          "alias production once it serves the version"),
        ]
        return changes, steps

    # --- the run ----------------------------------------------------------------------------
    def run(self) -> CiResult:
        """Run the chain under the project's lock (:class:`~mlcycle.errors.LockHeld` when
        another run holds it)."""
        store = open_lock_store(self.client.service.store)
        with hold(store, self.project.lock_name, owner=f"ci run by {default_actor()}",
                  force=self.force, stale_after_s=self.stale_after_s):
            return self._run()

    def _run(self) -> CiResult:
        p = self.project
        result = CiResult(p.name)
        started = self.clock()
        followed = self._follow_production()
        if followed:
            result.add("changes", "production alias follows the deployment", True, followed)
        changes = detect(self.client, p)
        result.changes = list(changes.reasons)
        result.production_before = _uri(changes.production) if changes.production else None
        if not changes.changed:
            result.outcome = "unchanged"
            result.reason = f"nothing changed since {_uri(changes.production)}: nothing to do"
            result.add("changes", "something changed", None, result.reason)
            return result
        result.add("changes", "something changed", True, "; ".join(changes.reasons),
                   self.clock() - started)
        ci_run = self.client.start_run(
            experiment=f"ci-{p.name}", name="ci run", nested=False,
            params={"pipeline": p.pipeline, **{f"param.{k}": v for k, v in p.params.items()}},
            tags={"mlcycle.ci.project": p.name, **changes.current.tags()})
        result.ci_run_id = ci_run.run_id
        result.links["ci run"] = ci_run.run_id
        try:
            self._chain(result, changes)
        except _Stop as stop:
            result.outcome, result.reason = stop.outcome, stop.reason
            reached = {c.step for c in result.checks}
            for step, _ in STEPS:
                if step not in reached:
                    result.add(step, step, None, f"not run: {stop.outcome.replace('_', ' ')}")
        finally:
            ci_run.set_tags({_OUTCOME_TAG: result.outcome, _REASON_TAG: result.reason[:5000]})
            ci_run.log_text(to_junit(result), "ci/junit.xml")
            ci_run.log_text(to_markdown(result), "ci/summary.md")
            ci_run.end(RunStatus.FINISHED if result.passed else RunStatus.FAILED)
        return result

    def _follow_production(self) -> str | None:
        """Move the ``production`` alias to the version the production deployment serves as
        stable, when a rollout an earlier run started has since been promoted by the
        controller (a canary outlives the ``ci run`` that started it)."""
        p, client = self.project, self.client
        try:
            d = client.deployments.get(p.production.deployment)
        except DeploymentNotFound:
            return None
        if d.candidate_version is not None or d.model != p.model:
            return None
        stable = client.registry.get_version(p.model, d.stable_version)
        if "production" in stable.aliases or Fingerprint.from_tags(stable.tags) is None:
            return None
        client.registry.set_alias(p.model, "production", stable.version)
        return (f"{p.production.deployment} serves {stable.uri} as stable: alias production → "
                f"v{stable.version}")

    def _chain(self, result: CiResult, changes: Changes) -> None:
        current = changes.current
        data = self._data(result, current)
        source = self._pipeline(result, current, data)
        model, holdout, evaluation = self._model_tests(result, source, changes.production)
        version = self._register(result, source, current, data, evaluation)
        self._acceptance(result, version, model, holdout)
        self._promote(result, version)

    @contextmanager
    def _timed(self) -> Iterator[Callable[[], float]]:
        start = self.clock()
        yield lambda: self.clock() - start

    # --- steps --------------------------------------------------------------------------------
    def _data(self, result: CiResult, current: Fingerprint) -> list[DatasetVersion]:
        p, data = self.project, self.client.data
        versions = [data.get_version(ref) for ref in current.datasets]
        broken = []
        for version in versions:
            with self._timed() as took:
                try:
                    report = data.validate(version, p.contract)
                except ContractNotFound:
                    result.add("data", f"{version.ref} contract", None,
                               f"{version.dataset} has no contract: not validated", took())
                    continue
                failed = [c for c in report.checks if not c.passed]
                message = (f"{len(report.checks) - len(failed)} of {len(report.checks)} "
                           f"checks pass on {report.num_rows} rows")
                if failed:
                    message += ": " + "; ".join(_describe_check(c) for c in failed[:10])
                    broken.append(f"{version.ref}: {message}")
                result.add("data", f"{version.ref} contract", not failed, message, took())
        if broken:
            raise _Stop("data_failed", "data broke its contract; production is untouched: "
                        + " | ".join(broken))
        return versions

    def _pipeline(self, result: CiResult, current: Fingerprint,
                  data: list[DatasetVersion]) -> str:
        """Run the pipeline; returns the model's source URI."""
        from mlcycle.pipelines import Pipeline

        p = self.project
        refs = [v.ref for v in data[:len(p.datasets)]]
        tags = {"mlcycle.ci.project": p.name, CI_RUN_TAG: result.ci_run_id or ""}
        with self._timed() as took:
            try:
                fn = _import_target(p.pipeline, p.root)
                if isinstance(fn, Pipeline):
                    run = fn.run(*refs, client=self.client, experiment=f"ci-{p.name}",
                                 **dict(p.params))
                    run_id = run.run.run_id
                    assert run_id is not None
                    self.client.log_batch(run_id, tags=tags)
                    output = run.output
                else:
                    with self.client.start_run(experiment=f"ci-{p.name}", name="train",
                                               params=dict(p.params), tags=tags,
                                               nested=False) as active:
                        output = fn(*refs, **dict(p.params))
                        run_id = active.run_id
                source = self._source(output, run_id, data[0])
            except Exception as exc:
                reason = _reason(exc)
                result.add("pipeline", p.pipeline, False, reason, took())
                raise _Stop("pipeline_failed", f"the pipeline {p.pipeline} failed; "
                            f"production is untouched: {reason}") from exc
            result.add("pipeline", p.pipeline, True, f"{source} (run {run_id})", took())
        result.links["training run"] = run_id
        return source

    def _source(self, output: Any, run_id: str, data: DatasetVersion) -> str:
        if isinstance(output, str):
            if not output.startswith(("runs:/", "models:/")):
                raise InvalidInputError(
                    f"the pipeline returned {output!r}; expected a fitted model, a runs:/ or a "
                    "models:/ URI", details={"field": "ci.pipeline"})
            return output
        if output is None:
            raise InvalidInputError("the pipeline returned None; expected a fitted model, a "
                                    "runs:/ or a models:/ URI", details={"field": "ci.pipeline"})
        frame = self.client.data.load(data, format="pandas").head(5)
        example = frame.drop(columns=[self.project.target], errors="ignore")
        info = self.client.log_model(run_id, output, input_example=example)
        return str(info.model_uri)

    def _model_tests(self, result: CiResult, source: str, production: ModelVersion | None
                     ) -> tuple[Any, pd.DataFrame, dict[str, Any]]:
        """Gates, behavioural tests, latency; returns the loaded model, the holdout and the
        evaluation record kept on the version once it is registered."""
        from mlcycle.evaluation import GateSet, evaluate

        p, client = self.project, self.client
        holdout_version = client.data.get_version(p.holdout_ref)
        holdout = client.data.load(holdout_version, format="pandas")
        segments = client.data.segments_for(holdout_version)
        model = client.load_model(source)
        baseline = client.load_model(production.uri) if production is not None else None
        with self._timed() as took:
            evaluation = evaluate(
                model, holdout, target=p.target, segments=segments, baseline=baseline,
                baseline_name=f"production v{production.version}" if production else "production",
                model_size=sum(f.size for f in model.info.files.values()))
            report = GateSet.from_dict(dict(p.gates)).check(evaluation)
            seconds = took() / max(len(report.checks), 1)
        result.metrics = dict(evaluation.metrics)
        result.baseline_metrics = (dict(evaluation.baseline_metrics)
                                   if evaluation.baseline_metrics else None)
        result.gates = [c.to_dict() for c in report.checks]
        evaluation_record: dict[str, Any] = {
            "data": holdout_version.ref, "result": evaluation.to_dict(),
            "gates": report.to_dict(), "passed": report.passed,
            "baseline": production.uri if production else None}
        for check in report.checks:
            result.add("model", f"gate: {check.gate.label}",
                       None if check.skipped else check.passed, check.message, seconds)
        failures = []
        with self._timed() as took:
            outcomes = run_tests(model, holdout, p.target, p.tests)
            seconds = took() / max(len(outcomes), 1)
        for outcome in outcomes:
            result.add("model", outcome.name, outcome.passed, outcome.message, seconds)
            if not outcome.passed:
                failures.append(f"{outcome.name}: {outcome.message}")
        if p.latency is not None:
            budget = p.latency
            with self._timed() as took:
                ms = measure_latency(model, holdout.drop(columns=[p.target]), budget.rows)
            ok = ms <= budget.max_ms_per_row
            message = (f"{ms:.4g} ms/row (median of batches of {min(budget.rows, len(holdout))}"
                       f" rows); budget {budget.max_ms_per_row:g} ms/row")
            result.add("model", "latency budget", ok, message, took())
            if not ok:
                failures.append(f"latency budget: {message}")
        if not report.passed:
            raise _Stop("gates_failed", f"{source} failed the gates; production is untouched: "
                        + "; ".join(f"{c.gate.label}: {c.message}" for c in report.failed))
        if failures:
            raise _Stop("tests_failed", f"{source} failed {len(failures)} model tests; "
                        "production is untouched: " + "; ".join(failures))
        return model, holdout, evaluation_record

    def _register(self, result: CiResult, source: str, current: Fingerprint,
                  data: list[DatasetVersion], evaluation: dict[str, Any]) -> ModelVersion:
        p, registry = self.project, self.client.registry
        tags = {**current.tags(), CI_RUN_TAG: result.ci_run_id or ""}
        with self._timed() as took:
            if source.startswith("models:/"):
                found = registry.resolve(source)
                version = registry.update_version(found.name, found.version,
                                                  tags={**dict(found.tags), **tags})
            else:
                roles = ["train"] * len(p.datasets) + ["holdout"]
                inputs = [RunInput(v.dataset, f"v{v.version}", v.digest, {"role": role})
                          for v, role in zip(data, roles, strict=False)]
                version = self.client.register_model(
                    source, p.model, datasets=inputs, tags=tags,
                    code_commit=current.commit,
                    description=f"released by ci run {result.ci_run_id} of {p.name}")
            registry.update_version(version.name, version.version, evaluation=evaluation)
            registry.set_alias(version.name, "staging", version.version)
        result.model_version = version.uri
        result.links["model"] = version.uri
        result.add("register", f"{version.uri} @staging", True,
                   f"registered from {source}; alias staging → v{version.version}", took())
        return version

    def _acceptance(self, result: CiResult, version: ModelVersion, model: Any,
                    holdout: pd.DataFrame) -> None:
        p, client = self.project, self.client
        staging = p.staging.deployment
        actor = f"ci-run:{result.ci_run_id}"
        try:
            client.deployments.deploy(staging, version.uri, strategy="direct", actor=actor)
        except MlcycleError as exc:
            result.add("acceptance", f"deploy to {staging}", False, _reason(exc))
            raise _Stop("acceptance_failed", f"could not deploy {version.uri} to staging "
                        f"{staging!r}; production is untouched: {_reason(exc)}") from exc
        failures: list[str] = []
        features = holdout.drop(columns=[p.target])
        try:
            with self._timed() as took, served(client, staging, version.version,
                                               cwd=p.root) as http:
                result.add("acceptance", f"serve {staging}", True,
                           f"mlcycle serve --deployment {staging} on {http.base_url}", took())
                for name, passed, message in _endpoint_checks(http, model, features, p):
                    result.add("acceptance", name, passed, message)
                    if not passed:
                        failures.append(f"{name}: {message}")
        except (MlcycleError, httpx.HTTPError) as exc:
            result.add("acceptance", f"serve {staging}", False, _reason(exc))
            raise _Stop("acceptance_failed", f"the staging endpoint of {staging!r} failed; "
                        f"production is untouched: {_reason(exc)}") from exc
        if failures:
            raise _Stop("acceptance_failed", f"{version.uri} failed acceptance on staging "
                        f"{staging!r}; production is untouched: " + "; ".join(failures))

    def _promote(self, result: CiResult, version: ModelVersion) -> None:
        p, client = self.project, self.client
        prod = p.production
        actor = f"ci-run:{result.ci_run_id}"
        with self._timed() as took:
            try:
                d = client.deployments.deploy(prod.deployment, version.uri,
                                              strategy=prod.strategy,
                                              config=dict(prod.config) or None, actor=actor)
            except MlcycleError as exc:
                result.add("promotion", f"deploy to {prod.deployment}", False, _reason(exc),
                           took())
                raise _Stop("promotion_failed", f"{version.uri} was not promoted to "
                            f"{prod.deployment!r}: {_reason(exc)}") from exc
            deadline = self.clock() + prod.wait_s
            while d.stable_version != version.version and d.candidate_version is not None \
                    and self.clock() < deadline:
                time.sleep(_POLL_S)
                d = client.deployments.get(prod.deployment)
            if d.stable_version == version.version:
                client.registry.set_alias(version.name, "production", version.version)
                how = prod.strategy if d.rollout else "first deployment: stable at once"
                message = (f"{prod.deployment} serves {version.uri} ({how}); "
                           f"alias production → v{version.version}")
            elif d.candidate_version == version.version:
                message = (f"{prod.strategy} rollout {d.rollout} of {prod.deployment} under way "
                           f"({d.phase}, {d.weight:g}% of the traffic): the controller "
                           "promotes or rolls it back (`mlcycle deploy status "
                           f"{prod.deployment}`)")
            else:
                why = next((e.reason for e in client.deployments.history(prod.deployment, 5)
                            if e.reason), "")
                result.add("promotion", f"deploy to {prod.deployment}", False,
                           f"rolled back: {why}", took())
                raise _Stop("promotion_failed", f"the {prod.strategy} rollout of {version.uri}"
                            f" to {prod.deployment!r} was rolled back: {why}")
        result.add("promotion", f"deploy to {prod.deployment}", True, message, took())
        result.reason = message


def _endpoint_checks(http: httpx.Client, model: Any, features: pd.DataFrame, p: CiProject
                     ) -> Iterator[tuple[str, bool, str]]:
    """(name, passed, message) of each acceptance test against the served endpoint."""
    records = features.to_dict(orient="records")
    smoke = records[:p.acceptance.smoke_rows]
    answers = [http.post("/predict", json=[row]) for row in smoke]
    bad = [f"{a.status_code} {a.text[:200]}" for a in answers
           if a.status_code != 200 or len(a.json().get("predictions", [])) != 1]
    yield ("smoke: single-row /predict", not bad,
           f"{len(smoke) - len(bad)} of {len(smoke)} answered 200 with one prediction"
           + (f"; first failure: {bad[0]}" if bad else ""))
    wrong = http.post("/predict", json=[{"no such column": 1}])
    yield ("smoke: invalid input is refused", 400 <= wrong.status_code < 500,
           f"a row without the model's columns got {wrong.status_code}")
    offline = np.asarray(model.predict(features))
    try:
        offline_proba: np.ndarray | None = np.asarray(model.predict_proba(features))
    except AttributeError:
        offline_proba = None
    served_pred: list[Any] = []
    served_proba: list[Any] = []
    size = p.acceptance.batch_rows
    for start in range(0, len(records), size):
        answer = http.post("/predict", params={"proba": "true"} if offline_proba is not None
                           else None, json=records[start:start + size])
        if answer.status_code != 200:
            yield ("holdout through the endpoint", False,
                   f"rows {start}..{start + size - 1}: {answer.status_code} {answer.text[:300]}")
            return
        body = answer.json()
        served_pred.extend(body["predictions"])
        served_proba.extend(body.get("probabilities", []))
    online = np.asarray(served_pred)
    tol = p.acceptance.tolerance
    if np.issubdtype(offline.dtype, np.floating):
        differ = ~np.isclose(online.astype(float), offline, rtol=0, atol=tol)
    else:
        differ = online != offline
    n = int(np.sum(differ))
    yield ("holdout predictions match offline", n == 0,
           f"{len(offline) - n} of {len(offline)} served predictions equal the offline ones"
           + (f"; first difference at row {int(np.argmax(differ))}: served "
              f"{online[np.argmax(differ)]!r}, offline {offline[np.argmax(differ)]!r}"
              if n else ""))
    if offline_proba is not None:
        gap = float(np.max(np.abs(np.asarray(served_proba, dtype=float) - offline_proba)))
        yield ("holdout probabilities match offline", gap <= tol,
               f"largest difference {gap:.3g} (tolerance {tol:g})")


def _import_target(target: str, root: Path) -> Callable[..., Any]:
    """The function at ``module:qualname``, imported afresh from the project folder (a
    module of the project imported by an earlier run in this process is re-read)."""
    module_name, _, qualname = target.partition(":")
    folder = str(root)
    if folder in sys.path:
        sys.path.remove(folder)
    sys.path.insert(0, folder)  # the project's module wins over one of the same name
    top = module_name.split(".")[0]
    in_project = (root / f"{top}.py").is_file() or (root / top / "__init__.py").is_file()
    for name in [m for m in sys.modules if m == top or m.startswith(top + ".")]:
        path = getattr(sys.modules[name], "__file__", None)
        # Re-read the project's code (it may have changed since an earlier run in this
        # process), and drop a module of that name imported from elsewhere.
        if in_project or (path and Path(path).resolve().is_relative_to(root)):
            del sys.modules[name]
    importlib.invalidate_caches()
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise InvalidInputError(f"ci.pipeline: cannot import {target!r} from {root}: {exc}",
                                details={"field": "ci.pipeline"}) from exc
    if not callable(obj):
        raise InvalidInputError(f"ci.pipeline: {target} is a {type(obj).__name__}, not a "
                                "function", details={"field": "ci.pipeline"})
    return obj


def _describe_check(check: Any) -> str:
    where = f"{check.check}({check.column})" if check.column else check.check
    return f"{where}: {check.message or f'{check.failed_rows} of {check.total_rows} rows'}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, MlcycleError):
        return f"{exc.headline}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


def _uri(version: ModelVersion | None) -> str:
    return version.uri if version is not None else "(nothing in production)"
