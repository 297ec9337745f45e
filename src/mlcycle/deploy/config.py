"""``DeploymentConfig``: a deployment's rollout settings, kept as JSON in ``Deployment.config``.

Every value is checked when the config is built, and a bad one is refused with the field's name:

>>> DeploymentConfig(steps=(10, 50, 100), min_requests=200).steps
(10.0, 50.0, 100.0)
>>> try:
...     DeploymentConfig.from_mapping({"steps": [50, 25]})
... except InvalidInputError as exc:
...     print(exc.details["field"], "-", exc.message)
steps - The 'steps' parameter must be increasing percents in (0, 100]. Got [50, 25] instead.

The controller keeps where the current canary step began (the time, and how many requests
the candidate had served by then) in the same JSON under the reserved key ``"_step"``
(:data:`STEP_STATE_KEY`), so that it survives restarts and every worker reads it with the
deployment's row; :meth:`DeploymentConfig.from_mapping` leaves that key alone.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from mlcycle.errors import InvalidInputError
from mlcycle.specs import index_lines
from mlcycle.types import JSONValue

__all__ = ["STEP_STATE_KEY", "DeploymentConfig"]

#: The key of ``Deployment.config`` under which the controller keeps the current step's start:
#: ``{"started_at": <epoch seconds>, "candidate_requests": <count at the start>}``.
STEP_STATE_KEY: Final = "_step"


@dataclass(frozen=True, slots=True)
class DeploymentConfig:
    """How a rollout proceeds and when the canary controller promotes or rolls back.

    Traffic: ``steps`` are the candidate's percents of traffic during a canary (the last is
    usually 100); ``shadow_percent`` the share of requests copied to a shadow; ``sticky_key``
    names a request header or input column whose value's hash pins a caller to one version
    (``None``: each request is drawn at random).

    Pace: a canary step lasts until the candidate has answered ``min_requests`` requests in it
    and ``min_step_seconds`` have passed. A blue-green switch waits up to
    ``switch_timeout_s`` for every live worker to have the candidate ready; a worker is live when
    it reported within ``worker_timeout_s``.

    Thresholds of the rule (see :func:`mlcycle.deploy.canary.decide`): ``alpha`` (one-sided
    significance), ``min_error_rate_increase``, ``max_error_rate``, ``latency_ratio`` and
    ``latency_slack_s`` (p95), ``min_feedback``, ``accuracy_tolerance`` (absolute) and
    ``mae_tolerance`` (relative to the stable version's mean absolute error).
    """

    steps: tuple[float, ...] = (5.0, 25.0, 50.0, 100.0)
    min_requests: int = 100
    min_step_seconds: float = 0.0
    sticky_key: str | None = None
    shadow_percent: float = 100.0
    switch_timeout_s: float = 60.0
    worker_timeout_s: float = 10.0
    alpha: float = 0.01
    min_error_rate_increase: float = 0.01
    max_error_rate: float = 0.05
    latency_ratio: float = 1.5
    latency_slack_s: float = 0.005
    min_feedback: int = 50
    accuracy_tolerance: float = 0.02
    mae_tolerance: float = 0.02
    extra: Mapping[str, JSONValue] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        steps = self.steps
        if isinstance(steps, str | bytes) or not isinstance(steps, Sequence) or not steps or any(
                not _is_number(p) or not 0 < p <= 100 for p in steps) or any(
                a >= b for a, b in itertools.pairwise(steps)):
            _refuse("steps", "increasing percents in (0, 100]", steps)
        object.__setattr__(self, "steps", tuple(float(p) for p in steps))
        _check_int(self, "min_requests", low=1)
        _check_int(self, "min_feedback", low=1)
        _check_number(self, "min_step_seconds", "a number of seconds >= 0", lambda x: x >= 0)
        _check_number(self, "shadow_percent", "a percent in (0, 100]", lambda x: 0 < x <= 100)
        _check_number(self, "switch_timeout_s", "a number of seconds > 0", lambda x: x > 0)
        _check_number(self, "worker_timeout_s", "a number of seconds > 0", lambda x: x > 0)
        _check_number(self, "alpha", "a probability in (0, 0.5)", lambda x: 0 < x < 0.5)
        _check_number(self, "min_error_rate_increase", "a rate in [0, 1]", lambda x: 0 <= x <= 1)
        _check_number(self, "max_error_rate", "a rate in (0, 1]", lambda x: 0 < x <= 1)
        _check_number(self, "latency_ratio", "a ratio >= 1", lambda x: x >= 1)
        _check_number(self, "latency_slack_s", "a number of seconds >= 0", lambda x: x >= 0)
        _check_number(self, "accuracy_tolerance", "a fraction in [0, 1]", lambda x: 0 <= x <= 1)
        _check_number(self, "mae_tolerance", "a fraction >= 0", lambda x: x >= 0)
        key = self.sticky_key
        if key is not None and (not isinstance(key, str) or not key.strip() or len(key) > 256):
            _refuse("sticky_key", "a header or column name (1 to 256 characters), or None", key)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> DeploymentConfig:
        """The config a ``Deployment.config`` (or a YAML file's mapping) holds. Unknown keys are
        refused with a suggestion; the controller's own keys (starting with ``_``) are kept
        aside in ``extra``."""
        data = dict(data or {})
        names = [f.name for f in dataclasses.fields(cls) if f.name != "extra"]
        extra = {k: v for k, v in data.items() if isinstance(k, str) and k.startswith("_")}
        for key in data:
            if key in extra or key in names:
                continue
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InvalidInputError(
                f"config: unknown setting {key!r}{hint}; known: {', '.join(names)}",
                details={"field": f"config.{key}"})
        return cls(**{k: v for k, v in data.items() if k in names}, extra=extra)

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "deploy.yaml") -> dict[str, Any]:
        """The settings a YAML file holds, as a mapping (to lay under command-line flags), each
        checked: errors read ``deploy.yaml line 3: steps: ...``.

        >>> DeploymentConfig.from_yaml("steps: [10, 100]\\nmin_requests: 500\\n")
        {'steps': [10, 100], 'min_requests': 500}
        """
        loader = yaml.SafeLoader(text)
        lines: dict[str, int] = {}
        try:
            node = loader.get_single_node()
            if node is None:
                return {}
            index_lines(node, "", lines, source)
            data = loader.construct_document(node)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            line = mark.line + 1 if mark is not None else None
            raise InvalidInputError(
                f"{source}{f' line {line}' if line else ''}: not valid YAML: "
                f"{getattr(exc, 'problem', None) or exc}", details={"field": None, "line": line}
            ) from exc
        finally:
            loader.dispose()
        if not isinstance(data, Mapping):
            raise InvalidInputError(f"{source}: expected a mapping of settings (steps: ..., "
                                    f"min_requests: ...), got {type(data).__name__}",
                                    details={"field": None, "line": 1})
        try:
            cls.from_mapping(data)
        except InvalidInputError as exc:
            field = str(exc.details.get("field", "")).removeprefix("config.")
            line = lines.get(field)
            raise InvalidInputError(f"{source}{f' line {line}' if line else ''}: {exc.message}",
                                    details={**exc.details, "line": line}) from None
        return dict(data)

    def to_json(self) -> dict[str, JSONValue]:
        """The settings as JSON, the controller's state (``extra``) included."""
        out: dict[str, JSONValue] = {}
        for f in dataclasses.fields(self):
            if f.name != "extra":
                value = getattr(self, f.name)
                out[f.name] = list(value) if isinstance(value, tuple) else value
        out.update(self.extra)
        return out

    def replace(self, **changes: Any) -> DeploymentConfig:
        """A copy with *changes* applied (and checked)."""
        return dataclasses.replace(self, **changes)


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _refuse(name: str, expected: str, got: Any) -> None:
    raise InvalidInputError(
        f"The {name!r} parameter must be {expected}. Got {got!r} instead.",
        details={"field": name})


def _check_number(config: DeploymentConfig, name: str, expected: str, ok: Any) -> None:
    value = getattr(config, name)
    if not _is_number(value) or not ok(value):
        _refuse(name, expected, value)
    object.__setattr__(config, name, float(value))


def _check_int(config: DeploymentConfig, name: str, *, low: int) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        _refuse(name, f"an int >= {low}", value)
