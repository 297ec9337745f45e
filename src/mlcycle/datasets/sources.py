"""Where rows come from: files, SQL databases, HTTP JSON APIs and in-memory frames.

Every source reads into one ``pyarrow.Table`` through a well-kept reader (pyarrow's CSV, JSON and
Parquet readers over fsspec, polars' database reader over SQLAlchemy, httpx for APIs) and
describes itself without secrets. A source that can tell cheaply whether it changed returns a
``fingerprint()``; for files that is a hash of each file's path, size and modification time (or
ETag on object stores), which lets a re-ingest of an unchanged source skip reading it.

Errors name what went wrong where: ``data/part-3.csv line 18: expected 5 columns, got 6``,
``orders.csv column 'qty' line 7: cannot read 'x' as int64``, or the URL that could not be
reached (passwords masked). An empty source is an error: a dataset version has rows.

>>> as_source("data/*.csv")                                     # doctest: +SKIP
FileSource('data/*.csv', format='csv')
>>> as_source("postgresql+psycopg://u@db/x", query="SELECT * FROM orders")  # doctest: +SKIP
"""

from __future__ import annotations

import abc
import contextlib
import csv
import io
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar

from blake3 import blake3

from mlcycle.errors import InvalidInputError, SourceError

if TYPE_CHECKING:  # pyarrow loads when rows are read: a fingerprint check does not need it
    import pyarrow as pa

__all__ = [
    "FileSource",
    "FrameSource",
    "HttpSource",
    "Progress",
    "Source",
    "SqlSource",
    "as_source",
    "to_arrow",
]

#: ``progress(done, total)`` in bytes (files) or rows/pages (others); ``total`` may be None.
Progress = Callable[[int, int | None], None]

_FORMATS = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv",
    ".parquet": "parquet", ".pq": "parquet",
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
}
_COMPRESSED = (".gz", ".bz2", ".zst", ".xz")


class Source(abc.ABC):
    """Something rows can be read from."""

    kind: ClassVar[str]

    @abc.abstractmethod
    def read(self, progress: Progress | None = None) -> pa.Table:
        """All rows, as one Arrow table; ``SourceError`` when unreadable or empty."""

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """A JSON description for lineage, with no secrets in it."""

    def fingerprint(self) -> str | None:
        """A cheap digest that changes when the data may have; ``None``: unknown, read it."""
        return None


def _require_rows(table: pa.Table, where: str) -> pa.Table:
    if table.num_columns == 0 or table.num_rows == 0:
        raise SourceError(f"{where}: the source is empty (no rows)", details={"source": where})
    return table


# --- files -------------------------------------------------------------------------------


