"""Contracts: inference from a frame, the YAML round trip, and errors that name line and field."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import polars as pl
import pytest

from mlcycle.datasets.contracts import ColumnRule, Contract, infer_contract, is_compatible
from mlcycle.errors import InvalidInputError


def realistic_frame(n: int = 200) -> pl.DataFrame:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return pl.DataFrame({
        "customer_id": list(range(1000, 1000 + n)),
        "age": [18 + (i * 7) % 60 for i in range(n)],
        "income": [None if i % 10 == 0 else 1000.0 + i * 12.5 for i in range(n)],
        "email": [f"user{i}@example.com" for i in range(n)],
        "region": [("EU", "US", "APAC")[i % 3] for i in range(n)],
        "signup": [start + timedelta(hours=i) for i in range(n)],
        "birthday": [date(1990, 1, 1) + timedelta(days=i) for i in range(n)],
        "active": [i % 4 != 0 for i in range(n)],
    })


# --------------------------------------------------------------------------- inference


def test_infer_types_nullability_ranges_categories_uniqueness() -> None:
    df = realistic_frame()
    contract = infer_contract(df, name="customers", version=3)
    by = {rule.name: rule for rule in contract.columns}

    assert contract.column_names == tuple(df.columns)  # order kept
    assert [by[c].type for c in df.columns] == [
        "int", "int", "float", "string", "category", "datetime", "date", "bool",
    ]
    assert by["income"].nullable is True
    assert all(not by[c].nullable for c in df.columns if c != "income")
    assert (by["age"].min, by["age"].max) == (18, 77)
    assert by["income"].min == 1012.5 and by["income"].max == 1000.0 + 199 * 12.5
    assert by["signup"].min == datetime(2024, 1, 1, tzinfo=UTC)
    assert by["birthday"].max == date(1990, 1, 1) + timedelta(days=199)
    assert by["region"].allowed == ("APAC", "EU", "US")
    assert by["email"].allowed is None  # 200 distinct values > max_categories
    assert by["customer_id"].unique and by["email"].unique
    assert not by["age"].unique and not by["income"].unique  # floats are never inferred unique
    assert (contract.min_rows, contract.max_rows) == (100, 400)
    assert (contract.name, contract.version) == ("customers", 3)


def test_infer_max_categories_and_range_margin() -> None:
    df = pl.DataFrame({"x": [0, 10, 5, 5], "s": ["a", "b", "c", "a"]})
    wide = infer_contract(df, max_categories=2, range_margin=0.1)
    x, s = wide.columns
    assert (x.min, x.max) == (-1, 11)  # 10% of the span, rounded outward for ints
    assert s.type == "string" and s.allowed is None  # 3 distinct > 2
    assert infer_contract(df).columns[1].allowed == ("a", "b", "c")


def test_infer_same_contract_from_pandas_and_pyarrow() -> None:
    df = realistic_frame(50)
    from_polars = infer_contract(df)
    assert infer_contract(df.to_arrow()) == from_polars
    # pandas has no date dtype: a date column arrives as datetime64 and is inferred as such.
    assert infer_contract(df.drop("birthday").to_pandas()) == infer_contract(df.drop("birthday"))
    assert infer_contract(df.to_pandas()).find_column("birthday").type == "datetime"  # type: ignore[union-attr]


def test_infer_treats_nan_as_missing_and_enum_allows_its_categories() -> None:
    df = pl.DataFrame({
        "x": [1.0, float("nan"), 3.0],
        "level": pl.Series(["low", "low", "high"], dtype=pl.Enum(["low", "mid", "high"])),
    })
    x, level = infer_contract(df).columns
    assert x.nullable is True and (x.min, x.max) == (1.0, 3.0)
    assert level.type == "category" and level.allowed == ("low", "mid", "high")


def test_infer_empty_frame_gives_open_bounds() -> None:
    contract = infer_contract(pl.DataFrame({"a": pl.Series([], dtype=pl.Int64)}))
    assert contract.columns[0] == ColumnRule(name="a", type="int", nullable=True)
    assert (contract.min_rows, contract.max_rows) == (0, None)


def test_infer_rejects_unsupported_dtype_naming_the_column() -> None:
    df = pl.DataFrame({"tags": [["a"], ["b"]]})
    with pytest.raises(InvalidInputError) as info:
        infer_contract(df)
    assert info.value.details["column"] == "tags"
    with pytest.raises(InvalidInputError, match="max_categories"):
        infer_contract(pl.DataFrame({"a": [1]}), max_categories=-1)
    with pytest.raises(InvalidInputError, match="data must be"):
        infer_contract([1, 2, 3])


def test_compatibility_is_by_logical_type() -> None:
    assert is_compatible("float", pl.Int32())
    assert is_compatible("category", pl.String())
    assert is_compatible("string", pl.Categorical())
    assert is_compatible("int", pl.Null())
    assert not is_compatible("int", pl.Float64())
    assert not is_compatible("date", pl.Datetime())


# --------------------------------------------------------------------------- YAML


def test_yaml_round_trip_is_exact_and_stable() -> None:
    contract = infer_contract(realistic_frame(), range_margin=0.05, name="customers", version=1)
    text = contract.to_yaml()
    again = Contract.from_yaml(text)
    assert again == contract
    assert again.to_yaml() == text
    assert text.startswith("# mlcycle data contract")
    # Human layout: one field a line, categories in a flow list, keys in a fixed order.
    assert "allowed: [APAC, EU, US]" in text
    region_block = text[text.index("  region:"):].splitlines()[1:4]
    assert [line.split(":")[0].strip() for line in region_block] == ["type", "nullable", "allowed"]
    assert Contract.from_dict(contract.to_dict()) == contract


def test_yaml_quotes_values_that_would_change_meaning() -> None:
    contract = Contract(columns=(
        ColumnRule(name="answer", type="category", allowed=("yes", "no", "1.5", "null")),
        ColumnRule(name="yes", type="int"),
    ))
    assert Contract.from_yaml(contract.to_yaml()) == contract


def test_hand_written_yaml_with_shorthand_and_dates() -> None:
    text = """\
