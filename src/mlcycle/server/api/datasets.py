"""``/api/v1/datasets``: datasets, their versions, segments and contracts.

The server keeps metadata only. A client snapshots and profiles the data itself, uploads the
bytes through ``/api/v1/artifacts/objects/{digest}`` and then records the version here.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from mlcycle.datasets.service import check_name
from mlcycle.errors import DatasetVersionNotFound
from mlcycle.server.dataset_schemas import (
    ContractCreate,
    ContractList,
    ContractOut,
    DatasetCreate,
    DatasetList,
    DatasetOut,
    DatasetVersionCreate,
    DatasetVersionList,
    DatasetVersionOut,
    SegmentsUpdate,
    VersionCreated,
)
from mlcycle.server.deps import Datasets

router = APIRouter(prefix="/datasets", tags=["datasets"])

# Names are checked where a dataset may come into being (create, first version, first contract);
# a read of a name that breaks the rule simply finds nothing, as it does in the SQL store.


@router.get("")
def list_datasets(store: Datasets) -> DatasetList:
    return DatasetList(datasets=[DatasetOut.from_entity(d) for d in store.list_datasets()])


@router.post("", status_code=201)
def create_dataset(body: DatasetCreate, store: Datasets) -> DatasetOut:
    ds = store.create_dataset(check_name(body.name), description=body.description, tags=body.tags)
    return DatasetOut.from_entity(ds)


@router.get("/{name}")
def get_dataset(name: str, store: Datasets) -> DatasetOut:
    return DatasetOut.from_entity(store.get_dataset(name))


@router.patch("/{name}/segments")
def set_segments(name: str, body: SegmentsUpdate, store: Datasets) -> DatasetOut:
    """Add or replace segments; ``null`` removes one."""
    return DatasetOut.from_entity(store.set_segments(name, body.segments))


# --- versions -------------------------------------------------------------------------------


@router.post("/{name}/versions", status_code=201,
             responses={200: {"description": "The dataset held this digest already."}})
def create_version(name: str, body: DatasetVersionCreate, store: Datasets, response: Response
                   ) -> VersionCreated:
    """Record a version (201), or find the one with the same digest (200, ``created: false``)."""
    version, created = store.create_version(check_name(name), **body.store_kwargs())
    response.status_code = 201 if created else 200
    return VersionCreated(version=DatasetVersionOut.from_entity(version), created=created)


@router.get("/{name}/versions")
def list_versions(name: str, store: Datasets) -> DatasetVersionList:
    """Every version, newest first."""
    versions = store.list_versions(name)
    return DatasetVersionList(versions=[DatasetVersionOut.from_entity(v) for v in versions])


@router.get("/{name}/versions/by-digest/{digest}")
def find_version_by_digest(name: str, digest: str, store: Datasets) -> DatasetVersionOut:
    """The version with this digest, or with the one digest this prefix starts."""
    version = store.find_version_by_digest(name, digest)
    if version is None:
        raise DatasetVersionNotFound(
            f"dataset {name!r} has no version whose digest is or starts with {digest!r} "
            "(or the prefix is ambiguous)", details={"dataset": name, "digest": digest})
    return DatasetVersionOut.from_entity(version)


@router.get("/{name}/versions/{version:int}")
def get_version(name: str, version: int, store: Datasets) -> DatasetVersionOut:
    return DatasetVersionOut.from_entity(store.get_version(name, version))


# --- contracts ------------------------------------------------------------------------------


@router.post("/{name}/contracts", status_code=201)
def create_contract(name: str, body: ContractCreate, store: Datasets) -> ContractOut:
    """Store the next contract version of the dataset (created on its first contract)."""
    contract = store.create_contract(check_name(name), body.body,
                                     source_version=body.source_version)
    return ContractOut.from_entity(contract)


@router.get("/{name}/contracts")
def list_contracts(name: str, store: Datasets) -> ContractList:
    """Every contract version, newest first."""
    return ContractList(contracts=[ContractOut.from_entity(c) for c in store.list_contracts(name)])


@router.get("/{name}/contracts/latest")
def get_latest_contract(name: str, store: Datasets) -> ContractOut:
    return ContractOut.from_entity(store.get_contract(name))


@router.get("/{name}/contracts/{version:int}")
def get_contract(name: str, version: int, store: Datasets) -> ContractOut:
    return ContractOut.from_entity(store.get_contract(name, version))
