"""Validating a frame against a :class:`~mlcycle.datasets.contracts.Contract`.

Speed comes from never touching a row more than it must. :func:`validate` works in two passes:

1. one polars ``select`` computes a handful of aggregates for every column at once: null counts
   (Arrow metadata, free), ``min``/``max`` compared with the bounds, the distinct values of a
   categorical column minus the allowed set, a duplicate test only where uniqueness is asked.
   That is all a passing check ever costs;
2. only for the checks that found something, a second ``select`` counts the failing rows (the
   not-null count is already exact) and, per segment, the failing rows within it; the first
   ``max_examples`` failing positions are looked up in a growing prefix of the table. Failing
   rows are counted and sampled, never copied.

Checks and what ``failed_rows`` counts:

============== ======== =====================================================================
check          level    failed_rows when it fails
============== ======== =====================================================================
row_count      table    0 (it is about the table)
extra_columns  table    every row (only when the contract sets ``allow_extra_columns: false``)
column_present column   every row
type           column   every row; the column's value checks are then skipped
null_fraction  column   the missing values
not_null       row      rows with a null (or a float NaN)
min / max      row      rows below min / above max (inclusive bounds; missing values pass)
allowed        row      rows whose value is not allowed (missing values pass)
unique         row      every row holding a repeated value (missing values never repeat)
============== ======== =====================================================================

Row-level checks are rerun within each segment. :func:`row_violations` gives the reason for
every row from the very same mask expressions, so its verdicts agree with :func:`validate`
row for row.

A datetime bound without a time zone is read as UTC when the column has one, and an aware
bound is converted to UTC for a column without one.
"""

from __future__ import annotations

import importlib.resources
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final

import jinja2
import polars as pl

from mlcycle.datasets.contracts import (
    Bound,
    ColumnRule,
    Contract,
    as_polars,
    is_compatible,
    logical_type_of,
)
from mlcycle.datasets.segments import Segment, parse_segments
from mlcycle.errors import InvalidInputError

__all__ = ["ROW_CHECKS", "CheckResult", "ValidationReport", "row_violations", "validate"]

ROW_CHECKS: Final = ("not_null", "min", "max", "allowed", "unique")


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check on one column (or on the table when ``column`` is None).

    ``examples`` holds at most ``max_examples`` failing rows, each a JSON-ready dict: the
    row's 0-based position under ``"row"`` and the whole row under ``"values"``.
    """

    check: str
    column: str | None
    passed: bool
    failed_rows: int
    total_rows: int
    examples: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "column": self.column,
            "passed": self.passed,
            "failed_rows": self.failed_rows,
            "total_rows": self.total_rows,
            "examples": [{"row": e["row"], "values": dict(e["values"])} for e in self.examples],
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """The outcome of :func:`validate`.

    ``segments`` maps each segment's name to ``{"expr": ..., "rows": n, "checks": [...]}``:
    every row-level check as a :class:`CheckResult` counted within the segment.
    """

    checks: list[CheckResult]
    num_rows: int
    segments: dict[str, dict[str, Any]] = field(default_factory=dict)
    contract_name: str | None = None
    contract_version: str | int | None = None

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: examples already hold only JSON values."""
        return {
            "contract": {"name": self.contract_name, "version": self.contract_version},
            "passed": self.passed,
            "num_rows": self.num_rows,
            "num_checks": len(self.checks),
            "num_failed": len(self.failed),
            "checks": [c.to_dict() for c in self.checks],
            "segments": {
                name: {"expr": seg.get("expr"), "rows": seg["rows"],
                       "checks": [c.to_dict() for c in seg["checks"]]}
                for name, seg in self.segments.items()
            },
        }

    def summary(self) -> str:
        """A few plain lines for a terminal or a log: the verdict, then each failed check."""
        title = self.contract_name or "contract"
        if self.passed:
            head = f"PASSED {title}: {len(self.checks)} checks on {self.num_rows:,} rows"
        else:
            head = (f"FAILED {title}: {len(self.failed)} of {len(self.checks)} checks failed "
                    f"on {self.num_rows:,} rows")
        lines = [head]
        for c in self.failed:
            where = f"{c.column}." if c.column else ""
            lines.append(f"  x {where}{c.check}: {c.message}")
        for name, seg in self.segments.items():
            bad = [c for c in seg["checks"] if not c.passed]
            detail = ", ".join(f"{c.column}.{c.check} {c.failed_rows:,}" for c in bad) or "ok"
            lines.append(f"  segment {name} ({seg['rows']:,} rows): {detail}")
        return "\n".join(lines)

    def to_html(self) -> str:
        """A self-contained HTML page (inline CSS, no scripts), every value escaped."""
        return _template().render(data=self.to_dict(), row_checks=ROW_CHECKS)


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    text = (importlib.resources.files("mlcycle.datasets")
            .joinpath("templates/validation.html.j2").read_text(encoding="utf-8"))
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["thousands"] = lambda n: f"{n:,}"
    env.filters["pct"] = lambda x: f"{x:.2%}" if x == 0 or x >= 0.0001 else "<0.01%"
    return env.from_string(text)


