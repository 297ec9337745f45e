from __future__ import annotations

import pytest

from mlcycle.errors import InvalidFilter
from mlcycle.store.filter import And, Comparison, Or, OrderKey, parse_filter, parse_order_by


def test_mlflow_style_conjunction() -> None:
    expr = parse_filter(
        "metrics.rmse < 0.5 and params.model = 'rf' and tags.team != 'x' "
        "and attributes.status = 'FINISHED'"
    )
    assert expr == And((
        Comparison("metric", "rmse", "<", 0.5, 0),
        Comparison("param", "model", "=", "rf", 23),
        Comparison("tag", "team", "!=", "x", 47),
        Comparison("attribute", "status", "=", "finished", 68),
    ))


def test_or_binds_looser_than_and() -> None:
    expr = parse_filter("metrics.a > 1 or metrics.b > 2 and metrics.c > 3")
    assert isinstance(expr, Or)
    assert isinstance(expr.items[1], And)


@pytest.mark.parametrize(
    ("source", "key"),
    [("metrics.`val loss` < 1", "val loss"), ('metrics."val loss" < 1', "val loss"),
     ("metrics.val.loss < 1", "val.loss"), ("metrics.a/b < 1", "a/b")],
)
def test_quoted_and_dotted_keys(source: str, key: str) -> None:
    expr = parse_filter(source)
    assert isinstance(expr, Comparison) and expr.key == key


def test_values() -> None:
    assert parse_filter("metrics.x >= -1.5e-3").value == -1.5e-3  # type: ignore[union-attr]
    assert parse_filter("params.p IN ('a', 'b')").value == ("a", "b")  # type: ignore[union-attr]
    assert parse_filter("params.p = 'it''s'").value == "it's"  # type: ignore[union-attr]
    start = parse_filter("attributes.start_time > '2026-01-01T00:00:00+00:00'")
    assert start.value == 1767225600000.0  # type: ignore[union-attr]
    assert parse_filter("run.run_name = 'x'").key == "name"  # type: ignore[union-attr]
    assert parse_filter("") is None and parse_filter("   ") is None


@pytest.mark.parametrize(
    ("source", "position", "says"),
    [
        ("metrics.rmse < 'a'", 15, "compares with numbers"),
        ("params.x = 3", 11, "quote the value"),
        ("foo.x = 1", 0, "expected an identifier"),
        ("metrics.x ~ 1", 10, "unexpected character"),
        ("metrics.x < 1 and", 17, "got the end"),
        ("attributes.bogus = '1'", 11, "unknown attribute"),
        ("metrics.x LIKE 1", 10, "does not apply to metrics"),
        ("metrics.x < 1 metrics.y < 2", 14, "expected 'and', 'or'"),
        ("(metrics.x < 1", 14, "expected ')'"),
        ("params.p IN ('a' 'b')", 17, "expected ',' or ')'"),
    ],
)
def test_errors_point_at_the_token(source: str, position: int, says: str) -> None:
    with pytest.raises(InvalidFilter) as err:
        parse_filter(source)
    assert err.value.details["position"] == position
    assert says in err.value.message
    caret_line = err.value.message.splitlines()[-1]
    assert caret_line.index("^") - 2 == position


def test_order_by() -> None:
    assert parse_order_by(["metrics.rmse DESC", "attributes.start_time", "params.`a b` asc"]) == [
        OrderKey("metric", "rmse", True),
        OrderKey("attribute", "start_time", False),
        OrderKey("param", "a b", False),
    ]
    with pytest.raises(InvalidFilter, match="ASC, DESC"):
        parse_order_by(["metrics.rmse sideways"])
