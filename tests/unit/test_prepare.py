"""The declarative preparation spec: parsing, row steps, splits and the feature transformer."""

from __future__ import annotations

import pickle
from datetime import date, timedelta

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from mlcycle.datasets.prepare import (
    Cast,
    ContractCheck,
    Derive,
    DropDuplicates,
    DropNulls,
    DropWhere,
    Encode,
    Filter,
    Impute,
    Passthrough,
    PrepareSpec,
    RowStep,
    Scale,
    Split,
    prepare,
)
from mlcycle.errors import InvalidInputError

SPEC_YAML = """\
# customers, ready for a churn model
target: churned
steps:
  - {op: drop_duplicates, subset: [customer_id]}
  - op: filter
    expr: "age >= 18"
    action: quarantine
  - {op: derive, name: tenure_years, expr: "tenure_days / 365.0"}
features:
  - {op: impute, columns: [age], strategy: median}
  - op: scale
    columns: [age, tenure_years]
    method: standard
  - {op: encode, columns: plan}
split: {method: stratified, test: 0.25, seed: 7}
"""

SPEC_PY = PrepareSpec(
    target="churned",
    steps=[
        DropDuplicates(subset=["customer_id"]),
        Filter(expr="age >= 18", action="quarantine"),
        Derive(name="tenure_years", expr="tenure_days / 365.0"),
    ],
    features=[
        Impute(columns=["age"], strategy="median"),
        Scale(columns=["age", "tenure_years"], method="standard"),
        Encode(columns=["plan"]),
    ],
    split=Split(method="stratified", test=0.25, seed=7),
)


def customers(n: int = 400, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "customer_id": np.arange(n),
            "age": rng.normal(45, 12, n).round(),
            "tenure_days": rng.integers(1, 3000, n),
            "plan": rng.choice(["basic", "plus", "pro"], n),
            "churned": (rng.random(n) < 0.3).astype(np.int64),
        }
    )


# ---------------------------------------------------------------- the spec as data


def test_yaml_python_and_dict_specs_are_equal() -> None:
    from_yaml = PrepareSpec.from_yaml(SPEC_YAML)
    assert from_yaml == SPEC_PY
    assert PrepareSpec.from_dict(SPEC_PY.to_dict()) == SPEC_PY
    assert PrepareSpec.from_yaml(SPEC_PY.to_yaml()) == SPEC_PY
    assert from_yaml.digest() == SPEC_PY.digest()


def test_digest_is_stable_and_follows_every_change() -> None:
    digest = SPEC_PY.digest()
    assert digest == PrepareSpec.from_yaml(SPEC_YAML).digest()
    assert len(digest) == 64
    # Spelling out a default is the same spec.
    explicit = SPEC_YAML.replace(
        "{op: encode, columns: plan}", "{op: encode, columns: [plan], method: onehot}"
    )
    assert PrepareSpec.from_yaml(explicit).digest() == digest
    changed = [
        SPEC_YAML.replace("age >= 18", "age >= 21"),
        SPEC_YAML.replace("seed: 7", "seed: 8"),
        SPEC_YAML.replace("strategy: median", "strategy: mean"),
        SPEC_YAML.replace("action: quarantine", "action: drop"),
    ]
    digests = {PrepareSpec.from_yaml(text).digest() for text in changed}
    assert len(digests) == len(changed) and digest not in digests


def test_yaml_typo_names_the_line_and_the_field() -> None:
    bad = SPEC_YAML.replace("strategy: median", "strategy: avg")
    with pytest.raises(InvalidInputError) as info:
        PrepareSpec.from_yaml(bad, source="churn.yaml")
    assert info.value.message == (
        "churn.yaml line 10: features[0].strategy: "
        "expected one of mean, median, most_frequent, constant, got 'avg'"
    )
    assert info.value.details["field"] == "features[0].strategy"
    assert info.value.details["line"] == 10


