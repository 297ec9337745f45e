"""What a model takes and gives: its signature, inferred from an input example.

A model trained on a frame is described column by column (``ColumnSpec``: name, type, nullable);
a model that takes an array (a network, most ONNX graphs) by one ``TensorSpec`` (dtype and shape,
``-1`` for "any size", the batch dimension always). ``Signature.validate`` checks input against
the inputs before the model sees it and converts it to what the model was trained on:

- columns are picked by name and put in the signature's order (extra columns are dropped, so a
  request may carry ids and timestamps along);
- a type converts only when nothing is lost: an integer to a wider integer or to a float, a
  float64 to a float32 (networks train in float32 and frames arrive in float64), a string to a
  category and back. A float never becomes an integer, a string never a number;
- a column that had no nulls in the example is required to have none (pass an explicit
  ``Signature`` to allow them);
- the data reaches the model in the format of the example (pandas, polars or numpy), whatever
  format the caller used.

Types are the names below (``TYPES``), the same whatever library the data came from, so a
signature saved from a pandas example validates a polars frame.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
import polars as pl

from mlcycle.errors import InvalidInputError, SignatureMismatch

__all__ = [
    "TYPES",
    "ColumnSpec",
    "InputFormat",
    "Signature",
    "TensorSpec",
    "data_format",
    "infer_signature",
    "infer_spec",
]

InputFormat = Literal["pandas", "polars", "numpy"]

_INTS = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
_FLOATS = ("float16", "float32", "float64")
TYPES: tuple[str, ...] = (
    "bool", *_INTS, *_FLOATS, "string", "category", "binary", "datetime", "date", "duration",
    "object",
)
_FORMATS: tuple[str, ...] = ("pandas", "polars", "numpy")


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One input or output column. ``nullable=False``: a null in it is refused."""

    name: str
    type: str
    nullable: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "nullable": self.nullable}


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """An array input or output: numpy dtype name and shape (``-1``: any size)."""

    dtype: str
    shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "shape": list(self.shape)}


Spec = tuple[ColumnSpec, ...] | TensorSpec


@dataclass(frozen=True, slots=True)
class Signature:
    """Inputs (columns or one tensor), outputs (informative: not enforced) and the format the
    model consumes.

    >>> sig = Signature((ColumnSpec("age", "int64", False), ColumnSpec("city", "string")))
    >>> sig.validate(pd.DataFrame({"age": [31], "city": ["Oslo"], "id": [7]})).columns.tolist()
    ['age', 'city']
    """

    inputs: Spec
    outputs: Spec | None = None
    input_format: InputFormat | None = None

    def __post_init__(self) -> None:
        if isinstance(self.inputs, list):
            object.__setattr__(self, "inputs", tuple(self.inputs))
        if isinstance(self.outputs, list):
            object.__setattr__(self, "outputs", tuple(self.outputs))
        for where, spec in (("inputs", self.inputs), ("outputs", self.outputs)):
            _check_spec(spec, where)
        if self.input_format is None:
            fmt = "numpy" if isinstance(self.inputs, TensorSpec) else "pandas"
            object.__setattr__(self, "input_format", fmt)
        elif self.input_format not in _FORMATS:
            raise InvalidInputError(
                f"signature.input_format must be one of {', '.join(_FORMATS)}, "
                f"got {self.input_format!r}",
                details={"field": "signature.input_format"},
            )

    @property
    def input_names(self) -> list[str]:
        """The input columns' names; empty for a tensor input."""
        return [] if isinstance(self.inputs, TensorSpec) else [c.name for c in self.inputs]

    # --- validation ---------------------------------------------------------------------------

    def validate(self, data: Any) -> Any:
        """*data* checked against the inputs and converted for the model (see the module doc);
        raises ``SignatureMismatch`` naming the column, the expected and the received type."""
        if isinstance(self.inputs, TensorSpec):
            return _validate_tensor(self.inputs, data)
        fmt = self.input_format or "pandas"
        if isinstance(data, pd.Series):
            data = data.to_frame()
        if isinstance(data, pd.DataFrame):  # checked in pandas: no round trip through Arrow
            checked_pd = _validate_pandas(self.inputs, data)
            if fmt == "pandas":
                return checked_pd
            return checked_pd.to_numpy() if fmt == "numpy" else pl.from_pandas(checked_pd)
        if isinstance(data, Mapping) and fmt != "polars":
            fast = _numeric_columns(self.inputs, data, fmt)
            if fast is not None:
                return fast
        checked = _validate_polars(self.inputs, _as_frame(data, self.inputs))
        if fmt == "polars":
            return checked
        return checked.to_numpy() if fmt == "numpy" else _to_pandas(checked)

    # --- serialisation ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": _spec_to_dict(self.inputs),
            "outputs": None if self.outputs is None else _spec_to_dict(self.outputs),
            "input_format": self.input_format,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        """The inverse of ``to_dict``; malformed input names the field."""
        if not isinstance(data, Mapping) or "inputs" not in data:
            raise InvalidInputError(
                "signature: expected an object with 'inputs'", details={"field": "signature"}
            )
        outputs = data.get("outputs")
        return cls(
            inputs=_spec_from_dict(data["inputs"], "signature.inputs"),
            outputs=None if outputs is None else _spec_from_dict(outputs, "signature.outputs"),
            input_format=data.get("input_format"),
        )


