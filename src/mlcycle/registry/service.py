"""``RegistryService``: register models with their lineage, move aliases, archive, resolve
``models:/`` URIs, compare versions, read the history.

The service adds what a store cannot know by itself: the lineage of a version read from the run
that trained it (the dataset versions it read, the commit it ran at), the addressing scheme,
and the comparison of two versions. The store does the rest (numbering, alias rules, events),
so that the rules hold however it is reached.

Who made a change is the service's *actor*: given, or else the operating system's user name.
"""

from __future__ import annotations

import contextlib
import getpass
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlcycle.entities import (
    ACTIVE,
    ARCHIVED,
    ModelEvent,
    ModelVersion,
    RegisteredModel,
    Run,
    RunInput,
    check_model_name,
)
from mlcycle.errors import (
    InvalidInputError,
    MlcycleError,
    ModelVersionNotFound,
    RunNotFound,
    StoreError,
)
from mlcycle.store.base import ModelRegistryStore, TrackingStore
from mlcycle.types import UNSET, JSONValue, Unset

__all__ = [
    "GIT_COMMIT_TAG",
    "ModelRef",
    "ModelVersionDiff",
    "RegistryService",
    "default_actor",
    "parse_model_uri",
]

#: The run tag ``mlcycle.tracking.system`` records the code's commit under.
GIT_COMMIT_TAG = "mlcycle.git.commit"

_URI_RE = re.compile(r"^(?:models:/)?(?P<name>[^/@]+)(?:/(?P<version>[^/@]*)|@(?P<alias>[^/@]*))?$")
_RUNS_URI_RE = re.compile(r"^runs:/(?P<run_id>[^/]+)(?:/.*)?$")
_LATEST = "latest"


