"""Signatures: inferred from pandas, polars and numpy examples; input checked column by column
with errors that name the column and the expected and received types."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from sklearn.linear_model import LogisticRegression

from mlcycle.errors import InvalidInputError, SignatureMismatch
from mlcycle.models import (
    ColumnSpec,
    Signature,
    TensorSpec,
    infer_signature,
    load_model,
    save_model,
)


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "age": pd.Series([31, 45, 27], dtype="int64"),
        "income": [1.5, np.nan, 3.0],
        "city": ["Oslo", "Lima", "Pune"],
        "member": [True, False, True],
        "plan": pd.Categorical(["a", "b", "a"]),
        "joined": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
    })


def test_inferred_from_pandas() -> None:
    sig = infer_signature(_frame(), np.array([0, 1, 0]))
    assert sig.inputs == (
        ColumnSpec("age", "int64", False), ColumnSpec("income", "float64", True),
        ColumnSpec("city", "string", False), ColumnSpec("member", "bool", False),
        ColumnSpec("plan", "category", False), ColumnSpec("joined", "datetime", False),
    )
    assert sig.outputs == TensorSpec("int64", (-1,))
    assert sig.input_format == "pandas"


def test_inferred_from_polars_matches_pandas() -> None:
    frame = pl.from_pandas(_frame())
    sig = infer_signature(frame)
    assert sig.inputs == infer_signature(_frame()).inputs
    assert sig.input_format == "polars" and sig.outputs is None


def test_inferred_from_numpy_and_series_output() -> None:
    sig = infer_signature(np.zeros((4, 3, 2), dtype=np.float32),
                          pd.Series([1.0, 2.0], name="score"))
    assert sig.inputs == TensorSpec("float32", (-1, 3, 2))
    assert sig.outputs == (ColumnSpec("score", "float64", False),)


def test_round_trip_through_dict() -> None:
    for sig in (infer_signature(_frame(), np.array(["a", "b"])),
                infer_signature(np.ones((2, 5)), np.ones((2, 2)))):
        assert Signature.from_dict(sig.to_dict()) == sig


def test_missing_column_is_named() -> None:
    sig = infer_signature(_frame())
    with pytest.raises(SignatureMismatch, match=r"input is missing column 'city'") as err:
        sig.validate(_frame().drop(columns=["city"]))
    assert err.value.details["field"] == "city"
    assert err.value.code == "signature_mismatch" and err.value.http_status == 400


def test_wrong_type_names_column_expected_and_got() -> None:
    sig = infer_signature(_frame())
    bad = _frame().assign(income=["high", "low", "mid"])
    with pytest.raises(SignatureMismatch,
                       match=r"column 'income': expected float64, got string") as err:
        sig.validate(bad)
    assert err.value.details == {"field": "income", "expected": "float64", "got": "string"}
    with pytest.raises(SignatureMismatch, match=r"column 'age': expected int64, got float64"):
        sig.validate(_frame().assign(age=[31.5, 2.0, 3.0]))  # a float never becomes an int


def test_nulls_in_a_required_column() -> None:
    sig = infer_signature(_frame())
    with pytest.raises(SignatureMismatch, match=r"column 'city': 1 null value") as err:
        sig.validate(_frame().assign(city=["Oslo", None, "Pune"]))
    assert err.value.details["field"] == "city"
    sig.validate(_frame().assign(income=[np.nan] * 3))  # income had nulls: allowed


def test_safe_conversions_reorder_and_extra_columns() -> None:
    sig = Signature((ColumnSpec("x", "float32"), ColumnSpec("n", "int64"),
                     ColumnSpec("c", "category")))
    given = pd.DataFrame({"id": [7, 8], "c": ["u", "v"], "n": np.array([1, 2], dtype="int8"),
                          "x": [1, 2]})
    out = sig.validate(given)
    assert list(out.columns) == ["x", "n", "c"]  # signature order, extra column dropped
    assert out["x"].dtype == np.float32 and out["n"].dtype == np.int64
    assert isinstance(out["c"].dtype, pd.CategoricalDtype)
    assert sig.validate(given.assign(n=np.array([1, 2], dtype="uint64")))["n"].tolist() == [1, 2]
    with pytest.raises(SignatureMismatch, match="column 'n': expected int64, got uint64"):
        sig.validate(given.assign(n=np.array([1, 2**63], dtype="uint64")))  # 2**63 won't fit


def test_any_input_format_reaches_the_model_in_its_own() -> None:
    sig = infer_signature(_frame().drop(columns=["joined"]))
    as_polars = pl.from_pandas(_frame())
    out = sig.validate(as_polars)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == sig.input_names
    assert isinstance(out["plan"].dtype, pd.CategoricalDtype)
    from_dict = sig.validate({"age": [1], "income": [None], "city": ["Oslo"],
                              "member": [True], "plan": ["a"]})
    assert from_dict["age"].tolist() == [1]
    polars_sig = infer_signature(as_polars)
    assert isinstance(polars_sig.validate(_frame()), pl.DataFrame)


def test_numpy_against_columns_and_tensors() -> None:
    sig = Signature((ColumnSpec("a", "float64"), ColumnSpec("b", "float64")))
    assert list(sig.validate(np.ones((3, 2))).columns) == ["a", "b"]
    with pytest.raises(SignatureMismatch, match=r"one column per input \(2: a, b\), got shape 3x3"):
        sig.validate(np.ones((3, 3)))
    tensor = infer_signature(np.ones((2, 4), dtype=np.float32))
    assert tensor.validate(np.ones((5, 4))).dtype == np.float32  # float64 → float32
    with pytest.raises(SignatureMismatch, match="expected shape nx4, got 5x3"):
        tensor.validate(np.ones((5, 3)))
    with pytest.raises(SignatureMismatch, match=r"expected an array of float32, got (<U1|str)"):
        tensor.validate(np.array([["a"] * 4]))
    with pytest.raises(SignatureMismatch, match="expected a pandas or polars DataFrame"):
        sig.validate("a,b\n1,2")


def test_invalid_signatures_name_the_field() -> None:
    with pytest.raises(InvalidInputError, match=r"signature.inputs\[0\] \('a'\): type must be"):
        Signature((ColumnSpec("a", "float"),))
    with pytest.raises(InvalidInputError, match="column 'a' appears twice"):
        Signature((ColumnSpec("a", "int64"), ColumnSpec("a", "int64")))
    with pytest.raises(InvalidInputError, match=r"signature\.inputs: expected"):
        Signature.from_dict({"inputs": {"cols": []}})
    with pytest.raises(InvalidInputError, match="input_example: expected a pandas"):
        infer_signature([1, 2, 3])


def test_loaded_model_enforces_its_signature(tmp_path: Path) -> None:
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    model = LogisticRegression().fit(X, [0, 0, 1, 1])
    save_model(model, tmp_path / "m", input_example=X.head(2))
    loaded = load_model(tmp_path / "m")
    assert loaded.predict(X[["b", "a"]]).tolist() == model.predict(X).tolist()
    with pytest.raises(SignatureMismatch, match="missing column 'b'"):
        loaded.predict(X[["a"]])
    with pytest.raises(SignatureMismatch, match="column 'a': expected float64, got string"):
        loaded.predict(X.assign(a=["x", "y", "z", "w"]))
    pd.testing.assert_frame_equal(loaded.input_example, X.head(2))


def test_explicit_signature_must_accept_the_example(tmp_path: Path) -> None:
    X = pd.DataFrame({"a": [0.0, 1.0], "b": [1.0, 0.0]})
    model = LogisticRegression().fit(X, [0, 1])
    with pytest.raises(SignatureMismatch, match="missing column 'c'"):
        save_model(model, tmp_path / "m", input_example=X,
                   signature=Signature((ColumnSpec("c", "float64"),)))
    assert not (tmp_path / "m").exists()
    sig = Signature((ColumnSpec("a", "float64"), ColumnSpec("b", "float64", nullable=True)))
    info = save_model(model, tmp_path / "ok", input_example=X, signature=sig)
    assert info.signature == sig


def test_json_columns_of_numbers_take_the_fast_path_with_the_same_result() -> None:
    sig = Signature(inputs=(ColumnSpec("x", "float64", False), ColumnSpec("n", "int64", False),
                            ColumnSpec("w", "float32", False)))
    request = {"x": [1.5, 2.0], "n": [3, 4], "w": [1, 2.5], "extra": ["ignored", "too"]}
    fast = sig.validate(request)
    full = sig.validate(pd.DataFrame(request))
    pd.testing.assert_frame_equal(fast, full)
    assert list(fast.dtypes) == [np.float64, np.int64, np.float32]
    as_array = Signature(inputs=sig.inputs[:1], input_format="numpy").validate({"x": [1, 2]})
    assert as_array.dtype == np.float64 and as_array.shape == (2, 1)


@pytest.mark.parametrize(("request_", "column", "expected"), [
    ({"x": [1.5, 2.5], "n": [1.5, 2.0]}, "n", "int64"),       # floats in an int column
    ({"x": [1.0, float("nan")], "n": [1, 2]}, "x", "no nulls"),  # NaN is a null
    ({"x": [1.0, None], "n": [1, 2]}, "x", "no nulls"),
    ({"x": ["1.0", "2.0"], "n": [1, 2]}, "x", "float64"),        # text in a number column
    ({"x": [1.0, 2.0]}, "n", None),                              # missing column
])
def test_requests_the_fast_path_refuses_get_the_full_explanation(
        request_: dict[str, list[object]], column: str, expected: str | None) -> None:
    sig = Signature(inputs=(ColumnSpec("x", "float64", False), ColumnSpec("n", "int64", False)))
    with pytest.raises(SignatureMismatch) as err:
        sig.validate(request_)
    assert err.value.details["field"] == column
    if expected is not None:
        assert err.value.details["expected"] == expected


def test_a_narrower_int_column_takes_wider_ints_whose_values_fit() -> None:
    # pandas' .dt.day_of_week is int32; JSON integers arrive as int64.
    sig = infer_signature(pd.DataFrame({"day": pd.Series([0, 6], dtype="int32")}))
    assert sig.inputs[0].type == "int32"
    for data in ({"day": [3, 5]}, pd.DataFrame({"day": np.array([1, 2], dtype="int64")}),
                 pl.DataFrame({"day": [4, 0]}, schema={"day": pl.Int64})):
        assert str(sig.validate(data)["day"].dtype) == "int32"
    with pytest.raises(SignatureMismatch, match=r"'day'.*expected int32, got int64"):
        sig.validate({"day": [1, 2**40]})  # a value int32 cannot hold
