"""Data contracts: what a table must look like, written down as a small, editable YAML file.

A :class:`Contract` lists its columns in order, each a :class:`ColumnRule` (a logical type,
nullability, a value range, allowed categories, uniqueness, a null-fraction ceiling), and bounds on
the row count. :func:`infer_contract` drafts one from a frame so nobody starts from a blank page;
a person then tightens it in YAML, and :func:`mlcycle.datasets.validation.validate` checks new
data against it.

Logical types, not storage types, are what a contract names: ``int`` accepts every integer width,
``float`` also accepts integers and decimals, ``string`` and ``category`` accept plain, categorical
and enum strings. A contract written against a pandas frame therefore still holds for the same
data read from Parquet by polars.

Float NaN counts as a missing value everywhere (the not-null check, the null fraction), and
never as an out-of-range value: that is how pandas treats it, and a NaN is a missing
measurement far more often than a real one.

Errors in a contract file name the line and the field::

    contract.yaml line 7: columns.age.min: expected a number, got 'abc'
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import polars as pl
import yaml

from mlcycle.errors import InvalidInputError
from mlcycle.specs import describe, did_you_mean, index_lines

__all__ = [
    "LOGICAL_TYPES",
    "ColumnRule",
    "Contract",
    "as_polars",
    "infer_contract",
    "is_compatible",
    "logical_type_of",
]

Bound = int | float | datetime | date
Category = str | int | bool

LOGICAL_TYPES: Final = ("int", "float", "string", "bool", "datetime", "date", "category")
_RANGED: Final = frozenset({"int", "float", "datetime", "date"})
_CATEGORICAL: Final = frozenset({"string", "category", "int"})
_RULE_KEYS: Final = ("type", "nullable", "unique", "min", "max", "allowed", "max_null_fraction")
_CONTRACT_KEYS: Final = (
    "name", "version", "min_rows", "max_rows", "allow_extra_columns", "columns",
)


# --------------------------------------------------------------------------- frames and types


def as_polars(data: Any) -> pl.DataFrame:
    """A polars DataFrame over *data*: polars (as is), pyarrow Table/RecordBatch, or pandas.

    Arrow input is wrapped without copying; pandas goes through ``pl.from_pandas``, which shares
    numeric buffers without nulls and converts the rest. The pandas index is dropped: rows are
    addressed by position everywhere in this package.
    """
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, pl.LazyFrame):
        return data.collect()
    try:
        import pyarrow as pa

        if isinstance(data, pa.Table | pa.RecordBatch):
            out = pl.from_arrow(data)
            assert isinstance(out, pl.DataFrame)
            return out
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        pass
    module = type(data).__module__
    if module.startswith("pandas") and type(data).__name__ == "DataFrame":
        try:
            return pl.from_pandas(data)
        except Exception as exc:  # mixed object columns, duplicate names, ...
            raise InvalidInputError(
                f"cannot read the pandas DataFrame: {exc}", details={"field": "data"}
            ) from exc
    raise InvalidInputError(
        "data must be a polars, pandas or pyarrow table, "
        f"got {type(data).__module__}.{type(data).__name__}",
        details={"field": "data"},
    )


def logical_type_of(dtype: pl.DataType) -> str | None:
    """The logical type a contract would give a column of *dtype*; None when it has none
    (nested, binary, duration, all-null)."""
    if dtype.is_integer():
        return "int"
    if dtype.is_float() or isinstance(dtype, pl.Decimal):
        return "float"
    if dtype == pl.String:
        return "string"
    if isinstance(dtype, pl.Categorical | pl.Enum):
        return "category"
    if dtype == pl.Boolean:
        return "bool"
    if isinstance(dtype, pl.Datetime):
        return "datetime"
    if dtype == pl.Date:
        return "date"
    return None


def is_compatible(logical: str, dtype: pl.DataType) -> bool:
    """Whether a column stored as *dtype* satisfies the logical type *logical*.

    An all-null column (polars' ``Null`` dtype, what an empty pandas object column becomes)
    fits every type: whether it may be null is the not-null check's business.
    """
    if dtype == pl.Null:
        return True
    actual = logical_type_of(dtype)
    if logical == actual:
        return True
    if logical == "float":
        return actual == "int"
    if logical in ("string", "category"):
        return actual in ("string", "category")
    return False


# --------------------------------------------------------------------------- rules


def _fmt_bound(value: Bound) -> int | float | str:
    return value.isoformat() if isinstance(value, date) else value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class ColumnRule:
    """What one column must satisfy.

    ``min``/``max`` are inclusive and apply to ``int``, ``float``, ``datetime`` and ``date``
    columns; ``allowed`` lists the permitted values of a ``string``, ``category`` or ``int``
    column (nulls are the not-null check's business); ``unique`` ignores nulls, as SQL does.
    """

    name: str
    type: str
    nullable: bool = True
    min: Bound | None = None
    max: Bound | None = None
    allowed: tuple[Category, ...] | None = None
    unique: bool = False
    max_null_fraction: float | None = None

    def __post_init__(self) -> None:
        at = f"columns.{self.name}"
        if not isinstance(self.name, str) or not self.name:
            raise InvalidInputError(
                f"columns: a column name must be a non-empty string, got {self.name!r}",
                details={"field": "columns"},
            )
        if self.type not in LOGICAL_TYPES:
            raise InvalidInputError(
                f"{at}.type: expected one of {', '.join(LOGICAL_TYPES)}, got {self.type!r}"
                + did_you_mean(str(self.type), LOGICAL_TYPES),
                details={"field": f"{at}.type"},
            )
        for key in ("min", "max"):
            value = getattr(self, key)
            if value is None:
                continue
            if self.type not in _RANGED:
                raise InvalidInputError(
                    f"{at}.{key}: min and max apply to int, float, datetime and date columns, "
                    f"not {self.type}",
                    details={"field": f"{at}.{key}"},
                )
            ok = (
                _is_number(value) if self.type in ("int", "float")
                else isinstance(value, datetime) if self.type == "datetime"
                else isinstance(value, date) and not isinstance(value, datetime)
            )
            if not ok:
                want = {"int": "a number", "float": "a number", "datetime": "a datetime",
                        "date": "a date"}[self.type]
                raise InvalidInputError(
                    f"{at}.{key}: expected {want}, got {value!r}", details={"field": f"{at}.{key}"}
                )
        if self.min is not None and self.max is not None:
            lo, hi = self.min, self.max
            if isinstance(lo, datetime) and isinstance(hi, datetime) \
                    and (lo.tzinfo is None) != (hi.tzinfo is None):
                # Validation reads a naive bound as UTC; compare them the same way.
                lo, hi = (d if d.tzinfo else d.replace(tzinfo=UTC) for d in (lo, hi))
            if lo > hi:  # type: ignore[operator]
                raise InvalidInputError(
                    f"{at}.max: expected max >= min ({_fmt_bound(self.min)}), "
                    f"got {_fmt_bound(self.max)}",
                    details={"field": f"{at}.max"},
                )
        if self.allowed is not None:
            if self.type not in _CATEGORICAL:
                raise InvalidInputError(
                    f"{at}.allowed: allowed values apply to string, category and int columns, "
                    f"not {self.type}",
                    details={"field": f"{at}.allowed"},
                )
            values = tuple(self.allowed)
            want_str = self.type != "int"
            for i, v in enumerate(values):
                if want_str and not isinstance(v, str):
                    hint = " (quote it in YAML)" if isinstance(v, bool | int | float) else ""
                    raise InvalidInputError(
                        f"{at}.allowed[{i}]: expected a string, got {v!r}{hint}",
                        details={"field": f"{at}.allowed[{i}]"},
                    )
                if not want_str and (isinstance(v, bool) or not isinstance(v, int)):
                    raise InvalidInputError(
                        f"{at}.allowed[{i}]: expected an integer, got {v!r}",
                        details={"field": f"{at}.allowed[{i}]"},
                    )
            object.__setattr__(self, "allowed", values)
        if self.max_null_fraction is not None and not (
            _is_number(self.max_null_fraction) and 0.0 <= self.max_null_fraction <= 1.0
        ):
            raise InvalidInputError(
                f"{at}.max_null_fraction: expected a number between 0 and 1, "
                f"got {self.max_null_fraction!r}",
                details={"field": f"{at}.max_null_fraction"},
            )

    def to_dict(self) -> dict[str, Any]:
        """The rule without its name, defaults left out, keys in a stable order."""
        out: dict[str, Any] = {"type": self.type, "nullable": self.nullable}
        if self.unique:
            out["unique"] = True
        if self.min is not None:
            out["min"] = _fmt_bound(self.min)
        if self.max is not None:
            out["max"] = _fmt_bound(self.max)
        if self.allowed is not None:
            out["allowed"] = list(self.allowed)
        if self.max_null_fraction is not None:
            out["max_null_fraction"] = self.max_null_fraction
        return out


@dataclass(frozen=True, slots=True)
class Contract:
    """Ordered column rules plus row-count bounds. ``allow_extra_columns=False`` makes a
    column the contract does not name a failure (a schema that grew silently)."""

    columns: tuple[ColumnRule, ...]
    min_rows: int | None = None
    max_rows: int | None = None
    allow_extra_columns: bool = True
    name: str | None = None
    version: str | int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        seen: set[str] = set()
        for rule in self.columns:
            if not isinstance(rule, ColumnRule):
                raise InvalidInputError(
                    f"columns: expected ColumnRule objects, got {rule!r}",
                    details={"field": "columns"},
                )
            if rule.name in seen:
                raise InvalidInputError(
                    f"columns.{rule.name}: the column is listed twice",
                    details={"field": f"columns.{rule.name}"},
                )
            seen.add(rule.name)
        for key in ("min_rows", "max_rows"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 0):
                raise InvalidInputError(
                    f"{key}: expected a non-negative integer, got {value!r}",
                    details={"field": key},
                )
        if self.min_rows is not None and self.max_rows is not None \
                and self.min_rows > self.max_rows:
            raise InvalidInputError(
                f"max_rows: expected max_rows >= min_rows ({self.min_rows}), got {self.max_rows}",
                details={"field": "max_rows"},
            )

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(rule.name for rule in self.columns)

    def find_column(self, name: str) -> ColumnRule | None:
        return next((rule for rule in self.columns if rule.name == name), None)

    # ---------------------------------------------------------------- serialisation

    def to_dict(self) -> dict[str, Any]:
        """JSON- and YAML-ready; ``columns`` maps each name to its rule, in contract order."""
        out: dict[str, Any] = {}
        if self.name is not None:
            out["name"] = self.name
        if self.version is not None:
            out["version"] = self.version
        out["min_rows"] = self.min_rows
        out["max_rows"] = self.max_rows
        out["allow_extra_columns"] = self.allow_extra_columns
        out["columns"] = {rule.name: rule.to_dict() for rule in self.columns}
        return out

    def to_yaml(self) -> str:
        """A YAML document meant to be read and edited by a person (stable key order)."""
        body = yaml.dump(
            self.to_dict(), Dumper=_ContractDumper, sort_keys=False, allow_unicode=True,
            width=100,
        )
        return _YAML_HEADER + body

    @classmethod
    def from_dict(cls, data: Any) -> Contract:
        """A contract from :meth:`to_dict`'s shape; errors name the field (``columns.age.min``)."""
        return _parse_contract(data, _Where(source=None, lines={}))

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "contract.yaml") -> Contract:
        """A contract from YAML text; errors name *source*, the line and the field."""
        where = _Where(source=source, lines={})
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                raise InvalidInputError(
                    f"{source}: the file is empty; expected a mapping with 'columns'",
                    details={"field": None},
                )
            index_lines(node, "", where.lines, source)
            data = loader.construct_document(node)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            line = f" line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise InvalidInputError(
                f"{source}{line}: not valid YAML: {problem}",
                details={"field": None, "line": mark.line + 1 if mark is not None else None},
            ) from exc
        finally:
            loader.dispose()
        return _parse_contract(data, where)


