"""Triggers: when a deployment's model is retrained, and what each retraining did.

A :class:`Trigger` belongs to one deployment. It fires on any of its ``kinds``: ``schedule``
(a cron expression), ``drift`` (a monitor of the deployment alerts on drift), ``quality`` (a
monitor alerts on performance), ``new_data`` (a new version of ``dataset``). Firing runs the
retraining pipeline ``pipeline`` (``module:function``) on the newest data, evaluates the model
it makes with ``gates`` on ``evaluation_data`` against the deployment's stable version, and
only when the gates pass starts a canary rollout with ``canary`` as its config.

Each firing is a :class:`TriggerRun`, recorded even when nothing ran: ``skipped`` (a cool-down
or another retraining of the deployment still running) or ``rejected`` (the gates failed), with
its ``reason``. Its fields link the chain: ``cause`` (the alert, schedule time or dataset
version) → ``pipeline_run_id`` → ``model_version`` → ``gates`` → ``rollout`` of the deployment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from mlcycle.entities._deploy import check_deployment_name
from mlcycle.errors import InvalidInputError
from mlcycle.types import JSONValue

__all__ = [
    "TRIGGER_CAUSES",
    "TRIGGER_KINDS",
    "TRIGGER_RUN_STATUSES",
    "Trigger",
    "TriggerRun",
    "check_run_status",
    "check_trigger",
    "check_trigger_name",
    "check_trigger_run",
]

#: What a trigger may fire on.
TRIGGER_KINDS: Final = ("schedule", "drift", "quality", "new_data")

#: What fired a run: one of the kinds, or a person (``mlcycle trigger fire``).
TRIGGER_CAUSES: Final = (*TRIGGER_KINDS, "manual")

#: ``running`` until the run ends ``succeeded`` (a canary started), ``failed`` (an error),
#: ``rejected`` (the gates said no); ``skipped`` runs never ran (cool-down, one at a time).
TRIGGER_RUN_STATUSES: Final = ("running", "succeeded", "failed", "rejected", "skipped")

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_TARGET_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def check_trigger_name(name: str) -> str:
    """*name* if it is a valid trigger name (letters, digits, ``_ . -``; at most 128)."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InvalidInputError(
            f"trigger name {name!r}: use letters, digits, '_', '.', '-' (start with a letter "
            "or digit, at most 128 characters)", details={"field": "name"})
    return name


@dataclass(frozen=True, slots=True)
class Trigger:
    """A retraining trigger of deployment *deployment*.

    ``pipeline``: ``module:function`` called as ``fn(data_ref, feedback_ref, **params)``
    (see :mod:`mlcycle.retrain`). ``dataset``: the dataset whose newest version it trains on
    (and whose new versions fire ``new_data``). ``target``: the label column. ``schedule``:
    a cron expression (``kinds`` holds ``schedule``). ``monitor``: only this monitor's alerts
    fire it (``None``: any monitor of the deployment). ``evaluation_data``: the dataset version
    the gates are checked on (``"name@v2"``, or a name for its newest). ``gates``: a gate set
    as a mapping (``{"gates": [{"metric": "roc_auc", "min": 0.9}]}``). ``canary``: the
    deployment config of the rollout. ``cooldown_s``: no new run within this many seconds of
    the last start. ``seen_version``: the newest version of ``dataset`` it has reacted to.
    """

    name: str
    deployment: str
    kinds: Sequence[str]
    pipeline: str
    dataset: str
    created_at: datetime
    updated_at: datetime
    target: str = "target"
    schedule: str | None = None
    monitor: str | None = None
    evaluation_data: str | None = None
    gates: Mapping[str, JSONValue] = field(default_factory=dict)
    params: Mapping[str, JSONValue] = field(default_factory=dict)
    canary: Mapping[str, JSONValue] = field(default_factory=dict)
    cooldown_s: int = 3_600
    enabled: bool = True
    description: str = ""
    seen_version: int | None = None


