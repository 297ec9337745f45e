"""``DataService``: ingest, version, profile, diff, validate and prepare datasets.

A dataset version is addressed as ``name`` (the newest), ``name@latest``, ``name@v3`` (or
``name@3``), or ``name@<digest prefix>``. Everything a version needs is stored when it is made:
the Parquet snapshot (or a file manifest), its schema, row count, profile, source description,
parent versions and the hash of the code that derived it, so any model can be traced to the
exact rows it saw.

How a re-ingest decides that nothing changed, cheapest first:

1. The source's fingerprint (files: each path, size and modification time; SQL: the result of
   ``change_query``) equals the one stored on the dataset's newest version: that version is
   returned and the source is not read at all.
2. Otherwise the rows are read and written to a deterministic Parquet snapshot; its BLAKE3
   digest equals an existing version's digest: that version is returned (its fingerprint
   refreshed), and nothing new is stored.
3. Otherwise a new version is numbered.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import inspect
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlcycle.datasets.sources import Progress, as_source, to_arrow
from mlcycle.entities import ContractVersion, Dataset, DatasetVersion, RunInput
from mlcycle.errors import (
    DatasetVersionNotFound,
    InvalidInputError,
    InvalidStateError,
)
from mlcycle.store.base import ArtifactStore, DatasetStore, TrackingStore

if TYPE_CHECKING:  # pyarrow loads when rows are touched, not to check that nothing changed
    import pyarrow as pa

__all__ = ["DataService", "DatasetDiff", "PreparedVersions", "parse_ref"]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")
_REF_RE = re.compile(r"^(?P<name>[^@]+)(?:@(?P<sel>[^@]+))?$")


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InvalidInputError(
            f"dataset name: expected letters, digits, '_', '.' or '-' (at most 200, starting "
            f"with a letter or digit), got {name!r}",
            details={"field": "name"},
        )
    return name


def parse_ref(ref: str) -> tuple[str, str | None]:
    """``"iris@v3"`` -> ``("iris", "v3")``; ``"iris"`` -> ``("iris", None)``."""
    m = _REF_RE.match(ref.strip()) if isinstance(ref, str) else None
    if not m:
        raise InvalidInputError(
            f"dataset reference: expected name, name@vN, name@latest or name@<digest>, "
            f"got {ref!r}", details={"field": "ref"})
    return check_name(m.group("name")), m.group("sel")


def code_hash_of(code: Any) -> str | None:
    """The hash of the code that derived a version: a function's source, a file, or text."""
    if code is None:
        return None
    if callable(code):
        try:
            text = inspect.getsource(code)
        except (OSError, TypeError):
            text = f"{getattr(code, '__module__', '')}.{getattr(code, '__qualname__', code)}"
    elif isinstance(code, str | os.PathLike) and os.path.isfile(code):
        with open(code, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    else:
        text = str(code)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class DatasetDiff:
    """Schema and profile differences between two versions."""

    a: DatasetVersion
    b: DatasetVersion
    added: tuple[str, ...]
    removed: tuple[str, ...]
    retyped: tuple[tuple[str, str, str], ...]  # (column, type in a, type in b)
    profile: Any  # a profile.ProfileDiff, or None when a version has no profile

    @property
    def same_content(self) -> bool:
        return self.a.digest == self.b.digest

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a.ref, "b": self.b.ref, "same_content": self.same_content,
            "rows": {"a": self.a.num_rows, "b": self.b.num_rows},
            "schema": {"added": list(self.added), "removed": list(self.removed),
                       "retyped": [{"column": c, "a": ta, "b": tb} for c, ta, tb in self.retyped]},
            "profile": self.profile.to_dict() if self.profile is not None else None,
        }


@dataclass(frozen=True, slots=True)
class PreparedVersions:
    """What ``DataService.prepare`` made: the prepared data and the versions that record it."""

    prepared: Any  # prepare.PreparedData
    versions: Mapping[str, DatasetVersion]  # "train", "test", …, "quarantine"


