"""Every kind of source against the real thing: files on disk and in an fsspec filesystem,
SQLite and the PostgreSQL server, a JSON API served over HTTP on 127.0.0.1, in-memory frames."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import fsspec
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, text

from mlcycle.datasets.sources import (
    FileSource,
    FrameSource,
    HttpSource,
    SqlSource,
    _mask_url,
    as_source,
)
from mlcycle.errors import InvalidInputError, SourceError

ROWS = [{"id": i, "city": ["Oslo", "Lima", "Pune"][i % 3], "amount": i * 1.5} for i in range(25)]


def _csv(path: Path, rows: list[dict] = ROWS) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


# --- files ---------------------------------------------------------------------------------


def test_csv_parquet_and_jsonl_read_the_same_rows(tmp_path: Path) -> None:
    frame = pd.DataFrame(ROWS)
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.to_parquet(tmp_path / "a.parquet", index=False)
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS))
    tables = [FileSource(tmp_path / f"a.{ext}").read() for ext in ("csv", "parquet", "jsonl")]
    for table in tables:
        assert table.num_rows == 25
        assert table.column("city").to_pylist() == [r["city"] for r in ROWS]
        assert table.column("amount").to_pylist() == [r["amount"] for r in ROWS]


def test_a_glob_of_many_files_is_read_in_path_order(tmp_path: Path) -> None:
    for part in range(5):
        _csv(tmp_path / f"part-{part}.csv", ROWS[part * 5:(part + 1) * 5])
    (tmp_path / "notes.txt.bak").write_text("ignored")
    table = FileSource(str(tmp_path / "part-*.csv")).read()
    assert table.column("id").to_pylist() == list(range(25))
    folder = FileSource(tmp_path).read()  # a folder: every file of a known format in it
    assert folder.num_rows == 25


def test_compressed_csv_and_progress_reports_bytes(tmp_path: Path) -> None:
    path = tmp_path / "a.csv.gz"
    with gzip.open(path, "wt") as fh:
        pd.DataFrame(ROWS).to_csv(fh, index=False)
    seen: list[tuple[int, int | None]] = []
    table = FileSource(path).read(progress=lambda done, total: seen.append((done, total)))
    assert table.num_rows == 25
    assert seen and seen[-1][0] == seen[-1][1] == path.stat().st_size


def test_an_fsspec_url_is_read_like_a_local_path() -> None:
    fs = fsspec.filesystem("memory")
    with fs.open("/src/x.parquet", "wb") as fh:
        pq.write_table(pa.Table.from_pylist(ROWS), fh)
    source = as_source("memory://src/x.parquet")
    assert isinstance(source, FileSource)
    assert source.read().num_rows == 25
    assert source.fingerprint() is None or len(source.fingerprint() or "") == 64


def test_fingerprint_changes_with_the_file_and_not_otherwise(tmp_path: Path) -> None:
    path = _csv(tmp_path / "a.csv")
    first = FileSource(path).fingerprint()
    assert first == FileSource(path).fingerprint()
    _csv(path, ROWS[:10])
    assert FileSource(path).fingerprint() != first
    # the reading options are part of it: another delimiter may read other rows
    assert FileSource(path, delimiter=";").fingerprint() != FileSource(path).fingerprint()


def test_a_malformed_csv_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("a,b,c\n1,2,3\n4,5,6\n7,8,9,10\n")
    with pytest.raises(SourceError) as err:
        FileSource(path).read()
    assert "bad.csv" in err.value.message
    assert "line 4" in err.value.message
    assert "expected 3 columns, got 4" in err.value.message


def test_a_value_of_the_wrong_type_names_column_and_line(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("id,qty\n1,5\n2,7\n3,x\n")
    with pytest.raises(SourceError) as err:
        FileSource(path, column_types={"qty": "int64"}).read()
    assert "orders.csv" in err.value.message
    assert "'qty'" in err.value.message and "line 4" in err.value.message
    assert "'x'" in err.value.message


def test_bad_json_lines_are_named(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"a": 1}\n{"a": 2\n')
    with pytest.raises(SourceError, match=r"events.jsonl: line 2: not valid JSON"):
        FileSource(path).read()


@pytest.mark.parametrize("content", ["", "a,b\n"])
def test_an_empty_file_is_an_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.csv"
    path.write_text(content)
    with pytest.raises(SourceError, match="empty"):
        FileSource(path).read()


def test_missing_paths_and_unknown_formats(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        FileSource(tmp_path / "nope.csv").read()
    with pytest.raises(SourceError, match="no files match"):
        FileSource(str(tmp_path / "*.csv")).read()
    (tmp_path / "data.bin").write_bytes(b"x")
    with pytest.raises(InvalidInputError, match="format"):
        FileSource(tmp_path / "data.bin").read()
    with pytest.raises(InvalidInputError, match="format"):
        FileSource(tmp_path / "a.csv", format="xlsx")


def test_files_with_other_columns_are_named(tmp_path: Path) -> None:
    _csv(tmp_path / "p1.csv")
    pd.DataFrame([{"id": 1, "town": "Oslo"}]).to_csv(tmp_path / "p2.csv", index=False)
    with pytest.raises(SourceError, match=r"p2.csv: columns differ"):
        FileSource(str(tmp_path / "p*.csv")).read()


# --- SQL -----------------------------------------------------------------------------------


def _fill(uri: str) -> None:
    engine = create_engine(uri)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE orders (id integer, city varchar(20), amount float)"))
        conn.execute(text("INSERT INTO orders VALUES (:id, :city, :amount)"), ROWS)
    engine.dispose()


def test_sql_query_on_sqlite(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'shop.db'}"
    _fill(uri)
    source = as_source(uri, query="SELECT * FROM orders WHERE amount >= :low",
                       params={"low": 15})
    assert isinstance(source, SqlSource)
    table = source.read()
    assert table.column("id").to_pylist() == list(range(10, 25))
    assert source.fingerprint() is None  # no change query: must read


@pytest.mark.postgres
def test_sql_query_on_postgresql_with_a_change_query(pg_uri: str) -> None:
    _fill(pg_uri)
    source = SqlSource(pg_uri, "SELECT id, city, amount FROM orders ORDER BY id",
                       change_query="SELECT count(*), max(id) FROM orders")
    table = source.read()
    assert table.num_rows == 25 and table.column("city").to_pylist()[:2] == ["Oslo", "Lima"]
    before = source.fingerprint()
    engine = create_engine(pg_uri)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO orders VALUES (99, 'Kyiv', 1.0)"))
    engine.dispose()
    assert source.fingerprint() != before
    assert "***" in source.describe()["url"] or "@" not in pg_uri.split("//")[1].split("/")[0]


def test_sql_errors_name_the_database_without_its_password(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as err:
        SqlSource("postgresql+psycopg://bob:hunter2@127.0.0.1:9/shop", "SELECT 1").read()
    assert "hunter2" not in err.value.message
    assert "bob:***@127.0.0.1:9" in err.value.message
    uri = f"sqlite:///{tmp_path / 'shop.db'}"
    _fill(uri)
    with pytest.raises(SourceError, match="no such table"):
        SqlSource(uri, "SELECT * FROM nope").read()
    with pytest.raises(SourceError, match="empty"):
        SqlSource(uri, "SELECT * FROM orders WHERE id < 0").read()
    with pytest.raises(InvalidInputError, match="query"):
        as_source(uri)


# --- HTTP ----------------------------------------------------------------------------------


class _Api(BaseHTTPRequestHandler):
    """25 records, 10 a page: ``/next`` links pages in the body, ``/pages`` takes ``?page=N``,
    ``/linked`` uses Link headers; ``/broken`` answers 500 and ``/html`` is not JSON."""

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {"Content-Type": "application/json"}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = parse_qs(url.query)
        if self.headers.get("Authorization") != "Bearer t0k":
            self._send(401, b'{"error": "no token"}')
            return
        page = int(query.get("page", ["1"])[0])
        chunk = ROWS[(page - 1) * 10: page * 10]
        if url.path == "/next":
            nxt = f"/next?page={page + 1}" if page * 10 < len(ROWS) else None
            self._send(200, json.dumps({"data": chunk, "links": {"next": nxt}}).encode())
        elif url.path == "/pages":
            self._send(200, json.dumps({"results": chunk}).encode())
        elif url.path == "/linked":
            headers = {"Content-Type": "application/json"}
            if page * 10 < len(ROWS):
                headers["Link"] = f'</linked?page={page + 1}>; rel="next"'
            self._send(200, json.dumps(chunk).encode(), headers)
        elif url.path == "/broken":
            self._send(500, b"oops")
        else:
            self._send(200, b"<html></html>", {"Content-Type": "text/html"})


@pytest.fixture
def api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


AUTH = {"Authorization": "Bearer t0k"}


def test_http_api_with_next_links_in_the_body(api: str) -> None:
    source = as_source(f"{api}/next", records="data", next="links.next", headers=AUTH)
    assert isinstance(source, HttpSource)
    pages: list[int] = []
    table = source.read(progress=lambda done, total: pages.append(done))
    assert table.column("id").to_pylist() == list(range(25))
    assert pages == [1, 2, 3]
    assert "t0k" not in json.dumps(source.describe())


def test_http_api_with_page_numbers_and_with_link_headers(api: str) -> None:
    paged = HttpSource(f"{api}/pages", records="results", page_param="page", headers=AUTH)
    assert paged.read().num_rows == 25
    linked = HttpSource(f"{api}/linked", headers=AUTH)
    assert linked.read().column("id").to_pylist() == list(range(25))


def test_http_errors_name_the_url(api: str) -> None:
    with pytest.raises(SourceError, match="HTTP 401"):
        HttpSource(f"{api}/next").read()
    with pytest.raises(SourceError, match="HTTP 500"):
        HttpSource(f"{api}/broken", headers=AUTH).read()
    with pytest.raises(SourceError, match="not JSON"):
        HttpSource(f"{api}/html", headers=AUTH).read()
    with pytest.raises(SourceError, match="expected a list of records at 'nope'"):
        HttpSource(f"{api}/next", records="nope", headers=AUTH).read()
    with pytest.raises(SourceError, match="cannot reach"):
        HttpSource("http://127.0.0.1:9/x?token=abc", timeout=2).read()
    with pytest.raises(SourceError, match="more than 2 pages"):
        HttpSource(f"{api}/next", records="data", next="links.next", headers=AUTH,
                   max_pages=2).read()


# --- frames --------------------------------------------------------------------------------


def test_pandas_polars_and_arrow_frames() -> None:
    for frame in (pd.DataFrame(ROWS), pl.DataFrame(ROWS), pa.Table.from_pylist(ROWS)):
        source = as_source(frame)
        assert isinstance(source, FrameSource)
        table = source.read()
        assert table.num_rows == 25 and table.column_names == ["id", "city", "amount"]
    with pytest.raises(SourceError, match="empty"):
        FrameSource(pd.DataFrame({"a": []})).read()
    with pytest.raises(InvalidInputError, match="expected a pandas or polars DataFrame"):
        FrameSource({"a": [1]}).read()


def test_secrets_are_masked_in_urls() -> None:
    assert _mask_url("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
    assert _mask_url("https://api.x/v1?token=abc&page=2") == "https://api.x/v1?token=***&page=2"
