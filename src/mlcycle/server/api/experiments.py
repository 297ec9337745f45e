"""``/api/v1/experiments``."""

from __future__ import annotations

from fastapi import APIRouter

from mlcycle.server.deps import Service
from mlcycle.server.schemas import ExperimentCreate, ExperimentList, ExperimentOut, ExperimentUpdate

router = APIRouter(prefix="/experiments", tags=["experiments"])


@router.post("", status_code=201)
def create_experiment(body: ExperimentCreate, service: Service) -> ExperimentOut:
    exp = service.create_experiment(body.name, description=body.description, tags=body.tags)
    return ExperimentOut.from_entity(exp)


@router.get("")
def list_experiments(service: Service, include_deleted: bool = False) -> ExperimentList:
    exps = service.list_experiments(include_deleted=include_deleted)
    return ExperimentList(experiments=[ExperimentOut.from_entity(e) for e in exps])


@router.get("/by-name/{name:path}")
def get_experiment_by_name(name: str, service: Service) -> ExperimentOut:
    return ExperimentOut.from_entity(service.get_experiment_by_name(name))


@router.get("/{experiment_id}")
def get_experiment(experiment_id: str, service: Service) -> ExperimentOut:
    return ExperimentOut.from_entity(service.get_experiment(experiment_id))


@router.patch("/{experiment_id}")
def update_experiment(experiment_id: str, body: ExperimentUpdate, service: Service
                      ) -> ExperimentOut:
    """Rename, or change the description; fields left out stay as they are."""
    return ExperimentOut.from_entity(service.update_experiment(experiment_id, **body.changes()))


@router.delete("/{experiment_id}")
def delete_experiment(experiment_id: str, service: Service) -> ExperimentOut:
    """Soft-delete: hidden from listings until restored; its runs are kept."""
    return ExperimentOut.from_entity(service.delete_experiment(experiment_id))


@router.post("/{experiment_id}/restore")
def restore_experiment(experiment_id: str, service: Service) -> ExperimentOut:
    return ExperimentOut.from_entity(service.restore_experiment(experiment_id))
