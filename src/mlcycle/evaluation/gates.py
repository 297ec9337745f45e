"""Gates: the pass/fail rules a candidate model must meet, declared in Python or YAML.

A :class:`GateSet` checks an :class:`~mlcycle.evaluation.evaluate.EvaluationResult` and returns a
:class:`GateReport` whose every line names its numbers, because "gate failed" alone sends a
person back to the logs while "roc_auc dropped 0.023 vs production (0.951 → 0.928); allowed
0.010" tells them what to fix. CI and the retraining loop call :meth:`GateReport.raise_for_failure`.

Gate kinds::

    min / max                 a floor or ceiling on a metric          accuracy >= 0.9
    max_regression            how much a metric may worsen against the baseline, absolute (0.01)
                              or relative ('2%'); "worse" follows the metric's direction
    segment_min / segment_max a floor or ceiling in every segment, or in the named ones
    max_latency_ms_per_row    milliseconds per predicted row
    max_model_size_mb         serialized size in MB (10^6 bytes)

The YAML form (errors name the file, line and field, and suggest the closest metric name)::

    task: binary                    # optional: metric names are then checked against this task
    gates:
      - metric: accuracy
        min: 0.90
      - metric: roc_auc
        max_regression: 0.01        # absolute; '2%' is relative to the baseline's value
      - metric: recall
        segment_min: 0.80
        segments: [seniors]         # omitted: every segment
        when_missing: skip          # default fail: a gate that cannot be checked fails
      - max_latency_ms_per_row: 0.5
      - max_model_size_mb: 50

A gate whose number is missing (a regression gate without a baseline, a segment too small to
score, a probability metric for a model without ``predict_proba``) fails with the reason, unless
it says ``when_missing: skip``: a gate that silently passes on missing data is no gate.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, cast, get_args

import yaml

from mlcycle.errors import GateFailed, InvalidInputError
from mlcycle.evaluation.evaluate import EvaluationResult, SegmentResult
from mlcycle.evaluation.metrics import LOWER_IS_BETTER, METRICS
from mlcycle.specs import describe, did_you_mean, index_lines

__all__ = ["GATE_KINDS", "Gate", "GateCheck", "GateKind", "GateReport", "GateSet"]

GateKind = Literal[
    "min", "max", "max_regression", "segment_min", "segment_max",
    "max_latency_ms_per_row", "max_model_size_mb",
]
GATE_KINDS: Final[tuple[str, ...]] = get_args(GateKind)
GateTask = Literal["binary", "multiclass", "classification", "regression"]
WhenMissing = Literal["fail", "skip"]
Status = Literal["passed", "failed", "skipped"]

_METRIC_KINDS: Final = frozenset({"min", "max", "max_regression", "segment_min", "segment_max"})
_SEGMENT_KINDS: Final = frozenset({"segment_min", "segment_max"})
_ITEM_KEYS: Final = ("metric", *GATE_KINDS, "segments", "when_missing", "name")
_TOP_KEYS: Final = ("task", "gates")
_TASKS: Final = get_args(GateTask)
_ALL_METRICS: Final = tuple(dict.fromkeys(n for names in METRICS.values() for n in names))
# Floating point: 0.95 - 0.94 is 0.010000000000000009, which must not fail "allowed 0.01".
_EPS: Final = 1e-9
_MB: Final = 1_000_000


def _metrics_of(task: str | None) -> tuple[str, ...]:
    if task is None:
        return _ALL_METRICS
    if task == "classification":
        return tuple(dict.fromkeys((*METRICS["binary"], *METRICS["multiclass"])))
    return METRICS[task]


def _invalid(field: str, problem: str) -> InvalidInputError:
    return InvalidInputError(f"{field}: {problem}", details={"field": field})


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _num(value: float) -> str:
    """Three decimals, the precision gate thresholds are written in; tiny or huge values in
    three significant digits so a latency of 0.0004 ms does not print as 0.000."""
    if value == 0 or 1e-3 <= abs(value) < 1e6:
        return f"{value:.3f}"
    return f"{value:.3g}"


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.1f}%"


# --------------------------------------------------------------------------- gates


@dataclass(frozen=True, slots=True)
class Gate:
    """One rule. ``threshold`` is the floor, ceiling or allowed worsening; with
    ``relative=True`` (``max_regression`` only) it is a fraction of the baseline's value.

    >>> Gate.min("accuracy", 0.9).label
    'accuracy >= 0.9'
    """

    kind: GateKind
    threshold: float
    metric: str | None = None
    relative: bool = False
    segments: tuple[str, ...] | None = None
    when_missing: WhenMissing = "fail"
    name: str | None = None

    def __post_init__(self) -> None:
        kind = self.kind
        if kind not in GATE_KINDS:
            raise _invalid("kind", f"expected one of {', '.join(GATE_KINDS)}, got {kind!r}"
                           + did_you_mean(str(kind), GATE_KINDS))
        if not _is_number(self.threshold) or not math.isfinite(self.threshold):
            raise _invalid(kind, f"expected a number, got {self.threshold!r}")
        if kind in ("max_regression", "max_latency_ms_per_row", "max_model_size_mb") \
                and self.threshold < 0:
            raise _invalid(kind, f"expected a number >= 0, got {self.threshold!r}")
        if kind in _METRIC_KINDS:
            if self.metric is None:
                raise _invalid("metric", f"a {kind} gate needs a metric; known metrics: "
                               + ", ".join(_ALL_METRICS))
            if not isinstance(self.metric, str) or self.metric not in _ALL_METRICS:
                raise _invalid("metric", f"unknown metric {self.metric!r}"
                               + did_you_mean(str(self.metric), _ALL_METRICS)
                               + "; known metrics: " + ", ".join(_ALL_METRICS))
        elif self.metric is not None:
            raise _invalid("metric", f"a {kind} gate takes no metric, got {self.metric!r}")
        if self.relative and kind != "max_regression":
            raise _invalid("relative", f"only a max_regression gate can be relative, not {kind}")
        if self.segments is not None:
            if kind not in _SEGMENT_KINDS:
                raise _invalid("segments", f"only segment_min and segment_max gates take "
                               f"segments, not {kind}")
            segments = (self.segments,) if isinstance(self.segments, str) else self.segments
            if not isinstance(segments, Sequence) or not segments or not all(
                    isinstance(s, str) and s for s in segments):
                raise _invalid("segments", f"expected a non-empty list of segment names, got "
                               f"{self.segments!r}")
            object.__setattr__(self, "segments", tuple(segments))
        if self.when_missing not in ("fail", "skip"):
            raise _invalid("when_missing", f"expected fail or skip, got {self.when_missing!r}")
        if self.name is not None and not isinstance(self.name, str):
            raise _invalid("name", f"expected a string, got {self.name!r}")

    # -- constructors that read like the rule they declare

    @classmethod
    def min(cls, metric: str, value: float, *, when_missing: WhenMissing = "fail",
            name: str | None = None) -> Gate:
        """``metric >= value`` on the whole holdout."""
        return cls("min", value, metric=metric, when_missing=when_missing, name=name)

    @classmethod
    def max(cls, metric: str, value: float, *, when_missing: WhenMissing = "fail",
            name: str | None = None) -> Gate:
        """``metric <= value`` on the whole holdout."""
        return cls("max", value, metric=metric, when_missing=when_missing, name=name)

    @classmethod
    def max_regression(cls, metric: str, allowed: float, *, relative: bool = False,
                       when_missing: WhenMissing = "fail", name: str | None = None) -> Gate:
        """*metric* may be worse than the baseline's by at most *allowed* (absolute, or a
        fraction of the baseline's value with ``relative=True``: 0.02 is 2 %)."""
        return cls("max_regression", allowed, metric=metric, relative=relative,
                   when_missing=when_missing, name=name)

    @classmethod
    def segment_min(cls, metric: str, value: float, *, segments: Sequence[str] | None = None,
                    when_missing: WhenMissing = "fail", name: str | None = None) -> Gate:
        """``metric >= value`` in each named segment (every segment when None)."""
        return cls("segment_min", value, metric=metric,
                   segments=tuple(segments) if segments is not None else None,
                   when_missing=when_missing, name=name)

    @classmethod
    def segment_max(cls, metric: str, value: float, *, segments: Sequence[str] | None = None,
                    when_missing: WhenMissing = "fail", name: str | None = None) -> Gate:
        """``metric <= value`` in each named segment (every segment when None)."""
        return cls("segment_max", value, metric=metric,
                   segments=tuple(segments) if segments is not None else None,
                   when_missing=when_missing, name=name)

    @classmethod
    def max_latency_ms_per_row(cls, ms: float, *, when_missing: WhenMissing = "fail",
                               name: str | None = None) -> Gate:
        return cls("max_latency_ms_per_row", ms, when_missing=when_missing, name=name)

    @classmethod
    def max_model_size_mb(cls, mb: float, *, when_missing: WhenMissing = "fail",
                          name: str | None = None) -> Gate:
        return cls("max_model_size_mb", mb, when_missing=when_missing, name=name)

    @property
    def label(self) -> str:
        """The gate as a person would write it; *name* when one was given."""
        if self.name:
            return self.name
        t = f"{self.threshold:g}"
        where = f" in {', '.join(self.segments)}" if self.segments else " in every segment"
        return {
            "min": f"{self.metric} >= {t}",
            "max": f"{self.metric} <= {t}",
            "max_regression": f"{self.metric} regression <= "
                              + (f"{self.threshold * 100:g}%" if self.relative else t),
            "segment_min": f"{self.metric} >= {t}{where}",
            "segment_max": f"{self.metric} <= {t}{where}",
            "max_latency_ms_per_row": f"latency <= {t} ms/row",
            "max_model_size_mb": f"model size <= {t} MB",
        }[self.kind]

    def to_dict(self) -> dict[str, Any]:
        """The YAML item shape: ``{"metric": "roc_auc", "max_regression": "2%"}``."""
        out: dict[str, Any] = {}
        if self.name is not None:
            out["name"] = self.name
        if self.metric is not None:
            out["metric"] = self.metric
        out[self.kind] = f"{self.threshold * 100:g}%" if self.relative else self.threshold
        if self.segments is not None:
            out["segments"] = list(self.segments)
        if self.when_missing != "fail":
            out["when_missing"] = self.when_missing
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Gate:
        """A gate from :meth:`to_dict`'s shape; errors name the field."""
        return _parse_gate(data, "", _Where(source=None, lines={}))


