"""The CI project: the ``ci:`` section of ``mlcycle.yaml``.

``mlcycle.yaml`` also holds the settings (``tracking_uri``, ``artifact_uri``, …, read by
:mod:`mlcycle.config`, which ignores other keys); the CI project lives under its own top-level
``ci:`` key so the two share the file without knowing of each other::

    ci:
      model: breast-cancer-clf            # the registered model CI releases
      pipeline: train:train               # module:function, imported from the project folder
      params: {C: 1.0}                    # keyword arguments of the pipeline
      datasets: [breast-cancer]           # newest versions (or pinned: breast-cancer@v3)
      holdout: breast-cancer-holdout      # scored by the gates, the tests and the endpoint
      target: target
      contract: breast-cancer             # a stored contract (name or name@contract-v2);
                                          # default: each dataset's own newest
      gates:                              # as in mlcycle.evaluation.gates
        - {metric: roc_auc, min: 0.95}
        - {metric: roc_auc, max_regression: 0.02, when_missing: skip}
      tests:                              # behavioural tests (mlcycle.ci.checks)
        invariance:
          - {column: mean texture, delta: 0.01, max_flip_rate: 0.0}
        directional:
          - {column: worst radius, delta: 5, expect: decrease}
        minimum_functionality:
          - {name: huge tumours are malignant, where: "`worst radius` > 25", expect: 0}
      latency: {max_ms_per_row: 5, rows: 100}
      staging: {deployment: bc-staging}
      production:
        deployment: bc-prod
        strategy: canary                  # direct | blue-green | canary (default)
        config: {steps: [10, 50, 100], min_requests: 200}
        wait_s: 0                         # how long ci run waits for the rollout's verdict
      acceptance: {smoke_rows: 5, batch_rows: 100, tolerance: 1.0e-6}

The pipeline contract is the retraining one (:mod:`mlcycle.retrain.service`) with the project's
datasets: ``fn(*data_refs, **params)`` gets one ``"<dataset>@v<n>"`` per dataset, in order,
and returns a fitted model, a ``runs:/…`` of a model it logged, or a ``models:/…`` it
registered. Every error names the file, the line and the key (``mlcycle.yaml line 12:
ci.gates[1].metric: unknown metric 'roc_aux' (did you mean 'roc_auc'?)``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from mlcycle.errors import InvalidInputError, MlcycleError
from mlcycle.specs import describe, did_you_mean, index_lines

__all__ = ["PROMOTION_STRATEGIES", "Acceptance", "CiProject", "Latency", "Promotion"]

PROMOTION_STRATEGIES: Final = ("direct", "blue-green", "canary")
_SECTION: Final = "ci"
_KEYS: Final = ("name", "model", "pipeline", "params", "datasets", "holdout", "target",
                "contract", "gates", "tests", "latency", "staging", "production", "acceptance")
_REQUIRED: Final = ("model", "pipeline", "datasets", "target", "gates", "staging", "production")
_TEST_KINDS: Final = ("invariance", "directional", "minimum_functionality")
_NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_TARGET_RE: Final = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


@dataclass(frozen=True, slots=True)
class Latency:
    """The budget: median milliseconds per row over *rows* holdout rows, predicted offline."""

    max_ms_per_row: float
    rows: int = 100


@dataclass(frozen=True, slots=True)
class Promotion:
    """How a model reaches a deployment (staging is always ``direct``)."""

    deployment: str
    strategy: str = "canary"
    config: Mapping[str, Any] = field(default_factory=dict)
    wait_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Acceptance:
    """Acceptance tests against the staging endpoint: *smoke_rows* single-row requests, then
    the holdout in requests of *batch_rows* rows, whose answers must equal the offline
    predictions (probabilities within *tolerance*)."""

    smoke_rows: int = 5
    batch_rows: int = 100
    tolerance: float = 1e-6


@dataclass(frozen=True, slots=True)
class CiProject:
    """The ``ci:`` section of a project file, checked. ``root`` is the folder the pipeline
    module is imported from and git is asked about (the file's folder)."""

    model: str
    pipeline: str
    datasets: tuple[str, ...]
    target: str
    gates: Mapping[str, Any]
    staging: Promotion
    production: Promotion
    root: Path
    name: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    holdout: str | None = None
    contract: str | None = None
    tests: Mapping[str, tuple[Mapping[str, Any], ...]] = field(default_factory=dict)
    latency: Latency | None = None
    acceptance: Acceptance = field(default_factory=Acceptance)
    source: str = "mlcycle.yaml"

    @property
    def holdout_ref(self) -> str:
        """The data the gates, the tests and the endpoint score (default: the first dataset)."""
        return self.holdout or self.datasets[0]

    @property
    def lock_name(self) -> str:
        return f"ci:{self.name}"

    @classmethod
    def from_file(cls, path: str | Path) -> CiProject:
        path = Path(path)
        if not path.is_file():
            raise InvalidInputError(
                f"{path}: no project file; `mlcycle ci init` explains its `ci:` section",
                details={"field": None, "path": str(path)})
        return cls.from_yaml(path.read_text(), source=str(path), root=path.resolve().parent)

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "mlcycle.yaml",
                  root: Path | None = None) -> CiProject:
        lines: dict[str, int] = {}
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                index_lines(node, "", lines, source)
            data = loader.construct_document(node) if node is not None else None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            line = mark.line + 1 if mark is not None else None
            problem = getattr(exc, "problem", None) or str(exc)
            raise InvalidInputError(
                f"{source}{f' line {line}' if line else ''}: not valid YAML: {problem}",
                details={"field": None, "line": line}) from exc
        finally:
            loader.dispose()
        return _Parser(source, lines).project(data, root or Path.cwd())