# --------------------------------------------------------------------------- row checks


@dataclass(frozen=True, slots=True)
class _RowCheck:
    """A row-level check, split so that a passing check costs one aggregate.

    ``detect`` is that aggregate; what it yields depends on ``kind``:

    - ``"count"``: the exact number of failing rows (not-null: the null count, which Arrow
      keeps as metadata, so it is free);
    - ``"any"``: whether any row fails (range and uniqueness checks: ``min``/``max`` aggregates
      and a duplicate test);
    - ``"values"``: the offending distinct values (``allowed``), a Series.

    :meth:`mask` turns what was detected into the failing-row mask (null already False).
    The ``allowed`` mask looks rows up among the few offending values rather than the allowed
    set: a lookup that almost never matches is several times faster than one that almost
    always does.
    """

    check: str
    column: str
    reason: str
    kind: str
    detect: pl.Expr
    static_mask: pl.Expr | None = None  # the mask, when it does not depend on ``detect``
    values: pl.Expr | None = None  # for ``allowed``: the column as compared
    compare_dtype: pl.DataType | None = None  # for ``allowed``: the dtype of ``values``

    def found(self, detected: Any) -> bool:
        if self.kind == "values":
            return len(detected) > 0
        return bool(detected)

    def mask(self, detected: Any) -> pl.Expr:
        if self.static_mask is not None:
            return self.static_mask
        assert self.values is not None and self.compare_dtype is not None
        offending = detected.cast(self.compare_dtype)
        return self.values.is_in(offending.implode()).fill_null(False)


