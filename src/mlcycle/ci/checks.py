"""Behavioural tests of a model on holdout rows, declared in the project, and its latency budget.

Three kinds, after Ribeiro et al., "Beyond Accuracy: Behavioral Testing of NLP Models" (2020)::

    invariance              {column: mean texture, delta: 0.01, max_flip_rate: 0.0}
        a small change to a column (``delta`` added, or ``value`` set) must not flip more than
        ``max_flip_rate`` of the predictions
    directional             {column: worst radius, delta: 5, expect: decrease}
        raising the column by ``delta`` must not move the score (probability of the last class,
        or the regression output) against ``expect`` on more than ``max_violation_rate`` of rows
    minimum_functionality   {where: "`worst radius` > 25", expect: 0, min_accuracy: 0.95}
        the holdout rows ``where`` selects (a pandas query) must be predicted ``expect`` with at
        least ``min_accuracy``

Each test gives one :class:`TestOutcome` with its numbers in the message.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from mlcycle.errors import InvalidInputError
from mlcycle.specs import describe, did_you_mean

__all__ = ["TestOutcome", "check_test", "measure_latency", "run_tests"]

_KEYS: Final[Mapping[str, tuple[str, ...]]] = {
    "invariance": ("name", "column", "delta", "value", "max_flip_rate"),
    "directional": ("name", "column", "delta", "expect", "max_violation_rate", "tolerance"),
    "minimum_functionality": ("name", "where", "expect", "min_accuracy"),
}
_REQUIRED: Final[Mapping[str, tuple[str, ...]]] = {
    "invariance": ("column",), "directional": ("column", "delta", "expect"),
    "minimum_functionality": ("where", "expect"),
}
_LATENCY_REPEATS: Final = 5


@dataclass(frozen=True, slots=True)
class TestOutcome:
    name: str
    passed: bool
    message: str

    __test__ = False  # not a pytest class


def _invalid(field: str, problem: str) -> InvalidInputError:
    return InvalidInputError(f"{field}: {problem}", details={"field": field})


def _fraction(spec: Mapping[str, Any], key: str, default: float) -> float:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise _invalid(key, f"expected a fraction between 0 and 1, got {describe(value)}")
    return float(value)


def check_test(kind: str, spec: Any) -> dict[str, Any]:
    """*spec* checked, with its defaults and a ``name``; errors name the field."""
    if not isinstance(spec, Mapping):
        raise InvalidInputError(f"expected a mapping, got {describe(spec)}")
    keys = _KEYS[kind]
    for key in spec:
        if key not in keys:
            raise _invalid(str(key), "unknown key" + did_you_mean(str(key), keys)
                           + "; expected one of " + ", ".join(keys))
    for key in _REQUIRED[kind]:
        if key not in spec:
            raise InvalidInputError(f"missing required key {key!r}")
    out = dict(spec)
    if kind == "invariance":
        if ("delta" in spec) == ("value" in spec):
            raise InvalidInputError("give one of 'delta' (added to the column) or 'value' "
                                    "(set in it)")
        out["max_flip_rate"] = _fraction(spec, "max_flip_rate", 0.0)
        change = f"+{spec['delta']}" if "delta" in spec else f"= {spec['value']!r}"
        out.setdefault("name", f"invariance: {spec['column']} {change}")
    elif kind == "directional":
        if spec["expect"] not in ("increase", "decrease"):
            raise _invalid("expect", f"expected increase or decrease, got "
                           f"{describe(spec['expect'])}")
        if isinstance(spec["delta"], bool) or not isinstance(spec["delta"], int | float):
            raise _invalid("delta", f"expected a number, got {describe(spec['delta'])}")
        out["max_violation_rate"] = _fraction(spec, "max_violation_rate", 0.0)
        out["tolerance"] = float(spec.get("tolerance", 1e-9))
        out.setdefault("name", f"directional: {spec['column']} +{spec['delta']} → "
                               f"score must not {_opposite(spec['expect'])}")
    else:
        if not isinstance(spec["where"], str) or not spec["where"].strip():
            raise _invalid("where", f"expected a query, got {describe(spec['where'])}")
        out["min_accuracy"] = _fraction(spec, "min_accuracy", 1.0)
        out.setdefault("name", f"minimum functionality: {spec['where']} → {spec['expect']!r}")
    out["name"] = str(out["name"])
    return out


def _opposite(expect: str) -> str:
    return "decrease" if expect == "increase" else "increase"


def run_tests(model: Any, holdout: pd.DataFrame, target: str,
              tests: Mapping[str, tuple[Mapping[str, Any], ...]]) -> list[TestOutcome]:
    """Every declared test on *holdout* (features and *target*)."""
    features = holdout.drop(columns=[target])
    out: list[TestOutcome] = []
    for spec in tests.get("invariance", ()):
        out.append(_invariance(model, features, spec))
    for spec in tests.get("directional", ()):
        out.append(_directional(model, features, spec))
    for spec in tests.get("minimum_functionality", ()):
        out.append(_minimum(model, holdout, target, spec))
    return out


def _column(features: pd.DataFrame, spec: Mapping[str, Any]) -> str | None:
    column = spec["column"]
    return column if column in features.columns else None


def _no_column(spec: Mapping[str, Any], features: pd.DataFrame) -> TestOutcome:
    return TestOutcome(spec["name"], False, f"no column {spec['column']!r} in the holdout"
                       + did_you_mean(str(spec["column"]), map(str, features.columns)))


def _invariance(model: Any, features: pd.DataFrame, spec: Mapping[str, Any]) -> TestOutcome:
    column = _column(features, spec)
    if column is None:
        return _no_column(spec, features)
    changed = features.copy()
    changed[column] = changed[column] + spec["delta"] if "delta" in spec else spec["value"]
    before = np.asarray(model.predict(features))
    after = np.asarray(model.predict(changed))
    flips = int((before != after).sum())
    rate = flips / max(len(before), 1)
    ok = rate <= spec["max_flip_rate"] + 1e-12
    return TestOutcome(spec["name"], ok, f"{flips} of {len(before)} predictions flipped "
                       f"({rate:.1%}; allowed {spec['max_flip_rate']:.1%})")


def score(model: Any, features: pd.DataFrame) -> np.ndarray:
    """The probability of the last class, or the prediction itself (regression)."""
    try:
        proba = model.predict_proba
    except AttributeError:
        return np.asarray(model.predict(features), dtype=float)
    return np.asarray(proba(features))[:, -1]


def _directional(model: Any, features: pd.DataFrame, spec: Mapping[str, Any]) -> TestOutcome:
    column = _column(features, spec)
    if column is None:
        return _no_column(spec, features)
    changed = features.copy()
    changed[column] = changed[column] + spec["delta"]
    moved = score(model, changed) - score(model, features)
    tol = spec["tolerance"]
    wrong = moved < -tol if spec["expect"] == "increase" else moved > tol
    violations = int(wrong.sum())
    rate = violations / max(len(moved), 1)
    ok = rate <= spec["max_violation_rate"] + 1e-12
    return TestOutcome(spec["name"], ok, f"the score moved the wrong way on {violations} of "
                       f"{len(moved)} rows ({rate:.1%}; allowed "
                       f"{spec['max_violation_rate']:.1%})")


def _minimum(model: Any, holdout: pd.DataFrame, target: str,
             spec: Mapping[str, Any]) -> TestOutcome:
    try:
        rows = holdout.query(spec["where"])
    except Exception as exc:  # pandas raises many kinds for a bad query
        return TestOutcome(spec["name"], False, f"where: cannot select rows with "
                           f"{spec['where']!r}: {type(exc).__name__}: {exc}")
    if rows.empty:
        return TestOutcome(spec["name"], False, f"no holdout row matches {spec['where']!r}")
    predicted = np.asarray(model.predict(rows.drop(columns=[target])))
    right = int((predicted == spec["expect"]).sum())
    accuracy = right / len(rows)
    ok = accuracy >= spec["min_accuracy"] - 1e-12
    return TestOutcome(spec["name"], ok, f"{right} of {len(rows)} rows predicted "
                       f"{spec['expect']!r} ({accuracy:.1%}; required "
                       f"{spec['min_accuracy']:.1%})")


def measure_latency(model: Any, features: pd.DataFrame, rows: int) -> float:
    """Median milliseconds per row of a ``predict`` on the first *rows* rows."""
    batch = features.head(rows)
    model.predict(batch)  # the first call may load or compile; it is not the budget's
    times = []
    for _ in range(_LATENCY_REPEATS):
        started = time.perf_counter()
        model.predict(batch)
        times.append(time.perf_counter() - started)
    return float(np.median(times)) * 1000 / max(len(batch), 1)