class _ContractDumper(yaml.SafeDumper):
    """Block mappings (one field a line, easy to edit and to diff), flow lists (``[EU, US]``)."""


def _represent_list(dumper: yaml.SafeDumper, value: list[Any]) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=True)


_ContractDumper.add_representer(list, _represent_list)


_YAML_HEADER = """\
# mlcycle data contract. Edit freely; only `type` is required for a column.
#   type: int | float | string | bool | datetime | date | category
#   nullable: false forbids nulls (NaN counts as null); unique: true forbids repeats
#   min / max: inclusive bounds, numbers or ISO dates ('2024-01-31T00:00:00+00:00')
#   allowed: the permitted values of a string, category or int column
#   max_null_fraction: the largest share of nulls tolerated (0 to 1)
#   min_rows / max_rows: row-count bounds (null: unbounded)
#   allow_extra_columns: false fails on columns not listed here
"""


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True, slots=True)
class _Where:
    """Where parsed values came from: a file name and the line of each field path."""

    source: str | None
    lines: dict[str, int]

    def fail(self, path: str, message: str) -> InvalidInputError:
        line = self.lines.get(path)
        prefix = ""
        if self.source is not None:
            prefix = f"{self.source} line {line}: " if line else f"{self.source}: "
        field = f"{path}: " if path else ""
        return InvalidInputError(
            f"{prefix}{field}{message}", details={"field": path or None, "line": line}
        )

    def relocate(self, exc: InvalidInputError) -> InvalidInputError:
        """*exc* (raised by a dataclass's own checks) with this file and line in front."""
        path = exc.details.get("field") or ""
        line = self.lines.get(path)
        if self.source is None:
            return exc
        prefix = f"{self.source} line {line}: " if line else f"{self.source}: "
        return InvalidInputError(prefix + exc.message, details={**exc.details, "line": line})