# --- inference --------------------------------------------------------------------------------


def data_format(data: Any) -> InputFormat:
    """``"pandas"``, ``"polars"`` or ``"numpy"``: the kind of *data*, or an error naming it."""
    if isinstance(data, pd.DataFrame | pd.Series):
        return "pandas"
    if isinstance(data, pl.DataFrame | pl.Series):
        return "polars"
    if isinstance(data, np.ndarray):
        return "numpy"
    raise InvalidInputError(
        f"input_example: expected a pandas or polars DataFrame or a numpy array, "
        f"got {type(data).__name__}",
        details={"field": "input_example"},
    )


def infer_spec(data: Any, *, default_name: str = "prediction") -> Spec:
    """Columns for a frame or series, a tensor for an array (the first dimension, rows, is
    ``-1``); lists and scalars are read as arrays."""
    if isinstance(data, pd.Series):
        data = data.to_frame(name=data.name if data.name is not None else default_name)
    if isinstance(data, pl.Series):
        data = data.to_frame(name=data.name or default_name)
    if isinstance(data, pd.DataFrame):
        return tuple(
            ColumnSpec(str(name), _pandas_type(data[name]), bool(data[name].isna().any()))
            for name in data.columns
        )
    if isinstance(data, pl.DataFrame):
        return tuple(
            ColumnSpec(name, _polars_type(data[name]), _polars_nulls(data[name]) > 0)
            for name in data.columns
        )
    array = np.asarray(data)
    if array.dtype == object:
        raise InvalidInputError(
            "cannot infer a tensor type from an array of Python objects; pass a DataFrame "
            "or an explicit signature",
            details={"field": "input_example"},
        )
    return TensorSpec(_tensor_dtype(array.dtype), (-1, *array.shape[1:]) if array.ndim else ())


def _tensor_dtype(dtype: np.dtype[Any]) -> str:
    """A dtype name that ``np.dtype`` reads back: text of any length is ``str``/``bytes``."""
    if dtype.kind == "U":
        return "str"
    if dtype.kind == "S":
        return "bytes"
    return dtype.name


def infer_signature(input_example: Any, output: Any = None) -> Signature:
    """The signature of a model that took *input_example* and returned *output*.

    >>> infer_signature(pd.DataFrame({"x": [1.0, 2.0]}), np.array([0, 1])).inputs
    (ColumnSpec(name='x', type='float64', nullable=False),)
    """
    fmt = data_format(input_example)
    if isinstance(input_example, pd.Series | pl.Series):
        input_example = input_example.to_frame()
    if fmt == "numpy" and np.asarray(input_example).ndim == 0:
        raise InvalidInputError(
            "input_example: a scalar is not an example of a batch; give at least one row",
            details={"field": "input_example"},
        )
    return Signature(
        inputs=infer_spec(input_example),
        outputs=None if output is None else infer_spec(output),
        input_format=fmt,
    )


# --- types ------------------------------------------------------------------------------------


