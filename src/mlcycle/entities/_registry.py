"""The model registry's records: registered models, their numbered versions, and the events
that changed them.

A version is immutable in what it *is* (its source, manifest digest, flavor, signature and
lineage); only its description, tags, evaluation results, status and the aliases that point at
it change afterwards, and each such change is a :class:`ModelEvent`.

The naming rules live here, beside the records they constrain, so that every store enforces the
same ones (and records a refused alias as an event wherever it is refused).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from mlcycle.entities._tracking import RunInput
from mlcycle.errors import InvalidInputError
from mlcycle.types import JSONValue, encode_float

__all__ = [
    "ACTIVE",
    "ARCHIVED",
    "EVENT_KINDS",
    "MODEL_STATUSES",
    "ModelEvent",
    "ModelVersion",
    "RegisteredModel",
    "check_alias",
    "check_model_name",
    "plain_json",
]

ACTIVE: Final = "active"
ARCHIVED: Final = "archived"
#: A version is ``active`` until archived; an archived one still resolves by number, but never
#: as ``latest`` and never by a new alias.
MODEL_STATUSES: Final = (ACTIVE, ARCHIVED)

#: What a ``ModelEvent.kind`` may be. ``rejected`` records a write that was refused (its
#: ``details`` hold the operation, the error code and message); nothing else was stored.
EVENT_KINDS: Final = (
    "model_created",
    "model_updated",
    "version_created",
    "version_updated",
    "version_archived",
    "version_restored",
    "alias_set",
    "alias_deleted",
    "rejected",
)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")
# An alias starts with a letter, so ``name@3`` can never be mistaken for a version number.
_ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
#: ``latest`` always means the newest active version; it cannot be set by hand.
RESERVED_ALIASES: Final = frozenset({"latest"})


def check_model_name(name: str) -> str:
    """*name*, or ``InvalidInputError``: a name must fit in a URI (``models:/name@alias``)."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InvalidInputError(
            f"model name: expected letters, digits, '_', '.' or '-' (at most 200, starting "
            f"with a letter or digit), got {name!r}",
            details={"field": "name"},
        )
    return name


def check_alias(alias: str) -> str:
    """*alias*, or ``InvalidInputError`` (``latest`` is reserved: it follows new versions)."""
    if not isinstance(alias, str) or not _ALIAS_RE.match(alias):
        raise InvalidInputError(
            f"alias: expected a letter, then letters, digits, '_' or '-' (at most 64), "
            f"got {alias!r}",
            details={"field": "alias"},
        )
    if alias.lower() in RESERVED_ALIASES:
        raise InvalidInputError(
            f"alias: {alias!r} is reserved (it always means the newest active version)",
            details={"field": "alias"},
        )
    return alias


def plain_json(value: Any, field: str) -> Any:
    """*value* as plain JSON, as a version's signature, evaluation and details are kept:
    non-finite floats become ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` (JSON has none, and
    PostgreSQL's JSON refuses them), tuples lists, numpy scalars their Python value. Anything
    else is an ``InvalidInputError`` naming *field*.

    >>> plain_json({"loss": float("inf"), "shape": (2, 3)}, "evaluation")
    {'loss': 'Infinity', 'shape': [2, 3]}
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else encode_float(value)
    if isinstance(value, Mapping):
        return {str(k): plain_json(v, field) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_json(v, field) for v in value]
    item = getattr(value, "item", None)  # a numpy scalar
    if callable(item) and getattr(value, "shape", None) == ():
        return plain_json(item(), field)
    raise InvalidInputError(
        f"{field}: expected JSON values (objects, lists, strings, numbers, booleans, null), "
        f"got {type(value).__name__}", details={"field": field})


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    """A named model. ``aliases`` maps each alias to the version it points at;
    ``latest_version`` is the highest number given so far (archived or not), ``None`` before
    the first version."""

    name: str
    created_at: datetime
    updated_at: datetime
    created_by: str | None = None
    description: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: Mapping[str, int] = field(default_factory=dict)
    latest_version: int | None = None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}"


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One numbered version of a registered model, with its lineage.

    ``source`` is where the model's files are (``runs:/<run id>/model``, or any artifact URI);
    ``manifest_digest`` the content hash of its manifest, so two registrations of the same
    files are recognisable. Lineage: the ``run_id`` that trained it, the ``code_commit`` it ran
    at, the ``datasets`` (versions) it read, the data ``contract`` it was checked against
    (``name@contract-vN``) and ``evaluation``, the results of evaluating it (free-form JSON,
    added to as evaluations run).
    """

    name: str
    version: int
    source: str
    created_at: datetime
    created_by: str | None = None
    run_id: str | None = None
    manifest_digest: str | None = None
    flavor: str | None = None
    signature: Mapping[str, Any] = field(default_factory=dict)
    status: str = ACTIVE
    aliases: Sequence[str] = ()
    description: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    code_commit: str | None = None
    datasets: Sequence[RunInput] = ()
    contract: str | None = None
    evaluation: Mapping[str, JSONValue] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    @property
    def archived(self) -> bool:
        return self.status == ARCHIVED


@dataclass(frozen=True, slots=True)
class ModelEvent:
    """One change to a model (or one refused attempt at a change): who, when, what.

    ``event_id`` grows with time across all models; ``version`` and ``alias`` are set where the
    event concerns one. ``details`` says the rest, e.g. ``{"previous": 2}`` when an alias moved
    from version 2.
    """

    event_id: int
    kind: str
    model: str
    at: datetime
    actor: str | None = None
    version: int | None = None
    alias: str | None = None
    details: Mapping[str, JSONValue] = field(default_factory=dict)