IMPUTE_AGE = "  - {op: impute, columns: [age], strategy: median}"
YAML_MISTAKES = [
    (
        "method: standard",
        "methd: standard",
        "line 13: features[1].methd: unknown field (did you mean 'method'?)",
    ),
    ("op: scale", "op: scael", "line 11: features[1]: unknown op 'scael'"),
    ('"age >= 18"', '"age >>> 18"', "line 6: steps[1].expr: not a valid SQL expression"),
    (
        "columns: plan",
        "columns: churned",
        "line 14: features[2].columns: the target 'churned' cannot be a feature",
    ),
    (
        "seed: 7",
        "seed: 7, validation: 0.8",
        "line 15: split.validation: test + validation must be below 1",
    ),
    (
        "  - {op: derive",
        "  - {op: impute, columns: [age]}\n  - {op: derive",
        "line 8: steps[2]: unknown op 'impute'",
    ),
    (
        IMPUTE_AGE,
        IMPUTE_AGE + "\n  - {op: impute, columns: [age]}",
        "line 11: features[1].columns: 'age' is already imputed by features[0]",
    ),
    ("target: churned", "target: churned\ntarget: plan", "line 3: target: appears twice"),
    (
        "  - {op: derive, name: tenure_years, ",
        "  - {op: derive, ",
        "line 8: steps[2].name: required field missing",
    ),
]


@pytest.mark.parametrize(("old", "new", "expected"), YAML_MISTAKES)
def test_yaml_errors_point_at_the_place(old: str, new: str, expected: str) -> None:
    assert old in SPEC_YAML
    with pytest.raises(InvalidInputError) as info:
        PrepareSpec.from_yaml(SPEC_YAML.replace(old, new))
    assert info.value.message.startswith("prepare.yaml " + expected), info.value.message


def test_misplaced_op_says_where_it_belongs() -> None:
    with pytest.raises(
        InvalidInputError, match="'impute' is a feature transform: list it under features"
    ):
        PrepareSpec.from_yaml("steps:\n  - {op: impute, columns: [age]}\n")


def test_dict_errors_name_the_field_without_a_line() -> None:
    with pytest.raises(InvalidInputError) as info:
        PrepareSpec.from_dict({"steps": [{"op": "filter", "expr": "a = 1", "action": "hide"}]})
    assert info.value.message == "steps[0].action: expected one of drop, quarantine, got 'hide'"
    assert info.value.details["line"] is None


def test_broken_yaml_names_the_line() -> None:
    with pytest.raises(InvalidInputError, match=r"prepare.yaml line 3: not valid YAML"):
        PrepareSpec.from_yaml("steps:\n  - {op: filter, expr: 'a = 1'\n  - x\n")


def test_constant_impute_needs_a_fill_value() -> None:
    with pytest.raises(InvalidInputError, match=r"features\[0\].fill_value: strategy 'constant'"):
        PrepareSpec.from_dict(
            {"features": [{"op": "impute", "columns": ["a"], "strategy": "constant"}]}
        )


# ---------------------------------------------------------------- row steps


def _only_steps(*steps: RowStep) -> PrepareSpec:
    return PrepareSpec(steps=list(steps), split=None, remainder="passthrough")


def test_drop_duplicates_counts_and_keeps_the_chosen_copy() -> None:
    frame = pl.DataFrame({"k": [1, 1, 2, None, None, 3], "v": [10, 11, 20, 30, 31, 40]})
    first = prepare(frame, _only_steps(DropDuplicates(subset=["k"])))
    assert first.frames["train"]["v"].to_list() == [10, 20, 30, 40]
    step = first.report.steps[0]
    assert (step.rows_in, step.rows_out, step.dropped, step.quarantined) == (6, 4, 2, 0)
    assert step.reasons == {"duplicate of an earlier row on k": 2}

    last = prepare(frame, _only_steps(DropDuplicates(subset=["k"], keep="last")))
    assert last.frames["train"]["v"].to_list() == [11, 20, 31, 40]
    none = prepare(
        frame, _only_steps(DropDuplicates(subset=["k"], keep="none", action="quarantine"))
    )
    assert none.frames["train"]["v"].to_list() == [20, 40]
    assert none.quarantine is not None and none.quarantine["v"].to_list() == [10, 11, 30, 31]
    # Whole-row duplicates when no subset is given.
    whole = prepare(pl.DataFrame({"a": [1, 1, 1], "b": [2, 2, 3]}), _only_steps(DropDuplicates()))
    assert whole.report.steps[0].dropped == 1