def _pandas_type(series: pd.Series) -> str:
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if isinstance(dtype, pd.StringDtype):
        return "string"
    if isinstance(dtype, pd.BooleanDtype):
        return "bool"
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "datetime"
    if isinstance(dtype, pd.ArrowDtype):
        return _arrow_type(dtype.pyarrow_dtype)
    if isinstance(dtype, pd.api.extensions.ExtensionDtype) and hasattr(dtype, "numpy_dtype"):
        return _numpy_type(np.dtype(dtype.numpy_dtype))  # Int64, Float32, …
    if pd.api.types.is_object_dtype(dtype):
        return _object_type(series.dropna())
    return _numpy_type(np.dtype(dtype))


def _object_type(values: pd.Series) -> str:
    if len(values) == 0:
        return "object"
    kinds = {type(v) for v in values}
    if kinds <= {str}:
        return "string"
    if kinds <= {bytes}:
        return "binary"
    return "object"


def _numpy_type(dtype: np.dtype[Any]) -> str:
    if dtype.kind == "b":
        return "bool"
    if dtype.kind in "iuf":
        return dtype.name
    if dtype.kind == "M":
        return "datetime"
    if dtype.kind == "m":
        return "duration"
    if dtype.kind == "U":
        return "string"
    if dtype.kind == "S":
        return "binary"
    return "object"


def _arrow_type(dtype: Any) -> str:
    import pyarrow as pa

    if pa.types.is_boolean(dtype):
        return "bool"
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype):
        return _numpy_type(np.dtype(dtype.to_pandas_dtype()))
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "string"
    if pa.types.is_dictionary(dtype):
        return "category"
    if pa.types.is_timestamp(dtype):
        return "datetime"
    if pa.types.is_date(dtype):
        return "date"
    if pa.types.is_duration(dtype):
        return "duration"
    if pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype):
        return "binary"
    return "object"


_POLARS_NAMES = {
    "Boolean": "bool", "Int8": "int8", "Int16": "int16", "Int32": "int32", "Int64": "int64",
    "UInt8": "uint8", "UInt16": "uint16", "UInt32": "uint32", "UInt64": "uint64",
    "Float32": "float32", "Float64": "float64", "String": "string", "Utf8": "string",
    "Categorical": "category", "Enum": "category", "Binary": "binary", "Datetime": "datetime",
    "Date": "date", "Duration": "duration",
}


def _polars_type(series: pl.Series) -> str:
    return _POLARS_NAMES.get(series.dtype.base_type().__name__, "object")


def _polars_nulls(series: pl.Series) -> int:
    nulls = series.null_count()
    if series.dtype.is_float():
        nulls += int(series.is_nan().sum() or 0)
    return nulls


def _kind(type_name: str) -> str:
    if type_name in _INTS:
        return "int"
    if type_name in _FLOATS:
        return "float"
    if type_name in ("string", "category"):
        return "text"
    return type_name


def _converts(got: str, expected: str) -> bool:
    """Whether a *got* column may feed an *expected* one without losing anything that a model
    trained on *expected* would have seen."""
    if got == expected:
        return True
    g, e = _kind(got), _kind(expected)
    if g == e == "int":
        return _int_fits(got, expected)
    if g == "int" and e == "float":
        return True
    if g == e:  # float widths; string and category
        return True
    return g == "bool" and e in ("int", "float")


def _bounds(series: pl.Series | pd.Series) -> tuple[Any, Any]:
    """A column's (min, max), ``(None, None)`` without values."""
    low, high = series.min(), series.max()
    return (None, None) if low is None or pd.isna(low) else (low, high)


def _values_fit(got: str, expected: str, bounds: Callable[[], tuple[Any, Any]]) -> bool:
    if not (_kind(got) == _kind(expected) == "int"):
        return False
    low, high = bounds()
    if low is None or high is None:  # no values: nothing that could not fit
        return True
    info = np.iinfo(np.dtype(expected))
    return bool(info.min <= int(low) and int(high) <= info.max)


def _int_fits(got: str, expected: str) -> bool:
    got_info, exp_info = np.iinfo(np.dtype(got)), np.iinfo(np.dtype(expected))
    return bool(exp_info.min <= got_info.min and got_info.max <= exp_info.max)


