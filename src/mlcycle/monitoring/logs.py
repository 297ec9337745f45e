"""Reading a window of a deployment's prediction logs, joined with its feedback, through DuckDB.

Serving writes Parquet files (:mod:`mlcycle.serving.prediction_log`)::

    <uri>/predictions/deployment=<name>/date=YYYY-MM-DD/<worker>-<run>-<seq>.parquet
    <uri>/feedback/deployment=<name>/date=YYYY-MM-DD/<worker>-<run>-<seq>.parquet

The files of the days a window touches are listed with fsspec and handed to DuckDB as a list
parameter, so nothing in a path (a ``[`` in a folder name, a quote) is ever read as a glob or
as SQL, and days outside the window are never opened. The window's bounds, the model version and
the row limit are query parameters too; the SQL text holds no value from a caller. For an object
store (``s3://...``) the fsspec filesystem is registered with DuckDB, which then reads through it.

A feedback label joins its prediction row by ``(request_id, row)``; when a row got several
labels, the newest wins.

>>> logs = PredictionLogs("/srv/mlcycle/logs")                          # doctest: +SKIP
>>> frame = logs.read("churn", LogWindow(since=yesterday))              # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import polars as pl

from mlcycle.entities import check_deployment_name
from mlcycle.errors import InvalidInputError

__all__ = ["BASE_COLUMNS", "LogWindow", "PredictionLogs", "input_columns"]

#: The columns of every frame :meth:`PredictionLogs.read` returns, before the ``input_*`` ones.
BASE_COLUMNS = ("request_id", "row", "time", "version", "role", "status", "latency_ms",
                "output", "label")

_DATE_RE = re.compile(r"/date=(\d{4}-\d{2}-\d{2})/[^/]+\.parquet$")

_EMPTY_SCHEMA: dict[str, Any] = {
    "request_id": pl.String, "row": pl.Int64, "time": pl.Datetime("us", "UTC"),
    "version": pl.String, "role": pl.String, "status": pl.Int64, "latency_ms": pl.Float64,
    "output": pl.Float64, "label": pl.Float64,
}


@dataclass(frozen=True, slots=True)
class LogWindow:
    """Which predictions: logged in ``[since, until)`` (either open), and of those only the
    newest ``last`` rows when given."""

    since: datetime | None = None
    until: datetime | None = None
    last: int | None = None

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
                raise InvalidInputError(
                    f"{name}: expected a timezone-aware datetime, got {value!r}",
                    details={"field": name})
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise InvalidInputError(
                f"since ({self.since.isoformat()}) must be before until "
                f"({self.until.isoformat()})", details={"field": "since"})
        if self.last is not None and (isinstance(self.last, bool)
                                      or not isinstance(self.last, int) or self.last < 1):
            raise InvalidInputError(
                f"The 'last' parameter must be a number of predictions (an int >= 1). "
                f"Got {self.last!r} instead.", details={"field": "last"})

    @classmethod
    def ending(cls, until: datetime, seconds: int) -> LogWindow:
        """The *seconds* before *until*."""
        return cls(since=until - timedelta(seconds=seconds), until=until)


def input_columns(frame: pl.DataFrame) -> list[str]:
    """The logged input columns of *frame* (``input_age``, ...), in order."""
    return [c for c in frame.columns if c.startswith("input_")]


class PredictionLogs:
    """The prediction and feedback logs under *uri* (a folder or any fsspec URL)."""

    def __init__(self, uri: str, *, storage_options: Mapping[str, Any] | None = None) -> None:
        import fsspec

        self.uri = uri.rstrip("/")
        self.fs, self._root = fsspec.core.url_to_fs(self.uri, **dict(storage_options or {}))
        self._local = "file" in _protocols(self.fs)

    def files(self, kind: Literal["predictions", "feedback"], deployment: str, *,
              since: datetime | None = None, until: datetime | None = None) -> list[str]:
        """The Parquet files of *deployment* whose day overlaps ``[since, until)``, sorted."""
        check_deployment_name(deployment)
        base = f"{self._root}/{kind}/deployment={deployment}"
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return []
        first = since.astimezone(UTC).date() if since is not None else date.min
        last = until.astimezone(UTC).date() if until is not None else date.max
        out = []
        for path in found:
            m = _DATE_RE.search(path)
            if m and first <= date.fromisoformat(m.group(1)) <= last:
                out.append(path if self._local else self.fs.unstrip_protocol(path))
        return sorted(out)

    def read(self, deployment: str, window: LogWindow = LogWindow(), *,
             version: str | None = None) -> pl.DataFrame:
        """One row per logged prediction row in *window* (of model *version* when given),
        oldest first: :data:`BASE_COLUMNS` (``label`` null where no feedback came) and the
        ``input_*`` columns."""
        predictions = self.files("predictions", deployment, since=window.since,
                                 until=window.until)
        if not predictions:
            return pl.DataFrame(schema=_EMPTY_SCHEMA)
        # Feedback may come days after its prediction: every day from the window's start on.
        feedback = self.files("feedback", deployment, since=window.since)
        import duckdb

        con = duckdb.connect()
        try:
            if not self._local:
                con.register_filesystem(self.fs)
            labels = ("SELECT request_id, \"row\", arg_max(label, \"time\") AS label "
                      "FROM read_parquet($feedback, union_by_name=true) "
                      "GROUP BY request_id, \"row\"") if feedback else \
                "SELECT NULL::VARCHAR AS request_id, NULL::BIGINT AS \"row\", NULL AS label " \
                "WHERE false"
            # Constant SQL ({labels} is one of the two strings above): every value is a parameter.
            query = f"""
                WITH p AS (
                    SELECT request_id, "row", "time", version, role, status, latency_ms, output,
                           COLUMNS('^input_.*$')
                    FROM read_parquet($predictions, union_by_name=true)
                    WHERE ($since IS NULL OR "time" >= $since)
                      AND ($until IS NULL OR "time" < $until)
                      AND ($version IS NULL OR version = $version)
                    ORDER BY "time" DESC, request_id, "row"
                    LIMIT $last
                ), f AS ({labels})
                SELECT p.*, f.label
                FROM p LEFT JOIN f ON p.request_id = f.request_id AND p."row" = f."row"
                ORDER BY p."time", p.request_id, p."row"
            """
            params: dict[str, Any] = {
                "predictions": predictions, "since": window.since, "until": window.until,
                "version": version, "last": window.last,
            }
            if feedback:
                params["feedback"] = feedback
            table = con.sql(query, params=params).to_arrow_table()
        finally:
            con.close()
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        return frame.select(*BASE_COLUMNS, *input_columns(frame)).with_columns(
            pl.col("time").dt.convert_time_zone("UTC"))


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)