def _mapping(value: Any, path: str, where: _Where, expected: str) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise where.fail(path, f"expected {expected}, got {describe(value)}")
    return value


def _check_keys(raw: Mapping[Any, Any], allowed: Iterable[str], path: str, where: _Where) -> None:
    allowed = tuple(allowed)
    for key in raw:
        if key not in allowed:
            child = f"{path}.{key}" if path else str(key)
            raise where.fail(
                child,
                f"unknown key{did_you_mean(str(key), allowed)}; expected one of "
                + ", ".join(allowed),
            )


def _parse_bool(value: Any, path: str, where: _Where) -> bool:
    if not isinstance(value, bool):
        raise where.fail(path, f"expected true or false, got {describe(value)}")
    return value


def _parse_count(value: Any, path: str, where: _Where) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise where.fail(path, f"expected a non-negative integer or null, got {describe(value)}")
    return value


def _parse_bound(value: Any, logical: str, path: str, where: _Where) -> Bound | None:
    if value is None:
        return None
    if logical not in _RANGED:
        raise where.fail(path, f"min and max apply to int, float, datetime and date columns, "
                               f"not {logical}")
    if logical in ("int", "float"):
        if not _is_number(value):
            raise where.fail(path, f"expected a number, got {describe(value)}")
        return value
    # YAML turns unquoted 2024-01-31 into a date and 2024-01-31 10:00 into a datetime itself.
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise where.fail(
                path, f"expected an ISO {logical} such as '2024-01-31', got {value!r}"
            ) from None
    if logical == "date":
        if isinstance(value, datetime):
            if value.time() != datetime.min.time() or value.tzinfo is not None:
                raise where.fail(path, f"expected a date without a time, got {value.isoformat()}")
            return value.date()
        if isinstance(value, date):
            return value
    else:
        if isinstance(value, datetime):
            return value
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day)
    raise where.fail(path, f"expected an ISO {logical} such as '2024-01-31', got "
                           f"{describe(value)}")