def default_actor() -> str | None:
    """The operating system's user name, or ``None`` where there is none (some containers)."""
    try:
        return getpass.getuser()
    except Exception:  # getpass raises OSError or KeyError, depending on the platform
        return None


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A parsed model address: ``version`` or ``alias``, or neither for the newest active one."""

    name: str
    version: int | None = None
    alias: str | None = None

    @property
    def uri(self) -> str:
        if self.version is not None:
            return f"models:/{self.name}/{self.version}"
        if self.alias is not None:
            return f"models:/{self.name}@{self.alias}"
        return f"models:/{self.name}/latest"


def parse_model_uri(uri: str) -> ModelRef:
    """``models:/iris/3``, ``models:/iris@production``, ``models:/iris/latest`` (or
    ``models:/iris``, or ``@latest``); the ``models:/`` prefix may be left out.

    >>> parse_model_uri("models:/iris@production")
    ModelRef(name='iris', version=None, alias='production')
    >>> parse_model_uri("iris/3").version
    3
    """
    m = _URI_RE.match(uri.strip()) if isinstance(uri, str) else None
    if m is None:
        raise InvalidInputError(
            f"model URI: expected models:/NAME/VERSION, models:/NAME@ALIAS or "
            f"models:/NAME/latest, got {uri!r}", details={"field": "uri"})
    name = check_model_name(m.group("name"))
    version, alias = m.group("version"), m.group("alias")
    if version is not None:
        if version == _LATEST:
            return ModelRef(name)
        if not version.isdigit() or int(version) < 1:
            raise InvalidInputError(
                f"model URI {uri!r}: the version must be a number from 1, or latest "
                f"(an alias goes after '@': models:/{name}@{version or 'ALIAS'})",
                details={"field": "uri"})
        return ModelRef(name, version=int(version))
    if alias is not None:
        if not alias:
            raise InvalidInputError(f"model URI {uri!r}: no alias after '@'",
                                    details={"field": "uri"})
        return ModelRef(name) if alias == _LATEST else ModelRef(name, alias=alias)
    return ModelRef(name)


@dataclass(frozen=True, slots=True)
class ModelVersionDiff:
    """What differs between two versions: the params and metrics of the runs that trained
    them, their signatures, lineage and evaluation results. Each mapping holds only what
    differs, as ``(value in a, value in b)``; ``None`` stands for "absent"."""

    a: ModelVersion
    b: ModelVersion
    params: Mapping[str, tuple[str | None, str | None]]
    metrics: Mapping[str, tuple[float | None, float | None]]
    signature: Mapping[str, tuple[Any, Any]]  # flattened paths, e.g. "inputs[0].type"
    lineage: Mapping[str, tuple[Any, Any]]
    evaluation: Mapping[str, tuple[Any, Any]]
    missing_runs: tuple[str, ...] = ()  # runs named by a version that the store does not have

    @property
    def identical(self) -> bool:
        return not (self.params or self.metrics or self.signature or self.lineage
                    or self.evaluation)

    def to_dict(self) -> dict[str, Any]:
        def pairs(values: Mapping[str, tuple[Any, Any]]) -> dict[str, Any]:
            return {k: {"a": va, "b": vb} for k, (va, vb) in values.items()}

        metrics = {
            k: {"a": va, "b": vb,
                "delta": vb - va if va is not None and vb is not None else None}
            for k, (va, vb) in self.metrics.items()
        }
        return {
            "a": self.a.uri, "b": self.b.uri, "identical": self.identical,
            "params": pairs(self.params), "metrics": metrics,
            "signature": pairs(self.signature), "lineage": pairs(self.lineage),
            "evaluation": pairs(self.evaluation), "missing_runs": list(self.missing_runs),
        }


class RegistryService:
    """The registry over a ``ModelRegistryStore``; *tracking* (optional) supplies the runs
    whose lineage a version inherits and whose params and metrics ``diff`` compares.

    >>> registry = RegistryService(store, tracking)              # doctest: +SKIP
    >>> v = registry.register_model("churn", "runs:/4f2a…/model")  # doctest: +SKIP
    >>> registry.set_alias("churn", "production", v.version)     # doctest: +SKIP
    >>> registry.resolve("models:/churn@production").version     # doctest: +SKIP
    1
    """

    def __init__(self, store: ModelRegistryStore, tracking: TrackingStore | None = None, *,
                 actor: str | None = None) -> None:
        self.store = store
        self.tracking = tracking
        self.actor = actor if actor is not None else default_actor()

    # --- registering ----------------------------------------------------------------------
    def register_model(
        self,
        name: str,
        source: str,
        *,
        run_id: str | None = None,
        manifest_digest: str | None = None,
        flavor: str | None = None,
        signature: Mapping[str, Any] | None = None,
        code_commit: str | None = None,
        datasets: Sequence[RunInput | str] | None = None,
        contract: str | None = None,
        evaluation: Mapping[str, JSONValue] | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        """Register *source* as the next version of model *name* (created on first use).

        With a run (*run_id*, or the id in a ``runs:/<id>/…`` source) and a tracking store, the
        lineage left out is the run's: the dataset versions it read (``Run.inputs``) and the
        commit its code ran at. *datasets* may be given as ``RunInput``s or as ``"name@v3"``.
        A refused registration changes nothing and is recorded as a ``rejected`` event.
        """
        check_model_name(name)
        with self._refusals("register_model", name, request={"source": source,
                                                              "run_id": run_id}):
            run_id = _run_id_of(source, run_id)
            run = self._run(run_id) if run_id is not None else None
            inputs = (tuple(_as_input(d) for d in datasets) if datasets is not None
                      else tuple(run.inputs) if run is not None else ())
            if code_commit is None and run is not None:
                code_commit = run.tags.get(GIT_COMMIT_TAG)
        return self.store.create_version(
            name, source=source, run_id=run_id, manifest_digest=manifest_digest, flavor=flavor,
            signature=signature, code_commit=code_commit, datasets=inputs, contract=contract,
            evaluation=evaluation, description=description, tags=tags, actor=self.actor)

    def _run(self, run_id: str) -> Run | None:
        if self.tracking is None:
            return None
        try:
            return self.tracking.get_run(run_id)
        except RunNotFound:
            raise RunNotFound(
                f"cannot register a model from run {run_id!r}: no such run",
                details={"run_id": run_id}) from None

    @contextlib.contextmanager
    def _refusals(self, operation: str, name: str, *, version: int | None = None,
                  request: Mapping[str, Any] | None = None) -> Iterator[None]:
        """Record what the service itself refuses (the store records its own refusals)."""
        try:
            yield
        except MlcycleError as exc:
            if not isinstance(exc, StoreError):
                details: dict[str, JSONValue] = {
                    "operation": operation, "error": exc.code, "message": exc.message,
                    **{k: v for k, v in (request or {}).items() if v is not None}}
                with contextlib.suppress(MlcycleError):  # the refusal is what matters
                    self.store.log_event(name, "rejected", version=version, details=details,
                                         actor=self.actor)
            raise

    def create_model(self, name: str, *, description: str | None = None,
                     tags: Mapping[str, str] | None = None) -> RegisteredModel:
        """A model with no version yet (``register_model`` creates it too)."""
        return self.store.create_model(name, description=description, tags=tags,
                                       actor=self.actor)

    def update_model(self, name: str, *, description: str | Unset | None = UNSET,
                     tags: Mapping[str, str | None] | None = None) -> RegisteredModel:
        return self.store.update_model(name, description=description, tags=tags,
                                       actor=self.actor)

    def update_version(self, name: str, version: int, *,
                       description: str | Unset | None = UNSET,
                       tags: Mapping[str, str | None] | None = None,
                       evaluation: Mapping[str, JSONValue] | None = None) -> ModelVersion:
        """Change a version's description or tags, or add evaluation results to it."""
        return self.store.update_version(name, version, description=description, tags=tags,
                                         evaluation=evaluation, actor=self.actor)

    # --- aliases and status ---------------------------------------------------------------
    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        """Point *alias* at *version*, moving it if it pointed elsewhere (one event)."""
        return self.store.set_alias(name, alias, version, actor=self.actor)

    def delete_alias(self, name: str, alias: str) -> int:
        """Remove *alias*; returns the version it pointed at."""
        return self.store.delete_alias(name, alias, actor=self.actor)

    def archive(self, name: str, version: int) -> ModelVersion:
        """Retire a version: it no longer counts as ``latest`` nor takes aliases, but still
        resolves by number. Refused while an alias points at it."""
        return self.store.set_version_status(name, version, ARCHIVED, actor=self.actor)

    def restore(self, name: str, version: int) -> ModelVersion:
        return self.store.set_version_status(name, version, ACTIVE, actor=self.actor)

    # --- reading --------------------------------------------------------------------------
    def get_model(self, name: str) -> RegisteredModel:
        return self.store.get_model(name)

    def list_models(self, *, name_contains: str | None = None) -> list[RegisteredModel]:
        return self.store.list_models(name_contains=name_contains)

    search_models = list_models

    def list_versions(self, name: str, *, include_archived: bool = True) -> list[ModelVersion]:
        return self.store.list_versions(name, include_archived=include_archived)

    def get_version(self, uri_or_name: str, version: int | None = None, *,
                    alias: str | None = None) -> ModelVersion:
        """A version by URI (``models:/iris@production``), or by name with *version* or
        *alias* (neither: the newest active version)."""
        ref = parse_model_uri(uri_or_name)
        if version is None and alias is None:
            return self._resolve(ref)
        if uri_or_name.strip().removeprefix("models:/") != ref.name or (
                version is not None and alias is not None):
            raise InvalidInputError(
                f"give one of: a version, an alias, or a URI that names one; got "
                f"{uri_or_name!r} with version={version!r}, alias={alias!r}",
                details={"field": "version" if version is not None else "alias"})
        ref = (ModelRef(ref.name, version=version) if version is not None
               else parse_model_uri(f"{ref.name}@{alias}"))
        return self._resolve(ref)

    def resolve(self, uri: str) -> ModelVersion:
        """The version *uri* names: ``models:/name/3``, ``models:/name@alias`` or
        ``models:/name/latest`` (the newest version that is not archived)."""
        return self._resolve(parse_model_uri(uri))

    def _resolve(self, ref: ModelRef) -> ModelVersion:
        if ref.version is not None:
            return self.store.get_version(ref.name, ref.version)
        if ref.alias is not None:
            return self.store.get_version_by_alias(ref.name, ref.alias)
        active = self.store.list_versions(ref.name, include_archived=False)
        if not active:
            model = self.store.get_model(ref.name)
            why = ("it has no versions yet" if model.latest_version is None
                   else "every version is archived")
            raise ModelVersionNotFound(f"model {ref.name!r} has no latest version: {why}",
                                       details={"model": ref.name, "version": _LATEST})
        return active[0]

    def events(self, name: str, *, version: int | None = None,
               max_results: int = 100) -> list[ModelEvent]:
        """The history of model *name*, newest first."""
        return self.store.list_events(name, version=version, max_results=max_results)

    # --- comparing ------------------------------------------------------------------------
    def diff(self, a: str | ModelVersion, b: str | ModelVersion) -> ModelVersionDiff:
        """Compare two versions (URIs, ``name/3``, ``name@alias``, or versions)."""
        va = a if isinstance(a, ModelVersion) else self.resolve(a)
        vb = b if isinstance(b, ModelVersion) else self.resolve(b)
        runs: dict[str, Run | None] = {}
        for v in (va, vb):
            if v.run_id and v.run_id not in runs and self.tracking is not None:
                try:
                    runs[v.run_id] = self.tracking.get_run(v.run_id)
                except RunNotFound:
                    runs[v.run_id] = None
        ra, rb = runs.get(va.run_id or ""), runs.get(vb.run_id or "")
        lineage = {
            "source": (va.source, vb.source),
            "run_id": (va.run_id, vb.run_id),
            "flavor": (va.flavor, vb.flavor),
            "manifest_digest": (va.manifest_digest, vb.manifest_digest),
            "code_commit": (va.code_commit, vb.code_commit),
            "contract": (va.contract, vb.contract),
            "datasets": (_refs(va.datasets), _refs(vb.datasets)),
        }
        return ModelVersionDiff(
            a=va, b=vb,
            params=_changed(ra.params if ra else {}, rb.params if rb else {}),
            metrics=_changed(ra.metrics if ra else {}, rb.metrics if rb else {}),
            signature=_changed(_flat(va.signature), _flat(vb.signature)),
            lineage={k: pair for k, pair in lineage.items() if pair[0] != pair[1]},
            evaluation=_changed(_flat(va.evaluation), _flat(vb.evaluation)),
            missing_runs=tuple(rid for rid, run in runs.items() if run is None),
        )


