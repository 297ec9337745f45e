"""Table snapshots: rows written once to a deterministic Parquet file, named by its BLAKE3.

The same rows give the same bytes, so the same digest: the writer gets one contiguous table
(the reader's chunking never shows), a fixed row-group size, fixed compression and no
wall-clock metadata. The digest is therefore the dataset version's content hash, and an
identical re-ingest stores nothing new. (The bytes depend on the pyarrow version that wrote them;
after an upgrade identical rows may get a new version once.)
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq
from blake3 import blake3

from mlcycle.entities import ColumnSchema
from mlcycle.store.base import ArtifactStore

__all__ = ["Snapshot", "canonical", "columns_of", "read_snapshot", "write_snapshot"]

_ROW_GROUP = 1 << 20


@dataclass(frozen=True, slots=True)
class Snapshot:
    digest: str
    size: int
    num_rows: int
    columns: tuple[ColumnSchema, ...]


def columns_of(schema: pa.Schema) -> tuple[ColumnSchema, ...]:
    return tuple(ColumnSchema(f.name, str(f.type), f.nullable) for f in schema)


def _canonical_type(typ: pa.DataType) -> pa.DataType:
    if pa.types.is_large_string(typ) or pa.types.is_string_view(typ):
        return pa.string()
    if pa.types.is_large_binary(typ) or pa.types.is_binary_view(typ):
        return pa.binary()
    if pa.types.is_large_list(typ) or pa.types.is_list_view(typ) \
            or pa.types.is_large_list_view(typ):
        return pa.list_(_canonical_type(typ.value_type))
    if pa.types.is_list(typ):
        return pa.list_(_canonical_type(typ.value_type))
    if pa.types.is_struct(typ):
        return pa.struct([f.with_type(_canonical_type(f.type)) for f in typ])
    return typ


def canonical(table: pa.Table) -> pa.Table:
    """The same rows in one spelling: polars' large/view strings and pandas' plain strings
    become ``string``, metadata that does not describe the rows (a pandas index dump) goes,
    and the chunks are joined, so equal rows from any reader give equal Parquet bytes."""
    schema = pa.schema([f.with_type(_canonical_type(f.type)) for f in table.schema])
    if not schema.equals(table.schema):
        # Over 2 GiB of text in one column does not fit ``string``: keep the large types.
        with contextlib.suppress(pa.ArrowInvalid, pa.ArrowNotImplementedError):
            table = table.cast(schema)
    return table.replace_schema_metadata(None).combine_chunks()


def write_snapshot(table: pa.Table, artifacts: ArtifactStore, *,
                   scratch: str | None = None) -> Snapshot:
    """Write *table* as Parquet into the artifact store; returns its digest and size.

    The file is written to *scratch* (ideally on the artifact store's filesystem, so it can be
    moved in rather than copied) and handed to the store, which keeps it once per digest.
    """
    table = canonical(table)
    if scratch:
        os.makedirs(scratch, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix=".snapshot-", suffix=".parquet", dir=scratch)
    os.close(fd)
    try:
        pq.write_table(table, path, row_group_size=_ROW_GROUP, compression="zstd",
                       write_statistics=True, store_schema=True)
        hasher = blake3(max_threads=blake3.AUTO)
        hasher.update_mmap(path)
        digest = hasher.hexdigest()
        size = os.path.getsize(path)
        artifacts.adopt_file(path, digest=digest, size=size, link="auto")
    finally:
        if os.path.exists(path):
            os.unlink(path)
    return Snapshot(digest, size, table.num_rows, columns_of(table.schema))


def read_snapshot(artifacts: ArtifactStore, digest: str, *,
                  columns: list[str] | None = None) -> pa.Table:
    """The rows of a snapshot; the bytes are checked against the digest before use."""
    data = artifacts.get_bytes(digest)
    if blake3(data, max_threads=blake3.AUTO).hexdigest() != digest:
        from mlcycle.errors import StoreError

        raise StoreError(f"snapshot {digest} is corrupted: its content hash differs",
                         details={"digest": digest})
    return pq.read_table(pa.BufferReader(data), columns=columns)