class FileSource(Source):
    """CSV, Parquet or JSON-lines files: one path, a folder, or a glob, local or any fsspec URL.

    ``format`` is taken from the extension when not given. ``csv`` options: ``delimiter``,
    ``column_types`` (``{"qty": "int64"}``), ``null_values``. Several files are concatenated in
    sorted path order and must share their columns.
    """

    kind = "file"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        format: str | None = None,
        delimiter: str | None = None,
        column_types: Mapping[str, str] | None = None,
        null_values: Sequence[str] | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.format = format
        self.delimiter = delimiter
        self.column_types = dict(column_types or {})
        self.null_values = list(null_values) if null_values is not None else None
        self.storage_options = dict(storage_options or {})
        if format is not None and format not in {"csv", "parquet", "jsonl"}:
            raise InvalidInputError(
                f"format: expected csv, parquet or jsonl, got {format!r}",
                details={"field": "format"},
            )

    def __repr__(self) -> str:
        return f"FileSource({self.path!r}, format={self.format!r})"

    # -- locating --------------------------------------------------------------------------
    def _fs(self) -> tuple[Any, list[str]]:
        import fsspec

        try:
            fs, root = fsspec.core.url_to_fs(self.path, **self.storage_options)
            if any(ch in root for ch in "*?["):
                paths = sorted(fs.glob(root))
            elif fs.isdir(root):
                paths = sorted(p for p in fs.find(root) if self._format_of(p, strict=False))
            elif fs.exists(root):
                paths = [root]
            else:
                raise SourceError(f"{self.path}: no such file or folder",
                                  details={"source": self.path})
        except SourceError:
            raise
        except Exception as exc:  # unreachable object store, bad credentials, …
            raise SourceError(f"{self.path}: cannot list the source: {exc}",
                              details={"source": self.path}) from exc
        if not paths:
            raise SourceError(f"{self.path}: no files match", details={"source": self.path})
        return fs, paths

    def _format_of(self, path: str, *, strict: bool = True) -> str | None:
        if self.format:
            return self.format
        name = path.lower()
        for ext in _COMPRESSED:
            name = name.removesuffix(ext)
        fmt = _FORMATS.get(Path(name).suffix)
        if fmt is None and strict:
            raise InvalidInputError(
                f"{path}: cannot tell the format from the extension; pass format='csv', "
                "'parquet' or 'jsonl'",
                details={"field": "format", "source": path},
            )
        return fmt

    def fingerprint(self) -> str | None:
        fs, paths = self._fs()
        hasher = blake3()
        hasher.update(repr(self._options()).encode())
        for p in paths:
            info = fs.info(p)
            stamp = (info.get("mtime") or info.get("LastModified") or info.get("ETag")
                     or info.get("etag") or info.get("created"))
            if stamp is None:
                return None  # no cheap change marker on this filesystem: read it
            if hasattr(stamp, "timestamp"):
                stamp = stamp.timestamp()
            ino = info.get("ino", "")
            hasher.update(f"{p}\0{info.get('size')}\0{stamp}\0{ino}\n".encode())
        return hasher.hexdigest()

    def _options(self) -> dict[str, Any]:
        return {"format": self.format, "delimiter": self.delimiter,
                "column_types": self.column_types, "null_values": self.null_values}

    def describe(self) -> dict[str, Any]:
        desc: dict[str, Any] = {"kind": self.kind, "path": _mask_url(self.path)}
        desc.update({k: v for k, v in self._options().items() if v})
        return desc

    # -- reading ---------------------------------------------------------------------------
    def read(self, progress: Progress | None = None) -> pa.Table:
        import pyarrow as pa

        fs, paths = self._fs()
        sizes = [int(fs.info(p).get("size") or 0) for p in paths]
        total = sum(sizes)
        done = 0
        tables: list[pa.Table] = []
        for path, size in zip(paths, sizes, strict=True):
            fmt = self._format_of(path)
            try:
                with fs.open(path, "rb", compression="infer") as raw:
                    fh: Any = _Counting(raw, done, total, progress) if progress else raw
                    table = self._read_one(fh, path, fmt)
            except (SourceError, InvalidInputError):
                raise
            except FileNotFoundError as exc:
                raise SourceError(f"{path}: no such file", details={"file": path}) from exc
            except (OSError, pa.ArrowException) as exc:
                raise SourceError(f"{path}: {exc}", details={"file": path}) from exc
            done += size
            if progress:
                progress(done, total)
            if tables and not table.schema.equals(tables[0].schema):
                table = _align(table, tables[0].schema, path, paths[0])
            tables.append(table)
        table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        return _require_rows(table, self.path)

    def _read_one(self, fh: IO[bytes], path: str, fmt: str | None) -> pa.Table:
        import pyarrow as pa

        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(fh)
        if fmt == "jsonl":
            import pyarrow.json as pj

            data = fh.read()
            try:
                return pj.read_json(io.BytesIO(data))
            except pa.ArrowInvalid as exc:
                raise SourceError(f"{path}: {_json_error(exc, data)}",
                                  details={"file": path}) from exc
        return self._read_csv(fh, path)

    def _read_csv(self, fh: IO[bytes], path: str) -> pa.Table:
        import pyarrow as pa
        import pyarrow.csv as pc

        data = fh.read()
        parse = pc.ParseOptions(delimiter=self.delimiter or ("\t" if path.endswith(".tsv")
                                                               else ","))
        convert = pc.ConvertOptions(
            column_types={k: pa.type_for_alias(v) for k, v in self.column_types.items()},
            **({"null_values": self.null_values} if self.null_values is not None else {}),
        )
        try:
            return pc.read_csv(io.BytesIO(data), parse_options=parse, convert_options=convert)
        except pa.ArrowInvalid as exc:
            raise SourceError(f"{path}: {_csv_error(exc, data, parse, convert)}",
                              details={"file": path}) from exc


class _Counting(io.RawIOBase):
    """A file wrapper that reports bytes read, for progress bars on long reads."""

    def __init__(self, raw: IO[bytes], base: int, total: int, progress: Progress) -> None:
        self._raw, self._base, self._total, self._progress = raw, base, total, progress
        self._read = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self._raw.read(size)
        self._read += len(chunk)
        self._progress(self._base + self._read, self._total)
        return chunk

    def readinto(self, buffer: Any) -> int:
        chunk = self.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def seekable(self) -> bool:
        return bool(self._raw.seekable())

    def seek(self, offset: int, whence: int = 0) -> int:
        return int(self._raw.seek(offset, whence))

    def tell(self) -> int:
        return int(self._raw.tell())