def _parse_rule(name: Any, raw: Any, where: _Where) -> ColumnRule:
    path = f"columns.{name}"
    if not isinstance(name, str):
        raise where.fail(path, f"a column name must be a string, got {name!r} (quote it in YAML)")
    if raw is None:
        raise where.fail(path, "expected a rule with at least a 'type', got nothing")
    if isinstance(raw, str):  # shorthand `age: int`
        raw = {"type": raw}
    raw = _mapping(raw, path, where, "a mapping with at least a 'type'")
    _check_keys(raw, _RULE_KEYS, path, where)
    if "type" not in raw:
        raise where.fail(path, "missing 'type'; expected one of " + ", ".join(LOGICAL_TYPES))
    logical = raw["type"]
    if logical not in LOGICAL_TYPES:
        raise where.fail(
            f"{path}.type",
            f"expected one of {', '.join(LOGICAL_TYPES)}, got {describe(logical)}"
            + did_you_mean(str(logical), LOGICAL_TYPES),
        )
    allowed = raw.get("allowed")
    if allowed is not None and not isinstance(allowed, list):
        raise where.fail(f"{path}.allowed", f"expected a list, got {describe(allowed)}")
    fraction = raw.get("max_null_fraction")
    if fraction is not None and not _is_number(fraction):
        raise where.fail(f"{path}.max_null_fraction",
                         f"expected a number between 0 and 1, got {describe(fraction)}")
    try:
        return ColumnRule(
            name=name,
            type=logical,
            nullable=_parse_bool(raw.get("nullable", True), f"{path}.nullable", where),
            min=_parse_bound(raw.get("min"), logical, f"{path}.min", where),
            max=_parse_bound(raw.get("max"), logical, f"{path}.max", where),
            allowed=tuple(allowed) if allowed is not None else None,
            unique=_parse_bool(raw.get("unique", False), f"{path}.unique", where),
            max_null_fraction=fraction,
        )
    except InvalidInputError as exc:
        if where.source is None or "line" in exc.details:
            raise
        raise where.relocate(exc) from None


