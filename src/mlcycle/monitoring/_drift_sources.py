"""Where drift's two samples come from: a raw frame, or a stored ``DatasetProfile``.

Both answer the same three questions per column: what kind is it, what is its numeric
distribution (an ``Ecdf`` and the standard deviation), what are its category counts. A profile
answers from its sketches, so the training data behind it is never read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from datasketches import kll_doubles_sketch
from numpy.typing import NDArray

from mlcycle.datasets.profile import MAX_CANDIDATES, ColumnProfile, DatasetProfile
from mlcycle.errors import InvalidInputError
from mlcycle.monitoring._drift_stats import Ecdf

__all__ = ["Counts", "FrameSource", "Kind", "ProfileSource", "Source", "aligned_counts"]

Kind: TypeAlias = Literal["numeric", "categorical"]


@dataclass(frozen=True, slots=True)
class Counts:
    """Exact category counts of one column: ``levels`` (large strings) and their ``counts``."""

    levels: pa.Array
    counts: NDArray[np.int64]

    @property
    def total(self) -> int:
        return int(self.counts.sum())


def _arrow_kind(t: pa.DataType) -> Kind | None:
    if pa.types.is_dictionary(t):
        return _arrow_kind(t.value_type)
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "numeric"
    if (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_string_view(t)
        or pa.types.is_boolean(t)
    ):
        return "categorical"
    return None


def _level(value: Any) -> str:
    """A category as Arrow's cast to string spells it, so profile and frame levels match."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _as_table(frame: Any, role: str) -> pa.Table:
    if isinstance(frame, pa.Table):
        return frame
    if isinstance(frame, pa.RecordBatch):
        return pa.Table.from_batches([frame])
    module = type(frame).__module__.split(".")[0]
    if module == "polars" and hasattr(frame, "to_arrow"):
        return frame.to_arrow()
    if module == "pandas" and hasattr(frame, "columns"):
        try:
            return pa.Table.from_pandas(frame, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise InvalidInputError(
                f"the {role} DataFrame cannot be converted to Arrow: {exc}",
                details={"field": role},
            ) from exc
    raise InvalidInputError(
        f"{role} must be a pandas, polars or pyarrow frame, or a Parquet file"
        + (", or a DatasetProfile" if role == "reference" else "")
        + f"; got {type(frame).__module__}.{type(frame).__qualname__}",
        details={"field": role},
    )


def _open_parquet(path: str | os.PathLike[str], role: str) -> pq.ParquetFile:
    """The file, with its string columns read as dictionaries: Parquet keeps them encoded so,
    and a string per row would cost more memory than all the rest of the column."""
    try:
        schema = pq.read_schema(path)
        strings = [f.name for f in schema if pa.types.is_string(f.type)
                   or pa.types.is_large_string(f.type)]
        return pq.ParquetFile(path, read_dictionary=strings)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InvalidInputError(
            f"{role}: cannot read {os.fspath(path)!r} as Parquet: {exc}", details={"field": role}
        ) from exc


class FrameSource:
    """Columns of a pandas, polars or pyarrow frame, converted one at a time; or of a Parquet
    file (a path or a ``pyarrow.parquet.ParquetFile``), *read* one at a time, so memory holds
    one column per side rather than the whole file."""

    def __init__(self, frame: Any, role: str) -> None:
        self.role = role
        self.file: pq.ParquetFile | None = None
        if isinstance(frame, str | os.PathLike | pq.ParquetFile):
            self.file = frame if isinstance(frame, pq.ParquetFile) else _open_parquet(frame, role)
            self.schema = self.file.schema_arrow
        else:
            self.table = _as_table(frame, role)
            self.schema = self.table.schema
        self.names: list[str] = list(self.schema.names)

    def column(self, name: str) -> pa.ChunkedArray:
        if self.file is None:
            return self.table.column(name)
        return self.file.read(columns=[name]).column(0)

    def whole(self) -> pa.Table:
        """All columns at once (what a model or a classifier needs)."""
        return self.table if self.file is None else self.file.read()

    def kind(self, name: str) -> Kind | None:
        return _arrow_kind(self.schema.field(name).type)

    def unusable(self, name: str) -> str | None:
        """Why the column has no drift test, or ``None`` when it has one."""
        if self.kind(name) is None:
            return f"type {self.type_name(name)} has no drift test"
        return None

    def type_name(self, name: str) -> str:
        return str(self.schema.field(name).type)

    def numeric(self, name: str) -> tuple[Ecdf, float]:
        """The ECDF of the column's finite values (nulls, NaN and ±inf left out), its std."""
        column = self.column(name)
        if pa.types.is_decimal(column.type) or pa.types.is_dictionary(column.type):
            column = column.cast(pa.float64())
        parts = [c.to_numpy(zero_copy_only=False) for c in column.chunks]
        x = parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else np.empty(0)
        x = np.asarray(x, dtype=np.float64)
        finite = np.isfinite(x)
        if not finite.all():
            x = x[finite]
        ecdf = Ecdf.of_sample(x)
        return ecdf, ecdf.std() if len(ecdf) else float("nan")

    def categories(self, name: str) -> Counts:
        """Exact counts of the column's non-null values, each spelled as a string."""
        pairs = pc.value_counts(self.column(name))
        levels = pairs.field("values")
        counts = pairs.field("counts").to_numpy(zero_copy_only=False)
        if levels.null_count:
            valid = levels.is_valid()
            levels = levels.filter(valid)
            counts = counts[valid.to_numpy(zero_copy_only=False)]
        return Counts(levels.cast(pa.large_string()), counts.astype(np.int64, copy=False))


class ProfileSource:
    """Columns of a stored ``DatasetProfile``: KLL sketches and category summaries."""

    role = "reference"

    def __init__(self, profile: DatasetProfile) -> None:
        self.profile = profile
        self.names: list[str] = list(profile.columns)

    def _column(self, name: str) -> ColumnProfile:
        return self.profile.columns[name]

    def kind(self, name: str) -> Kind | None:
        column = self._column(name)
        if column.kind == "numeric":
            return "numeric"
        if column.kind in ("categorical", "boolean") and column.top_error == 0:
            return "categorical"
        return None

    def unusable(self, name: str) -> str | None:
        """Why the column has no drift test, or ``None`` when it has one."""
        column = self._column(name)
        if column.kind in ("categorical", "boolean") and column.top_error:
            # Misra-Gries counts are lower bounds, short by up to top_error each: a test on
            # them would call the bias drift.
            return (
                f"more than {MAX_CANDIDATES:,} categories: the profile keeps approximate "
                "counts only (a raw reference frame compares it)"
            )
        if self.kind(name) is None:
            return f"type {column.type} has no drift test"
        return None

    def type_name(self, name: str) -> str:
        return self._column(name).type

    def numeric(self, name: str) -> tuple[Ecdf, float]:
        column = self._column(name)
        if column.count == 0 or column.sketch.kll is None:
            return Ecdf(np.empty(0), None, 0), float("nan")
        ecdf = Ecdf.of_kll(kll_doubles_sketch.deserialize(column.sketch.kll))
        return ecdf, float(column.std) if column.std is not None else ecdf.std()

    def categories(self, name: str) -> Counts:
        column = self._column(name)
        if column.kind not in ("categorical", "boolean"):
            raise InvalidInputError(
                f"column {name!r} is {column.kind} in the reference profile, which keeps a "
                "quantile sketch, not category counts; compare it as numeric, or pass a raw "
                "reference frame to treat it as categorical",
                details={"field": name},
            )
        if column.top_error:
            raise InvalidInputError(
                f"column {name!r}: {self.unusable(name)}", details={"field": name}
            )
        pairs = column.sketch.candidates
        counts = np.fromiter((c for _, c in pairs), dtype=np.int64, count=len(pairs))
        levels = pa.array([_level(v) for v, _ in pairs], type=pa.large_string())
        return Counts(levels, counts)


Source: TypeAlias = FrameSource | ProfileSource


def aligned_counts(
    reference: Counts, current: Counts
) -> tuple[pa.Array, NDArray[np.float64], NDArray[np.float64]]:
    """Both samples' counts over one list of levels: ``(levels, ref, cur)``; a level unseen on
    one side counts zero there. Aligned by one dictionary encoding, not a Python loop."""
    encoded = pc.dictionary_encode(pa.concat_arrays([reference.levels, current.levels]))
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    size = len(encoded.dictionary)
    split = len(reference.levels)
    ref = np.bincount(codes[:split], weights=reference.counts, minlength=size)
    cur = np.bincount(codes[split:], weights=current.counts, minlength=size)
    return encoded.dictionary, ref.astype(np.float64), cur.astype(np.float64)