def _csv_error(exc: Exception, data: bytes, parse: Any, convert: Any) -> str:
    """Turn pyarrow's CSV error into one that names the line (and the column)."""
    import pyarrow as pa
    import pyarrow.csv as pc

    text = str(exc)
    if not data.strip():
        return "the file is empty"
    if "Expected" in text and "columns" in text:
        # A serial re-read numbers the rows: pyarrow counts lines from 1, header included.
        bad: list[Any] = []

        def handler(row: Any) -> str:
            bad.append(row)
            return "error"

        with contextlib.suppress(pa.ArrowInvalid):
            pc.read_csv(io.BytesIO(data), read_options=pc.ReadOptions(use_threads=False),
                        parse_options=pc.ParseOptions(delimiter=parse.delimiter,
                                                      invalid_row_handler=handler))
        if bad:
            row = bad[0]
            return (f"line {row.number}: expected {row.expected_columns} columns, "
                    f"got {row.actual_columns}: {row.text[:80]!r}")
        return text
    m = re.search(r"column #(\d+): CSV conversion error to (\S+): invalid value '(.*)'", text)
    if m:
        index, typ, value = int(m.group(1)), m.group(2), m.group(3)
        first = data.split(b"\n", 1)[0].decode("utf-8", "replace").rstrip("\r")
        header = next(csv.reader([first], delimiter=parse.delimiter), [])
        name = header[index] if index < len(header) else f"#{index}"
        try:
            col = pc.read_csv(io.BytesIO(data), parse_options=parse,
                              convert_options=pc.ConvertOptions(
                                  include_columns=[name], column_types={name: pa.string()})
                              ).column(0).to_pylist()
            line = col.index(value) + 2
            return f"column {name!r} line {line}: cannot read {value!r} as {typ}"
        except (pa.ArrowInvalid, ValueError, KeyError):
            return f"column {name!r}: cannot read {value!r} as {typ}"
    return text


def _json_error(exc: Exception, data: bytes) -> str:
    import orjson

    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as err:
            return f"line {number}: not valid JSON ({err})"
        if not isinstance(value, dict):
            return f"line {number}: expected a JSON object per line, got {type(value).__name__}"
    return str(exc)


def _align(table: pa.Table, schema: pa.Schema, path: str, first: str) -> pa.Table:
    """Cast a file's table to the first file's schema, or say which column differs."""
    import pyarrow as pa

    missing = set(schema.names) ^ set(table.schema.names)
    if missing:
        raise SourceError(
            f"{path}: columns differ from {first}: {', '.join(sorted(missing))}",
            details={"file": path, "columns": sorted(missing)},
        )
    try:
        return table.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SourceError(f"{path}: column types differ from {first}: {exc}",
                          details={"file": path}) from exc


# --- SQL ---------------------------------------------------------------------------------


class SqlSource(Source):
    """A query through a SQLAlchemy URL. ``change_query`` (e.g. ``SELECT max(updated_at),
    count(*) FROM orders``) makes re-ingests cheap: when its result is unchanged, the query is
    not run again."""

    kind = "sql"

    def __init__(self, url: str, query: str, *, params: Mapping[str, Any] | None = None,
                 change_query: str | None = None) -> None:
        if not query or not query.strip():
            raise InvalidInputError("query: a SQL source needs a query",
                                    details={"field": "query"})
        self.url, self.query = url, query
        self.params = dict(params or {})
        self.change_query = change_query

    def __repr__(self) -> str:
        return f"SqlSource({_mask_url(self.url)!r}, {self.query!r})"

    def describe(self) -> dict[str, Any]:
        desc: dict[str, Any] = {"kind": self.kind, "url": _mask_url(self.url),
                                "query": self.query}
        if self.params:
            desc["params"] = {k: str(v) for k, v in self.params.items()}
        return desc

    def _engine(self) -> Any:
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        try:
            url = make_url(self.url)
        except Exception as exc:
            raise InvalidInputError(f"url: not a SQLAlchemy URL: {_mask_url(self.url)!r}",
                                    details={"field": "url"}) from exc
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        return create_engine(url, pool_pre_ping=False)

    def _run(self, query: str) -> Any:
        from sqlalchemy import text
        from sqlalchemy.exc import SQLAlchemyError

        engine = self._engine()
        try:
            with engine.connect() as conn:
                result = conn.execute(text(query), self.params)
                return list(result.keys()), result.fetchall()
        except SQLAlchemyError as exc:
            reason = getattr(exc, "orig", None) or exc
            raise SourceError(f"{_mask_url(self.url)}: {str(reason).strip().splitlines()[0]}",
                              details={"source": _mask_url(self.url)}) from exc
        finally:
            engine.dispose()

    def fingerprint(self) -> str | None:
        if not self.change_query:
            return None
        names, rows = self._run(self.change_query)
        return blake3(repr((self.describe(), names, rows)).encode()).hexdigest()

    def read(self, progress: Progress | None = None) -> pa.Table:
        import polars as pl
        from sqlalchemy import text
        from sqlalchemy.exc import SQLAlchemyError

        engine = self._engine()
        try:
            with engine.connect() as conn:
                frame = pl.read_database(text(self.query), connection=conn,
                                         execute_options={"parameters": self.params}
                                         if self.params else None)
        except SQLAlchemyError as exc:
            reason = getattr(exc, "orig", None) or exc
            raise SourceError(f"{_mask_url(self.url)}: {str(reason).strip().splitlines()[0]}",
                              details={"source": _mask_url(self.url)}) from exc
        finally:
            engine.dispose()
        if progress:
            progress(frame.height, frame.height)
        return _require_rows(frame.to_arrow(), f"{_mask_url(self.url)} ({self.query})")