def _fmt(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return repr(value) if isinstance(value, str) else str(value)


def _literal(value: Bound, dtype: pl.DataType) -> pl.Expr:
    """*value* as a literal comparable with a column of *dtype* (time zones reconciled)."""
    if isinstance(value, datetime) and isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        elif dtype.time_zone is None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return pl.lit(value).cast(dtype)
    if isinstance(value, date) and not isinstance(value, datetime) \
            and isinstance(dtype, pl.Datetime):
        return _literal(datetime.combine(value, time()), dtype)
    return pl.lit(value)


def _missing(column: str, dtype: pl.DataType) -> pl.Expr:
    c = pl.col(column)
    return c.is_null() | c.is_nan() if dtype.is_float() else c.is_null()


def _row_checks(rule: ColumnRule, dtype: pl.DataType) -> list[_RowCheck]:
    """The row-level checks *rule* asks of a present column of *dtype*, in report order."""
    name = rule.name
    c = pl.col(name)
    is_float = dtype.is_float()
    out: list[_RowCheck] = []
    if not rule.nullable:
        count = c.null_count()
        if is_float:
            count = count + c.is_nan().sum()
        out.append(_RowCheck("not_null", name, "null", "count", count,
                             static_mask=_missing(name, dtype)))
    values_ok = dtype != pl.Null and is_compatible(rule.type, dtype)
    # polars' min/max skip NaN (a missing value here), but the element-wise comparisons order
    # NaN above everything: the masks exclude it explicitly so both always agree.
    if values_ok and rule.min is not None:
        low = _literal(rule.min, dtype)
        lowest = c.min().fill_nan(None) if is_float else c.min()
        out.append(_RowCheck("min", name, f"below min {_fmt(rule.min)}", "any",
                             (lowest < low).fill_null(False),
                             static_mask=(c < low).fill_null(False)))
    if values_ok and rule.max is not None:
        high = _literal(rule.max, dtype)
        highest = c.max().fill_nan(None) if is_float else c.max()
        above = c > high
        if is_float:
            above = above & c.is_not_nan()
        out.append(_RowCheck("max", name, f"above max {_fmt(rule.max)}", "any",
                             (highest > high).fill_null(False),
                             static_mask=above.fill_null(False)))
    if values_ok and rule.allowed is not None:
        compare: pl.DataType
        if rule.type == "int":
            compare = dtype
            allowed = pl.Series(list(rule.allowed), dtype=pl.Int64).cast(dtype).implode()
            values = c
            distinct = c.drop_nulls().unique()
        else:
            compare = pl.String()
            allowed = pl.Series([str(v) for v in rule.allowed], dtype=pl.String).implode()
            values = c if dtype == pl.String else c.cast(pl.String)
            # Categorical and enum columns: the distinct codes first, then their strings.
            distinct = c.drop_nulls().unique()
            if dtype != pl.String:
                distinct = distinct.cast(pl.String)
        # The few distinct values are tested, not every row: hashing rows is the costly part.
        out.append(_RowCheck("allowed", name, "not an allowed value", "values",
                             distinct.implode().list.set_difference(allowed),
                             values=values, compare_dtype=compare))
    if rule.unique:
        mask = c.is_duplicated() & ~_missing(name, dtype)
        out.append(_RowCheck("unique", name, "duplicate value", "any", mask.any(),
                             static_mask=mask))
    return out


def _detected(df: pl.DataFrame, exprs: Sequence[pl.Expr]) -> list[Any]:
    """Evaluate one-value aggregates in one ``select``: a bool, an int, or a Series for a list."""
    if not exprs:
        return []
    out = df.select(e.alias(f"a{i}") for i, e in enumerate(exprs))
    return [col[0] for col in out.get_columns()]


def _first_rows(frame: pl.DataFrame, wanted: Mapping[str, tuple[pl.Expr, int]],
                k: int) -> dict[str, list[int]]:
    """The first *k* True positions of each mask in *wanted* (name -> (mask, its True count)).

    ``arg_true`` over a million rows costs milliseconds per mask, so look in a growing prefix
    (zero-copy slices) and stop as soon as each mask has its examples: with failures spread
    through the table, the first 64k rows are plenty.
    """
    found: dict[str, list[int]] = {name: [] for name in wanted}
    pending = [name for name, (_, count) in wanted.items() if count and k]
    window = 1 << 16
    while pending:
        part = frame.head(window)
        got = part.select(
            wanted[name][0].arg_true().head(k).implode().alias(name) for name in pending
        ).row(0)
        for name, rows in zip(pending, got, strict=True):
            found[name] = list(rows)
        full = window >= frame.height
        pending = [name for name in pending
                   if not full and len(found[name]) < min(k, wanted[name][1])]
        window *= 16
    return found


# --------------------------------------------------------------------------- JSON values


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return str(value)


def _examples(df: pl.DataFrame, rows: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The rows at positions *rows*, each as ``{"row": i, "values": {column: value}}`` with
    JSON values (nested, so that a column named ``row`` cannot clash with the position)."""
    if not rows:
        return {}
    picked = sorted(set(rows))
    taken = df[picked].to_dicts()
    return {i: {"row": i, "values": {k: _json_value(v) for k, v in row.items()}}
            for i, row in zip(picked, taken, strict=True)}


# --------------------------------------------------------------------------- validate


def _segment_masks(df: pl.DataFrame, segs: Sequence[Segment]) -> pl.DataFrame:
    """One boolean column ``"\\x00s<j>"`` per segment; errors name the segment at fault."""
    exprs = [seg.mask_expr(df.schema).alias(f"\x00s{j}") for j, seg in enumerate(segs)]
    try:
        return df.select(exprs)
    except pl.exceptions.PolarsError:
        for seg in segs:  # which one? evaluate each alone; its error names it
            seg.mask(df)
        raise


def validate(
    data: Any,
    contract: Contract,
    *,
    segments: Iterable[Segment] | Mapping[str, str] = (),
    max_examples: int = 5,
) -> ValidationReport:
    """Check *data* (polars, pandas or pyarrow) against *contract*.

    >>> report = validate(df, contract, segments={"eu": "region = 'EU'"})
    >>> report.passed, [c.check for c in report.failed]

    Row positions in examples are 0-based positions in *data* (a pandas index is ignored).
    """
    if not isinstance(contract, Contract):
        raise InvalidInputError(
            f"contract must be a Contract, got {type(contract).__name__}",
            details={"field": "contract"},
        )
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 0:
        raise InvalidInputError(
            f"The 'max_examples' parameter of validate must be an int >= 0. "
            f"Got {max_examples!r} instead.",
            details={"field": "max_examples"},
        )
    df = as_polars(data)
    segs = parse_segments(segments)
    seg_frame = _segment_masks(df, segs)  # a bad segment fails before any other work
    n = df.height
    schema = df.schema
    results: list[CheckResult | _RowCheck] = []  # row checks are resolved after pass 2

    if contract.min_rows is not None or contract.max_rows is not None:
        ok = (contract.min_rows is None or n >= contract.min_rows) and (
            contract.max_rows is None or n <= contract.max_rows)
        if contract.max_rows is None:
            expected = f"at least {contract.min_rows:,}"
        elif contract.min_rows is None:
            expected = f"at most {contract.max_rows:,}"
        else:
            expected = f"between {contract.min_rows:,} and {contract.max_rows:,}"
        results.append(CheckResult(
            "row_count", None, ok, 0, n, message=f"{n:,} rows; expected {expected}",
        ))
    if not contract.allow_extra_columns:
        extra = [c for c in df.columns if contract.find_column(c) is None]
        results.append(CheckResult(
            "extra_columns", None, not extra, n if extra else 0, n,
            message=(f"unexpected columns: {', '.join(extra)}" if extra
                     else "no columns beyond the contract"),
        ))

    # Pass 1: every aggregate in one select.
    aggs: list[pl.Expr] = []
    row_checks: list[_RowCheck] = []
    missing_at: dict[str, int] = {}
    detect_at: dict[int, int] = {}
    for rule in contract.columns:
        if rule.name not in schema:
            continue
        dtype = schema[rule.name]
        if rule.max_null_fraction is not None:
            missing_at[rule.name] = len(aggs)
            aggs.append(_missing(rule.name, dtype).sum())
        for rc in _row_checks(rule, dtype):
            detect_at[id(rc)] = len(aggs)
            aggs.append(rc.detect)
            row_checks.append(rc)
    agg_row = _detected(df, aggs)

    for rule in contract.columns:
        if rule.name not in schema:
            results.append(CheckResult(
                "column_present", rule.name, False, n, n,
                message=f"column {rule.name!r} is missing",
            ))
            continue
        dtype = schema[rule.name]
        results.append(CheckResult("column_present", rule.name, True, 0, n,
                                   message="present"))
        compatible = is_compatible(rule.type, dtype)
        actual = logical_type_of(dtype) or str(dtype)
        results.append(CheckResult(
            "type", rule.name, compatible, 0 if compatible else n, n,
            message=(f"{rule.type} ({dtype})" if compatible
                     else f"expected {rule.type}, got {actual} ({dtype}); value checks skipped"),
        ))
        if rule.max_null_fraction is not None:
            nulls = int(agg_row[missing_at[rule.name]])
            fraction = nulls / n if n else 0.0
            ok = fraction <= rule.max_null_fraction
            results.append(CheckResult(
                "null_fraction", rule.name, ok, 0 if ok else nulls, n,
                message=f"{fraction:.2%} missing; at most {rule.max_null_fraction:.2%} allowed",
            ))
        results.extend(rc for rc in row_checks if rc.column == rule.name)

    # Pass 2: counts and examples only for the row checks that found something.
    detected = {id(rc): agg_row[detect_at[id(rc)]] for rc in row_checks}
    failing = [rc for rc in row_checks if rc.found(detected[id(rc)])]
    counts: dict[int, int] = {}
    first_rows: dict[int, list[int]] = {}
    seg_rows: list[int] = []
    seg_counts: dict[tuple[int, int], int] = {}
    seg_first: dict[tuple[int, int], list[int]] = {}
    if failing or segs:
        frame = df
        mask_of = [rc.mask(detected[id(rc)]) for rc in failing]
        if segs:
            # Each mask meets every segment: materialise them once (bitmaps, an eighth of a
            # byte a row) instead of evaluating each expression once per segment.
            frame = pl.concat(
                [df.select(m.alias(f"\x00m{i}") for i, m in enumerate(mask_of)), seg_frame],
                how="horizontal",
            )
            mask_of = [pl.col(f"\x00m{i}") for i in range(len(failing))]
        seg_of = [pl.col(f"\x00s{j}") for j in range(len(segs))]
        sums: dict[str, pl.Expr] = {}
        for i, rc in enumerate(failing):
            if rc.kind == "count":
                counts[i] = int(detected[id(rc)])
            else:
                sums[f"n{i}"] = mask_of[i].sum()
            for j in range(len(segs)):
                sums[f"n{i}_{j}"] = (mask_of[i] & seg_of[j]).sum()
        for j in range(len(segs)):
            sums[f"rows{j}"] = seg_of[j].sum()
        got = frame.select(e.alias(k) for k, e in sums.items()).row(0, named=True) if sums \
            else {}
        counts.update({i: int(got[f"n{i}"]) for i in range(len(failing)) if i not in counts})
        seg_rows = [int(got[f"rows{j}"]) for j in range(len(segs))]
        wanted: dict[str, tuple[pl.Expr, int]] = {}
        for i in range(len(failing)):
            wanted[f"x{i}"] = (mask_of[i], counts[i])
            for j in range(len(segs)):
                seg_counts[i, j] = int(got[f"n{i}_{j}"])
                wanted[f"x{i}_{j}"] = (mask_of[i] & seg_of[j], seg_counts[i, j])
        firsts = _first_rows(frame, wanted, max_examples)
        for i in range(len(failing)):
            first_rows[i] = firsts[f"x{i}"]
            for j in range(len(segs)):
                seg_first[i, j] = firsts[f"x{i}_{j}"]
    examples = _examples(
        df, [r for rows in (*first_rows.values(), *seg_first.values()) for r in rows]
    )
    fail_index = {id(rc): i for i, rc in enumerate(failing)}

    def resolve(rc: _RowCheck, total: int, count: int, rows: list[int]) -> CheckResult:
        if count == 0:
            return CheckResult(rc.check, rc.column, True, 0, total, message="no failing rows")
        share = f" ({count / total:.2%})" if total else ""
        return CheckResult(
            rc.check, rc.column, False, count, total,
            examples=[examples[r] for r in rows],
            message=f"{count:,} of {total:,} rows{share}: {rc.reason}",
        )

    checks: list[CheckResult] = []
    for item in results:
        if isinstance(item, CheckResult):
            checks.append(item)
        else:
            at = fail_index.get(id(item))
            checks.append(resolve(item, n, 0, []) if at is None
                          else resolve(item, n, counts[at], first_rows[at]))

    segments_out: dict[str, dict[str, Any]] = {}
    for j, seg in enumerate(segs):
        seg_checks = []
        for rc in row_checks:
            at = fail_index.get(id(rc))
            seg_checks.append(resolve(rc, seg_rows[j], 0, []) if at is None
                              else resolve(rc, seg_rows[j], seg_counts[at, j], seg_first[at, j]))
        segments_out[seg.name] = {"expr": seg.expr, "rows": seg_rows[j], "checks": seg_checks}

    return ValidationReport(
        checks=checks,
        num_rows=n,
        segments=segments_out,
        contract_name=contract.name,
        contract_version=contract.version,
    )


def row_violations(data: Any, contract: Contract) -> pl.Series:
    """Why each row breaks the contract: a String Series, null for a row that satisfies every
    row-level check, else its reasons (``"age: above max 120; region: not an allowed value"``).

    Built from the same masks as :func:`validate`, so the rows it flags for a check are exactly
    the ones ``validate`` counts. Column-level failures (a missing column, a wrong type) are
    not row reasons: a wrongly typed column gets only its not-null and unique checks here too.
    ``unique`` flags every copy of a repeated value, the first included.
    """
    df = as_polars(data)
    checks = [rc for rule in contract.columns if rule.name in df.schema
              for rc in _row_checks(rule, df.schema[rule.name])]
    out = pl.repeat(None, df.height, dtype=pl.String, eager=True).alias("violations")
    if not checks:
        return out
    dynamic = [rc for rc in checks if rc.static_mask is None]
    found = dict(zip((id(rc) for rc in dynamic), _detected(df, [rc.detect for rc in dynamic]),
                     strict=True))
    # Flag rows first (bitmaps), then spell out reasons only for the flagged rows: a string per
    # check per row for the whole table would cost far more than all the checks together.
    flags = df.select(rc.mask(found.get(id(rc))).alias(f"m{i}") for i, rc in enumerate(checks))
    bad = flags.select(pl.any_horizontal(pl.all()).alias("bad")).to_series()
    if not bad.any():
        return out
    reasons = flags.filter(bad).select(pl.concat_str(
        [pl.when(pl.col(f"m{i}")).then(pl.lit(f"{rc.column}: {rc.reason}"))
         for i, rc in enumerate(checks)],
        separator="; ",
        ignore_nulls=True,
    )).to_series()
    return out.scatter(bad.arg_true(), reasons)
