"""How step outputs become bytes in the content-addressed artifact store, and back.

========================  ===============================================================
format                    used for
========================  ===============================================================
``parquet/pandas``        a pandas DataFrame
``parquet/polars``        a polars DataFrame
``parquet/arrow``         a pyarrow Table
``file/<name>``           a ``pathlib.Path`` to a file: its bytes; read back as a path to a
                          read-only copy named ``<name>`` (extensions survive)
``pickle``                anything else, with cloudpickle (protocol 5)
========================  ===============================================================

Frames go to Parquet rather than pickle so that they can be read by other tools and do not
depend on the library versions that wrote them. Equal outputs give equal digests where the
format is deterministic (Parquet, files, pickles of plain data); a pickled ``set`` of strings
can differ between processes (string hashing is randomised), which only costs cache hits
downstream, never correctness.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from pathlib import Path, PurePath
from typing import Any

from mlcycle.entities import StepOutput
from mlcycle.errors import InvalidInputError, PipelineError
from mlcycle.store.base import ArtifactStore

__all__ = ["dump", "load"]


def _is(value: Any, module: str, cls: str) -> bool:
    # Never import a library just to ask; and another thread may be importing it right now
    # (a partly initialised module has no class yet, and then the value cannot be one).
    kind = getattr(sys.modules.get(module), cls, None)
    return isinstance(kind, type) and isinstance(value, kind)


def dump(value: Any, name: str, artifacts: ArtifactStore) -> StepOutput:
    """Store *value* as the output *name*; returns its record (digest, format, size)."""
    if isinstance(value, PurePath):
        path = Path(value)
        if not path.is_file():
            raise InvalidInputError(
                f"output {name!r}: {str(path)!r} is not a file (a step may return a path to "
                "a file; return a folder as a tar or zip file)", details={"field": name})
        digest, size = artifacts.put_file(str(path))
        return StepOutput(name, digest, f"file/{path.name}", size)
    if _is(value, "pandas", "DataFrame"):
        buf = io.BytesIO()
        value.to_parquet(buf)
        fmt, data = "parquet/pandas", buf.getvalue()
    elif _is(value, "polars", "DataFrame"):
        buf = io.BytesIO()
        value.write_parquet(buf)
        fmt, data = "parquet/polars", buf.getvalue()
    elif _is(value, "pyarrow", "Table"):
        import pyarrow.parquet as pq

        buf = io.BytesIO()
        pq.write_table(value, buf)
        fmt, data = "parquet/arrow", buf.getvalue()
    else:
        fmt, data = "pickle", _pickle(value, name)
    digest, size = artifacts.put_bytes(data)
    return StepOutput(name, digest, fmt, size)


def _pickle(value: Any, name: str) -> bytes:
    try:
        import cloudpickle
    except ImportError as exc:  # pragma: no cover - an install without the extra
        raise PipelineError(
            "pipelines need cloudpickle: pip install 'mlcycle[pipelines]'") from exc
    try:
        return bytes(cloudpickle.dumps(value, protocol=5))
    except Exception as exc:
        raise PipelineError(
            f"output {name!r}: a {type(value).__name__} cannot be pickled ({exc}); return "
            "plain data, a DataFrame, or a path to a file", details={"output": name}) from exc


def load(output: StepOutput, artifacts: ArtifactStore, cache_dir: str | os.PathLike[str]
         ) -> Any:
    """The value of a stored output (a file output is copied once into *cache_dir*)."""
    fmt = output.format
    if fmt.startswith("file/"):
        return _materialize(output, fmt.removeprefix("file/"), artifacts, Path(cache_dir))
    data = artifacts.get_bytes(output.digest)
    if fmt == "pickle":
        import cloudpickle

        return cloudpickle.loads(data)
    if fmt == "parquet/pandas":
        import pandas as pd

        return pd.read_parquet(io.BytesIO(data))
    if fmt == "parquet/polars":
        import polars as pl

        return pl.read_parquet(io.BytesIO(data))
    if fmt == "parquet/arrow":
        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(data))
    raise PipelineError(f"output {output.name!r} has an unknown format {fmt!r}; a newer "
                        "mlcycle may have written it", details={"format": fmt})


def _materialize(output: StepOutput, filename: str, artifacts: ArtifactStore,
                 cache_dir: Path) -> Path:
    folder = cache_dir / "pipelines" / output.digest
    dest = folder / filename
    if dest.is_file() and dest.stat().st_size == output.size:
        return dest
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".incoming-")
    os.close(fd)
    try:
        artifacts.materialize_file(output.digest, tmp)
        os.chmod(tmp, 0o444)  # shared by every step that reads it: nobody edits it in place
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest
