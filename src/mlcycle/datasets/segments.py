"""Segments: named slices of rows such as ``region = 'EU'`` or ``age >= 65``.

A segment is a boolean SQL expression over a frame's columns, parsed by polars' SQL front end
(``pl.sql_expr``), so that validation, monitoring and reports slice rows the same way and the
slicing stays vectorised. SQL compares with ``=``; because Python users type ``==`` by habit, a
``==`` outside string literals and quoted identifiers is rewritten to ``=`` before parsing (the
literal ``'a==b'`` keeps its two equals signs).

A row whose expression evaluates to null (``region = 'EU'`` on a null region) is not in the
segment: a slice should never depend on three-valued logic downstream.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from mlcycle.datasets.contracts import as_polars
from mlcycle.errors import InvalidInputError

__all__ = ["Segment", "parse_segments", "sql_expression"]


def _sql_equals(expr: str) -> str:
    """*expr* with every ``==`` outside quotes turned into SQL's ``=``.

    Single-quoted string literals (with ``''`` as an escaped quote) and double-quoted or
    backticked identifiers are copied verbatim, so a category value or a column name that
    contains ``==`` survives.
    """
    out: list[str] = []
    i, n = 0, len(expr)
    while i < n:
        ch = expr[i]
        if ch in "'\"`":
            # Copy the quoted run, including doubled quotes, up to its closing quote.
            j = i + 1
            while j < n:
                if expr[j] == ch:
                    if j + 1 < n and expr[j + 1] == ch:
                        j += 2
                        continue
                    break
                j += 1
            out.append(expr[i : j + 1])
            i = j + 1
        elif expr.startswith("==", i):
            out.append("=")
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def sql_expression(expr: str) -> pl.Expr:
    """*expr*, a SQL expression (``==`` accepted for ``=``), as a polars expression; raises
    what polars raises when it does not parse."""
    return pl.sql_expr(_sql_equals(expr))


@dataclass(frozen=True, slots=True)
class Segment:
    """A named boolean slice of rows: ``Segment("seniors", "age >= 65")``."""

    name: str
    expr: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidInputError(
                f"a segment needs a non-empty name, got {self.name!r}",
                details={"field": "segments", "segment": self.name},
            )
        if not isinstance(self.expr, str) or not self.expr.strip():
            raise InvalidInputError(
                f"segment {self.name!r}: expected a boolean expression such as "
                f"\"region = 'EU'\", got {self.expr!r}",
                details={"field": f"segments.{self.name}", "segment": self.name},
            )

    def expression(self, columns: Iterable[str] | None = None) -> pl.Expr:
        """The polars expression of this segment; with *columns*, also checks they exist.

        Raises ``InvalidInputError`` naming the segment for SQL that does not parse or a column
        not in *columns*.
        """
        try:
            parsed = sql_expression(self.expr)
        except Exception as exc:  # polars raises SQLSyntaxError/SQLInterfaceError/...
            raise InvalidInputError(
                f"segment {self.name!r}: cannot parse expression {self.expr!r}: {exc}",
                details={"field": f"segments.{self.name}", "segment": self.name,
                         "expr": self.expr},
            ) from exc
        if columns is not None:
            known = set(columns)
            for column in parsed.meta.root_names():
                if column not in known:
                    raise InvalidInputError(
                        f"segment {self.name!r}: unknown column {column!r} in {self.expr!r}; "
                        f"columns are {sorted(known)}",
                        details={"field": f"segments.{self.name}", "segment": self.name,
                                 "column": column},
                    )
        return parsed

    def mask_expr(self, schema: Mapping[str, pl.DataType]) -> pl.Expr:
        """The expression of :meth:`mask` (null as False), checked against *schema* without
        reading any data, for use inside a larger ``select``.

        Raises ``InvalidInputError`` naming the segment for an unknown column, a comparison
        polars cannot type (``age = 'x'`` on an integer column), or a non-boolean result.
        """
        expr = self.expression(schema.keys())
        try:
            dtype = pl.LazyFrame(schema=dict(schema)).select(expr.alias("m")).collect_schema()["m"]
        except pl.exceptions.PolarsError as exc:
            raise InvalidInputError(
                f"segment {self.name!r}: cannot evaluate {self.expr!r}: {exc}",
                details={"field": f"segments.{self.name}", "segment": self.name,
                         "expr": self.expr},
            ) from exc
        if dtype != pl.Boolean:
            raise InvalidInputError(
                f"segment {self.name!r}: expected a boolean expression, {self.expr!r} "
                f"gives {dtype}",
                details={"field": f"segments.{self.name}", "segment": self.name,
                         "expr": self.expr},
            )
        return expr.fill_null(False).alias(self.name)

    def mask(self, data: Any) -> pl.Series:
        """A boolean Series, True for the rows of *data* (polars, pandas or pyarrow) in this
        segment; a null result counts as False."""
        df = as_polars(data)
        expr = self.mask_expr(df.schema)
        try:
            return df.select(expr).to_series()
        except pl.exceptions.PolarsError as exc:  # e.g. a cast that fails on a value
            raise InvalidInputError(
                f"segment {self.name!r}: cannot evaluate {self.expr!r}: {exc}",
                details={"field": f"segments.{self.name}", "segment": self.name,
                         "expr": self.expr},
            ) from exc

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "expr": self.expr}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Segment:
        unknown = set(data) - {"name", "expr"}
        if unknown:
            raise InvalidInputError(
                f"segment: unknown keys {sorted(unknown)}; expected 'name' and 'expr'",
                details={"field": "segments", "keys": sorted(unknown)},
            )
        missing = {"name", "expr"} - set(data)
        if missing:
            raise InvalidInputError(
                f"segment: missing {sorted(missing)}; expected 'name' and 'expr'",
                details={"field": "segments", "keys": sorted(missing)},
            )
        return cls(name=data["name"], expr=data["expr"])


def parse_segments(
    segments: Mapping[str, str] | Iterable[Segment | Mapping[str, Any]] | None,
) -> tuple[Segment, ...]:
    """Segments from ``{"eu": "region = 'EU'"}``, a list of ``{"name", "expr"}`` dicts, or
    ``Segment`` objects (mixed is fine). Names must be unique: they key the report.

    >>> parse_segments({"seniors": "age >= 65"})
    (Segment(name='seniors', expr='age >= 65'),)
    """
    if segments is None:
        return ()
    if isinstance(segments, Mapping):
        parsed = [Segment(name=str(name), expr=expr) for name, expr in segments.items()]
    elif isinstance(segments, str | bytes):
        raise InvalidInputError(
            "segments: expected a mapping of name to expression or a list of segments, "
            f"got the string {segments!r}",
            details={"field": "segments"},
        )
    else:
        parsed = []
        for item in segments:
            if isinstance(item, Segment):
                parsed.append(item)
            elif isinstance(item, Mapping):
                parsed.append(Segment.from_dict(item))
            else:
                raise InvalidInputError(
                    f"segments: expected a Segment or a {{'name', 'expr'}} mapping, got {item!r}",
                    details={"field": "segments"},
                )
    seen: set[str] = set()
    for seg in parsed:
        if seg.name in seen:
            raise InvalidInputError(
                f"segments: the name {seg.name!r} is used twice",
                details={"field": "segments", "segment": seg.name},
            )
        seen.add(seg.name)
    # Parse every expression now, so a typo fails before any data is read.
    for seg in parsed:
        seg.expression()
    return tuple(parsed)