def _parse_contract(data: Any, where: _Where) -> Contract:
    raw = _mapping(data, "", where, "a mapping with 'columns'")
    _check_keys(raw, _CONTRACT_KEYS, "", where)
    columns_raw = raw.get("columns")
    if columns_raw is None:
        raise where.fail("columns", "missing; expected a mapping of column name to rule")
    columns_raw = _mapping(columns_raw, "columns", where, "a mapping of column name to rule")
    rules = tuple(_parse_rule(name, rule, where) for name, rule in columns_raw.items())
    name = raw.get("name")
    if name is not None and not isinstance(name, str):
        raise where.fail("name", f"expected a string, got {describe(name)}")
    version = raw.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, str | int)):
        raise where.fail("version", f"expected a string or an integer, got {describe(version)}"
                                    + (" (quote it in YAML)" if isinstance(version, float) else ""))
    try:
        return Contract(
            columns=rules,
            min_rows=_parse_count(raw.get("min_rows"), "min_rows", where),
            max_rows=_parse_count(raw.get("max_rows"), "max_rows", where),
            allow_extra_columns=_parse_bool(
                raw.get("allow_extra_columns", True), "allow_extra_columns", where
            ),
            name=name,
            version=version,
        )
    except InvalidInputError as exc:
        if where.source is None or "line" in exc.details:
            raise
        raise where.relocate(exc) from None


# --------------------------------------------------------------------------- inference

# Uniqueness is inferred only where it is a property people rely on (ids, keys): continuous
# floats and event timestamps are all distinct by chance, and a contract claiming so would
# fail on the next batch for no reason.
_UNIQUE_CANDIDATES: Final = frozenset({"int", "string"})


def _widen(lo: Any, hi: Any, logical: str, margin: float) -> tuple[Any, Any]:
    """Observed bounds widened by *margin* times their span on each side, rounded outward."""
    if margin <= 0 or lo is None or hi is None:
        return lo, hi
    if logical in ("int", "float"):
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return lo, hi
        pad = (hi - lo) * margin
        if logical == "int":
            return math.floor(lo - pad), math.ceil(hi + pad)
        return lo - pad, hi + pad
    if logical == "date":
        days = math.ceil((hi - lo).days * margin)
        return lo - timedelta(days=days), hi + timedelta(days=days)
    pad_dt = (hi - lo) * margin
    return lo - pad_dt, hi + pad_dt


