"""Wire shapes of the two protocols, as plain dicts and lists (no pydantic on the hot path).

Requests become a mapping of column names to lists (what ``PyFuncModel.predict`` takes) or, for a
model whose signature is one tensor, a numpy array; predictions become JSON-ready lists.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from mlcycle.errors import InvalidInputError
from mlcycle.models import ColumnSpec, Signature, TensorSpec

__all__ = [
    "as_list",
    "first_bad_row",
    "metadata",
    "parse_predict",
    "parse_v2",
    "v2_datatype",
    "v2_output",
]

_V2_TYPES = {
    "bool": "BOOL",
    "int8": "INT8", "int16": "INT16", "int32": "INT32", "int64": "INT64",
    "uint8": "UINT8", "uint16": "UINT16", "uint32": "UINT32", "uint64": "UINT64",
    "float16": "FP16", "float32": "FP32", "float64": "FP64",
}


def v2_datatype(type_name: str) -> str:
    """The Open Inference Protocol datatype of a signature type (text and the rest: ``BYTES``)."""
    return _V2_TYPES.get(type_name, "BYTES")


def _invalid(message: str, field: str) -> InvalidInputError:
    return InvalidInputError(message, details={"field": field})


def parse_predict(body: Any, signature: Signature | None) -> Any:
    """``[{...}, ...]`` (records) or ``{"columns": [...], "data": [[...]]}`` as model input."""
    if isinstance(body, list):
        if not all(isinstance(row, Mapping) for row in body):
            raise _invalid("body: records must be JSON objects, one per row", "body")
        uniform = _uniform_records(body)
        if uniform is not None:
            return uniform
        names = list(dict.fromkeys(k for row in body for k in row))
        return {n: [row.get(n) for row in body] for n in names}
    if isinstance(body, Mapping) and "data" in body:
        data = body["data"]
        if not isinstance(data, list) or not all(isinstance(r, list) for r in data):
            raise _invalid("data: a list of rows (lists) was expected", "data")
        columns = body.get("columns")
        if columns is None:
            if signature is not None and isinstance(signature.inputs, TensorSpec):
                return np.asarray(data)
            columns = signature.input_names if signature is not None else []
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise _invalid("columns: a list of column names was expected", "columns")
        for i, row in enumerate(data):
            if len(row) != len(columns):
                raise InvalidInputError(
                    f"data row {i}: expected {len(columns)} values (one per column), "
                    f"got {len(row)}", details={"field": "data", "row": i})
        return {c: [row[j] for row in data] for j, c in enumerate(columns)}
    raise _invalid('body: expected a list of records or {"columns": [...], "data": [[...]]}',
                   "body")


def _uniform_records(rows: list[Any]) -> dict[str, list[Any]] | None:
    """Records that all have the first one's keys, as columns, transposed in C (``itemgetter``
    and ``zip``): a 1,000-row request costs a fifth of the general path. ``None`` when the
    rows' keys differ (the general path fills the gaps with nulls)."""
    if not rows:
        return None
    names = list(rows[0])
    if not names or any(len(row) != len(names) for row in rows):
        return None
    try:
        values = list(map(operator.itemgetter(*names), rows))
    except KeyError:
        return None
    if len(names) == 1:
        return {names[0]: values}
    columns = zip(*values, strict=True)
    return {name: list(column) for name, column in zip(names, columns, strict=True)}


def parse_v2(body: Any, signature: Signature | None) -> tuple[Any, Any]:
    """A v2 inference request as (model input, request id)."""
    if not isinstance(body, Mapping) or not isinstance(body.get("inputs"), list):
        raise _invalid('inputs: expected {"inputs": [{"name", "shape", "datatype", "data"}]}',
                       "inputs")
    inputs = body["inputs"]
    columns: dict[str, list[Any]] = {}
    for i, tensor in enumerate(inputs):
        if not isinstance(tensor, Mapping) or not isinstance(tensor.get("name"), str):
            raise _invalid(f"inputs[{i}]: an object with a name was expected", f"inputs[{i}]")
        data = tensor.get("data")
        if not isinstance(data, list):
            raise _invalid(f"inputs[{i}].data: a list was expected", tensor["name"])
        if signature is not None and isinstance(signature.inputs, TensorSpec):
            array = np.asarray(data)
            shape = tensor.get("shape")
            if isinstance(shape, list) and shape:
                try:
                    array = array.reshape(shape)
                except ValueError as exc:
                    raise _invalid(f"inputs[{i}].shape: {exc}", tensor["name"]) from exc
            return array, body.get("id")
        columns[tensor["name"]] = _flat(data)
    return columns, body.get("id")


def _flat(data: list[Any]) -> list[Any]:
    """A column given as ``[[1], [2]]`` (shape ``[n, 1]``) read as ``[1, 2]``."""
    if data and all(isinstance(v, list) and len(v) == 1 for v in data):
        return [v[0] for v in data]
    return data


def as_list(output: Any) -> list[Any]:
    """A prediction (numpy, pandas, polars, a list) as JSON-ready rows (a list as it is)."""
    if type(output) is list:
        return output
    if isinstance(output, pd.DataFrame):
        return output.to_numpy().tolist()
    if isinstance(output, pd.Series):
        return output.to_list()
    if hasattr(output, "to_numpy"):  # polars, torch
        output = output.to_numpy()
    if isinstance(output, np.ndarray):
        return output.tolist()
    return list(output)


def v2_output(name: str, output: Any) -> dict[str, Any]:
    """One v2 output tensor: flat data in row-major order with its shape."""
    array = np.asarray(output.to_numpy() if hasattr(output, "to_numpy") else output)
    kind = array.dtype.name if array.dtype.kind in "biuf" else "string"
    return {"name": name, "shape": list(array.shape), "datatype": v2_datatype(kind),
            "data": array.reshape(-1).tolist()}


def metadata(name: str, version: str, flavor: str, signature: Signature | None) -> dict[str, Any]:
    """``GET /v2/models/{name}``: what the model takes and gives."""
    return {
        "name": name,
        "versions": [version],
        "platform": flavor,
        "inputs": _tensors(signature.inputs if signature else None),
        "outputs": _tensors(signature.outputs if signature else None),
    }


def _tensors(spec: tuple[ColumnSpec, ...] | TensorSpec | None) -> list[dict[str, Any]]:
    if spec is None:
        return []
    if isinstance(spec, TensorSpec):
        return [{"name": "input", "datatype": v2_datatype(spec.dtype), "shape": list(spec.shape)}]
    return [{"name": c.name, "datatype": v2_datatype(c.type), "shape": [-1]} for c in spec]


def first_bad_row(values: Any, expected: str) -> int | None:
    """The first row of a request column whose value a column of type *expected* refuses, when
    the request came as JSON lists (``None`` when no single row is to blame)."""
    if not isinstance(values, list):
        return None
    numeric = expected in _V2_TYPES
    for i, value in enumerate(values):
        if value is None:
            if expected == "no nulls":
                return i
            continue
        if numeric and (isinstance(value, str | list | dict)
                        or (isinstance(value, float) and not expected.startswith("float"))):
            return i
        if expected in ("string", "category") and not isinstance(value, str):
            return i
    return None