def _mismatch(column: str, expected: str, got: str, why: str = "") -> SignatureMismatch:
    tail = f" ({why})" if why else ""
    return SignatureMismatch(
        f"column {column!r}: expected {expected}, got {got}{tail}",
        details={"field": column, "expected": expected, "got": got},
    )


# --- columns ----------------------------------------------------------------------------------


def _as_frame(data: Any, inputs: Sequence[ColumnSpec]) -> pl.DataFrame:
    """Input other than pandas as a polars frame, the form its checks run on."""
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, pl.Series):
        return data.to_frame()
    if isinstance(data, Mapping):
        try:
            return pl.DataFrame(dict(data), strict=False)
        except Exception as exc:
            raise SignatureMismatch(
                f"input: a mapping of column names to lists was expected: {exc}",
                details={"field": "input"},
            ) from exc
    if isinstance(data, np.ndarray):
        return _array_as_frame(data, inputs)
    raise SignatureMismatch(
        f"input: expected a pandas or polars DataFrame, a numpy array or a mapping of columns, "
        f"got {type(data).__name__}",
        details={"field": "input", "expected": "DataFrame", "got": type(data).__name__},
    )


def _array_as_frame(array: np.ndarray, inputs: Sequence[ColumnSpec]) -> pl.DataFrame:
    """A 2-D array read as the signature's columns, by position."""
    if array.ndim != 2 or array.shape[1] != len(inputs):
        shape = "x".join(map(str, array.shape))
        raise SignatureMismatch(
            f"input: an array must have one column per input ({len(inputs)}: "
            f"{', '.join(c.name for c in inputs[:5])}{', …' if len(inputs) > 5 else ''}), "
            f"got shape {shape}",
            details={"field": "input", "expected": f"(n, {len(inputs)})", "got": shape},
        )
    return pl.DataFrame(
        {spec.name: array[:, i] for i, spec in enumerate(inputs)}, strict=False
    )


def _numeric_columns(inputs: Sequence[ColumnSpec], data: Mapping[str, Any],
                     fmt: str) -> pd.DataFrame | np.ndarray | None:
    """The common shape of a served request, checked without a polars frame: every input a
    list of plain numbers (no nulls) that its column takes as it is — floats for a float
    column, ints for an ``int64`` or float one. ``None`` for anything else (a missing column,
    nulls, text, a narrower int, mixed types), which the full path checks and explains.

    Serving calls ``predict`` once per request, so this is its cost per request: a numpy
    array per column and one block, instead of a polars frame and its round trip to pandas.
    """
    arrays: list[np.ndarray] = []
    for spec in inputs:
        values = data.get(spec.name)
        if not isinstance(values, list) or spec.type not in _FAST_TYPES:
            return None
        array = np.array(values)
        if array.ndim != 1 or array.dtype.kind not in _FAST_TYPES[spec.type] or (
                arrays and len(array) != len(arrays[0])):
            return None
        if array.dtype.kind == "f" and np.isnan(array).any():
            return None  # NaN counts as null: the full path decides and explains
        arrays.append(array.astype(spec.type, copy=False))
    if not arrays:
        return None
    names = _column_index(tuple(spec.name for spec in inputs))
    if len({a.dtype for a in arrays}) == 1:  # one block: what pandas and models read fastest
        matrix = np.column_stack(arrays)
        return matrix if fmt == "numpy" else pd.DataFrame(matrix, columns=names, copy=False)
    if fmt == "numpy":
        return None  # the full path picks the common type
    return pd.DataFrame(dict(zip(names, arrays, strict=True)), copy=False)


@functools.lru_cache(maxsize=64)
def _column_index(names: tuple[str, ...]) -> pd.Index:
    """The columns of a signature's frames, built once (pandas builds an Arrow-backed string
    index per frame otherwise: a third of the cost of a one-row frame)."""
    return pd.Index(names)


#: Signature types the fast path takes, with the numpy kinds of JSON lists it accepts for each
#: (``f`` floats, ``i`` ints); bools, texts and narrower ints take the full path.
_FAST_TYPES: dict[str, str] = {"float64": "fi", "float32": "fi", "int64": "i"}