# --------------------------------------------------------------------------- checking


@dataclass(frozen=True, slots=True)
class GateCheck:
    """The outcome of one gate: its status, the numbers it compared, and a sentence with them.

    ``observed`` is one value, or per segment a ``{segment: value}`` dict; ``baseline`` is the
    baseline's value for ``max_regression``.
    """

    gate: Gate
    status: Status
    message: str
    observed: float | dict[str, float] | None = None
    baseline: float | None = None

    @property
    def passed(self) -> bool:
        """False only when the gate failed; a skipped gate does not block."""
        return self.status != "failed"

    @property
    def skipped(self) -> bool:
        return self.status == "skipped"

    @property
    def threshold(self) -> float:
        return self.gate.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "gate": self.gate.to_dict(),
            "label": self.gate.label,
            "kind": self.gate.kind,
            "metric": self.gate.metric,
            "status": self.status,
            "passed": self.passed,
            "observed": dict(self.observed) if isinstance(self.observed, dict) else self.observed,
            "threshold": self.gate.threshold,
            "relative": self.gate.relative,
            "baseline": self.baseline,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateCheck:
        observed = data.get("observed")
        if isinstance(observed, Mapping):
            observed = {str(k): float(v) for k, v in observed.items()}
        elif observed is not None:
            observed = float(observed)
        status = data.get("status")
        if status not in get_args(Status):
            raise InvalidInputError(
                f"gate check: status must be passed, failed or skipped, got {status!r}",
                details={"field": "status"},
            )
        return cls(
            gate=Gate.from_dict(data["gate"]),
            status=cast(Status, status),
            message=str(data["message"]),
            observed=observed,
            baseline=None if data.get("baseline") is None else float(data["baseline"]),
        )