class _Parser:
    """Turns the loaded YAML into a :class:`CiProject`; every error names line and key."""

    def __init__(self, source: str, lines: Mapping[str, int]) -> None:
        self.source = source
        self.lines = lines

    def error(self, key: str, problem: str) -> InvalidInputError:
        line = self._line(key)
        where = f"{self.source} line {line}" if line else self.source
        return InvalidInputError(f"{where}: {key}: {problem}", details={"field": key,
                                                                          "line": line})

    def _line(self, key: str) -> int | None:
        # The nearest key path that has a line: ci.gates[1].metric, else ci.gates[1], …
        while key:
            if key in self.lines:
                return self.lines[key]
            key = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", key) if re.search(r"[.\[]", key) else ""
        return None

    def project(self, data: Any, root: Path) -> CiProject:
        if not isinstance(data, Mapping) or _SECTION not in data:
            raise InvalidInputError(
                f"{self.source}: no `{_SECTION}:` section; it names the pipeline, the datasets, "
                "the gates and the deployments (see `mlcycle ci init --help`)",
                details={"field": _SECTION, "line": None})
        ci = data[_SECTION]
        if not isinstance(ci, Mapping):
            raise self.error(_SECTION, f"expected a mapping, got {describe(ci)}")
        for key in ci:
            if key not in _KEYS:
                raise self.error(f"{_SECTION}.{key}", "unknown key" + did_you_mean(str(key), _KEYS)
                                 + "; expected one of " + ", ".join(_KEYS))
        for key in _REQUIRED:
            if ci.get(key) is None:
                raise self.error(_SECTION, f"missing required key {key!r}")
        model = self.name(ci["model"], "model")
        pipeline = ci["pipeline"]
        if not isinstance(pipeline, str) or not _TARGET_RE.match(pipeline):
            raise self.error("ci.pipeline", f"expected module:function, got {describe(pipeline)}")
        datasets = ci["datasets"]
        datasets = [datasets] if isinstance(datasets, str) else datasets
        if not isinstance(datasets, list) or not datasets:
            raise self.error("ci.datasets", "expected a dataset name or a non-empty list of "
                             f"them, got {describe(ci['datasets'])}")
        refs = tuple(self.ref(d, f"ci.datasets[{i}]") for i, d in enumerate(datasets))
        return CiProject(
            model=model, pipeline=pipeline, datasets=refs,
            target=self.text(ci["target"], "ci.target"),
            gates=self.gates(ci["gates"]),
            staging=self.promotion(ci["staging"], "ci.staging", staging=True),
            production=self.promotion(ci["production"], "ci.production"),
            root=root, name=self.name(ci.get("name", model), "name"),
            params=self.mapping(ci.get("params", {}), "ci.params"),
            holdout=None if ci.get("holdout") is None else self.ref(ci["holdout"], "ci.holdout"),
            contract=None if ci.get("contract") is None else self.text(ci["contract"],
                                                                       "ci.contract"),
            tests=self.tests(ci.get("tests") or {}),
            latency=None if ci.get("latency") is None else self.latency(ci["latency"]),
            acceptance=self.acceptance(ci.get("acceptance") or {}),
            source=self.source)

    # --- pieces ---------------------------------------------------------------------------
    def text(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"expected a non-empty string, got {describe(value)}")
        return value

    def name(self, value: Any, key: str) -> str:
        key = f"ci.{key}"
        if not isinstance(value, str) or not _NAME_RE.match(value):
            raise self.error(key, "expected a name of letters, digits, '.', '_' or '-', got "
                             + describe(value))
        return value

    def ref(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not re.fullmatch(r"[^@\s]+(@v\d+)?", value):
            raise self.error(key, f"expected a dataset name or name@v<n>, got {describe(value)}")
        return value

    def mapping(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise self.error(key, f"expected a mapping, got {describe(value)}")
        return dict(value)

    def number(self, value: Any, key: str, *, minimum: float = 0.0,
               integer: bool = False) -> Any:
        ok = isinstance(value, int) if integer else isinstance(value, int | float)
        if not ok or isinstance(value, bool) or value < minimum:
            kind = "an integer" if integer else "a number"
            raise self.error(key, f"expected {kind} >= {minimum:g}, got {describe(value)}")
        return value

    def gates(self, value: Any) -> dict[str, Any]:
        from mlcycle.evaluation import GateSet

        data = {"gates": value} if isinstance(value, list) else value
        try:
            return GateSet.from_dict(data).to_dict()
        except MlcycleError as exc:  # errors name "gates[1].metric": put our prefix and line
            sub = str(exc.details.get("field") or "gates")
            key = f"ci.{sub}" if sub.startswith("gates") else f"ci.gates.{sub}"
            problem = exc.message.split(": ", 1)[-1] if ": " in exc.message else exc.message
            raise self.error(key, problem) from None

    def promotion(self, value: Any, key: str, *, staging: bool = False) -> Promotion:
        if isinstance(value, str):
            value = {"deployment": value}
        spec = self.mapping(value, key)
        allowed = ("deployment",) if staging else ("deployment", "strategy", "config", "wait_s")
        for k in spec:
            if k not in allowed:
                raise self.error(f"{key}.{k}", "unknown key" + did_you_mean(str(k), allowed)
                                 + "; expected one of " + ", ".join(allowed))
        if "deployment" not in spec:
            raise self.error(key, "missing required key 'deployment'")
        deployment = self.name(spec["deployment"], f"{key[3:]}.deployment")
        if staging:
            return Promotion(deployment, strategy="direct")
        strategy = spec.get("strategy", "canary")
        if strategy not in PROMOTION_STRATEGIES:
            raise self.error(f"{key}.strategy", f"expected one of {', '.join(PROMOTION_STRATEGIES)}"
                             f", got {describe(strategy)}"
                             + did_you_mean(str(strategy), PROMOTION_STRATEGIES))
        config = self.mapping(spec.get("config", {}), f"{key}.config")
        from mlcycle.deploy.config import DeploymentConfig

        try:
            DeploymentConfig.from_mapping(config)
        except MlcycleError as exc:
            sub = exc.details.get("field")
            raise self.error(f"{key}.config" + (f".{sub}" if sub else ""), exc.message) from None
        return Promotion(deployment, strategy=strategy, config=config,
                         wait_s=float(self.number(spec.get("wait_s", 0), f"{key}.wait_s")))

    def tests(self, value: Any) -> dict[str, tuple[Mapping[str, Any], ...]]:
        from mlcycle.ci.checks import check_test

        spec = self.mapping(value, "ci.tests")
        out: dict[str, tuple[Mapping[str, Any], ...]] = {}
        for kind, items in spec.items():
            key = f"ci.tests.{kind}"
            if kind not in _TEST_KINDS:
                raise self.error(key, "unknown test kind" + did_you_mean(str(kind), _TEST_KINDS)
                                 + "; expected one of " + ", ".join(_TEST_KINDS))
            if not isinstance(items, list):
                raise self.error(key, f"expected a list of tests, got {describe(items)}")
            checked = []
            for i, item in enumerate(items):
                try:
                    checked.append(check_test(kind, item))
                except InvalidInputError as exc:
                    sub = exc.details.get("field")
                    raise self.error(f"{key}[{i}]" + (f".{sub}" if sub else ""),
                                     exc.message) from None
            out[kind] = tuple(checked)
        return out

    def latency(self, value: Any) -> Latency:
        spec = self.mapping(value, "ci.latency")
        for k in spec:
            if k not in ("max_ms_per_row", "rows"):
                raise self.error(f"ci.latency.{k}", "unknown key; expected max_ms_per_row, rows")
        if "max_ms_per_row" not in spec:
            raise self.error("ci.latency", "missing required key 'max_ms_per_row'")
        return Latency(float(self.number(spec["max_ms_per_row"], "ci.latency.max_ms_per_row")),
                       int(self.number(spec.get("rows", 100), "ci.latency.rows", minimum=1,
                                       integer=True)))

    def acceptance(self, value: Any) -> Acceptance:
        spec = self.mapping(value, "ci.acceptance")
        keys = ("smoke_rows", "batch_rows", "tolerance")
        for k in spec:
            if k not in keys:
                raise self.error(f"ci.acceptance.{k}", "unknown key" + did_you_mean(str(k), keys)
                                 + "; expected one of " + ", ".join(keys))
        return Acceptance(
            smoke_rows=int(self.number(spec.get("smoke_rows", 5), "ci.acceptance.smoke_rows",
                                       minimum=1, integer=True)),
            batch_rows=int(self.number(spec.get("batch_rows", 100), "ci.acceptance.batch_rows",
                                       minimum=1, integer=True)),
            tolerance=float(self.number(spec.get("tolerance", 1e-6),
                                        "ci.acceptance.tolerance")))