def _check_present(inputs: Sequence[ColumnSpec], columns: Sequence[str]) -> None:
    present = set(columns)
    missing = [c.name for c in inputs if c.name not in present]
    if missing:
        raise SignatureMismatch(
            f"input is missing column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(m) for m in missing)} (expected {len(inputs)} columns: "
            f"{', '.join(c.name for c in inputs)})",
            details={"field": missing[0], "missing": missing},
        )


def _check_column(spec: ColumnSpec, got: str, nulls: int,
                  bounds: Callable[[], tuple[Any, Any]] | None = None) -> None:
    """*bounds* gives the column's (min, max): a wider int column (JSON integers arrive as
    int64) still feeds a narrower one when every value fits it."""
    if not _converts(got, spec.type) and not (
            bounds is not None and _values_fit(got, spec.type, bounds)):
        raise _mismatch(spec.name, spec.type, got)
    if nulls and not spec.nullable:
        raise SignatureMismatch(
            f"column {spec.name!r}: {nulls} null value{'s' if nulls > 1 else ''} in a "
            f"column that had none in the model's input example",
            details={"field": spec.name, "expected": "no nulls", "got": f"{nulls} nulls"},
        )


def _validate_polars(inputs: Sequence[ColumnSpec], frame: pl.DataFrame) -> pl.DataFrame:
    _check_present(inputs, frame.columns)
    out: list[pl.Series] = []
    for spec in inputs:
        series = frame[spec.name]
        got = _polars_type(series)
        if series.dtype == pl.Null:
            got = spec.type  # an all-null column carries no type: only nullability matters
        _check_column(spec, got, _polars_nulls(series), functools.partial(_bounds, series))
        out.append(_cast(series, spec, got))
    return pl.DataFrame(out)


def _validate_pandas(inputs: Sequence[ColumnSpec], frame: pd.DataFrame) -> pd.DataFrame:
    columns = [str(c) for c in frame.columns]
    _check_present(inputs, columns)
    if columns != list(frame.columns):
        frame = frame.rename(columns=str)
    out: dict[str, pd.Series] = {}
    for spec in inputs:
        series = frame[spec.name]
        if isinstance(series, pd.DataFrame):
            raise SignatureMismatch(
                f"column {spec.name!r} appears more than once in the input",
                details={"field": spec.name},
            )
        nulls = int(series.isna().sum())
        got = spec.type if nulls == len(series) and series.dtype == object else _pandas_type(series)
        _check_column(spec, got, nulls, functools.partial(_bounds, series))
        out[spec.name] = _cast_pandas(series, spec, got)
    return pd.DataFrame(out, index=frame.index)


def _cast_pandas(series: pd.Series, spec: ColumnSpec, got: str) -> pd.Series:
    if got == spec.type:
        return series
    try:
        if spec.type == "category":
            return series.astype("category")
        if spec.type == "string":
            return series.astype(object)
        if spec.type in _INTS or spec.type in _FLOATS or spec.type == "bool":
            if series.isna().any() and spec.type not in _FLOATS:
                return series  # a nullable integer column stays as it came
            return series.astype(spec.type)
    except (TypeError, ValueError) as exc:
        raise _mismatch(spec.name, spec.type, got, str(exc).splitlines()[0]) from exc
    return series


_POLARS_TYPES: dict[str, Any] = {
    "bool": pl.Boolean, "int8": pl.Int8, "int16": pl.Int16, "int32": pl.Int32,
    "int64": pl.Int64, "uint8": pl.UInt8, "uint16": pl.UInt16, "uint32": pl.UInt32,
    "uint64": pl.UInt64, "float32": pl.Float32, "float64": pl.Float64, "string": pl.String,
    "category": pl.Categorical,
}


def _cast(series: pl.Series, spec: ColumnSpec, got: str) -> pl.Series:
    if got == spec.type or spec.type not in _POLARS_TYPES:
        return series
    try:
        return series.cast(_POLARS_TYPES[spec.type])
    except Exception as exc:
        raise _mismatch(spec.name, spec.type, got, str(exc).splitlines()[0]) from exc


def _to_pandas(frame: pl.DataFrame) -> pd.DataFrame:
    """A polars frame as the plain pandas frame a model fitted on pandas saw: numpy dtypes,
    ``category`` for categoricals, floats with NaN for nulls in numeric columns."""
    out = frame.to_pandas()
    for name in frame.columns:
        dtype = frame[name].dtype
        if dtype == pl.Categorical and not isinstance(out[name].dtype, pd.CategoricalDtype):
            out[name] = out[name].astype("category")
    return out


