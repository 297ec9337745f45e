"""Dataset profiles: exact statistics, sketches within their bounds, merging, round trips, diffs."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import orjson
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from mlcycle.datasets.profile import (
    QUANTILES,
    DatasetProfile,
    HyperLogLog,
    ProfileBuilder,
    _hash_numbers,
    diff_profiles,
    profile_table,
)
from mlcycle.errors import InvalidInputError

EXACT_FIELDS = ("count", "null_count", "nan_count", "min", "max", "top", "other_count",
                "true_count", "top_error", "kind", "type")


def _rank_error(values: np.ndarray, estimates: list[float], qs: tuple[float, ...]) -> float:
    """The largest gap between asked and true rank of the sketch's answers."""
    ordered = np.sort(values)
    ranks = np.searchsorted(ordered, np.asarray(estimates), side="right") / ordered.size
    return float(np.max(np.abs(ranks - np.asarray(qs))))


def _mixed_table(n: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    floats = rng.normal(10.0, 3.0, n)
    floats[rng.random(n) < 0.02] = np.nan
    stamps = np.datetime64("2024-01-01", "us") + rng.integers(0, 86_400 * 10**6 * 30, n)
    return pa.table({
        "x": pa.array(floats, mask=rng.random(n) < 0.05),
        "i": pa.array(rng.integers(-50, 50, n), mask=rng.random(n) < 0.1),
        "c": pa.array(rng.choice(["red", "green", "blue", "teal"], n, p=[0.5, 0.3, 0.15, 0.05]),
                      mask=rng.random(n) < 0.03),
        "b": pa.array(rng.random(n) < 0.25, mask=rng.random(n) < 0.01),
        "t": pa.array(stamps, type=pa.timestamp("us", tz="UTC")),
    })


# --------------------------------------------------------------------------- exact statistics


def test_numeric_stats_match_numpy_with_nulls_and_nans() -> None:
    table = _mixed_table(50_000)
    prof = profile_table(table)
    x = table.column("x").to_numpy(zero_copy_only=False)  # nulls -> NaN
    nulls = table.column("x").null_count
    valid = x[~np.isnan(x)]
    col = prof.columns["x"]
    assert col.kind == "numeric" and col.type == "double"
    assert col.null_count == nulls
    assert col.nan_count == int(np.isnan(x).sum()) - nulls > 0
    assert col.count == valid.size == prof.num_rows - col.null_count - col.nan_count
    assert col.min == valid.min() and col.max == valid.max()
    assert col.mean == pytest.approx(valid.mean(), rel=1e-12)
    assert col.std == pytest.approx(valid.std(ddof=0), rel=1e-12)
    estimates = [col.quantiles[f"{q:g}"] for q in QUANTILES]
    assert _rank_error(valid, estimates, QUANTILES) < 0.02

    ints = table.column("i").drop_null().to_numpy()
    icol = prof.columns["i"]
    assert icol.type == "int64" and isinstance(icol.min, int)
    assert (icol.min, icol.max) == (ints.min(), ints.max())
    assert icol.mean == pytest.approx(ints.mean(), rel=1e-12)
    assert icol.distinct == len(np.unique(ints)) == 100  # exact below 1,024 distinct values


def test_small_column_quantiles_are_exact() -> None:
    values = np.random.default_rng(3).normal(size=150)
    col = profile_table(pa.table({"v": values})).columns["v"]
    for q in QUANTILES:
        assert col.quantiles[f"{q:g}"] == np.quantile(values, q, method="inverted_cdf")
    assert col.quantile(0.5) == np.quantile(values, 0.5, method="inverted_cdf")


def test_nan_is_counted_apart_from_nulls_and_values() -> None:
    values = pa.array([1.0, math.nan, None, 3.0, math.nan])
    col = profile_table(pa.table({"v": values})).columns["v"]
    assert (col.count, col.null_count, col.nan_count) == (2, 1, 2)
    assert (col.min, col.max, col.mean, col.std) == (1.0, 3.0, 2.0, 1.0)
    assert col.rows == 5


def test_categorical_and_boolean_counts_are_exact() -> None:
    table = _mixed_table(20_000)
    prof = profile_table(table, top_k=3)
    expected = pd.Series(table.column("c").to_pylist()).value_counts()
    cat = prof.columns["c"]
    assert cat.kind == "categorical" and cat.type == "string"
    assert cat.top == list(zip(expected.index[:3], expected.to_numpy()[:3].tolist(), strict=True))
    assert cat.other_count == int(expected.iloc[3:].sum())
    assert cat.distinct == 4 and cat.top_error == 0
    assert cat.null_count == table.column("c").null_count

    flags = table.column("b")
    b = prof.columns["b"]
    trues = int(np.sum(flags.drop_null().to_numpy(zero_copy_only=False)))
    assert b.kind == "boolean" and b.true_count == trues
    assert dict(b.top) == {True: trues, False: b.count - trues}
    assert b.distinct == 2


def test_datetimes_report_iso_strings() -> None:
    stamps = [datetime(2024, 1, d, 12, tzinfo=UTC) for d in (1, 2, 3, 4)]
    prof = profile_table(pa.table({
        "t": pa.array(stamps, type=pa.timestamp("ns", tz="UTC")),
        "naive": pa.array([s.replace(tzinfo=None) for s in stamps], type=pa.timestamp("s")),
        "d": pa.array([s.date() for s in stamps], type=pa.date32()),
    }))
    t = prof.columns["t"]
    assert t.kind == "datetime"
    assert (t.min, t.max) == ("2024-01-01T12:00:00+00:00", "2024-01-04T12:00:00+00:00")
    assert t.mean == "2024-01-03T00:00:00+00:00"
    assert t.std == pytest.approx(np.std([0, 1, 2, 3]) * 86_400)  # seconds
    assert t.quantiles["0.5"] == "2024-01-02T12:00:00+00:00"
    assert prof.columns["naive"].min == "2024-01-01T12:00:00"
    assert prof.columns["d"].max == "2024-01-04"
    assert t.quantile(0.0) == stamps[0].timestamp() * 1e6  # the sketch speaks epoch µs


# --------------------------------------------------------------------------- sketches


def test_large_column_quantiles_within_rank_error() -> None:
    values = np.random.default_rng(7).lognormal(size=1_000_000)
    col = profile_table(pa.table({"v": values})).columns["v"]
    qs = (0.001, 0.1, 0.5, 0.9, 0.999)
    assert _rank_error(values, col.quantile(np.array(qs)).tolist(), qs) < 0.015
    assert col.count == values.size and col.min == values.min()


def test_hll_estimate_within_a_few_percent() -> None:
    rng = np.random.default_rng(11)
    for n in (100_000, 1_000_000):
        hll = HyperLogLog(12)
        keys = rng.permutation(n * 4)[:n].astype(np.int64)
        hll.update_hashes(_hash_numbers(np.concatenate([keys, keys[: n // 2]])))  # duplicates
        assert hll.estimate() == pytest.approx(n, rel=0.05)
    small = HyperLogLog(12)
    small.update_hashes(_hash_numbers(np.arange(40, dtype=np.int64)))
    assert round(small.estimate()) in (39, 40, 41)
    empty = HyperLogLog(12)
    assert empty.estimate() == 0.0


def test_hll_merge_is_the_union() -> None:
    a, b, both = HyperLogLog(), HyperLogLog(), HyperLogLog()
    left, right = np.arange(0, 60_000), np.arange(40_000, 100_000)
    a.update_hashes(_hash_numbers(left))
    b.update_hashes(_hash_numbers(right))
    both.update_hashes(_hash_numbers(np.arange(0, 100_000)))
    a.merge(b)
    assert np.array_equal(a.registers, both.registers)


def test_numeric_hash_is_pandas_stable_hash() -> None:
    ints = np.array([0, 1, -1, 2**62, -(2**63)], dtype=np.int64)
    floats = np.array([0.0, 1.5, -3.25, 1e300])
    assert np.array_equal(_hash_numbers(ints), pd.util.hash_array(ints))
    assert np.array_equal(_hash_numbers(floats), pd.util.hash_array(floats))
    assert _hash_numbers(np.array([-0.0]))[0] == _hash_numbers(np.array([0.0]))[0]


def test_distinct_of_a_high_cardinality_column() -> None:
    values = np.random.default_rng(5).integers(0, 10**12, 200_000)
    col = profile_table(pa.table({"v": values})).columns["v"]
    assert col.distinct == pytest.approx(len(np.unique(values)), rel=0.05)
    strings = pa.array([f"id-{i}" for i in range(30_000)])
    scol = profile_table(pa.table({"s": strings})).columns["s"]
    assert scol.distinct == pytest.approx(30_000, rel=0.05)
    assert scol.top_error > 0 and len(scol.sketch.candidates) <= 1000


def test_heavy_hitters_survive_truncation_with_bounded_error() -> None:
    rng = np.random.default_rng(9)
    builder = ProfileBuilder(top_k=5)
    truth: dict[str, int] = {}
    for chunk in range(6):
        rare = [f"rare-{chunk}-{i}" for i in range(3_000)]
        heavy = rng.choice(["alpha", "beta", "gamma"], 20_000, p=[0.6, 0.3, 0.1]).tolist()
        for v in rare + heavy:
            truth[v] = truth.get(v, 0) + 1
        builder.update(pa.table({"s": rare + heavy}))
    col = builder.result().columns["s"]
    assert [v for v, _ in col.top[:3]] == ["alpha", "beta", "gamma"]
    assert 0 < col.top_error <= col.count / 1001
    for value, count in col.top:
        assert count <= truth[value] <= count + col.top_error
    assert col.other_count == col.count - sum(c for _, c in col.top)


def test_cdf_and_histogram_match_numpy_on_exact_sketches() -> None:
    values = np.random.default_rng(2).normal(size=180)
    col = profile_table(pa.table({"v": values})).columns["v"]
    edges = np.array([-3.0, -1.0, 0.0, 0.5, 1.0, 3.0])
    np.testing.assert_allclose(col.histogram(edges), np.histogram(values, edges)[0])
    points = np.array([[-1.0, 0.0], [math.nan, 2.0]])
    expected = np.array([[np.mean(values <= -1.0), np.mean(values <= 0.0)],
                         [np.nan, np.mean(values <= 2.0)]])
    np.testing.assert_allclose(col.cdf(points), expected)
    assert col.cdf(values.max()) == 1.0
    cat = profile_table(pa.table({"s": ["a", "b"]})).columns["s"]
    with pytest.raises(InvalidInputError) as err:
        cat.quantile(0.5)
    assert err.value.details["field"] == "s"
    with pytest.raises(InvalidInputError):
        col.histogram([1.0, 1.0])


# --------------------------------------------------------------------------- merging


def _assert_same_exact(a: DatasetProfile, b: DatasetProfile) -> None:
    assert a.num_rows == b.num_rows
    assert list(a.columns) == list(b.columns)
    for name, ca in a.columns.items():
        cb = b.columns[name]
        for f in EXACT_FIELDS:
            assert getattr(ca, f) == getattr(cb, f), (name, f)
        for f in ("mean", "std"):
            va, vb = getattr(ca, f), getattr(cb, f)
            if isinstance(va, float):
                assert va == pytest.approx(vb, rel=1e-12), (name, f)
            else:
                assert va == vb, (name, f)


def test_merge_equals_whole() -> None:
    table = _mixed_table(120_000, seed=4)
    whole = profile_table(table)
    parts = [ProfileBuilder().update(table.slice(o, 40_000)) for o in range(0, 120_000, 40_000)]
    merged = parts[0].merge(parts[1]).merge(parts[2]).result()
    batches = table.to_batches(max_chunksize=7_000)
    streamed = profile_table(pa.RecordBatchReader.from_batches(table.schema, batches))
    into_empty = ProfileBuilder().merge(ProfileBuilder().update(table)).result()
    for other in (merged, streamed, into_empty):
        _assert_same_exact(whole, other)
        x = table.column("x").to_numpy(zero_copy_only=False)
        estimates = [other.columns["x"].quantiles[f"{q:g}"] for q in QUANTILES]
        assert _rank_error(x[~np.isnan(x)], estimates, QUANTILES) < 0.02
        assert other.columns["i"].distinct == whole.columns["i"].distinct == 100
        assert other.columns["t"].distinct == pytest.approx(
            whole.columns["t"].distinct, rel=0.03)
    doubled = ProfileBuilder().update(table.slice(0, 1000))
    doubled.merge(doubled)
    twice = profile_table(pa.concat_tables([table.slice(0, 1000)] * 2))
    _assert_same_exact(doubled.result(), twice)


def test_round_trip_is_exact_and_still_merges() -> None:
    table = _mixed_table(30_000, seed=8)
    first, second = table.slice(0, 10_000), table.slice(10_000)
    prof = profile_table(first)
    blob = prof.to_json()
    back = DatasetProfile.from_json(blob)
    assert back == prof
    assert back.to_json() == blob
    assert DatasetProfile.from_dict(orjson.loads(orjson.dumps(prof.to_dict()))) == prof
    merged = back.merge(profile_table(second))
    _assert_same_exact(merged, profile_table(table))
    again = ProfileBuilder.from_profile(back).update(second).result()
    _assert_same_exact(again, profile_table(table))


def test_non_finite_values_survive_json() -> None:
    prof = profile_table(pa.table({"v": [1.0, math.inf, -math.inf]}))
    col = prof.columns["v"]
    assert (col.min, col.max) == (-math.inf, math.inf)
    text = prof.to_json()
    assert b"Infinity" in text and b"NaN" in text  # mean of inf and -inf is NaN
    back = DatasetProfile.from_json(text).columns["v"]
    assert back.max == math.inf and math.isnan(back.mean)


def test_from_dict_rejects_what_is_not_a_profile() -> None:
    with pytest.raises(InvalidInputError) as err:
        DatasetProfile.from_dict({"format": "something else"})
    assert err.value.details["field"] == "format"
    broken = profile_table(pa.table({"v": [1, 2]})).to_dict()
    del broken["columns"][0]["count"]
    with pytest.raises(InvalidInputError) as err:
        DatasetProfile.from_dict(broken)
    assert err.value.details["field"] == "count"
    with pytest.raises(InvalidInputError):
        DatasetProfile.from_json(b"{not json")


# --------------------------------------------------------------------------- inputs


def test_all_frame_kinds_give_the_same_profile() -> None:
    n = 100
    rng = np.random.default_rng(1)
    ints = rng.integers(0, 9, n).astype(object)
    ints[::7] = None
    floats = rng.normal(size=n)
    strings = rng.choice(["a", "b", "c"], n).astype(object)
    strings[::5] = None
    flags = (rng.random(n) < 0.5).astype(object)
    flags[::11] = None
    stamps = (np.datetime64("2024-03-01", "us") + rng.integers(0, 10**12, n)).astype(object)
    data = {"i": ints.tolist(), "f": floats.tolist(), "s": strings.tolist(),
            "b": flags.tolist(), "t": stamps.tolist()}
    table = pa.table({
        "i": pa.array(data["i"], type=pa.int64()),
        "f": pa.array(data["f"]),
        "s": pa.array(data["s"]),
        "b": pa.array(data["b"], type=pa.bool_()),
        "t": pa.array(data["t"], type=pa.timestamp("us")),
    })
    reference = profile_table(table)
    assert reference.columns["i"].null_count == 15
    frames = [
        table.to_batches()[0],
        pl.from_arrow(table),
        table.to_pandas(types_mapper=pd.ArrowDtype),
        pd.DataFrame({
            "i": pd.array(data["i"], dtype="Int64"),
            "f": data["f"],
            "s": pd.array(data["s"], dtype="str"),
            "b": pd.array(data["b"], dtype="boolean"),
            "t": pd.array(stamps.tolist(), dtype="datetime64[us]"),
        }),
        table.replace_schema_metadata().cast(pa.schema([
            ("i", pa.int64()), ("f", pa.float64()), ("s", pa.dictionary(pa.int8(), pa.string())),
            ("b", pa.bool_()), ("t", pa.timestamp("us")),
        ])),
    ]
    for frame in frames:
        assert profile_table(frame).to_dict() == reference.to_dict(), type(frame)


def test_empty_table() -> None:
    schema = pa.schema([("x", pa.float64()), ("s", pa.string()), ("t", pa.timestamp("ms"))])
    prof = profile_table(schema.empty_table())
    assert prof.num_rows == 0 and list(prof.columns) == ["x", "s", "t"]
    x = prof.columns["x"]
    assert (x.count, x.min, x.mean, x.std, x.quantiles, x.distinct) == (0, None, None, None, {}, 0)
    assert math.isnan(x.quantile(0.5)) and x.histogram([0.0, 1.0]).tolist() == [0.0]
    assert prof.columns["s"].top == [] and prof.columns["s"].distinct == 0
    assert DatasetProfile.from_json(prof.to_json()) == prof
    grown = prof.merge(profile_table(pa.table({"x": [1.0, 2.0], "s": ["a", None],
                                               "t": pa.array([0, 1], pa.timestamp("ms"))})))
    assert grown.columns["x"].mean == 1.5 and grown.columns["s"].top == [("a", 1)]
    assert ProfileBuilder().result().num_rows == 0


def test_all_null_columns() -> None:
    typed = profile_table(pa.table({"x": pa.array([None] * 4, type=pa.float64())})).columns["x"]
    assert (typed.kind, typed.count, typed.null_count, typed.mean, typed.null_fraction) == (
        "numeric", 0, 4, None, 1.0)
    # pandas gives Arrow type null for an all-None column; a later batch may bring the real type
    builder = ProfileBuilder().update(pd.DataFrame({"x": [None, None], "y": [1, 2]}))
    assert builder.result().columns["x"].type == "null"
    builder.update(pa.table({"x": [1.5, None], "y": [3, 4]}))
    builder.update(pd.DataFrame({"x": [None], "y": [5]}))
    col = builder.result().columns["x"]
    assert (col.type, col.count, col.null_count, col.mean) == ("double", 1, 4, 1.5)


def test_schema_mismatch_names_the_column_and_changes_nothing() -> None:
    builder = ProfileBuilder().update(pa.table({"a": [1, 2], "b": ["x", "y"]}))
    before = builder.result()
    with pytest.raises(InvalidInputError) as err:
        builder.update(pa.table({"a": [3], "b": [1.0]}))
    assert err.value.details["field"] == "b" and "double" in err.value.message
    with pytest.raises(InvalidInputError) as err:
        builder.update(pa.table({"a": [3]}))
    assert err.value.details["field"] == "b"
    with pytest.raises(InvalidInputError) as err:
        builder.update(pa.table({"a": [3], "b": ["z"], "c": [1]}))
    assert err.value.details["field"] == "c"
    assert builder.result() == before
    with pytest.raises(InvalidInputError) as err:
        builder.merge(ProfileBuilder().update(pa.table({"a": ["1"], "b": ["z"]})))
    assert err.value.details["field"] == "a"
    # the same columns in another order are fine
    builder.update(pa.table({"b": ["z"], "a": [3]}))
    assert builder.result().columns["a"].max == 3


def test_bad_inputs_are_rejected_clearly() -> None:
    with pytest.raises(InvalidInputError) as err:
        ProfileBuilder(top_k=0)
    assert err.value.details["field"] == "top_k"
    with pytest.raises(InvalidInputError) as err:
        profile_table("not a table")
    assert err.value.details["field"] == "data"
    with pytest.raises(InvalidInputError) as err:
        ProfileBuilder().update({"a": [1]})
    assert err.value.details["field"] == "batch"
    with pytest.raises(InvalidInputError) as err:
        profile_table(pd.DataFrame({"ok": [1, 2], "mixed": [1, "two"]}))
    assert err.value.details["field"] == "mixed"
    with pytest.raises(InvalidInputError):
        ProfileBuilder(hll_p=12).merge(ProfileBuilder(hll_p=10))


# --------------------------------------------------------------------------- diffs


def test_diff_of_identical_profiles_is_empty() -> None:
    table = _mixed_table(100_000)  # large enough for compacted sketches
    prof = profile_table(table)
    diff = diff_profiles(prof, DatasetProfile.from_json(prof.to_json()))
    assert diff.is_empty and diff.changes == []
    assert profile_table(table) == prof  # reproducible, sketches included


def test_diff_reports_schema_changes() -> None:
    a = profile_table(pa.table({"keep": [1, 2], "gone": ["x", "y"], "retyped": [1, 2]}))
    b = profile_table(pa.table({"keep": [1, 2], "retyped": [1.0, 2.0], "new": [True, False]}))
    diff = diff_profiles(a, b)
    assert diff.added == ["new"] and diff.removed == ["gone"]
    assert diff.type_changed == {"retyped": ("int64", "double")}
    schema_rows = [c for c in diff.changes if c.stat == "type"]
    assert [(c.column, c.a, c.b) for c in schema_rows] == [
        ("new", None, "bool"), ("gone", "string", None), ("retyped", "int64", "double")]
    assert not diff.is_empty
    assert orjson.loads(orjson.dumps(diff.to_dict()))["added"] == ["new"]


def test_diff_reports_a_shifted_distribution_and_category_changes() -> None:
    rng = np.random.default_rng(12)
    n = 20_000
    a = profile_table(pa.table({
        "x": rng.normal(0.0, 1.0, n),
        "c": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
    }))
    x_b = rng.normal(0.5, 1.0, n)
    x_b[:1000] = np.nan
    b = profile_table(pa.table({
        "x": pa.array(x_b, mask=np.arange(n) >= n - 2000),
        "c": rng.choice(["a", "b", "d"], n, p=[0.3, 0.3, 0.4]),
    }))
    rows = {(c.column, c.stat): c for c in diff_profiles(a, b).changes}
    assert rows[("x", "mean")].delta == pytest.approx(0.5, abs=0.05)
    assert rows[("x", "q0.5")].delta == pytest.approx(0.5, abs=0.08)
    assert rows[("x", "null_fraction")].b == pytest.approx(0.1)
    assert rows[("x", "nan_fraction")].b == pytest.approx(0.05)
    assert rows[("c", "appeared")].b == "d" and rows[("c", "appeared")].delta == pytest.approx(
        0.4, abs=0.02)
    assert rows[("c", "disappeared")].a == "c"
    assert rows[("c", "freq[a]")].delta == pytest.approx(-0.2, abs=0.02)
    quiet = diff_profiles(a, b, rtol=10.0)
    assert all(c.stat in ("appeared", "disappeared") for c in quiet.changes)