def infer_contract(
    data: Any,
    *,
    max_categories: int = 50,
    range_margin: float = 0.0,
    name: str | None = None,
    version: str | int | None = None,
) -> Contract:
    """Draft a contract from a frame (polars, pandas or pyarrow): a starting point to edit.

    - type: the logical type of each column's dtype; a string column with at most
      *max_categories* distinct values that repeat becomes ``category`` with those values
      ``allowed`` (polars Enum columns allow their declared categories);
    - nullable: only where the data has a null (or a float NaN);
    - min/max: the observed range, widened on each side by *range_margin* times its span
      (``0.1`` tolerates values 10% of the range beyond what was seen);
    - unique: int and string columns whose non-null values are all distinct (at least two);
    - rows: ``[n // 2, 2 * n]``. A batch's size drifts from day to day; half or double the
      sample is where a truncated extract or an accidental re-append starts, while normal
      variation passes. An empty sample gives no bounds.

    Raises ``InvalidInputError`` for a column whose dtype no logical type covers (lists,
    structs, binary), naming it.
    """
    if max_categories < 0:
        raise InvalidInputError(
            f"The 'max_categories' parameter of infer_contract must be >= 0. "
            f"Got {max_categories!r} instead.",
            details={"field": "max_categories"},
        )
    if not (_is_number(range_margin) and range_margin >= 0):
        raise InvalidInputError(
            f"The 'range_margin' parameter of infer_contract must be a number >= 0. "
            f"Got {range_margin!r} instead.",
            details={"field": "range_margin"},
        )
    df = as_polars(data)
    n = df.height
    logical: dict[str, str] = {}
    for col, dtype in df.schema.items():
        if dtype == pl.Null:
            logical[col] = "string"  # all null: nothing to learn but the name
            continue
        kind = logical_type_of(dtype)
        if kind is None:
            raise InvalidInputError(
                f"column {col!r}: cannot infer a contract type for dtype {dtype}; "
                f"supported: {', '.join(LOGICAL_TYPES)}",
                details={"field": "data", "column": col, "dtype": str(dtype)},
            )
        logical[col] = kind

    # One pass over the frame for every aggregate; per-column Python work stays O(columns).
    aggs: list[pl.Expr] = []
    for col, kind in logical.items():
        c = pl.col(col)
        if df.schema[col] == pl.Null:
            continue
        missing = c.null_count()
        if df.schema[col].is_float():
            missing = missing + c.is_nan().sum()
        aggs.append(missing.alias(f"{col}\x00missing"))
        if kind in _RANGED:
            base = c.filter(c.is_not_nan()) if df.schema[col].is_float() else c
            aggs += [base.min().alias(f"{col}\x00min"), base.max().alias(f"{col}\x00max")]
        if kind in ("string", "category", "int"):
            aggs.append(c.drop_nulls().n_unique().alias(f"{col}\x00distinct"))
    stats = df.select(aggs).row(0, named=True) if aggs and n else {}

    rules: list[ColumnRule] = []
    for col, kind in logical.items():
        dtype = df.schema[col]
        if dtype == pl.Null or n == 0:
            # Nothing observed: stay permissive rather than forbid nulls on no evidence.
            rules.append(ColumnRule(name=col, type=kind, nullable=True))
            continue
        missing_count = int(stats[f"{col}\x00missing"])
        non_null = n - missing_count
        distinct = stats.get(f"{col}\x00distinct")
        lo, hi = _widen(stats.get(f"{col}\x00min"), stats.get(f"{col}\x00max"), kind, range_margin)
        if isinstance(dtype, pl.Decimal):
            lo, hi = None, None  # a Decimal bound does not survive YAML exactly: leave it open
        elif kind == "float":
            lo = float(lo) if lo is not None else None
            hi = float(hi) if hi is not None else None
        allowed: tuple[Category, ...] | None = None
        if isinstance(dtype, pl.Enum):
            allowed = tuple(dtype.categories.to_list())
        elif kind in ("string", "category") and distinct is not None \
                and 0 < distinct <= max_categories and (distinct < non_null or kind == "category"):
            kind = "category"
            allowed = tuple(sorted(df.get_column(col).drop_nulls().unique().cast(pl.String)
                                   .to_list()))
        unique = (kind in _UNIQUE_CANDIDATES and distinct is not None and non_null >= 2
                  and distinct == non_null)
        rules.append(ColumnRule(
            name=col,
            type=kind,
            nullable=missing_count > 0,
            min=lo if kind in _RANGED else None,
            max=hi if kind in _RANGED else None,
            allowed=allowed,
            unique=unique,
        ))
    return Contract(
        columns=tuple(rules),
        min_rows=n // 2,
        max_rows=2 * n if n else None,
        allow_extra_columns=True,
        name=name,
        version=version,
    )