class DataService:
    """The data stage over a dataset store and an artifact store.

    ``tracking`` (optional) records which versions a run read or made.
    """

    def __init__(self, store: DatasetStore, artifacts: ArtifactStore,
                 tracking: TrackingStore | None = None, *, cache_dir: str | None = None) -> None:
        self.store = store
        self.artifacts = artifacts
        self.tracking = tracking
        self.cache_dir = cache_dir

    # --- addressing -----------------------------------------------------------------------
    def get_dataset(self, name: str) -> Dataset:
        return self.store.get_dataset(check_name(name))

    def list_datasets(self) -> list[Dataset]:
        return self.store.list_datasets()

    def list_versions(self, name: str) -> list[DatasetVersion]:
        return self.store.list_versions(check_name(name))

    def get_version(self, ref: str | DatasetVersion) -> DatasetVersion:
        """The version *ref* names (see the module docs for the forms)."""
        if isinstance(ref, DatasetVersion):
            return ref
        name, sel = parse_ref(ref)
        if sel is None or sel == "latest":
            ds = self.store.get_dataset(name)
            if ds.latest_version is None:
                raise DatasetVersionNotFound(f"dataset {name!r} has no versions yet",
                                             details={"dataset": name})
            return self.store.get_version(name, ds.latest_version)
        m = re.fullmatch(r"v?(\d{1,9})", sel)
        if m:
            return self.store.get_version(name, int(m.group(1)))
        if re.fullmatch(r"[0-9a-f]{6,64}", sel):
            found = self.store.find_version_by_digest(name, sel)
            if found is not None:
                return found
        raise DatasetVersionNotFound(
            f"dataset {name!r} has no version {sel!r} (use vN, latest or a digest prefix)",
            details={"dataset": name, "version": sel})

    # --- ingest ---------------------------------------------------------------------------
    def ingest(
        self,
        name: str,
        source: Any,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        parents: Sequence[str | DatasetVersion] = (),
        code: Any = None,
        role: str = "data",
        run_id: str | None = None,
        progress: Progress | None = None,
        force: bool = False,
        **source_options: Any,
    ) -> DatasetVersion:
        """Snapshot *source* as a version of dataset *name* (created on first use).

        *source*: a path, glob or URL of CSV/Parquet/JSON-lines files; a SQLAlchemy URL with
        ``query=``; an http(s) JSON API URL; a pandas/polars frame or Arrow table; or a Source.
        Nothing is recorded when reading, profiling or storing fails.
        """
        check_name(name)
        src = as_source(source, **source_options)
        parent_refs = [self.get_version(p).ref for p in parents]
        fingerprint = None if force else src.fingerprint()
        if fingerprint is not None:
            latest = self._latest(name)
            if latest is not None and latest.fingerprint == fingerprint:
                self._record_input(run_id, latest, "read")
                return latest
        table = src.read(progress=progress)
        return self._record_table(
            name, table, source=src.describe(), fingerprint=fingerprint,
            description=description, tags=tags, parents=parent_refs,
            code_hash=code_hash_of(code), role=role, run_id=run_id)

    def _latest(self, name: str) -> DatasetVersion | None:
        ds = self.store.find_dataset(name)
        if ds is None or ds.latest_version is None:
            return None
        return self.store.get_version(name, ds.latest_version)

    def _scratch(self) -> str | None:
        return self.artifacts.scratch_dir() or self.cache_dir

    def _record_table(self, name: str, table: pa.Table, *, source: Mapping[str, Any],
                      fingerprint: str | None, description: str | None,
                      tags: Mapping[str, str] | None, parents: Sequence[str],
                      code_hash: str | None, role: str, run_id: str | None) -> DatasetVersion:
        from mlcycle.datasets.profile import profile_table
        from mlcycle.datasets.snapshot import canonical, write_snapshot

        if table.num_columns == 0:
            raise InvalidInputError(f"dataset {name!r}: a version needs at least one column",
                                    details={"dataset": name})
        # One canonical table feeds both the snapshot and the profile, and they run side by
        # side: the Parquet writer and the profiler's numpy and Arrow kernels release the GIL.
        table = canonical(table)
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mlcycle-profile") \
                as pool:
            profiling = pool.submit(profile_table, table)
            snap = write_snapshot(table, self.artifacts, scratch=self._scratch())
            existing = self.store.find_version_by_digest(name, snap.digest)
            profile_digest = existing.profile_digest if existing is not None else None
            if profile_digest is None:
                profile_digest, _ = self.artifacts.put_bytes(profiling.result().to_json())
            else:
                profiling.cancel()
        version, _created = self.store.create_version(
            name, kind="table", digest=snap.digest, num_rows=snap.num_rows,
            num_bytes=snap.size, columns=snap.columns, source=source, fingerprint=fingerprint,
            profile_digest=profile_digest, parents=parents, code_hash=code_hash, role=role,
            run_id=run_id, description=description, tags=tags)
        self._record_input(run_id, version, "output" if _created else "read")
        return version

    def _record_input(self, run_id: str | None, version: DatasetVersion, role: str) -> None:
        if run_id and self.tracking is not None:
            self.tracking.log_inputs(run_id, [RunInput(version.dataset, f"v{version.version}",
                                                       version.digest, {"role": role})])

    # --- raw files ------------------------------------------------------------------------
    def add_files(self, name: str, path: str | os.PathLike[str], *, link: str = "auto",
                  description: str | None = None, tags: Mapping[str, str] | None = None,
                  run_id: str | None = None, progress: Progress | None = None
                  ) -> DatasetVersion:
        """Version a file or folder as it is (images, archives, a big CSV): each file hashed
        once with BLAKE3 and linked into the artifact store, a manifest listing them."""
        from mlcycle.datasets.files import snapshot_files

        check_name(name)
        manifest = snapshot_files(os.fspath(path), self.artifacts, link=link,
                                  cache=self._stat_cache(), progress=progress)
        digest, _size = self.artifacts.put_bytes(manifest.to_bytes())
        version, created = self.store.create_version(
            name, kind="files", digest=digest, num_rows=manifest.count,
            num_bytes=manifest.total_bytes, source={"kind": "files", "path": os.fspath(path)},
            description=description, tags=tags, run_id=run_id)
        self._record_input(run_id, version, "output" if created else "read")
        return version

    def _stat_cache(self) -> Any:
        from mlcycle.datasets.files import StatCache

        return StatCache(self.cache_dir) if self.cache_dir else None

    def manifest(self, ref: str | DatasetVersion) -> Any:
        from mlcycle.datasets.files import FileManifest

        version = self._kind(ref, "files")
        return FileManifest.from_bytes(self.artifacts.get_bytes(version.digest))

    def files_status(self, ref: str | DatasetVersion, path: str | os.PathLike[str]) -> Any:
        """What changed in *path* since the files version *ref*, without re-hashing unchanged
        files."""
        from mlcycle.datasets.files import status_files

        return status_files(os.fspath(path), self.manifest(ref), cache=self._stat_cache())

    def checkout_files(self, ref: str | DatasetVersion, dest: str | os.PathLike[str], *,
                       link: str = "auto") -> Any:
        from mlcycle.datasets.files import checkout_files

        return checkout_files(self.manifest(ref), self.artifacts, os.fspath(dest), link=link)

    def _kind(self, ref: str | DatasetVersion, kind: str) -> DatasetVersion:
        version = self.get_version(ref)
        if version.kind != kind:
            raise InvalidStateError(
                f"{version.ref} holds {version.kind}, not {kind}",
                details={"dataset": version.dataset, "kind": version.kind})
        return version

    # --- reading --------------------------------------------------------------------------
    def load(self, ref: str | DatasetVersion, *, columns: list[str] | None = None,
             format: str = "polars", run_id: str | None = None, context: str = "read") -> Any:
        """The rows of a table version as ``polars`` (default), ``pandas`` or ``arrow``."""
        version = self._kind(ref, "table")
        table = read_snapshot(self.artifacts, version.digest, columns=columns)
        if run_id and self.tracking is not None:
            self.tracking.log_inputs(run_id, [RunInput(version.dataset, f"v{version.version}",
                                                       version.digest, {"role": context})])
        return _as_format(table, format)

    def profile(self, ref: str | DatasetVersion) -> Any:
        """The stored profile of a table version (no rows are read)."""
        from mlcycle.datasets.profile import DatasetProfile, profile_table

        version = self._kind(ref, "table")
        if version.profile_digest is None:
            return profile_table(read_snapshot(self.artifacts, version.digest))
        return DatasetProfile.from_json(self.artifacts.get_bytes(version.profile_digest))

    def diff(self, a: str | DatasetVersion, b: str | DatasetVersion) -> DatasetDiff:
        from mlcycle.datasets.profile import diff_profiles

        va, vb = self.get_version(a), self.get_version(b)
        ca = {c.name: c.type for c in va.columns}
        cb = {c.name: c.type for c in vb.columns}
        profile = None
        if va.kind == vb.kind == "table":
            profile = diff_profiles(self.profile(va), self.profile(vb))
        return DatasetDiff(
            a=va, b=vb,
            added=tuple(c for c in cb if c not in ca),
            removed=tuple(c for c in ca if c not in cb),
            retyped=tuple((c, ca[c], cb[c]) for c in ca if c in cb and ca[c] != cb[c]),
            profile=profile,
        )

    # --- contracts and segments -----------------------------------------------------------
    def infer_contract(self, ref: str | DatasetVersion, *, save: bool = True,
                       **options: Any) -> tuple[Any, ContractVersion | None]:
        """Infer a contract from a version's rows; saved as the dataset's next contract."""
        from mlcycle.datasets.contracts import infer_contract

        version = self._kind(ref, "table")
        contract = infer_contract(read_snapshot(self.artifacts, version.digest), **options)
        stored = (self.store.create_contract(version.dataset, contract.to_yaml(),
                                             source_version=version.ref) if save else None)
        return contract, stored

    def save_contract(self, name: str, contract: Any) -> ContractVersion:
        """Store *contract* (a Contract or its YAML text, checked first) as *name*'s next."""
        from mlcycle.datasets.contracts import Contract

        if isinstance(contract, str):
            contract = Contract.from_yaml(contract)
        return self.store.create_contract(check_name(name), contract.to_yaml())

    def get_contract(self, name: str, version: int | None = None) -> Any:
        from mlcycle.datasets.contracts import Contract

        stored = self.store.get_contract(check_name(name), version)
        return Contract.from_yaml(stored.body)

    def list_contracts(self, name: str) -> list[ContractVersion]:
        return self.store.list_contracts(check_name(name))

    def set_segments(self, name: str, segments: Mapping[str, str | None]) -> Dataset:
        """Add, replace (or with ``None`` remove) named segments; expressions are checked."""
        from mlcycle.datasets.segments import Segment

        for seg, expr in segments.items():
            if expr is not None:
                Segment(seg, expr).expression()  # parses: a typo fails here, not later
        check_name(name)
        if self.store.find_dataset(name) is None:
            self.store.create_dataset(name)
        return self.store.set_segments(name, segments)

    def segments(self, name: str) -> list[Any]:
        from mlcycle.datasets.segments import Segment

        ds = self.store.get_dataset(check_name(name))
        return [Segment(k, v) for k, v in ds.segments.items()]

    def segments_for(self, ref: str | DatasetVersion) -> dict[str, str]:
        """The segments that apply to a dataset version: its dataset's, else those of the
        nearest ancestor that has some (a prepared split takes its source's)."""
        seen: set[str] = set()
        todo = [self.get_version(ref)]
        while todo:
            version = todo.pop(0)
            if version.ref in seen:
                continue
            seen.add(version.ref)
            segments = dict(self.store.get_dataset(version.dataset).segments)
            if segments:
                return segments
            todo.extend(self.get_version(parent) for parent in version.parents)
        return {}

    def validate(self, data: Any, contract: Any = None, *, dataset: str | None = None,
                 segments: Any = None, max_examples: int = 5) -> Any:
        """Validate a version ref or a frame against a contract.

        ``contract``: a Contract, YAML text, ``"name"`` / ``"name@contract-v2"`` of a stored one,
        or ``None`` for the newest contract of the dataset (*data*'s when it is a ref).
        ``segments``: a mapping, a list of Segments, or ``None`` for the dataset's own.
        """
        from mlcycle.datasets.validation import validate

        if isinstance(data, str | DatasetVersion):
            version = self._kind(data, "table")
            dataset = dataset or version.dataset
            data = read_snapshot(self.artifacts, version.digest)
        contract = self._resolve_contract(contract, dataset)
        if segments is None and dataset and self.store.find_dataset(dataset) is not None:
            segments = self.segments(dataset)
        return validate(data, contract, segments=segments or (), max_examples=max_examples)

    def _resolve_contract(self, contract: Any, dataset: str | None) -> Any:
        from mlcycle.datasets.contracts import Contract

        if isinstance(contract, Contract):
            return contract
        if contract is None:
            if not dataset:
                raise InvalidInputError("contract: pass a contract, or validate a dataset "
                                        "version that has one", details={"field": "contract"})
            return self.get_contract(dataset)
        if isinstance(contract, str):
            m = re.fullmatch(r"([^@\s]+)@contract-v(\d+)", contract)
            if m:
                return self.get_contract(m.group(1), int(m.group(2)))
            if _NAME_RE.match(contract):
                return self.get_contract(contract)
            return Contract.from_yaml(contract)
        raise InvalidInputError(f"contract: expected a Contract, YAML or a name, got "
                                f"{type(contract).__name__}", details={"field": "contract"})

    # --- preparation ----------------------------------------------------------------------
    def prepare(self, data: str | DatasetVersion | Any, spec: Any, *,
                output: str | None = None, run_id: str | None = None) -> PreparedVersions:
        """Run a preparation spec and record its outputs as versions.

        Each split becomes a version of ``<output>.<split>`` (``output`` defaults to the input
        dataset's name), and quarantined rows a version of ``<output>.quarantine``; all list the
        input version as parent and the spec's digest as their code hash.
        """
        from mlcycle.datasets.prepare import PrepareSpec, prepare

        if isinstance(spec, str):
            spec = PrepareSpec.from_yaml(spec)
        elif isinstance(spec, Mapping):
            spec = PrepareSpec.from_dict(spec)
        parents: list[str] = []
        if isinstance(data, str | DatasetVersion):
            version = self._kind(data, "table")
            parents = [version.ref]
            output = output or version.dataset
            self._record_input(run_id, version, "input")
            data = read_snapshot(self.artifacts, version.digest)
        if not output:
            raise InvalidInputError("output: name the prepared datasets (output='credit')",
                                    details={"field": "output"})
        check_name(output)
        prepared = prepare(data, spec)
        code = spec.digest()
        source = {"kind": "prepare", "spec": spec.to_dict()}
        versions: dict[str, DatasetVersion] = {}
        frames: dict[str, Any] = dict(prepared.frames)
        if prepared.quarantine is not None and prepared.quarantine.height:
            frames["quarantine"] = prepared.quarantine
        for split, frame in frames.items():
            table = to_arrow(frame)
            if table.num_rows == 0:
                continue
            versions[split] = self._record_table(
                f"{output}.{split}", table, source=source, fingerprint=None,
                description=None, tags=None, parents=parents, code_hash=code, role=split,
                run_id=run_id)
        return PreparedVersions(prepared, versions)


def read_snapshot(artifacts: ArtifactStore, digest: str, *,
                  columns: list[str] | None = None) -> pa.Table:
    from mlcycle.datasets import snapshot

    return snapshot.read_snapshot(artifacts, digest, columns=columns)


def _as_format(table: pa.Table, format: str) -> Any:
    if format == "arrow":
        return table
    if format == "pandas":
        return table.to_pandas()
    if format == "polars":
        import polars as pl

        return pl.from_arrow(table)
    raise InvalidInputError(f"format: expected polars, pandas or arrow, got {format!r}",
                            details={"field": "format"})