# --- HTTP --------------------------------------------------------------------------------


class HttpSource(Source):
    """Records from a JSON API, following pagination.

    - ``records``: where the list of records sits in each response (``"data"``,
      ``"results.items"``); the whole body when it is a list.
    - ``next``: the key path of the next page's URL in the body (``"next"``, ``"links.next"``);
      a ``Link: <…>; rel="next"`` header works too.
    - ``page_param``: page-number pagination instead: ``?page=1, 2, …`` until a page is empty.
    ``max_pages`` bounds the loop either way.
    """

    kind = "http"

    def __init__(
        self,
        url: str,
        *,
        records: str | None = None,
        next: str | None = None,
        page_param: str | None = None,
        first_page: int = 1,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        max_pages: int = 10_000,
        timeout: float = 30.0,
    ) -> None:
        self.url, self.records, self.next, self.page_param = url, records, next, page_param
        self.first_page, self.max_pages, self.timeout = first_page, max_pages, timeout
        self.params = dict(params or {})
        self.headers = dict(headers or {})

    def __repr__(self) -> str:
        return f"HttpSource({_mask_url(self.url)!r})"

    def describe(self) -> dict[str, Any]:
        desc: dict[str, Any] = {"kind": self.kind, "url": _mask_url(self.url)}
        for key in ("records", "next", "page_param"):
            if getattr(self, key):
                desc[key] = getattr(self, key)
        if self.params:
            desc["params"] = {k: str(v) for k, v in self.params.items()}
        return desc  # headers may carry tokens: never described

    def _get(self, client: Any, url: str, params: Mapping[str, Any]) -> Any:
        import httpx

        try:
            response = client.get(url, params=params or None)
        except httpx.HTTPError as exc:
            raise SourceError(f"{_mask_url(url)}: cannot reach the API: {exc}",
                              details={"url": _mask_url(url)}) from exc
        if response.status_code >= 400:
            raise SourceError(
                f"{_mask_url(str(response.url))}: HTTP {response.status_code}: "
                f"{response.text[:200]}", details={"url": _mask_url(url),
                                                   "status": response.status_code})
        try:
            return response, response.json()
        except ValueError as exc:
            raise SourceError(f"{_mask_url(str(response.url))}: the response is not JSON",
                              details={"url": _mask_url(url)}) from exc

    def _records(self, body: Any, url: str) -> list[dict[str, Any]]:
        value = _dig(body, self.records) if self.records else body
        if isinstance(value, dict) and self.records is None:
            for key in ("data", "results", "items", "records"):
                if isinstance(value.get(key), list):
                    value = value[key]
                    break
        if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
            where = f"'{self.records}'" if self.records else "the body"
            raise SourceError(f"{_mask_url(url)}: expected a list of records at {where}",
                              details={"url": _mask_url(url), "field": self.records})
        return value

    def read(self, progress: Progress | None = None) -> pa.Table:
        import httpx
        import pyarrow as pa

        rows: list[dict[str, Any]] = []
        url: str | None = self.url
        page = self.first_page
        with httpx.Client(timeout=self.timeout, headers=self.headers,
                          follow_redirects=True) as client:
            for count in range(1, self.max_pages + 1):
                params = dict(self.params)
                if self.page_param:
                    params[self.page_param] = page
                assert url is not None
                response, body = self._get(client, url, params)
                records = self._records(body, url)
                rows.extend(records)
                if progress:
                    progress(count, None)
                if self.page_param:
                    if not records:
                        break
                    page += 1
                    continue
                nxt = _dig(body, self.next) if self.next and isinstance(body, dict) else None
                if nxt is None:
                    nxt = response.links.get("next", {}).get("url")
                if not nxt:
                    break
                url = str(response.url.join(nxt))
                if not self.next and self.params:
                    self.params = {}  # a next link carries its own query
            else:
                raise SourceError(f"{_mask_url(self.url)}: more than {self.max_pages} pages; "
                                  "raise max_pages", details={"url": _mask_url(self.url)})
        try:
            table = pa.Table.from_pylist(rows)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise SourceError(f"{_mask_url(self.url)}: records do not form a table: {exc}",
                              details={"url": _mask_url(self.url)}) from exc
        return _require_rows(table, _mask_url(self.url))