def test_filter_and_drop_where_treat_null_like_sql() -> None:
    frame = pl.DataFrame({"age": [10, 20, None, 40], "name": ["a==b", "x", "y", "z"]})
    kept = prepare(frame, _only_steps(Filter(expr="age > 15")))
    # WHERE keeps true only: the null row goes.
    assert kept.frames["train"]["age"].to_list() == [20, 40]
    assert kept.report.steps[0].reason == "filter: age > 15 is false or null"
    dropped = prepare(frame, _only_steps(DropWhere(expr="age > 15")))
    # DELETE WHERE removes true only: the null row stays.
    assert dropped.frames["train"]["age"].to_list() == [10, None]
    # `==` works as `=`, but not inside a string literal.
    literal = prepare(frame, _only_steps(Filter(expr="name == 'a==b'")))
    assert literal.frames["train"]["name"].to_list() == ["a==b"]


def test_filter_needs_a_boolean_and_existing_columns() -> None:
    frame = pl.DataFrame({"age": [1, 2]})
    with pytest.raises(InvalidInputError, match=r"steps\[0\]\.expr: expected a true/false"):
        prepare(frame, _only_steps(Filter(expr="age + 1")))
    with pytest.raises(InvalidInputError) as info:
        prepare(frame, _only_steps(Derive(name="x", expr="1"), DropWhere(expr="agee > 1")))
    assert info.value.details["field"] == "steps[1].expr"


def test_drop_nulls_says_which_columns_were_null() -> None:
    frame = pl.DataFrame({"a": [1, None, None, 4], "b": ["x", "y", None, None], "c": [None] * 4})
    result = prepare(frame, _only_steps(DropNulls(columns=["a", "b"], action="quarantine")))
    assert result.frames["train"]["a"].to_list() == [1]
    assert result.quarantine is not None
    assert result.quarantine["_reason"].to_list() == ["null in a", "null in a, b", "null in b"]
    assert result.report.steps[0].reasons == {"null in a": 1, "null in a, b": 1, "null in b": 1}


def test_derive_adds_a_column_from_an_expression() -> None:
    frame = pl.DataFrame({"w": [80.0, 60.0], "h": [2.0, 1.5], "plan": ["pro", "basic"]})
    spec = _only_steps(
        Derive(name="bmi", expr="w / (h * h)"),
        Derive(name="is_pro", expr="CASE WHEN plan = 'pro' THEN 1 ELSE 0 END"),
    )
    result = prepare(frame, spec)
    assert result.frames["train"]["bmi"].to_list() == pytest.approx([20.0, 60.0 / 2.25])
    assert result.frames["train"]["is_pro"].to_list() == [1, 0]
    assert result.report.steps[0].rows_in == result.report.steps[0].rows_out == 2


def test_cast_parses_and_handles_bad_values_as_asked() -> None:
    frame = pl.DataFrame({"day": ["2024-01-02", "not a day", None], "n": ["1", "2", "x"]})
    with pytest.raises(InvalidInputError, match=r"1 value\(s\) of 'day' do not convert to date"):
        prepare(frame, _only_steps(Cast(column="day", type="date")))
    result = prepare(
        frame,
        _only_steps(
            Cast(column="day", type="date", format="%Y-%m-%d", on_error="quarantine"),
            Cast(column="n", type="int64", on_error="null"),
        ),
    )
    train = result.frames["train"]
    assert train.schema["day"] == pl.Date and train.schema["n"] == pl.Int64
    assert train["day"].to_list() == [date(2024, 1, 2), None]  # a null stays a null
    assert result.quarantine is not None
    assert result.quarantine["day"].to_list() == ["not a day"]  # the evidence, uncast
    assert result.quarantine["_reason"].to_list() == ["day does not convert to date"]


def test_bool_cast_reads_words() -> None:
    frame = pl.DataFrame({"flag": ["yes", "No", "1", "maybe"]})
    result = prepare(frame, _only_steps(Cast(column="flag", type="bool", on_error="drop")))
    assert result.frames["train"]["flag"].to_list() == [True, False, True]
    assert result.report.steps[0].dropped == 1


CONTRACT = {
    "columns": {
        "age": {"type": "int", "min": 0, "max": 120},
        "plan": {"type": "string", "allowed": ["basic", "pro"]},
    }
}


