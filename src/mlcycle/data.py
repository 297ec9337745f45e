"""The data stage from the SDK: ``mc.data.ingest(...)``, ``mc.data.load(...)``, …

>>> import mlcycle as mc
>>> v = mc.data.ingest("flights", "data/flights-*.csv")          # doctest: +SKIP
>>> v.ref, v.num_rows                                            # doctest: +SKIP
('flights@v1', 336776)
>>> df = mc.data.load("flights@v1")          # a polars DataFrame  # doctest: +SKIP

Inside ``with mc.start_run():`` every version read or made is recorded as an input of the run.
Each function is ``get_client().data.<same name>`` with the active run filled in.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlcycle.datasets.service import DataService, DatasetDiff, PreparedVersions
    from mlcycle.datasets.sources import FileSource, FrameSource, HttpSource, SqlSource
    from mlcycle.entities import ContractVersion, Dataset, DatasetVersion

__all__ = [
    "FileSource",
    "FrameSource",
    "HttpSource",
    "SqlSource",
    "add_files",
    "diff",
    "get",
    "get_contract",
    "infer_contract",
    "ingest",
    "list_datasets",
    "list_versions",
    "load",
    "prepare",
    "profile",
    "save_contract",
    "set_segments",
    "validate",
]


_SOURCES = ("FileSource", "FrameSource", "HttpSource", "SqlSource")


def __getattr__(name: str) -> Any:
    # The source classes load pyarrow; importing mlcycle should not pay for that up front.
    if name in _SOURCES:
        from mlcycle.datasets import sources

        return getattr(sources, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _service() -> DataService:
    import mlcycle

    return mlcycle.get_client().data


def _run_id() -> str | None:
    from mlcycle.client import active_run

    run = active_run()
    return run.run_id if run is not None else None


def _caller_file() -> str | None:
    """The file of the code that called the SDK: its hash is the version's code lineage."""
    frame = inspect.currentframe()
    try:
        caller = frame.f_back.f_back if frame and frame.f_back else None
        path = caller.f_code.co_filename if caller else None
    finally:
        del frame
    return path if path and os.path.isfile(path) else None


def ingest(name: str, source: Any, *, description: str | None = None,
           tags: Mapping[str, str] | None = None, parents: Sequence[str] = (),
           code: Any = None, force: bool = False, **source_options: Any) -> DatasetVersion:
    """Snapshot *source* as the next version of dataset *name*; see ``DataService.ingest``.

    ``code`` defaults to the calling file, whose hash is stored as the version's code lineage.
    """
    return _service().ingest(
        name, source, description=description, tags=tags, parents=parents,
        code=code if code is not None else _caller_file(), run_id=_run_id(), force=force,
        **source_options)


def add_files(name: str, path: str | os.PathLike[str], *, link: str = "auto",
              description: str | None = None) -> DatasetVersion:
    """Version a file or folder as it is (hashed once, linked into the artifact store)."""
    return _service().add_files(name, path, link=link, description=description,
                                run_id=_run_id())


def load(ref: str, *, columns: list[str] | None = None, format: str = "polars") -> Any:
    """The rows of a version (``polars``, ``pandas`` or ``arrow``), recorded as a run input."""
    return _service().load(ref, columns=columns, format=format, run_id=_run_id())


def get(ref: str) -> DatasetVersion:
    return _service().get_version(ref)


def list_datasets() -> list[Dataset]:
    return _service().list_datasets()


def list_versions(name: str) -> list[DatasetVersion]:
    return _service().list_versions(name)


def profile(ref: str) -> Any:
    return _service().profile(ref)


def diff(a: str, b: str) -> DatasetDiff:
    return _service().diff(a, b)


def infer_contract(ref: str, *, save: bool = True, **options: Any) -> Any:
    """Infer (and by default store) a contract from a version; returns the Contract."""
    return _service().infer_contract(ref, save=save, **options)[0]


def save_contract(name: str, contract: Any) -> ContractVersion:
    return _service().save_contract(name, contract)


def get_contract(name: str, version: int | None = None) -> Any:
    return _service().get_contract(name, version)


def set_segments(name: str, segments: Mapping[str, str | None]) -> Dataset:
    return _service().set_segments(name, segments)


def validate(data: Any, contract: Any = None, *, dataset: str | None = None,
             segments: Any = None, max_examples: int = 5) -> Any:
    """Validate a version ref or a frame; returns a ValidationReport."""
    return _service().validate(data, contract, dataset=dataset, segments=segments,
                               max_examples=max_examples)


def prepare(data: Any, spec: Any, *, output: str | None = None) -> PreparedVersions:
    """Run a preparation spec; splits and quarantined rows are recorded as versions."""
    return _service().prepare(data, spec, output=output, run_id=_run_id())
