"""The one exception tree of mlcycle.

::

    MlcycleError                    code                 HTTP
    ├── NotFoundError               not_found            404
    │   ├── ExperimentNotFound      experiment_not_found
    │   ├── RunNotFound             run_not_found
    │   ├── ArtifactNotFound        artifact_not_found
    │   ├── DatasetNotFound         dataset_not_found
    │   ├── DatasetVersionNotFound  dataset_version_not_found
    │   ├── ContractNotFound        contract_not_found
    │   ├── ModelNotFound           model_not_found
    │   ├── ModelVersionNotFound    model_version_not_found
    │   ├── ModelAliasNotFound      model_alias_not_found
    │   ├── DeploymentNotFound      deployment_not_found
    │   ├── PipelineRunNotFound     pipeline_run_not_found
    │   ├── MonitorNotFound         monitor_not_found
    │   ├── TriggerNotFound         trigger_not_found
    │   └── TriggerRunNotFound      trigger_run_not_found
    ├── AlreadyExistsError          already_exists       409
    │   ├── ExperimentAlreadyExists experiment_already_exists
    │   ├── DatasetAlreadyExists    dataset_already_exists
    │   ├── ModelAlreadyExists      model_already_exists
    │   ├── DeploymentAlreadyExists deployment_already_exists
    │   ├── MonitorAlreadyExists    monitor_already_exists
    │   └── TriggerAlreadyExists    trigger_already_exists
    ├── InvalidInputError           invalid_input        400
    │   ├── InvalidFilter           invalid_filter
    │   ├── SignatureMismatch       signature_mismatch   (model input unlike its signature)
    │   └── SourceError             source_error         (a data source unreadable or malformed)
    ├── InvalidStateError           invalid_state        409
    │   ├── RevisionConflict        revision_conflict    (changed by someone else first)
    │   └── LockHeld                lock_held            (another process holds a named lock)
    ├── AuthError                   unauthorized         401
    │   └── PermissionDenied        forbidden            403
    ├── StoreError                  store_error          500
    │   └── ModelIntegrityError     model_integrity      (a saved model's files changed)
    ├── PipelineError               pipeline_error       500
    │   └── StepFailed              step_failed          (a step raised; recorded as failed)
    ├── ServingError                serving_error        500
    └── GateFailed                  gate_failed          422

Every error carries a stable ``code`` (what the REST API sends and the REST client uses to rebuild
the same class, so ``except RunNotFound`` works locally and remotely), a short ``headline`` for the
CLI, a ``message`` that says what was expected and what was received, and optional ``details``.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AlreadyExistsError",
    "ArtifactNotFound",
    "AuthError",
    "ContractNotFound",
    "DatasetAlreadyExists",
    "DatasetNotFound",
    "DatasetVersionNotFound",
    "DeploymentAlreadyExists",
    "DeploymentNotFound",
    "ExperimentAlreadyExists",
    "ExperimentNotFound",
    "GateFailed",
    "InvalidFilter",
    "InvalidInputError",
    "InvalidStateError",
    "LockHeld",
    "MlcycleError",
    "ModelAliasNotFound",
    "ModelAlreadyExists",
    "ModelIntegrityError",
    "ModelNotFound",
    "ModelVersionNotFound",
    "MonitorAlreadyExists",
    "MonitorNotFound",
    "NotFoundError",
    "PermissionDenied",
    "PipelineError",
    "PipelineRunNotFound",
    "RevisionConflict",
    "RunNotFound",
    "ServingError",
    "SignatureMismatch",
    "SourceError",
    "StepFailed",
    "StoreError",
    "TriggerAlreadyExists",
    "TriggerNotFound",
    "TriggerRunNotFound",
    "error_class_for",
]


class MlcycleError(Exception):
    """Base of every error mlcycle raises on purpose."""

    code: ClassVar[str] = "error"
    headline: ClassVar[str] = "mlcycle error"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class NotFoundError(MlcycleError):
    code = "not_found"
    headline = "Not found"
    http_status = 404


class ExperimentNotFound(NotFoundError):
    code = "experiment_not_found"
    headline = "Experiment not found"


class RunNotFound(NotFoundError):
    code = "run_not_found"
    headline = "Run not found"


class ArtifactNotFound(NotFoundError):
    code = "artifact_not_found"
    headline = "Artifact not found"


class DatasetNotFound(NotFoundError):
    code = "dataset_not_found"
    headline = "Dataset not found"


class DatasetVersionNotFound(NotFoundError):
    code = "dataset_version_not_found"
    headline = "Dataset version not found"


class ContractNotFound(NotFoundError):
    code = "contract_not_found"
    headline = "Contract not found"


class ModelNotFound(NotFoundError):
    code = "model_not_found"
    headline = "Model not found"


class ModelVersionNotFound(NotFoundError):
    code = "model_version_not_found"
    headline = "Model version not found"


class ModelAliasNotFound(NotFoundError):
    """``details`` holds ``model`` and ``alias``, and ``aliases``: the ones the model has."""

    code = "model_alias_not_found"
    headline = "Model alias not found"


class DeploymentNotFound(NotFoundError):
    code = "deployment_not_found"
    headline = "Deployment not found"


class PipelineRunNotFound(NotFoundError):
    code = "pipeline_run_not_found"
    headline = "Pipeline run not found"


class MonitorNotFound(NotFoundError):
    code = "monitor_not_found"
    headline = "Monitor not found"


class TriggerNotFound(NotFoundError):
    code = "trigger_not_found"
    headline = "Trigger not found"


class TriggerRunNotFound(NotFoundError):
    code = "trigger_run_not_found"
    headline = "Trigger run not found"


class AlreadyExistsError(MlcycleError):
    code = "already_exists"
    headline = "Already exists"
    http_status = 409


class ExperimentAlreadyExists(AlreadyExistsError):
    code = "experiment_already_exists"
    headline = "Experiment already exists"


class DatasetAlreadyExists(AlreadyExistsError):
    code = "dataset_already_exists"
    headline = "Dataset already exists"


class ModelAlreadyExists(AlreadyExistsError):
    code = "model_already_exists"
    headline = "Model already exists"


class DeploymentAlreadyExists(AlreadyExistsError):
    code = "deployment_already_exists"
    headline = "Deployment already exists"


class MonitorAlreadyExists(AlreadyExistsError):
    code = "monitor_already_exists"
    headline = "Monitor already exists"


class TriggerAlreadyExists(AlreadyExistsError):
    code = "trigger_already_exists"
    headline = "Trigger already exists"


class InvalidInputError(MlcycleError):
    code = "invalid_input"
    headline = "Invalid input"
    http_status = 400


class InvalidFilter(InvalidInputError):
    """A search filter that does not parse; ``details`` holds ``position`` and ``token``."""

    code = "invalid_filter"
    headline = "Invalid filter"


class SignatureMismatch(InvalidInputError):
    """Input to a model that its signature does not accept: a missing column, a type that
    cannot be converted safely, nulls in a required column, a wrong shape. ``details`` holds
    ``field`` (the column), ``expected`` and ``got``."""

    code = "signature_mismatch"
    headline = "Input does not match the model's signature"


class SourceError(InvalidInputError):
    """A data source that cannot be read: unreachable, empty, or malformed (the message names
    the file, line, column or URL)."""

    code = "source_error"
    headline = "Cannot read the data source"


class InvalidStateError(MlcycleError):
    code = "invalid_state"
    headline = "Invalid state"
    http_status = 409


class RevisionConflict(InvalidStateError):
    """A write that expected a record at one revision found another: someone changed it first.
    Re-read and decide again (``details`` holds ``expected`` and ``actual``)."""

    code = "revision_conflict"
    headline = "Changed by someone else"


class LockHeld(InvalidStateError):
    """A named lock in the metadata store (``ci:<project>``) is held by another process;
    ``details`` names its ``owner``, ``pid``, ``host`` and ``acquired_at``."""

    code = "lock_held"
    headline = "Locked"


class AuthError(MlcycleError):
    code = "unauthorized"
    headline = "Not authenticated"
    http_status = 401


class PermissionDenied(AuthError):
    code = "forbidden"
    headline = "Permission denied"
    http_status = 403


class StoreError(MlcycleError):
    """A store failed. ``retryable`` is True only when trying again cannot apply a write twice
    (a busy database that rolled back; a request that never reached the server)."""

    code = "store_error"
    headline = "Store error"
    http_status = 500

    def __init__(
        self, message: str, *, details: dict[str, Any] | None = None, retryable: bool = False
    ) -> None:
        super().__init__(message, details=details)
        self.retryable = retryable


class ModelIntegrityError(StoreError):
    """A saved model whose files differ from its manifest (changed, missing or added), or whose
    manifest differs from the digest the caller expected. Raised before anything of the model
    is deserialised; ``details`` names the ``file``."""

    code = "model_integrity"
    headline = "Model files changed"


class PipelineError(MlcycleError):
    code = "pipeline_error"
    headline = "Pipeline error"


class StepFailed(PipelineError):
    """A pipeline step raised (after its retries). The step run is recorded as failed with
    the error; ``details`` holds ``pipeline_run_id``, ``step``, ``step_run_id`` and
    ``error_type``, so ``mlcycle pipeline resume`` can start from it."""

    code = "step_failed"
    headline = "Pipeline step failed"


class ServingError(MlcycleError):
    code = "serving_error"
    headline = "Serving error"


class GateFailed(MlcycleError):
    code = "gate_failed"
    headline = "Gate failed"
    http_status = 422


def _all_subclasses(cls: type[MlcycleError]) -> list[type[MlcycleError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_all_subclasses(sub))
    return out


def error_class_for(code: str) -> type[MlcycleError]:
    """The error class whose ``code`` is *code*; ``MlcycleError`` for an unknown code."""
    for cls in _all_subclasses(MlcycleError):
        if cls.code == code:
            return cls
    return MlcycleError