def test_contract_quarantines_rows_with_their_reason() -> None:
    frame = pl.DataFrame(
        {"age": [30, 150, -1, 40, 200], "plan": ["basic", "pro", "gold", "pro", "basic"]}
    )
    result = prepare(frame, _only_steps(ContractCheck(contract=CONTRACT)))
    assert result.frames["train"]["age"].to_list() == [30, 40]
    quarantine = result.quarantine
    assert quarantine is not None
    assert quarantine["_row"].to_list() == [1, 2, 4]
    assert quarantine["_reason"].to_list() == [
        "age: above max 120",
        "age: below min 0; plan: not an allowed value",
        "age: above max 120",
    ]
    assert set(quarantine["_step"]) == {"steps[0] contract"}
    step = result.report.steps[0]
    assert (step.rows_in, step.rows_out, step.quarantined, step.dropped) == (5, 2, 3, 0)
    assert step.reasons["age: above max 120"] == 2

    dropped = prepare(frame, _only_steps(ContractCheck(contract=CONTRACT, action="drop")))
    assert dropped.quarantine is None and dropped.report.dropped == 3


def test_contract_object_is_stored_as_its_dict() -> None:
    from mlcycle.datasets.contracts import Contract

    contract = Contract.from_dict(CONTRACT)
    step = ContractCheck.model_validate({"contract": contract})
    assert step.contract == contract.to_dict()
    assert step == ContractCheck(contract=contract.to_dict())
    assert (
        PrepareSpec(steps=[step]).digest()
        == PrepareSpec(steps=[ContractCheck(contract=CONTRACT)]).digest()
    )
    with pytest.raises(
        InvalidInputError, match=r"line 2: steps\[0\]\.contract: not a valid contract"
    ):
        PrepareSpec.from_yaml(
            "steps:\n  - {op: contract, contract: {columns: {age: {type: integer}}}}\n"
        )


def test_no_row_disappears_without_being_counted() -> None:
    rng = np.random.default_rng(3)
    n = 1000
    frame = pl.DataFrame(
        {
            "id": rng.integers(0, 900, n),
            "age": rng.integers(-20, 160, n),
            "plan": rng.choice(np.array(["basic", "pro", "gold", None], dtype=object), n),
            "y": rng.integers(0, 2, n),
        }
    )
    spec = PrepareSpec(
        target="y",
        steps=[
            DropDuplicates(subset=["id"]),
            DropNulls(columns=["plan"], action="quarantine"),
            ContractCheck(contract=CONTRACT),
            DropWhere(expr="age = 0"),
        ],
        features=[Passthrough(columns=["age"])],
        split=Split(test=0.2, validation=0.1, seed=1),
    )
    result = prepare(frame, spec)
    report = result.report
    for step in report.steps:
        assert step.rows_in == step.rows_out + step.dropped + step.quarantined
    assert report.rows_in == n == report.rows_out + report.dropped + report.quarantined
    assert report.quarantined > 0 and report.dropped > 0
    assert sum(report.splits.values()) == report.rows_out
    assert result.quarantine is not None and result.quarantine.height == report.quarantined
    # Every quarantined row is traceable to a distinct input row.
    assert result.quarantine["_row"].n_unique() == report.quarantined


def test_input_may_be_pandas_pyarrow_or_polars() -> None:
    frame = customers(50)
    spec = _only_steps(Filter(expr="age >= 40"))
    expected = prepare(frame, spec).frames["train"]
    assert prepare(frame.to_pandas(), spec).frames["train"].equals(expected)
    assert prepare(frame.to_arrow(), spec).frames["train"].equals(expected)
    assert prepare(frame.lazy(), spec).frames["train"].equals(expected)
    assert isinstance(frame.to_arrow(), pa.Table)
    with pytest.raises(InvalidInputError, match="data: expected a polars, pandas or pyarrow table"):
        prepare([1, 2, 3], spec)


def test_reserved_column_names_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="_reason"):
        prepare(pl.DataFrame({"_reason": [1]}), _only_steps())


# ---------------------------------------------------------------- splits


def test_random_split_sizes_and_determinism() -> None:
    frame = customers(1000)
    spec = PrepareSpec(split=Split(test=0.2, validation=0.1, seed=5))
    a = prepare(frame, spec)
    assert a.report.splits == {"train": 700, "validation": 100, "test": 200}
    b = prepare(frame, spec)
    for name in ("train", "validation", "test"):
        assert a.frames[name].equals(b.frames[name])
    other = prepare(frame, PrepareSpec(split=Split(test=0.2, validation=0.1, seed=6)))
    assert not other.frames["test"].equals(a.frames["test"])
    ids = pl.concat([a.frames[n] for n in a.frames])["customer_id"]
    assert ids.n_unique() == 1000  # a partition: no row twice, none lost
    assert "validation" not in prepare(frame, PrepareSpec()).frames