def _dig(body: Any, path: str | None) -> Any:
    if path is None:
        return body
    value = body
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


# --- frames ------------------------------------------------------------------------------


class FrameSource(Source):
    """A pandas or polars DataFrame, or an Arrow table, already in memory."""

    kind = "frame"

    def __init__(self, frame: Any, *, description: str | None = None) -> None:
        self.frame = frame
        self.description = description

    def describe(self) -> dict[str, Any]:
        desc = {"kind": self.kind, "type": f"{type(self.frame).__module__.split('.')[0]}."
                                           f"{type(self.frame).__name__}"}
        if self.description:
            desc["description"] = self.description
        return desc

    def read(self, progress: Progress | None = None) -> pa.Table:
        return _require_rows(to_arrow(self.frame), "the frame")


def to_arrow(frame: Any) -> pa.Table:
    """A pandas/polars DataFrame or Arrow table/batches as an Arrow table (zero-copy where the
    libraries allow)."""
    import pyarrow as pa

    if isinstance(frame, pa.Table):
        return frame
    if isinstance(frame, pa.RecordBatch):
        return pa.Table.from_batches([frame])
    module = type(frame).__module__.split(".")[0]
    if module == "polars":
        return frame.to_arrow()
    if module == "pandas":
        return pa.Table.from_pandas(frame, preserve_index=False)
    if isinstance(frame, Iterable) and not isinstance(frame, str | bytes | Mapping):
        batches = list(frame)
        if batches and all(isinstance(b, pa.RecordBatch) for b in batches):
            return pa.Table.from_batches(batches)
    raise InvalidInputError(
        f"expected a pandas or polars DataFrame or an Arrow table, got {type(frame).__name__}",
        details={"field": "data"},
    )


# --- choosing ----------------------------------------------------------------------------

_SQL_SCHEMES = ("sqlite:", "postgresql:", "postgresql+", "mysql", "mssql", "oracle", "duckdb:")


def as_source(obj: Any, **options: Any) -> Source:
    """The source *obj* names: a Source, a frame, a file path/glob/URL, a SQLAlchemy URL (with
    ``query=``) or an http(s) JSON API URL. *options* go to the source's constructor."""
    if isinstance(obj, Source):
        if options:
            raise InvalidInputError("options apply to a path or URL, not to a Source object",
                                    details={"field": ", ".join(sorted(options))})
        return obj
    if isinstance(obj, str | os.PathLike):
        text = os.fspath(obj)
        if text.startswith(_SQL_SCHEMES):
            if "query" not in options:
                raise InvalidInputError(f"{_mask_url(text)} is a database: pass query='SELECT …'",
                                        details={"field": "query"})
            return SqlSource(text, **options)
        if text.startswith(("http://", "https://")):
            tail = text.split("?")[0].lower()
            if any(tail.endswith(ext) for ext in _FORMATS if ext != ".json"):
                return FileSource(text, **options)
            return HttpSource(text, **options)
        return FileSource(text, **options)
    return FrameSource(obj, **options)


def _mask_url(url: str) -> str:
    """A URL without its password or token-like query values (safe for logs and lineage)."""
    url = re.sub(r"(://[^/:@]+):[^@/]*@", r"\1:***@", url)
    return re.sub(r"(?i)([?&](?:token|key|apikey|api_key|password|secret|sig)=)[^&]*",
                  r"\1***", url)