name: orders
columns:
  id: int
  placed:
    type: datetime
    min: 2024-01-01
    max: '2024-12-31T23:59:59+00:00'
  day: {type: date, min: 2024-01-01}
"""
    contract = Contract.from_yaml(text)
    by = {r.name: r for r in contract.columns}
    assert by["id"] == ColumnRule(name="id", type="int")
    assert by["placed"].min == datetime(2024, 1, 1)
    assert by["placed"].max == datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert by["day"].min == date(2024, 1, 1)


BASE_YAML = """\
name: people
min_rows: 1
columns:
  id:
    type: int
    nullable: false
  age:
    type: int
    min: 0
    max: 120
  region:
    type: category
    allowed: [EU, US]
"""


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("min: 0", "min: abc",
         "contract.yaml line 9: columns.age.min: expected a number, got 'abc'"),
        ("nullable: false", "nulable: false",
         "contract.yaml line 6: columns.id.nulable: unknown key (did you mean 'nullable'?)"),
        ("type: category", "type: categroy",
         "contract.yaml line 12: columns.region.type: expected one of int, float, string, bool,"
         " datetime, date, category, got 'categroy' (did you mean 'category'?)"),
        ("max: 120", "max: -5", "contract.yaml line 10: columns.age.max: expected max >= min"),
        ("allowed: [EU, US]", "allowed: [EU, no]",
         "contract.yaml line 13: columns.region.allowed[1]: expected a string, got False"
         " (quote it in YAML)"),
        ("allowed: [EU, US]", "allowed: EU",
         "contract.yaml line 13: columns.region.allowed: expected a list, got 'EU'"),
        ("nullable: false", "nullable: nope",
         "contract.yaml line 6: columns.id.nullable: expected true or false, got 'nope'"),
        ("min_rows: 1", "min_rows: many",
         "contract.yaml line 2: min_rows: expected a non-negative integer or null, got 'many'"),
        ("name: people", "nme: people", "contract.yaml line 1: nme: unknown key (did you mean"),
        ("  age:\n", "  id:\n", "contract.yaml line 7: columns.id: duplicate key"),
        ("    type: category\n", "    min: 3\n    type: category\n",
         "contract.yaml line 12: columns.region.min: min and max apply to int, float, datetime"),
        ("allowed: [EU, US]", "allowed: [EU, US",
         "contract.yaml line 14: not valid YAML"),
    ],
)
def test_yaml_errors_name_line_and_field(old: str, new: str, expected: str) -> None:
    assert old in BASE_YAML
    with pytest.raises(InvalidInputError) as info:
        Contract.from_yaml(BASE_YAML.replace(old, new, 1))
    assert info.value.message.startswith(expected), info.value.message


def test_yaml_error_carries_line_in_details_and_custom_source() -> None:
    with pytest.raises(InvalidInputError) as info:
        Contract.from_yaml(BASE_YAML.replace("max: 120", "max: lots"), source="people.yaml")
    assert info.value.details == {"field": "columns.age.max", "line": 10}
    assert info.value.message.startswith("people.yaml line 10: ")


def test_structural_yaml_errors() -> None:
    with pytest.raises(InvalidInputError, match="the file is empty"):
        Contract.from_yaml("")
    with pytest.raises(InvalidInputError, match="columns: missing"):
        Contract.from_yaml("name: x\n")
    with pytest.raises(InvalidInputError, match=r"line 2: columns\.a: missing 'type'"):
        Contract.from_yaml("columns:\n  a: {nullable: true}\n")
    with pytest.raises(InvalidInputError, match=r"columns\.1: a column name must be a string"):
        Contract.from_yaml("columns:\n  1: int\n")
    with pytest.raises(InvalidInputError, match="expected a mapping"):
        Contract.from_yaml("- a\n- b\n")


def test_from_dict_errors_name_the_field_without_a_line() -> None:
    with pytest.raises(InvalidInputError) as info:
        Contract.from_dict({"columns": {"when": {"type": "datetime", "min": "yesterday"}}})
    assert info.value.message.startswith("columns.when.min: expected an ISO datetime")
    assert info.value.details["field"] == "columns.when.min"


def test_rules_validate_themselves() -> None:
    with pytest.raises(InvalidInputError, match=r"columns\.a\.min: min and max apply"):
        ColumnRule(name="a", type="string", min=1)
    with pytest.raises(InvalidInputError, match=r"columns\.a\.type"):
        ColumnRule(name="a", type="integer")
    with pytest.raises(InvalidInputError, match="max_null_fraction"):
        ColumnRule(name="a", type="int", max_null_fraction=1.5)
    with pytest.raises(InvalidInputError, match="listed twice"):
        Contract(columns=(ColumnRule(name="a", type="int"), ColumnRule(name="a", type="int")))
    with pytest.raises(InvalidInputError, match="max_rows >= min_rows"):
        Contract(columns=(), min_rows=5, max_rows=1)
    assert ColumnRule(name="a", type="category", allowed=["x"]).allowed == ("x",)  # type: ignore[arg-type]


def test_pandas_index_is_ignored() -> None:
    pdf = pd.DataFrame({"a": [3, 1, 2]}, index=[10, 20, 30])
    assert infer_contract(pdf).column_names == ("a",)