def test_stratified_split_keeps_class_ratios() -> None:
    n = 1000
    labels = np.array([0] * 900 + [1] * 80 + [2] * 20)
    frame = pl.DataFrame({"x": np.arange(n), "y": labels})
    spec = PrepareSpec(
        target="y", split=Split(method="stratified", test=0.25, validation=0.15, seed=2)
    )
    result = prepare(frame, spec)
    for name, fraction in (("train", 0.60), ("validation", 0.15), ("test", 0.25)):
        counts = dict(result.frames[name]["y"].value_counts().iter_rows())
        assert counts == {
            0: round(900 * fraction),
            1: round(80 * fraction),
            2: round(20 * fraction),
        }
    random = prepare(frame, PrepareSpec(target="y", split=Split(test=0.25, seed=2)))
    assert random.frames["test"].height == 250  # sanity: random split sizes are global


def test_stratified_split_keeps_a_tiny_class_in_train_and_says_so() -> None:
    frame = pl.DataFrame({"x": np.arange(101), "y": ["a"] * 100 + ["rare"]})
    result = prepare(frame, PrepareSpec(target="y", split=Split(method="stratified", test=0.2)))
    assert "rare" in result.frames["train"]["y"].to_list()
    assert "rare" not in result.frames["test"]["y"].to_list()
    assert any("'rare'" in note and "test" in note for note in result.report.notes)
    assert "note:" in result.report.summary()


def test_time_split_puts_the_newest_rows_in_test() -> None:
    start = date(2024, 1, 1)
    days = [start + timedelta(days=int(d)) for d in np.random.default_rng(0).permutation(100)]
    frame = pl.DataFrame({"day": days, "x": np.arange(100)})
    spec = PrepareSpec(split=Split(method="time", column="day", test=0.2, validation=0.1))
    result = prepare(frame, spec)
    train, val, test = (result.frames[n]["day"] for n in ("train", "validation", "test"))
    assert (train.len(), val.len(), test.len()) == (70, 10, 20)
    assert train.max() < val.min() and val.max() < test.min()  # type: ignore[operator]
    assert test.min() == start + timedelta(days=80)


def test_time_split_never_cuts_through_a_timestamp() -> None:
    frame = pl.DataFrame({"t": [1, 2, 3, 4, 5, 5, 5, 5, 6, 7], "x": range(10)})
    result = prepare(frame, PrepareSpec(split=Split(method="time", column="t", test=0.2)))
    assert result.frames["test"]["t"].to_list() == [6, 7]
    tied = prepare(frame, PrepareSpec(split=Split(method="time", column="t", test=0.4)))
    # 4 rows asked for; the 5s cannot straddle the cut, so all of them go to test.
    assert tied.frames["test"]["t"].to_list() == [5, 5, 5, 5, 6, 7]
    assert any("share a timestamp" in note for note in tied.report.notes)


def test_split_errors_are_clear() -> None:
    frame = pl.DataFrame({"t": [1, None, 3], "x": [1, 2, 3]})
    with pytest.raises(InvalidInputError, match="1 row\\(s\\) have no 't'"):
        prepare(frame, PrepareSpec(split=Split(method="time", column="t")))
    with pytest.raises(InvalidInputError, match="the test split of 3 cleaned row"):
        prepare(frame, PrepareSpec(split=Split(test=0.1)))
    with pytest.raises(InvalidInputError, match="no rows left of 3"):
        prepare(frame, PrepareSpec(steps=[Filter(expr="x > 5")]))


# ---------------------------------------------------------------- the feature transformer


def test_transformer_is_fitted_on_train_only() -> None:
    frame = pl.DataFrame({"x": np.arange(1000, dtype=np.float64), "t": np.arange(1000)})
    spec = PrepareSpec(
        features=[Scale(columns=["x"])],
        split=Split(method="time", column="t", test=0.3),
    )
    result = prepare(frame, spec)
    scaler = result.transformer.named_steps["features"].named_transformers_["scale0"]
    assert scaler.mean_[0] == pytest.approx(result.frames["train"]["x"].mean())
    assert scaler.mean_[0] == pytest.approx(349.5)  # rows 0..699, not the full-data 499.5
    assert list(result.X("train", transformed=True).columns) == ["x"]


