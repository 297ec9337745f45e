"""The input example saved with a model: Parquet for frames (types survive, nothing to
unpickle), ``.npy`` for arrays (read with ``allow_pickle=False``)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from mlcycle.errors import InvalidInputError
from mlcycle.models.signature import data_format

__all__ = ["read_example", "write_example"]

_STEM = "input_example"


def write_example(data: Any, directory: Path) -> str:
    """Write *data* into *directory*; returns the file's name."""
    fmt = data_format(data)
    try:
        if fmt == "numpy":
            name = f"{_STEM}.npy"
            np.save(directory / name, np.asarray(data), allow_pickle=False)
        elif fmt == "polars":
            name = f"{_STEM}.parquet"
            frame = data.to_frame() if isinstance(data, pl.Series) else data
            frame.write_parquet(directory / name)
        else:
            name = f"{_STEM}.parquet"
            frame = data.to_frame() if isinstance(data, pd.Series) else data
            frame.rename(columns=str).to_parquet(directory / name, index=False)
    except (ValueError, TypeError, pl.exceptions.PolarsError, ImportError) as exc:
        raise InvalidInputError(
            f"input_example cannot be stored ({fmt}): {str(exc).splitlines()[0]}",
            details={"field": "input_example"},
        ) from exc
    return name


def read_example(data: bytes, name: str, fmt: str | None) -> Any:
    """The example from its verified bytes, in the format it was saved from."""
    if name.endswith(".npy"):
        return np.load(io.BytesIO(data), allow_pickle=False)
    if fmt == "polars":
        return pl.read_parquet(io.BytesIO(data))
    return pd.read_parquet(io.BytesIO(data))
