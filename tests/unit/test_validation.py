"""Validation: every check passing and failing with exact counts, examples, segments, the three
frame kinds, row_violations agreeing with validate, and the HTML report."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from mlcycle.datasets.contracts import ColumnRule, Contract
from mlcycle.datasets.segments import Segment, parse_segments
from mlcycle.datasets.validation import (
    ROW_CHECKS,
    CheckResult,
    ValidationReport,
    row_violations,
    validate,
)
from mlcycle.errors import InvalidInputError

N = 100
START = datetime(2024, 1, 1, tzinfo=UTC)


def people() -> pl.DataFrame:
    """100 rows with planted violations at known positions (see CONTRACT)."""
    ids = list(range(N))
    ids[50] = 49  # rows 49 and 50 share an id
    ages: list[int | None] = [20 + i % 50 for i in range(N)]
    ages[3] = 150  # above max
    ages[7] = -2  # below min
    ages[11] = None  # null in a non-nullable column
    ages[12] = 130  # above max
    scores: list[float | None] = [i / 10 for i in range(N)]
    scores[20] = None
    scores[21] = float("nan")  # NaN is missing, not out of range
    regions = [("EU", "US", "APAC")[i % 3] for i in range(N)]
    regions[5] = "<script>alert(1)</script>"
    regions[6] = "MARS"
    regions[9] = None  # nullable: not a violation
    return pl.DataFrame({
        "id": ids,
        "age": ages,
        "score": scores,
        "region": regions,
        "seen": [START + timedelta(days=i) for i in range(N)],
    })


CONTRACT = Contract(
    name="people",
    version=2,
    columns=(
        ColumnRule(name="id", type="int", nullable=False, unique=True),
        ColumnRule(name="age", type="int", nullable=False, min=0, max=120),
        ColumnRule(name="score", type="float", nullable=False, min=0.0, max=9.0,
                   max_null_fraction=0.01),
        ColumnRule(name="region", type="category", allowed=("EU", "US", "APAC")),
        ColumnRule(name="seen", type="datetime", min=datetime(2024, 1, 5)),  # naive = UTC
    ),
    min_rows=10,
    max_rows=1000,
)


def check(report: ValidationReport | dict, name: str, column: str | None) -> CheckResult:
    checks = report["checks"] if isinstance(report, dict) else report.checks
    found = [c for c in checks if c.check == name and c.column == column]
    assert len(found) == 1, (name, column, found)
    return found[0]


# --------------------------------------------------------------------------- checks


def test_each_row_check_counts_failures_and_gives_examples() -> None:
    report = validate(people(), CONTRACT)
    assert not report.passed and report.num_rows == N

    expected = {
        ("unique", "id"): [49, 50],
        ("not_null", "age"): [11],
        ("min", "age"): [7],
        ("max", "age"): [3, 12],
        ("not_null", "score"): [20, 21],  # null and NaN
        ("max", "score"): list(range(91, 100)),  # 9.1 .. 9.9
        ("allowed", "region"): [5, 6],
        ("min", "seen"): [0, 1, 2, 3],  # before 2024-01-05 UTC
    }
    for (name, column), rows in expected.items():
        result = check(report, name, column)
        assert not result.passed
        assert result.failed_rows == len(rows), (name, column)
        assert result.total_rows == N
        assert [e["row"] for e in result.examples] == rows[:5]
    assert check(report, "min", "score").passed  # NaN does not count as below min
    assert check(report, "min", "score").failed_rows == 0
    assert {(c.check, c.column) for c in report.failed} == set(expected) | {
        ("null_fraction", "score")
    }
    # An example carries the whole row, as JSON values.
    example = check(report, "max", "age").examples[0]
    assert example == {"row": 3, "values": {"id": 3, "age": 150, "score": 0.3, "region": "EU",
                                            "seen": "2024-01-04T00:00:00+00:00"}}


def test_column_and_table_checks() -> None:
    df = people()
    report = validate(df, CONTRACT)
    assert check(report, "row_count", None).passed
    assert check(report, "column_present", "age").passed
    assert check(report, "type", "age").passed
    fraction = check(report, "null_fraction", "score")
    assert not fraction.passed and fraction.failed_rows == 2
    assert "2.00% missing" in fraction.message

    strict = Contract(columns=(*CONTRACT.columns[:2], ColumnRule(name="email", type="string")),
                      min_rows=101, allow_extra_columns=False)
    report = validate(df.with_columns(pl.col("age").cast(pl.String)), strict)
    assert not check(report, "row_count", None).passed
    assert "expected at least 101" in check(report, "row_count", None).message
    extra = check(report, "extra_columns", None)
    assert not extra.passed and "score, region, seen" in extra.message
    missing = check(report, "column_present", "email")
    assert not missing.passed and missing.failed_rows == N
    wrong = check(report, "type", "age")
    assert not wrong.passed and "expected int, got string" in wrong.message
    # A wrongly typed column keeps its not-null check and loses its value checks.
    assert not check(report, "not_null", "age").passed
    assert not [c for c in report.checks if c.column == "age" and c.check in ("min", "max")]


def test_everything_passes_on_clean_data() -> None:
    df = people().filter(pl.int_range(pl.len()) >= 60).with_columns(
        pl.col("score").clip(0, 9)
    )
    contract = Contract(columns=CONTRACT.columns[:4], min_rows=1)
    report = validate(df, contract)
    assert report.passed and report.failed == []
    assert all(c.failed_rows == 0 and c.examples == [] for c in report.checks)
    assert report.summary() == f"PASSED contract: {len(report.checks)} checks on 40 rows"


def test_max_examples_caps_examples_not_counts() -> None:
    report = validate(people(), CONTRACT, max_examples=2)
    result = check(report, "max", "score")
    assert result.failed_rows == 9 and [e["row"] for e in result.examples] == [91, 92]
    none = validate(people(), CONTRACT, max_examples=0)
    assert check(none, "max", "score").failed_rows == 9
    assert check(none, "max", "score").examples == []
    with pytest.raises(InvalidInputError, match="max_examples"):
        validate(people(), CONTRACT, max_examples=-1)


def test_examples_found_beyond_the_first_window() -> None:
    # Failures only near the end of a table larger than the first 64k-row window.
    n = 200_000
    df = pl.DataFrame({"x": pl.int_range(n, eager=True)})
    report = validate(df, Contract(columns=(ColumnRule(name="x", type="int", max=n - 4),)))
    result = check(report, "max", "x")
    assert result.failed_rows == 3
    assert [e["row"] for e in result.examples] == [n - 3, n - 2, n - 1]


def test_categorical_and_int_allowed_values() -> None:
    df = pl.DataFrame({
        "c": pl.Series(["a", "b", "z", None, "z"], dtype=pl.Categorical),
        "e": pl.Series(["lo", "hi", "hi", "lo", "mid"], dtype=pl.Enum(["lo", "mid", "hi"])),
        "code": pl.Series([1, 2, 3, 2, 9], dtype=pl.Int32),
    })
    contract = Contract(columns=(
        ColumnRule(name="c", type="category", allowed=("a", "b")),
        ColumnRule(name="e", type="category", allowed=("lo", "hi")),
        ColumnRule(name="code", type="int", allowed=(1, 2)),
    ))
    report = validate(df, contract)
    assert [e["row"] for e in check(report, "allowed", "c").examples] == [2, 4]
    assert [e["row"] for e in check(report, "allowed", "e").examples] == [4]
    assert [e["row"] for e in check(report, "allowed", "code").examples] == [2, 4]
    assert row_violations(df, contract).to_list() == [
        None, None, "c: not an allowed value; code: not an allowed value", None,
        "c: not an allowed value; e: not an allowed value; code: not an allowed value",
    ]


def test_datetime_bounds_across_time_zones() -> None:
    aware = pl.DataFrame({"t": [datetime(2024, 1, 1, 23, tzinfo=UTC),
                                datetime(2024, 1, 2, 1, tzinfo=UTC)]})
    paris = aware.with_columns(pl.col("t").dt.convert_time_zone("Europe/Paris"))
    naive = aware.with_columns(pl.col("t").dt.replace_time_zone(None))
    for bound in (datetime(2024, 1, 2), datetime(2024, 1, 2, tzinfo=UTC)):
        contract = Contract(columns=(ColumnRule(name="t", type="datetime", min=bound),))
        for df in (aware, paris, naive):
            result = check(validate(df, contract), "min", "t")
            assert result.failed_rows == 1 and result.examples[0]["row"] == 0


# --------------------------------------------------------------------------- frame kinds


def test_polars_pandas_and_pyarrow_give_the_same_report() -> None:
    df = people()
    expected = validate(df, CONTRACT, segments={"eu": "region = 'EU'"}).to_dict()
    assert validate(df.to_arrow(), CONTRACT, segments={"eu": "region = 'EU'"}).to_dict() \
        == expected
    arrow_backed = df.to_pandas(use_pyarrow_extension_array=True)
    assert validate(arrow_backed, CONTRACT, segments={"eu": "region = 'EU'"}).to_dict() \
        == expected
    # Plain numpy-backed pandas: NaN stands for null, so the counts agree, not every value.
    counts = {(c.check, c.column): c.failed_rows
              for c in validate(df.drop("age").to_pandas(), CONTRACT).checks}
    assert counts[("not_null", "score")] == 2
    assert counts[("max", "score")] == 9
    assert counts[("unique", "id")] == 2
    assert counts[("allowed", "region")] == 2
    assert counts[("column_present", "age")] == N


def test_empty_frame() -> None:
    df = people().head(0)
    report = validate(df, CONTRACT, segments={"eu": "region = 'EU'"})
    assert report.num_rows == 0
    assert not check(report, "row_count", None).passed  # min_rows=10
    assert all(c.passed for c in report.checks if c.check != "row_count")
    assert report.segments["eu"]["rows"] == 0
    assert row_violations(df, CONTRACT).len() == 0
    report.to_html()


def test_rejects_what_is_not_a_frame_or_contract() -> None:
    with pytest.raises(InvalidInputError, match="data must be"):
        validate({"a": [1]}, CONTRACT)
    with pytest.raises(InvalidInputError, match="contract must be a Contract"):
        validate(people(), CONTRACT.to_dict())  # type: ignore[arg-type]


# --------------------------------------------------------------------------- segments


def test_segment_breakdown_matches_brute_force_counts() -> None:
    df = people()
    segments = {"eu": "region == 'EU'", "older": "age >= 60", "nobody": "age > 1000"}
    report = validate(df, CONTRACT, segments=segments, max_examples=3)
    rows = df.to_dicts()
    in_segment = {
        "eu": [i for i, r in enumerate(rows) if r["region"] == "EU"],
        "older": [i for i, r in enumerate(rows) if r["age"] is not None and r["age"] >= 60],
        "nobody": [],
    }
    assert list(report.segments) == ["eu", "older", "nobody"]
    failing_rows = {  # per check, from test_each_row_check_counts_failures_and_gives_examples
        ("max", "age"): {3, 12}, ("min", "age"): {7}, ("unique", "id"): {49, 50},
        ("allowed", "region"): {5, 6}, ("max", "score"): set(range(91, 100)),
        ("min", "seen"): {0, 1, 2, 3}, ("not_null", "age"): {11},
        ("not_null", "score"): {20, 21},
    }
    for name, members in in_segment.items():
        seg = report.segments[name]
        assert seg["rows"] == len(members)
        assert [(c.check, c.column) for c in seg["checks"]] == [
            (c.check, c.column) for c in report.checks if c.check in ROW_CHECKS
        ]
        for c in seg["checks"]:
            want = sorted(failing_rows.get((c.check, c.column), set()) & set(members))
            assert c.failed_rows == len(want), (name, c.check, c.column)
            assert [e["row"] for e in c.examples] == want[:3]
            assert c.total_rows == len(members) and c.passed == (not want)
    # "older" holds rows 3 (age 150) and 12 (age 130): both above max.
    assert check(report.segments["older"], "max", "age").failed_rows == 2


def test_double_and_single_equals_are_the_same_segment() -> None:
    df = people()
    sql = Segment("a", "region = 'EU' AND age >= 30").mask(df)
    python = Segment("b", "region == 'EU' and age >= 30").mask(df)
    assert sql.sum() > 0 and sql.to_list() == python.to_list()
    # `==` inside a string literal is data, not an operator.
    odd = pl.DataFrame({"s": ["a==b", "a=b", None]})
    assert Segment("lit", "s == 'a==b'").mask(odd).to_list() == [True, False, False]
    assert Segment("lit", 's = \'a=b\'').mask(odd).to_list() == [False, True, False]


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("region = ", "segment 'bad': cannot parse expression"),
        ("planet = 'Mars'", "segment 'bad': unknown column 'planet'"),
        ("age + 1", "segment 'bad': expected a boolean expression"),
        ("age = 'old'", "segment 'bad': cannot evaluate"),
        ("   ", "segment 'bad': expected a boolean expression such as"),
    ],
)
def test_bad_segment_is_an_error_naming_it(expr: str, message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        validate(people(), CONTRACT, segments=[Segment("bad", expr)])
    assert info.value.message.startswith(message), info.value.message
    assert info.value.details["segment"] == "bad"


def test_parse_segments_forms() -> None:
    expected = (Segment("eu", "region = 'EU'"), Segment("old", "age > 60"))
    assert parse_segments({"eu": "region = 'EU'", "old": "age > 60"}) == expected
    assert parse_segments([{"name": "eu", "expr": "region = 'EU'"}, expected[1]]) == expected
    assert parse_segments(None) == ()
    assert Segment.from_dict(expected[0].to_dict()) == expected[0]
    with pytest.raises(InvalidInputError, match="used twice"):
        parse_segments([expected[0], expected[0]])
    with pytest.raises(InvalidInputError, match="unknown keys"):
        parse_segments([{"name": "x", "expression": "a = 1"}])
    with pytest.raises(InvalidInputError, match="the string"):
        parse_segments("region = 'EU'")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- row_violations


def test_row_violations_agree_with_validate() -> None:
    df = people()
    report = validate(df, CONTRACT)
    reasons = row_violations(df, CONTRACT)
    assert reasons.dtype == pl.String and reasons.len() == N and reasons.name == "violations"
    assert reasons[3] == "age: above max 120; seen: below min 2024-01-05T00:00:00"
    assert reasons[12] == "age: above max 120"
    assert reasons[49] == "id: duplicate value"
    assert reasons[11] == "age: null"
    assert reasons[2] == "seen: below min 2024-01-05T00:00:00"
    assert reasons[5] == "region: not an allowed value"
    assert reasons[0] == "seen: below min 2024-01-05T00:00:00"
    assert reasons[50] == "id: duplicate value"
    assert reasons[60] is None
    reason_of = {"not_null": "null", "unique": "duplicate value",
                 "allowed": "not an allowed value"}
    flagged: set[int] = set()
    for c in report.checks:
        if c.check not in ROW_CHECKS:
            continue
        text = reason_of.get(c.check) or ("below min" if c.check == "min" else "above max")
        rows = [i for i, r in enumerate(reasons.to_list()) if r and f"{c.column}: {text}" in r]
        assert len(rows) == c.failed_rows, (c.check, c.column)
        assert rows[:5] == [e["row"] for e in c.examples]
        flagged.update(rows)
    assert reasons.null_count() == N - len(flagged)


def test_row_violations_without_failures_is_all_null() -> None:
    df = pl.DataFrame({"a": [1, 2, 3]})
    contract = Contract(columns=(ColumnRule(name="a", type="int", min=0),))
    assert row_violations(df, contract).to_list() == [None, None, None]
    assert row_violations(df, Contract(columns=())).null_count() == 3


# --------------------------------------------------------------------------- reports


def test_to_dict_is_json_and_summary_lists_failures() -> None:
    report = validate(people(), CONTRACT, segments={"eu": "region = 'EU'"})
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["passed"] is False and data["num_rows"] == N
    assert data["contract"] == {"name": "people", "version": 2}
    assert data["segments"]["eu"]["expr"] == "region = 'EU'"
    assert data["num_failed"] == len(report.failed) == 9
    summary = report.summary()
    assert summary.startswith("FAILED people: 9 of ")
    assert "  x age.max: 2 of 100 rows (2.00%): above max 120" in summary
    assert "segment eu (" in summary


def test_html_report_shows_failures_and_escapes_values() -> None:
    report = validate(people(), CONTRACT, segments={"eu": "region = 'EU'", "older": "age > 60"})
    html = report.to_html()
    assert html.startswith("<!DOCTYPE html>") and "</html>" in html
    assert "FAILED" in html and "<style>" in html and "<script" not in html.replace(
        "&lt;script", "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    for c in report.failed:
        assert f'<td class="check-name">{c.check}</td>' in html
    assert "older" in html and "region = &#39;EU&#39;" in html
    passing = validate(people().head(0), Contract(columns=())).to_html()
    assert "PASSED" in passing and "Failed checks" not in passing


def test_a_column_named_row_does_not_clash_with_the_position() -> None:
    df = pl.DataFrame({"row": [5, -1]})
    report = validate(df.to_pandas(), Contract(columns=(ColumnRule(name="row", type="int",
                                                                   min=0),)))
    assert check(report, "min", "row").examples == [{"row": 1, "values": {"row": -1}}]
    assert Segment("neg", "row < 0").mask(df.to_arrow()).to_list() == [False, True]