# --- tensors ----------------------------------------------------------------------------------


def _validate_tensor(spec: TensorSpec, data: Any) -> np.ndarray:
    if isinstance(data, pd.DataFrame | pl.DataFrame):
        data = data.to_numpy()
    elif not isinstance(data, np.ndarray):
        try:
            data = np.asarray(data)
        except Exception as exc:
            raise SignatureMismatch(
                f"input: expected an array of {spec.dtype}, got {type(data).__name__}",
                details={"field": "input", "expected": spec.dtype, "got": type(data).__name__},
            ) from exc
    array = cast(np.ndarray, data)
    want = "x".join("n" if d == -1 else str(d) for d in spec.shape)
    got_shape = "x".join(map(str, array.shape))
    if array.ndim != len(spec.shape) or any(
        d not in (-1, g) for d, g in zip(spec.shape, array.shape, strict=True)
    ):
        raise SignatureMismatch(
            f"input: expected shape {want}, got {got_shape}",
            details={"field": "input", "expected": want, "got": got_shape},
        )
    got = _numpy_type(array.dtype)
    if not _converts(got, _numpy_type(np.dtype(spec.dtype))):
        raise SignatureMismatch(
            f"input: expected an array of {spec.dtype}, got {array.dtype.name}",
            details={"field": "input", "expected": spec.dtype, "got": array.dtype.name},
        )
    return array.astype(spec.dtype, copy=False)


# --- serialisation ----------------------------------------------------------------------------


def _spec_to_dict(spec: Spec) -> dict[str, Any]:
    if isinstance(spec, TensorSpec):
        return {"tensor": spec.to_dict()}
    return {"columns": [c.to_dict() for c in spec]}


def _spec_from_dict(data: Any, field: str) -> Spec:
    if isinstance(data, Mapping) and isinstance(data.get("tensor"), Mapping):
        tensor = data["tensor"]
        try:
            return TensorSpec(str(tensor["dtype"]), tuple(int(d) for d in tensor["shape"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"{field}.tensor: expected dtype and shape: {exc}", details={"field": field}
            ) from None
    if isinstance(data, Mapping) and isinstance(data.get("columns"), list):
        columns = []
        for i, col in enumerate(data["columns"]):
            if not isinstance(col, Mapping) or "name" not in col or "type" not in col:
                raise InvalidInputError(
                    f"{field}.columns[{i}]: expected an object with name and type",
                    details={"field": f"{field}.columns[{i}]"},
                )
            columns.append(
                ColumnSpec(str(col["name"]), str(col["type"]), bool(col.get("nullable", True)))
            )
        return tuple(columns)
    raise InvalidInputError(
        f"{field}: expected {{'columns': [...]}} or {{'tensor': {{...}}}}",
        details={"field": field},
    )


def _check_spec(spec: Any, where: str) -> None:
    if spec is None and where == "outputs":
        return
    if isinstance(spec, TensorSpec):
        try:
            np.dtype(spec.dtype)
        except TypeError:
            raise InvalidInputError(
                f"signature.{where}: unknown dtype {spec.dtype!r}",
                details={"field": f"signature.{where}"},
            ) from None
        return
    if not isinstance(spec, tuple) or not all(isinstance(c, ColumnSpec) for c in spec):
        raise InvalidInputError(
            f"signature.{where}: expected ColumnSpec items or a TensorSpec, "
            f"got {type(spec).__name__}",
            details={"field": f"signature.{where}"},
        )
    names = [c.name for c in spec]
    for i, column in enumerate(spec):
        if column.type not in TYPES:
            raise InvalidInputError(
                f"signature.{where}[{i}] ({column.name!r}): type must be one of "
                f"{', '.join(TYPES)}, got {column.type!r}",
                details={"field": f"signature.{where}[{i}].type"},
            )
        if names.index(column.name) != i:
            raise InvalidInputError(
                f"signature.{where}: column {column.name!r} appears twice",
                details={"field": f"signature.{where}[{i}].name"},
            )