# --- helpers of this module -------------------------------------------------------------------


def _run_id_of(source: str, run_id: str | None) -> str | None:
    m = _RUNS_URI_RE.match(source) if isinstance(source, str) else None
    if m is None:
        return run_id
    if run_id is not None and run_id != m.group("run_id"):
        raise InvalidInputError(
            f"run_id: {run_id!r} is not the run of the source {source!r}",
            details={"field": "run_id"})
    return m.group("run_id")


def _as_input(value: RunInput | str) -> RunInput:
    if isinstance(value, RunInput):
        return value
    name, sep, version = str(value).rpartition("@")
    if not sep or not name or not version:
        raise InvalidInputError(
            f"datasets: expected dataset versions as name@vN, got {value!r}",
            details={"field": "datasets"})
    return RunInput(name, version)


def _refs(inputs: Sequence[RunInput]) -> list[str]:
    return sorted(f"{i.dataset}@{i.version}" for i in inputs)


def _changed(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    out: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if va != vb and not (_is_nan(va) and _is_nan(vb)):
            out[key] = (va, vb)
    return out


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested JSON as ``{"inputs[0].type": "double", ...}``, so a diff names the leaf."""
    out: dict[str, Any] = {}
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(value, list | tuple) and value:
        for i, item in enumerate(value):
            out.update(_flat(item, f"{prefix}[{i}]"))
    elif prefix:
        out[prefix] = value
    return out
