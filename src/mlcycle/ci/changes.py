"""What changed since the model now in production: the code commit, the dataset versions, the
params, the pipeline.

Every model version ``ci run`` registers carries its :class:`Fingerprint` as tags
(``mlcycle.ci.*``); the production model is the version the production deployment serves (its
candidate while a rollout is under way: that one is already released). Same fingerprint → no
change, and ``ci run`` does nothing.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from mlcycle.errors import DeploymentNotFound, InvalidInputError

if TYPE_CHECKING:
    from mlcycle.ci.project import CiProject
    from mlcycle.client import Client
    from mlcycle.entities import ModelVersion

__all__ = ["Changes", "Fingerprint", "detect", "fingerprint", "production_version"]

_COMMIT: Final = "mlcycle.ci.commit"
_DIRTY: Final = "mlcycle.ci.dirty"
_DATASETS: Final = "mlcycle.ci.datasets"
_PARAMS: Final = "mlcycle.ci.params"
_PIPELINE: Final = "mlcycle.ci.pipeline"


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What a model was built from. *datasets* are resolved refs (``name@v3``) of the
    project's datasets then its holdout; *params* canonical JSON."""

    commit: str | None
    dirty: bool
    datasets: tuple[str, ...]
    params: str
    pipeline: str

    def tags(self) -> dict[str, str]:
        return {_COMMIT: self.commit or "", _DIRTY: "true" if self.dirty else "false",
                _DATASETS: ",".join(self.datasets), _PARAMS: self.params,
                _PIPELINE: self.pipeline}

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> Fingerprint | None:
        """The fingerprint a CI-registered version carries; None for any other version."""
        if _DATASETS not in tags:
            return None
        return cls(commit=tags.get(_COMMIT) or None, dirty=tags.get(_DIRTY) == "true",
                   datasets=tuple(d for d in tags[_DATASETS].split(",") if d),
                   params=tags.get(_PARAMS, ""), pipeline=tags.get(_PIPELINE, ""))


@dataclass(frozen=True, slots=True)
class Changes:
    """The production version (None before the first release), the fingerprint now, and one
    sentence per difference (empty: nothing changed)."""

    production: ModelVersion | None
    current: Fingerprint
    reasons: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.reasons)


def fingerprint(client: Client, project: CiProject) -> Fingerprint:
    """The fingerprint of a build now: HEAD of the project's git repository, the newest (or
    pinned) dataset versions, the params."""
    refs = [client.data.get_version(ref).ref for ref in project.datasets]
    holdout = client.data.get_version(project.holdout_ref).ref
    if holdout not in refs:
        refs.append(holdout)
    commit, dirty = _git_state(project)
    return Fingerprint(commit=commit, dirty=dirty, datasets=tuple(refs),
                       params=json.dumps(dict(project.params), sort_keys=True, default=str),
                       pipeline=project.pipeline)


def production_version(client: Client, project: CiProject) -> ModelVersion | None:
    """The version the production deployment serves or is rolling out; None before the
    first release."""
    try:
        deployment = client.deployments.get(project.production.deployment)
    except DeploymentNotFound:
        return None
    if deployment.model != project.model:
        raise InvalidInputError(
            f"ci.production.deployment: deployment {deployment.name!r} serves model "
            f"{deployment.model!r}, not the project's {project.model!r}",
            details={"field": "ci.production.deployment"})
    version = deployment.candidate_version or deployment.stable_version
    return client.registry.get_version(project.model, version)


def detect(client: Client, project: CiProject) -> Changes:
    now = fingerprint(client, project)
    production = production_version(client, project)
    if production is None:
        return Changes(None, now, ("first release: nothing in production yet",))
    before = Fingerprint.from_tags(production.tags)
    if before is None:
        return Changes(production, now, (
            f"{production.uri} in production was not released by ci run",))
    reasons = []
    if now.commit != before.commit:
        reasons.append(f"code: commit {_short(before.commit)} → {_short(now.commit)}")
    if now.dirty:
        reasons.append("code: uncommitted changes to tracked files")
    old, new = _by_name(before.datasets), _by_name(now.datasets)
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            reasons.append(f"data: {old.get(name, f'{name} (none)')} → "
                           f"{new.get(name, f'{name} (none)')}")
    if now.params != before.params:
        reasons.append(f"params: {before.params} → {now.params}")
    if now.pipeline != before.pipeline:
        reasons.append(f"pipeline: {before.pipeline} → {now.pipeline}")
    return Changes(production, now, tuple(reasons))


def _by_name(refs: tuple[str, ...]) -> dict[str, str]:
    return {ref.rsplit("@", 1)[0]: ref for ref in refs}


def _short(commit: str | None) -> str:
    return commit[:10] if commit else "(no git)"


def _git_state(project: CiProject) -> tuple[str | None, bool]:
    """HEAD and whether tracked files differ from it; (None, False) outside a repository."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(project.root), *args], capture_output=True,
                                  text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None, False
    status = git("status", "--porcelain", "--untracked-files=no")
    return commit, bool(status)