@dataclass(frozen=True, slots=True)
class TriggerRun:
    """One firing of trigger *trigger*.

    ``cause``: what fired it, ``{"kind": "drift", "monitor": ..., "alert_id": ...,
    "result_id": ...}``, ``{"kind": "schedule", "time": ...}``, ``{"kind": "new_data",
    "dataset": ..., "version": ...}`` or ``{"kind": "manual", "actor": ...}``. ``data``: the
    dataset versions it trained on (``{"dataset": "x@v3", "feedback": "x.feedback@v1"}``).
    ``gates``: the gate report's summary. ``rollout``: the deployment's rollout number of the
    canary it started.
    """

    run_id: int
    trigger: str
    deployment: str
    status: str
    started_at: datetime
    cause: Mapping[str, JSONValue] = field(default_factory=dict)
    ended_at: datetime | None = None
    reason: str = ""
    data: Mapping[str, JSONValue] = field(default_factory=dict)
    pipeline_run_id: str | None = None
    training_run_id: str | None = None
    model: str | None = None
    model_version: int | None = None
    gates: Mapping[str, JSONValue] = field(default_factory=dict)
    rollout: int | None = None

    @property
    def kind(self) -> str:
        """What fired it (``cause["kind"]``)."""
        return str(self.cause.get("kind", "manual"))


# --- checks (every store runs them, so all refuse the same input with the same words) -------


def check_trigger(trigger: Trigger) -> None:
    """Raise ``InvalidInputError`` naming the field of *trigger* that no store would keep."""
    check_trigger_name(trigger.name)
    try:
        check_deployment_name(trigger.deployment)
    except InvalidInputError as exc:
        raise InvalidInputError(exc.message, details={"field": "deployment"}) from None
    kinds = list(trigger.kinds)
    if not kinds or any(k not in TRIGGER_KINDS for k in kinds) or len(set(kinds)) < len(kinds):
        raise InvalidInputError(
            f"kinds: expected distinct values among {', '.join(TRIGGER_KINDS)}, got {kinds!r}",
            details={"field": "kinds"})
    if not isinstance(trigger.pipeline, str) or not _TARGET_RE.match(trigger.pipeline):
        raise InvalidInputError(
            f"pipeline: expected module:function (e.g. flows.retrain:train), got "
            f"{trigger.pipeline!r}", details={"field": "pipeline"})
    if ("schedule" in kinds) != (trigger.schedule is not None):
        raise InvalidInputError(
            "schedule: a cron expression is required with kind 'schedule', and only with it; "
            f"got kinds {kinds!r} and schedule {trigger.schedule!r}",
            details={"field": "schedule"})
    for name, limit in (("dataset", 256), ("target", 256), ("schedule", 128),
                        ("monitor", 128), ("evaluation_data", 256)):
        value = getattr(trigger, name)
        if value is None and name not in ("dataset", "target"):
            continue
        if not isinstance(value, str) or not 0 < len(value) <= limit:
            raise InvalidInputError(f"{name}: expected 1 to {limit} characters, got {value!r}",
                                    details={"field": name})
    for name in ("gates", "params", "canary"):
        if not isinstance(getattr(trigger, name), Mapping):
            raise InvalidInputError(f"{name}: expected a mapping", details={"field": name})
    cooldown = trigger.cooldown_s
    if isinstance(cooldown, bool) or not isinstance(cooldown, int) or cooldown < 0:
        raise InvalidInputError(
            f"The 'cooldown_s' parameter must be a number of seconds (an int >= 0). "
            f"Got {cooldown!r} instead.", details={"field": "cooldown_s"})
    _check_version(trigger.seen_version, "seen_version")


def check_trigger_run(run: TriggerRun) -> None:
    """Raise ``InvalidInputError`` naming the field of *run* that no store would keep."""
    _check_status(run.status, "status")
    if not isinstance(run.cause, Mapping) or run.cause.get("kind") not in TRIGGER_CAUSES:
        raise InvalidInputError(
            f"cause.kind: expected one of {', '.join(TRIGGER_CAUSES)}, got "
            f"{run.cause.get('kind') if isinstance(run.cause, Mapping) else run.cause!r}",
            details={"field": "cause.kind"})
    _check_version(run.model_version, "model_version")
    _check_version(run.rollout, "rollout")


def _check_status(value: Any, name: str) -> None:
    if value not in TRIGGER_RUN_STATUSES:
        raise InvalidInputError(
            f"The '{name}' parameter must be one of "
            f"{', '.join(map(repr, TRIGGER_RUN_STATUSES))}. Got {value!r} instead.",
            details={"field": name})


def _check_version(value: Any, name: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 0):
        raise InvalidInputError(f"{name}: expected an int >= 0 or null, got {value!r}",
                                details={"field": name})


def check_run_status(value: Any, name: str = "status") -> None:
    """Raise ``InvalidInputError`` unless *value* is a trigger run status."""
    _check_status(value, name)
