"""Drift statistics against SciPy, verdicts on seeded data, profile references, and errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from mlcycle.datasets.profile import profile_table
from mlcycle.errors import InvalidInputError
from mlcycle.monitoring import (
    ColumnDrift,
    DriftConfig,
    DriftReport,
    detect_drift,
    render_drift_table,
)
from mlcycle.monitoring._drift_stats import (
    Ecdf,
    chi2_two_sample,
    js_distance,
    ks_pvalue,
    ks_wasserstein,
    psi,
)

# --------------------------------------------------------------------------- statistics


SAMPLES = {
    "normal, equal sizes": lambda r: (r.normal(size=3000), r.normal(0.2, 1.1, size=3000)),
    "unequal sizes": lambda r: (r.exponential(size=5000), r.exponential(1.2, size=700)),
    "ties (integers)": lambda r: (
        r.poisson(3, size=4000).astype(float),
        r.poisson(3.3, size=2500).astype(float),
    ),
    "identical": lambda r: (np.arange(100.0), np.arange(100.0)),
}


@pytest.mark.parametrize("case", SAMPLES)
def test_ks_and_wasserstein_match_scipy(case: str) -> None:
    a, b = SAMPLES[case](np.random.default_rng(7))
    ks, wasserstein = ks_wasserstein(Ecdf.of_sample(a), Ecdf.of_sample(b))
    assert ks == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-9)
    assert wasserstein == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("case", SAMPLES)
def test_ks_pvalue_matches_scipy_asymptotic(case: str) -> None:
    a, b = SAMPLES[case](np.random.default_rng(7))
    ks, _ = ks_wasserstein(Ecdf.of_sample(a), Ecdf.of_sample(b))
    expected = stats.ks_2samp(a, b, method="asymp").pvalue
    assert ks_pvalue(ks, a.size, b.size) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_ks_pvalue_of_large_samples_is_kolmogorovs_limit() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=60_000), rng.normal(0.01, 1, size=60_000)
    ks, _ = ks_wasserstein(Ecdf.of_sample(a), Ecdf.of_sample(b))
    expected = stats.ks_2samp(a, b, method="asymp").pvalue
    assert ks_pvalue(ks, a.size, b.size) == pytest.approx(expected, rel=0.015)


def test_ks_pvalue_is_vectorised_over_columns() -> None:
    d = np.array([0.01, 0.05, 0.2])
    n = np.array([1000, 2000, 50])
    m = np.array([1000, 500, 60])
    expected = [
        stats.kstwo.sf(di, round(ni * mi / (ni + mi))) for di, ni, mi in zip(d, n, m, strict=True)
    ]
    assert ks_pvalue(d, n, m) == pytest.approx(expected)


def test_chi2_two_sample_matches_chi2_contingency() -> None:
    ref = np.array([500, 300, 150, 50])
    cur = np.array([260, 120, 90, 30])
    statistic, dof = chi2_two_sample(ref, cur)
    expected = stats.chi2_contingency(np.vstack([ref, cur]), correction=False)
    assert statistic == pytest.approx(expected.statistic)
    assert dof == expected.dof
    assert stats.chi2.sf(statistic, dof) == pytest.approx(expected.pvalue)


def test_chi2_two_sample_pools_rare_levels() -> None:
    ref = np.array([500, 300, 150, 2, 1])
    cur = np.array([260, 120, 90, 0, 3])
    statistic, dof = chi2_two_sample(ref, cur)
    # the two rare levels pool into 6 values, still expected < 5 in the smaller row, so the
    # pool joins the smallest level
    pooled = stats.chi2_contingency(
        np.array([[500, 300, 153], [260, 120, 93]]), correction=False
    )
    assert (statistic, dof) == (pytest.approx(pooled.statistic), pooled.dof)
    pooled_only = stats.chi2_contingency(
        np.array([[500, 300, 150, 20], [260, 120, 90, 30]]), correction=False
    )
    assert chi2_two_sample([500, 300, 150, 12, 8], [260, 120, 90, 30, 0]) == (
        pytest.approx(pooled_only.statistic), pooled_only.dof
    )


def test_chi2_two_sample_with_one_level_is_no_evidence() -> None:
    assert chi2_two_sample([10, 0], [0, 0]) == (0.0, 0)
    assert chi2_two_sample([500], [300]) == (0.0, 0)


def test_js_distance_matches_scipy_base_2() -> None:
    p = np.array([10, 20, 30, 0, 40])
    q = np.array([5, 25, 30, 15, 25])
    assert js_distance(p, q) == pytest.approx(jensenshannon(p, q, base=2))
    assert js_distance(p, p) == 0.0
    assert js_distance([1, 0], [0, 1]) == pytest.approx(1.0)


def test_psi_by_hand() -> None:
    p, q = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    assert psi(p, q) == pytest.approx(-0.25 * np.log(0.5) + 0.25 * np.log(1.5))
    assert psi(p, p) == 0.0
    # an empty bin counts as a share of 1e-4 instead of an infinite PSI
    assert psi([1.0, 0.0], [0.9, 0.1]) == pytest.approx(
        (0.9 - 1) * np.log(0.9) + (0.1 - 1e-4) * np.log(0.1 / 1e-4)
    )


def test_ecdf_quantiles_and_cdf_match_numpy() -> None:
    x = np.random.default_rng(3).normal(size=1001)
    ecdf = Ecdf.of_sample(x)
    qs = np.array([0.0, 0.01, 0.1, 0.5, 0.9, 1.0])
    assert ecdf.quantiles(qs) == pytest.approx(np.quantile(x, qs, method="inverted_cdf"))
    points = np.array([-1.0, 0.0, 2.5])
    assert ecdf.cdf(points) == pytest.approx([(x <= v).mean() for v in points])
    weighted = Ecdf(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 1.0]), 4)
    assert weighted.cdf([0.5, 1.0, 2.5, 3.0]) == pytest.approx([0.0, 0.25, 0.75, 1.0])
    assert weighted.quantiles([0.25, 0.5, 0.76]) == pytest.approx([1.0, 2.0, 3.0])


# --------------------------------------------------------------------------- the report


def _frames(n: int, seed: int = 0, *, shift: float = 0.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    levels = np.array([f"l{i}" for i in range(8)])
    p = np.linspace(1, 2, 8) / np.linspace(1, 2, 8).sum()

    def frame(delta: float) -> pd.DataFrame:
        return pd.DataFrame({
            "x": rng.normal(delta, 1.0, size=n),
            "y": rng.lognormal(size=n),
            "c": rng.choice(levels, size=n, p=p),
        })

    return frame(0.0), frame(shift)


def test_report_statistics_equal_scipy_on_a_frame() -> None:
    ref, cur = _frames(5000, shift=0.3)
    report = detect_drift(ref, cur)
    x = report.columns["x"].statistics
    assert x["ks"] == pytest.approx(stats.ks_2samp(ref.x, cur.x).statistic)
    assert x["ks_pvalue"] == pytest.approx(stats.ks_2samp(ref.x, cur.x, method="asymp").pvalue)
    assert x["wasserstein"] == pytest.approx(stats.wasserstein_distance(ref.x, cur.x))
    assert x["wasserstein_norm"] == pytest.approx(x["wasserstein"] / ref.x.std(ddof=0))
    c = report.columns["c"].statistics
    table = pd.crosstab(
        np.r_[np.zeros(len(ref)), np.ones(len(cur))], np.r_[ref.c.to_numpy(), cur.c.to_numpy()]
    ).to_numpy()
    expected = stats.chi2_contingency(table, correction=False)
    assert c["chi2"] == pytest.approx(expected.statistic)
    assert c["chi2_pvalue"] == pytest.approx(expected.pvalue)
    assert c["js"] == pytest.approx(jensenshannon(table[0], table[1], base=2))


def test_pandas_polars_and_arrow_frames_give_the_same_report() -> None:
    ref, cur = _frames(2000, shift=0.2)
    expected = detect_drift(ref, cur).to_dict()
    assert detect_drift(pl.from_pandas(ref), pl.from_pandas(cur)).to_dict() == expected
    assert detect_drift(pa.Table.from_pandas(ref), pa.Table.from_pandas(cur)).to_dict() == expected


def test_parquet_files_are_read_a_column_at_a_time(tmp_path) -> None:
    import pyarrow.parquet as pq

    ref, cur = _frames(3000, shift=0.3)
    pq.write_table(pa.Table.from_pandas(ref), tmp_path / "ref.parquet")
    pq.write_table(pa.Table.from_pandas(cur), tmp_path / "cur.parquet")
    expected = detect_drift(ref, cur).to_dict()
    assert detect_drift(tmp_path / "ref.parquet", str(tmp_path / "cur.parquet")).to_dict() == (
        expected
    )
    from_profile = detect_drift(profile_table(ref), pq.ParquetFile(tmp_path / "cur.parquet"))
    assert from_profile.drifted == detect_drift(profile_table(ref), cur).drifted
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(InvalidInputError, match="cannot read") as info:
        detect_drift(ref, tmp_path / "bad.parquet")
    assert info.value.details["field"] == "current"


def _bench_like(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, set[str]]:
    """20 numeric and 5 categorical columns; 4 numeric shifted by 0.1-0.5 std, 1 categorical."""
    rng = np.random.default_rng(seed)
    shifts = {"n0": 0.1, "n1": 0.2, "n2": 0.3, "n3": 0.5}
    ref, cur = {}, {}
    for i in range(20):
        name, scale = f"n{i}", 1.0 + i
        ref[name] = rng.normal(0, scale, size=n)
        cur[name] = rng.normal(shifts.get(name, 0.0) * scale, scale, size=n)
    for j, k in enumerate((5, 10, 20, 35, 50)):
        levels = np.array([f"v{i}" for i in range(k)])
        p = rng.dirichlet(np.full(k, 5.0))
        ref[f"c{j}"] = rng.choice(levels, size=n, p=p)
        if j == 1:  # the drifted one: its first level gains 15 points of share
            p = np.r_[p[0] + 0.15, p[1:] * (1 - p[0] - 0.15) / p[1:].sum()]
        cur[f"c{j}"] = rng.choice(levels, size=n, p=p)
    return pd.DataFrame(ref), pd.DataFrame(cur), {*shifts, "c1"}


@pytest.mark.parametrize("n", [10_000, 100_000])
def test_injected_drift_is_found_and_nothing_else(n: int) -> None:
    ref, cur, drifted = _bench_like(n, seed=n)
    report = detect_drift(ref, cur)
    assert set(report.drifted) == drifted
    assert report.drifted_share == pytest.approx(5 / 25)
    assert report.verdict == "drift"  # 5 of 25 columns is the dataset_share of 0.2


def test_profile_reference_agrees_with_the_raw_reference() -> None:
    ref, cur, drifted = _bench_like(50_000, seed=11)
    raw = detect_drift(ref, cur)
    sketched = detect_drift(profile_table(ref), cur)
    assert sketched.reference == "profile" and raw.reference == "frame"
    assert sketched.drifted == raw.drifted
    assert set(sketched.drifted) == drifted
    for name, column in raw.columns.items():
        a, b = column.statistics, sketched.columns[name].statistics
        if column.kind == "numeric":
            assert b["wasserstein_norm"] == pytest.approx(a["wasserstein_norm"], abs=0.02)
            assert b["ks"] == pytest.approx(a["ks"], abs=0.015)
            assert b["psi"] == pytest.approx(a["psi"], abs=0.01)
            assert b["sketch_rank_error"] > 0
        else:  # the profile's category counts are exact below 1,000 categories
            for key in ("chi2", "chi2_pvalue", "js", "psi"):
                assert b[key] == pytest.approx(a[key], rel=1e-9, abs=1e-12)


def test_a_profile_reference_reads_no_raw_data() -> None:
    ref, cur, _ = _bench_like(5000, seed=2)
    stored = profile_table(ref).to_json()
    del ref
    from mlcycle.datasets.profile import DatasetProfile

    report = detect_drift(DatasetProfile.from_json(stored), cur)
    assert len(report.columns) == 25


def test_large_samples_do_not_flag_tiny_effects() -> None:
    rng = np.random.default_rng(5)
    n = 400_000
    ref = pd.DataFrame({"x": rng.normal(size=n)})
    cur = pd.DataFrame({"x": rng.normal(0.02, 1, size=n)})
    column = detect_drift(ref, cur).columns["x"]
    assert column.statistics["ks_pvalue"] < 1e-6  # significant, yet a fiftieth of a std
    assert column.verdict == "ok"
    assert "wasserstein_norm" in column.reason and "< 0.05" in column.reason


def test_a_large_effect_on_noise_is_not_drift_when_the_test_disagrees() -> None:
    rng = np.random.default_rng(1)
    levels = np.array([f"v{i}" for i in range(50)])
    ref = pd.DataFrame({"c": rng.choice(levels, size=300)})
    cur = pd.DataFrame({"c": rng.choice(levels, size=300)})
    column = detect_drift(ref, cur).columns["c"]
    assert column.statistics["js"] >= 0.1  # 50 levels, 300 rows: JS's noise alone
    assert column.statistics["chi2_pvalue"] >= 0.05
    assert column.verdict == "ok" and "not significant" in column.reason


def test_small_samples_say_not_enough_data() -> None:
    ref, cur = _frames(1000, shift=2.0)
    report = detect_drift(ref, cur.head(99))
    assert {c.verdict for c in report.columns.values()} == {"not enough data"}
    assert report.verdict == "not enough data"
    assert "99 non-null values in the current data" in report.columns["x"].reason
    assert report.columns["x"].statistics["wasserstein_norm"] > 1  # measured, not judged
    loose = detect_drift(ref, cur.head(99), config=DriftConfig(min_rows=50))
    assert loose.columns["x"].verdict == "drift"


def test_nulls_and_nan_are_left_out_of_the_counts() -> None:
    ref = pd.DataFrame({"x": [1.0, np.nan, 2.0, None, np.inf] * 50, "c": ["a", None] * 125})
    report = detect_drift(ref, ref, config=DriftConfig(min_rows=2))
    assert report.columns["x"].reference_rows == 100
    assert report.columns["c"].current_rows == 125
    assert report.verdict == "ok"


def test_an_empty_current_column_has_no_statistics() -> None:
    ref = pd.DataFrame({"x": np.arange(200.0)})
    cur = pd.DataFrame({"x": [np.nan] * 200})
    column = detect_drift(ref, cur).columns["x"]
    assert column.verdict == "not enough data" and column.statistics == {}


def test_unseen_categories_are_named_and_weighed() -> None:
    rng = np.random.default_rng(4)
    ref = pd.DataFrame({"c": rng.choice(["a", "b", "c"], size=3000)})
    cur = pd.DataFrame({"c": np.r_[rng.choice(["a", "b", "c"], size=2400), ["new"] * 500,
                                   ["newer"] * 100]})
    for reference in (ref, profile_table(ref)):
        column = detect_drift(reference, cur).columns["c"]
        assert column.unseen == ("new", "newer")
        assert column.statistics["unseen_share"] == pytest.approx(600 / 3000)
        assert column.verdict == "drift"


def test_a_profile_with_approximate_category_counts_is_skipped() -> None:
    rng = np.random.default_rng(8)
    ids = np.array([f"id{i}" for i in range(3000)])
    ref = pd.DataFrame({"c": rng.choice(ids, size=20_000), "x": rng.normal(size=20_000)})
    cur = pd.DataFrame({"c": rng.choice(ids, size=20_000), "x": rng.normal(size=20_000)})
    profile = profile_table(ref)
    assert profile.columns["c"].top_error > 0
    report = detect_drift(profile, cur)
    assert list(report.columns) == ["x"]
    assert "more than 1,000 categories" in report.skipped["c"]
    with pytest.raises(InvalidInputError, match="approximate counts") as info:
        detect_drift(profile, cur, columns=["c"])
    assert info.value.details["field"] == "c"
    assert detect_drift(ref, cur).columns["c"].verdict == "ok"  # exact counts from raw rows


def test_booleans_compare_as_categories_against_a_profile() -> None:
    rng = np.random.default_rng(6)
    ref = pd.DataFrame({"b": rng.random(5000) < 0.3})
    cur = pd.DataFrame({"b": rng.random(5000) < 0.6})
    raw, sketched = detect_drift(ref, cur), detect_drift(profile_table(ref), cur)
    assert raw.columns["b"].kind == "categorical"
    assert raw.columns["b"].statistics == sketched.columns["b"].statistics
    assert raw.columns["b"].verdict == "drift"


def test_integer_codes_can_be_compared_as_categories() -> None:
    rng = np.random.default_rng(9)
    ref = pd.DataFrame({"code": rng.integers(0, 5, size=2000)})
    cur = pd.DataFrame({"code": rng.integers(0, 6, size=2000)})
    column = detect_drift(ref, cur, categorical=["code"]).columns["code"]
    assert column.kind == "categorical" and column.unseen == ("5",)
    with pytest.raises(InvalidInputError, match="quantile sketch") as info:
        detect_drift(profile_table(ref), cur, categorical=["code"])
    assert info.value.details["field"] == "code"


def test_a_constant_reference_drifts_when_anything_moves() -> None:
    ref = pd.DataFrame({"x": np.ones(500)})
    assert detect_drift(ref, ref).columns["x"].statistics["wasserstein_norm"] == 0.0
    moved = detect_drift(ref, pd.DataFrame({"x": np.full(500, 2.0)})).columns["x"]
    assert moved.statistics["wasserstein_norm"] == np.inf and moved.verdict == "drift"


def test_the_dataset_share_rule() -> None:
    rng = np.random.default_rng(12)
    n = 10_000
    ref = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(25)})

    def shifted(k: int) -> pd.DataFrame:
        cur = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(25)})
        for i in range(k):
            cur[f"x{i}"] += 1.0
        return cur

    five, four = detect_drift(ref, shifted(5)), detect_drift(ref, shifted(4))
    assert (five.verdict, five.drifted_share) == ("drift", pytest.approx(0.2))
    assert "5 of 25 columns drifted (20% ≥ dataset_share 20%)" in five.reason
    assert (four.verdict, four.drifted_share) == ("ok", pytest.approx(0.16))
    strict = detect_drift(ref, shifted(4), config=DriftConfig(dataset_share=0.1))
    assert strict.verdict == "drift"


def test_categorical_false_alarms_stay_at_the_nominal_level() -> None:
    """A two-sample chi-squared test on undrifted columns rejects at about alpha; treating the
    reference frequencies as exact (a goodness-of-fit test) would reject far more often."""
    rng = np.random.default_rng(2024)
    levels = np.array([f"v{i}" for i in range(20)])
    p = rng.dirichlet(np.full(20, 5.0))
    rejected = goodness_of_fit_rejected = 0
    trials = 400
    for _ in range(trials):
        ref = pd.DataFrame({"c": rng.choice(levels, size=1000, p=p)})
        cur = pd.DataFrame({"c": rng.choice(levels, size=1000, p=p)})
        column = detect_drift(ref, cur).columns["c"]
        rejected += column.statistics["chi2_pvalue"] < 0.05
        a = ref.c.value_counts().reindex(levels, fill_value=0).to_numpy()
        b = cur.c.value_counts().reindex(levels, fill_value=0).to_numpy()
        goodness_of_fit_rejected += stats.chisquare(b, a / a.sum() * b.sum()).pvalue < 0.05
    assert rejected / trials <= 0.075
    assert goodness_of_fit_rejected / trials > 0.2


def test_selected_columns_and_skipped_ones() -> None:
    ref, cur = _frames(500)
    ref["when"] = pd.Timestamp("2024-01-01")
    cur["when"] = pd.Timestamp("2024-01-02")
    ref["gone"] = 1.0
    report = detect_drift(ref, cur)
    assert list(report.columns) == ["x", "y", "c"]
    assert report.skipped["gone"] == "not in the current data"
    assert report.skipped["when"].startswith("type timestamp[")
    assert list(detect_drift(ref, cur, columns=["c", "x"]).columns) == ["c", "x"]


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"columns": ["nope"]}, "nope", "not in the reference data"),
        ({"columns": "x"}, "columns", "list of column names"),
        ({"columns": ["when"]}, "when", "has no drift test"),
        ({"categorical": ["nope"]}, "nope", "not in the reference data"),
    ],
)
def test_bad_columns_name_the_field(kwargs: dict, field: str, message: str) -> None:
    ref, cur = _frames(200)
    ref["when"] = cur["when"] = pd.Timestamp("2024-01-01")
    with pytest.raises(InvalidInputError, match=message) as info:
        detect_drift(ref, cur, **kwargs)
    assert info.value.details["field"] == field


def test_kinds_must_agree() -> None:
    ref = pd.DataFrame({"x": np.arange(200.0)})
    cur = pd.DataFrame({"x": [str(v) for v in range(200)]})
    with pytest.raises(InvalidInputError, match="numeric in the reference") as info:
        detect_drift(ref, cur)
    assert info.value.details["field"] == "x"


def test_frames_of_other_types_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="current must be a pandas") as info:
        detect_drift(pd.DataFrame({"x": [1.0]}), [1.0, 2.0])
    assert info.value.details["field"] == "current"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": True}, "alpha"),
        ({"dataset_share": 1.5}, "dataset_share"),
        ({"numeric_wasserstein": -0.1}, "numeric_wasserstein"),
        ({"categorical_js": float("inf")}, "categorical_js"),
        ({"min_rows": 1}, "min_rows"),
        ({"psi_bins": 2.5}, "psi_bins"),
    ],
)
def test_config_errors_name_the_parameter(kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidInputError, match=f"The '{field}' parameter of DriftConfig") as info:
        DriftConfig(**kwargs)
    assert info.value.details["field"] == field


def test_config_round_trip_and_unknown_keys() -> None:
    config = DriftConfig(alpha=0.01, min_rows=500)
    assert DriftConfig.from_dict(config.to_dict()) == config
    with pytest.raises(InvalidInputError, match="unknown drift setting 'alpah'") as info:
        DriftConfig.from_dict({"alpah": 0.01})
    assert info.value.details["field"] == "alpah"


def test_report_round_trips_through_json() -> None:
    ref = pd.DataFrame({"x": np.ones(500), "c": ["a"] * 500})
    cur = pd.DataFrame({"x": np.full(500, 2.0), "c": ["a"] * 250 + ["b"] * 250})
    report = detect_drift(ref, cur)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["columns"][0]["statistics"]["wasserstein_norm"] == "Infinity"
    again = DriftReport.from_dict(data)
    assert again == report
    assert isinstance(again.columns["c"], ColumnDrift) and again.columns["c"].unseen == ("b",)


def test_render_drift_table_has_a_row_per_column() -> None:
    ref, cur = _frames(1000, shift=1.0)
    ref["when"] = cur["when"] = pd.Timestamp("2024-01-01")
    table = render_drift_table(detect_drift(ref, cur))
    assert table.row_count == 4
    assert [c.header for c in table.columns][:3] == ["column", "kind", "verdict"]
    assert "drift" in str(table.title)