def test_transformer_compiles_imputer_before_scaler_and_keeps_names() -> None:
    spec = PrepareSpec.from_yaml(SPEC_YAML)
    pipeline = spec.feature_transformer()
    columns = pipeline.named_steps["features"]
    names = [name for name, _, _ in columns.transformers]
    assert names == ["impute0_scale1", "scale1", "encode2"]
    impute_then_scale = columns.transformers[0][1]
    assert [step for step, _ in impute_then_scale.steps] == ["impute", "scale"]
    assert columns.verbose_feature_names_out is False
    assert not hasattr(columns, "transformers_")  # unfitted


def test_transformer_pickles_and_ignores_unknown_categories() -> None:
    frame = customers(300).with_columns(
        pl.when(pl.col("customer_id") % 10 == 0).then(None).otherwise(pl.col("age")).alias("age")
    )
    result = prepare(frame, PrepareSpec.from_yaml(SPEC_YAML))
    restored = pickle.loads(pickle.dumps(result.transformer))
    unseen = pl.DataFrame(
        {
            "customer_id": [9999, 9998],
            "age": [None, 30.0],
            "tenure_days": [365, 730],
            "plan": ["enterprise", "pro"],
            "tenure_years": [1.0, 2.0],
        }
    ).to_pandas()
    out = restored.transform(unseen)
    assert list(out.columns) == ["age", "tenure_years", "plan_basic", "plan_plus", "plan_pro"]
    assert out.loc[0, ["plan_basic", "plan_plus", "plan_pro"]].tolist() == [0.0, 0.0, 0.0]
    assert out.loc[1, ["plan_basic", "plan_plus", "plan_pro"]].tolist() == [0.0, 0.0, 1.0]
    assert not out.isna().any().any()  # the missing age was imputed
    assert out.equals(result.transformer.transform(unseen))


def test_remainder_passthrough_and_drop() -> None:
    frame = pl.DataFrame(
        {"a": [1.0, 2.0, 3.0, 4.0], "b": [5.0, 6.0, 7.0, 8.0], "c": ["x", "y", "x", "y"]}
    )
    spec = PrepareSpec(
        features=[Scale(columns=["a"], method="minmax"), Encode(columns=["c"], method="ordinal")],
        remainder="passthrough",
        split=None,
    )
    result = prepare(frame, spec)
    out = result.X(transformed=True)
    assert list(out.columns) == ["a", "c", "b"]
    assert out["a"].tolist() == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])
    assert out["c"].tolist() == [0.0, 1.0, 0.0, 1.0]
    dropped = PrepareSpec(features=[Passthrough(columns=["a"])], split=None)
    assert list(prepare(frame, dropped).X(transformed=True).columns) == ["a"]


def test_missing_feature_column_names_the_transform() -> None:
    spec = PrepareSpec(features=[Passthrough(columns=["a"]), Scale(columns=["nope"])], split=None)
    with pytest.raises(InvalidInputError) as info:
        prepare(pl.DataFrame({"a": [1.0, 2.0]}), spec)
    assert info.value.details["field"] == "features[1].columns"


def test_transformer_and_logistic_regression_learn_breast_cancer() -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    raw = load_breast_cancer(as_frame=True).frame
    features = [c for c in raw.columns if c != "target"]
    spec = PrepareSpec(
        target="target",
        steps=[DropDuplicates()],
        features=[Impute(columns=features, strategy="median"), Scale(columns=features)],
        split=Split(method="stratified", test=0.25, seed=0),
    )
    prepared = prepare(raw, spec)
    model = make_pipeline(prepared.transformer, LogisticRegression(max_iter=1000))
    model.fit(prepared.X("train"), prepared.y("train"))
    accuracy = (model.predict(prepared.X("test")) == prepared.y("test").to_numpy()).mean()
    assert accuracy > 0.93
    assert prepared.report.splits == {"train": 427, "test": 142}
    assert set(prepared.y("test").unique()) == {0, 1}