@dataclass(frozen=True, slots=True)
class GateReport:
    """Every gate's outcome, in declaration order."""

    checks: tuple[GateCheck, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> tuple[GateCheck, ...]:
        return tuple(c for c in self.checks if c.status == "failed")

    @property
    def skipped(self) -> tuple[GateCheck, ...]:
        return tuple(c for c in self.checks if c.status == "skipped")

    def summary(self) -> str:
        """A few lines for a CI log: the verdict, then one line per gate, failures first."""
        n, bad, skip = len(self.checks), len(self.failed), len(self.skipped)
        tail = f", {skip} skipped)" if skip else ")"
        if self.passed:
            head = f"gates passed ({n - skip} of {n} checked{tail}"
        else:
            head = f"gates FAILED ({bad} of {n} failed{tail}"
        order = {"failed": 0, "skipped": 1, "passed": 2}
        mark = {"failed": "FAIL", "skipped": "skip", "passed": "ok  "}
        lines = [head]
        for check in sorted(self.checks, key=lambda c: order[c.status]):
            lines.append(f"  {mark[check.status]}  {check.gate.label}: {check.message}")
        return "\n".join(lines)

    def raise_for_failure(self) -> None:
        """Raise :class:`~mlcycle.errors.GateFailed` naming every failed gate and its numbers;
        ``details["failed"]`` holds their :meth:`GateCheck.to_dict`."""
        failed = self.failed
        if not failed:
            return
        raise GateFailed(
            f"{len(failed)} of {len(self.checks)} gates failed: "
            + "; ".join(f"{c.gate.label}: {c.message}" for c in failed),
            details={"failed": [c.to_dict() for c in failed], "checked": len(self.checks)},
        )

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": [c.to_dict() for c in self.checks]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateReport:
        if not isinstance(data, Mapping) or not isinstance(data.get("checks"), list):
            raise InvalidInputError("gate report: expected a mapping with a 'checks' list",
                                    details={"field": "checks"})
        try:
            return cls(checks=tuple(GateCheck.from_dict(c) for c in data["checks"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"gate report: malformed check: {exc!r}",
                                    details={"field": "checks"}) from exc


def _missing_reason(metric: str, result: EvaluationResult) -> str:
    """Why *metric* has no value: the evaluation's own note about it, or what it does have."""
    mentions = re.compile(rf"\b{re.escape(metric)}\b")  # f1 is not f1_macro
    for note in result.notes:
        if mentions.search(note):
            return note
    known = ", ".join(k for k in result.metrics if k in _ALL_METRICS)
    return f"the {result.task} evaluation has no {metric} (it has {known})"


def _missing(gate: Gate, why: str, observed: Any = None) -> GateCheck:
    if gate.when_missing == "skip":
        return GateCheck(gate, "skipped", f"skipped: {why}", observed=observed)
    return GateCheck(gate, "failed", f"cannot check: {why}", observed=observed)


def _check_bound(gate: Gate, result: EvaluationResult) -> GateCheck:
    metric = gate.metric
    assert metric is not None
    value = result.metrics.get(metric)
    if value is None:
        return _missing(gate, _missing_reason(metric, result))
    t = gate.threshold
    if gate.kind == "min":
        ok = value >= t - _EPS
        msg = (f"{metric} {_num(value)} >= floor {_num(t)}" if ok else
               f"{metric} {_num(value)} is below the floor {_num(t)} (short by {_num(t - value)})")
    else:
        ok = value <= t + _EPS
        msg = (f"{metric} {_num(value)} <= ceiling {_num(t)}" if ok else
               f"{metric} {_num(value)} is above the ceiling {_num(t)} (over by {_num(value - t)})")
    return GateCheck(gate, "passed" if ok else "failed", msg, observed=value)


def _check_regression(gate: Gate, result: EvaluationResult) -> GateCheck:
    metric = gate.metric
    assert metric is not None
    vs = result.baseline_name or "the baseline"
    if result.baseline_metrics is None:
        return _missing(gate, f"no baseline to compare {metric} with; evaluate(..., "
                              "baseline=<the production model>) records one")
    value = result.metrics.get(metric)
    if value is None:
        return _missing(gate, _missing_reason(metric, result))
    base = result.baseline_metrics.get(metric)
    if base is None:
        return _missing(gate, f"{vs} has no {metric}", observed=value)
    lower_better = metric in LOWER_IS_BETTER
    worse = (value - base) if lower_better else (base - value)
    moves = f"vs {vs} ({_num(base)} → {_num(value)})"
    if gate.relative:
        # A baseline of exactly 0 leaves no relative change to speak of: any worsening is too much.
        amount = worse / abs(base) if base != 0 else (math.inf if worse > 0 else 0.0)
        shown = _pct(abs(amount)) if math.isfinite(amount) else "an unbounded share"
        allowed = _pct(gate.threshold)
    else:
        amount = worse
        shown, allowed = _num(abs(amount)), _num(gate.threshold)
    ok = amount <= gate.threshold + _EPS
    if worse > 0:
        verb = "rose" if lower_better else "dropped"
        msg = f"{metric} {verb} {shown} {moves}; allowed {allowed}"
    elif worse < 0:
        msg = f"{metric} improved by {shown} {moves}; allowed worsening {allowed}"
    else:
        msg = f"{metric} unchanged {moves}; allowed worsening {allowed}"
    return GateCheck(gate, "passed" if ok else "failed", msg, observed=value, baseline=base)


def _check_segments(gate: Gate, result: EvaluationResult) -> GateCheck:
    metric = gate.metric
    assert metric is not None
    if gate.segments is None:
        chosen: list[tuple[str, SegmentResult | None]] = [(s.name, s) for s in result.segments]
        if not chosen:
            return _missing(gate, "the evaluation has no segments; evaluate(..., segments=...) "
                                  "adds them")
    else:
        chosen = [(name, result.find_segment(name)) for name in gate.segments]
    observed: dict[str, float] = {}
    bad: list[str] = []
    missing: list[str] = []
    t = gate.threshold
    for name, seg in chosen:
        if seg is None:
            names = [s.name for s in result.segments]
            missing.append(f"{name} (not in the evaluation{did_you_mean(name, names)}; "
                           f"segments: {', '.join(names) or 'none'})")
            continue
        if seg.skipped is not None:
            missing.append(f"{name} ({seg.skipped})")
            continue
        value = seg.metrics.get(metric)
        if value is None:
            mentions = re.compile(rf"\b{re.escape(metric)}\b")
            note = next((n for n in seg.notes if mentions.search(n)), f"no {metric}")
            missing.append(f"{name} ({note})")
            continue
        observed[name] = value
        ok = value >= t - _EPS if gate.kind == "segment_min" else value <= t + _EPS
        if not ok:
            bad.append(f"{name} {_num(value)} ({seg.rows} rows)")
    side = "floor" if gate.kind == "segment_min" else "ceiling"
    cmp = "below" if gate.kind == "segment_min" else "above"
    parts: list[str] = []
    if bad:
        parts.append(f"{metric} {cmp} the {side} {_num(t)} in {len(bad)} of {len(chosen)} "
                     f"segments: {', '.join(bad)}")
    if missing:
        parts.append(f"no {metric} for {', '.join(missing)}")
    if bad or (missing and gate.when_missing == "fail"):
        return GateCheck(gate, "failed", "; ".join(parts), observed=observed)
    if not observed:
        return _missing(gate, "; ".join(parts), observed=observed)
    pick = min if gate.kind == "segment_min" else max
    worst = pick(observed, key=lambda k: observed[k])
    msg = (f"{metric} {'>=' if side == 'floor' else '<='} {_num(t)} in {len(observed)} of "
           f"{len(chosen)} segments (worst: {worst} {_num(observed[worst])})")
    if missing:
        msg += f"; skipped {', '.join(missing)}"
    return GateCheck(gate, "passed", msg, observed=observed)


def _check_latency(gate: Gate, result: EvaluationResult) -> GateCheck:
    value = result.latency_ms_per_row
    if value is None:
        return _missing(gate, "latency was not measured (evaluate ran with latency_rows=0)")
    t = gate.threshold
    ok = value <= t + _EPS
    msg = (f"latency {_num(value)} ms/row <= ceiling {_num(t)} ms/row" if ok else
           f"latency {_num(value)} ms/row is above the ceiling {_num(t)} ms/row")
    return GateCheck(gate, "passed" if ok else "failed", msg, observed=value)


def _check_size(gate: Gate, result: EvaluationResult) -> GateCheck:
    size = result.model_size_bytes
    if size is None:
        return _missing(gate, "the model size was not recorded; evaluate(..., model_size=<bytes>) "
                              "records it")
    mb = size / _MB
    t = gate.threshold
    ok = mb <= t + _EPS
    msg = (f"model size {_num(mb)} MB <= ceiling {_num(t)} MB" if ok else
           f"model size {_num(mb)} MB ({size:,} bytes) is above the ceiling {_num(t)} MB")
    return GateCheck(gate, "passed" if ok else "failed", msg, observed=mb)


_CHECKS: Final = {
    "min": _check_bound,
    "max": _check_bound,
    "max_regression": _check_regression,
    "segment_min": _check_segments,
    "segment_max": _check_segments,
    "max_latency_ms_per_row": _check_latency,
    "max_model_size_mb": _check_size,
}


# --------------------------------------------------------------------------- gate sets


@dataclass(frozen=True, slots=True)
class GateSet:
    """Gates checked together. With *task*, every metric name must be one that task produces,
    so a regression metric in a classifier's gate file fails when the file is read, not at the
    end of a training run.

    >>> gates = GateSet([Gate.min("accuracy", 0.9), Gate.max_regression("roc_auc", 0.01)],
    ...                 task="binary")
    >>> gates.check(result).raise_for_failure()                      # doctest: +SKIP
    """

    gates: Sequence[Gate]  # stored as a tuple
    task: GateTask | None = None

    def __post_init__(self) -> None:
        gates = tuple(self.gates)
        object.__setattr__(self, "gates", gates)
        if self.task is not None and self.task not in _TASKS:
            raise _invalid("task", f"expected one of {', '.join(_TASKS)}, got {self.task!r}"
                           + did_you_mean(str(self.task), _TASKS))
        for i, gate in enumerate(gates):
            if not isinstance(gate, Gate):
                raise _invalid(f"gates[{i}]", f"expected a Gate, got {type(gate).__name__}")
            known = _metrics_of(self.task)
            if gate.metric is not None and gate.metric not in known:
                owner = next((t for t, names in METRICS.items() if gate.metric in names), None)
                raise _invalid(
                    f"gates[{i}].metric",
                    f"{gate.metric!r} is a {owner} metric, not one of task {self.task}'s"
                    + did_you_mean(gate.metric, known) + ": " + ", ".join(known),
                )

    def check(self, result: EvaluationResult) -> GateReport:
        """Check every gate against *result*; never raises for a failing gate (see
        :meth:`GateReport.raise_for_failure`)."""
        if self.task is not None and not (
            self.task == result.task
            or (self.task == "classification" and result.task in ("binary", "multiclass"))
        ):
            raise InvalidInputError(
                f"task: these gates are for {self.task} models, the evaluation is of a "
                f"{result.task} model",
                details={"field": "task", "expected": self.task, "got": result.task},
            )
        return GateReport(checks=tuple(_CHECKS[g.kind](g, result) for g in self.gates))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.task is not None:
            out["task"] = self.task
        out["gates"] = [g.to_dict() for g in self.gates]
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    @classmethod
    def from_dict(cls, data: Any) -> GateSet:
        """Gates from :meth:`to_dict`'s shape; errors name the field (``gates[2].metric``)."""
        return _parse_gate_set(data, _Where(source=None, lines={}))

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "gates.yaml") -> GateSet:
        """Gates from YAML text; errors read ``gates.yaml line 7: gates[2].metric: ...``."""
        where = _Where(source=source, lines={})
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                raise InvalidInputError(
                    f"{source}: the file is empty; expected a mapping with 'gates'",
                    details={"field": None, "line": None},
                )
            index_lines(node, "", where.lines, source)
            data = loader.construct_document(node)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            line = mark.line + 1 if mark is not None else None
            problem = getattr(exc, "problem", None) or str(exc)
            raise InvalidInputError(
                f"{source}{f' line {line}' if line else ''}: not valid YAML: {problem}",
                details={"field": None, "line": line},
            ) from exc
        finally:
            loader.dispose()
        return _parse_gate_set(data, where)


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True, slots=True)
class _Where:
    """Where parsed values came from: a file name and the 1-based line of each field path.

    The same approach as :mod:`mlcycle.datasets.contracts` (whose helpers are private to it).
    """

    source: str | None
    lines: dict[str, int]

    def fail(self, path: str, problem: str) -> InvalidInputError:
        line = self.lines.get(path)
        # A missing key has no line of its own; point at the item that lacks it.
        probe = path
        while line is None and probe:
            parent = probe.rsplit(".", 1)[0] if "." in probe else re.sub(r"\[\d+\]$", "", probe)
            if parent == probe:
                break
            probe = parent
            line = self.lines.get(probe)
        prefix = ""
        if self.source is not None:
            prefix = f"{self.source} line {line}: " if line else f"{self.source}: "
        field = f"{path}: " if path else ""
        return InvalidInputError(f"{prefix}{field}{problem}",
                                 details={"field": path or None, "line": line})

    def relocate(self, exc: InvalidInputError, prefix: str) -> InvalidInputError:
        """*exc*, raised by :class:`Gate` or :class:`GateSet` for a field, as an error at
        *prefix* + that field with its line."""
        field = str(exc.details.get("field") or "")
        problem = exc.message[len(field) + 2:] if exc.message.startswith(f"{field}: ") \
            else exc.message
        path = f"{prefix}.{field}" if prefix and field else (prefix or field)
        return self.fail(path, problem)


def _check_keys(raw: Mapping[Any, Any], allowed: Sequence[str], path: str, where: _Where) -> None:
    for key in raw:
        if key not in allowed:
            child = f"{path}.{key}" if path else str(key)
            raise where.fail(child, f"unknown key{did_you_mean(str(key), allowed)}; expected "
                                    f"one of {', '.join(allowed)}")


_PERCENT: Final = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*%\s*$")


def _parse_gate(raw: Any, path: str, where: _Where, task: str | None = None) -> Gate:
    if not isinstance(raw, Mapping):
        raise where.fail(path, f"expected a gate such as {{metric: accuracy, min: 0.9}}, got "
                               f"{describe(raw)}")
    _check_keys(raw, _ITEM_KEYS, path, where)
    kinds = [k for k in raw if k in GATE_KINDS]  # file order: the second one is the extra
    sub = (lambda key: f"{path}.{key}" if path else key)  # noqa: E731
    if not kinds:
        raise where.fail(path, "missing the gate kind; expected one of " + ", ".join(GATE_KINDS))
    if len(kinds) > 1:
        raise where.fail(sub(kinds[1]), f"one gate per item: this one has both {kinds[0]} and "
                                        f"{kinds[1]}; split them into two items")
    kind = kinds[0]
    value = raw[kind]
    relative = False
    if kind == "max_regression" and isinstance(value, str):
        match = _PERCENT.match(value)
        if match is None:
            raise where.fail(sub(kind), f"expected a number (absolute) or a percentage such as "
                                        f"'2%' (relative), got {value!r}")
        value, relative = float(match.group(1)) / 100, True
    elif not _is_number(value):
        hint = " or a percentage such as '2%'" if kind == "max_regression" else ""
        raise where.fail(sub(kind), f"expected a number{hint}, got {describe(value)}")
    metric = raw.get("metric")
    if metric is not None and not isinstance(metric, str):
        raise where.fail(sub("metric"), f"expected a metric name, got {describe(metric)}")
    if metric is not None and kind in _METRIC_KINDS:
        known = _metrics_of(task)
        if metric not in known:
            owner = next((t for t, names in METRICS.items() if metric in names), None)
            what = (f"{metric!r} is a {owner} metric, not one of task {task}'s" if owner
                    else f"unknown metric {metric!r}" + (f" for task {task}" if task else ""))
            raise where.fail(sub("metric"), what + did_you_mean(metric, known)
                             + "; known: " + ", ".join(known))
    segments = raw.get("segments")
    if isinstance(segments, str):
        segments = [segments]
    if segments is not None and not isinstance(segments, list):
        raise where.fail(sub("segments"), f"expected a list of segment names, got "
                                          f"{describe(segments)}")
    try:
        return Gate(
            kind=cast(GateKind, kind),
            threshold=value,
            metric=metric,
            relative=relative,
            segments=tuple(segments) if segments is not None else None,
            when_missing=raw.get("when_missing", "fail"),
            name=raw.get("name"),
        )
    except InvalidInputError as exc:
        raise where.relocate(exc, path) from None


def _parse_gate_set(data: Any, where: _Where) -> GateSet:
    if not isinstance(data, Mapping):
        raise where.fail("", f"expected a mapping with 'gates' (and optionally 'task'), got "
                             f"{describe(data)}")
    _check_keys(data, _TOP_KEYS, "", where)
    task = data.get("task")
    if task is not None and task not in _TASKS:
        raise where.fail("task", f"expected one of {', '.join(_TASKS)}, got {describe(task)}"
                                 + did_you_mean(str(task), _TASKS))
    raw_gates = data.get("gates")
    if raw_gates is None:
        raise where.fail("gates", "missing; expected a list of gates")
    if not isinstance(raw_gates, list):
        raise where.fail("gates", f"expected a list of gates, got {describe(raw_gates)}")
    gates = tuple(_parse_gate(g, f"gates[{i}]", where, task) for i, g in enumerate(raw_gates))
    try:
        return GateSet(gates=gates, task=task)
    except InvalidInputError as exc:
        raise where.relocate(exc, "") from None
