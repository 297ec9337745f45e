"""The canary rule (``mlcycle.deploy.canary.decide``) on hand-made counters."""

from __future__ import annotations

import math

import pytest

from mlcycle.deploy import DeploymentConfig, VersionStats, decide
from mlcycle.deploy.canary import one_sided_proportion_test, one_sided_welch_test
from mlcycle.errors import InvalidInputError

CONFIG = DeploymentConfig(steps=(5, 25, 50, 100), min_requests=100)


def served(requests: int, errors: int = 0, latency: float = 0.003) -> VersionStats:
    s = VersionStats()
    for i in range(requests):
        s.observe(latency, error=i < errors)
    return s


def labelled(s: VersionStats, n: int, correct: int) -> VersionStats:
    for i in range(n):
        s.observe_feedback("a", "a" if i < correct else "b")
    return s


def regression(s: VersionStats, errors: list[float]) -> VersionStats:
    for e in errors:
        s.observe_feedback(10.0, 10.0 + e)
    return s


def test_no_requests_waits_for_the_minimum() -> None:
    v = decide(VersionStats(), VersionStats(), config=CONFIG, step=0)
    assert v.action == "wait"
    assert v.details["requests_needed"] == 100
    assert "100 more candidate requests" in v.reason


def test_zero_errors_on_both_sides_steps_on() -> None:
    v = decide(served(1000), served(100), config=CONFIG, step=0)
    assert v.action == "step" and v.details["next_weight"] == 25
    assert v.details["error_test"]["p_value"] == 1.0


def test_the_last_step_promotes() -> None:
    v = decide(served(1000), served(400), config=CONFIG, step=3, at_step_start=300)
    assert v.action == "promote"


def test_requests_are_counted_from_the_start_of_the_step() -> None:
    v = decide(served(1000), served(150), config=CONFIG, step=1, at_step_start=100)
    assert v.action == "wait" and v.details["requests_needed"] == 50


def test_min_step_seconds_holds_the_step() -> None:
    config = CONFIG.replace(min_step_seconds=30)
    assert decide(served(1000), served(100), config=config, step=0,
                  step_seconds=10).details["seconds_needed"] == 20
    assert decide(served(1000), served(100), config=config, step=0,
                  step_seconds=30).action == "step"


def test_a_clear_error_regression_rolls_back() -> None:
    v = decide(served(2000, errors=10), served(200, errors=8), config=CONFIG, step=0)
    assert v.action == "rollback" and "z-test" in v.reason
    assert v.details["error_test"]["p_value"] < 0.01
    assert v.details["candidate"]["error_rate"] == pytest.approx(0.04)


def test_an_increase_below_the_tolerance_is_not_a_regression() -> None:
    # Significant with this much traffic, but only 0.5 points worse.
    v = decide(served(200_000, errors=0), served(20_000, errors=100), config=CONFIG, step=0)
    assert v.details["error_test"]["p_value"] < 1e-6
    assert v.action == "step"


def test_a_noisy_small_sample_is_not_a_regression() -> None:
    v = decide(served(1000, errors=10), served(100, errors=2), config=CONFIG, step=0)
    assert v.details["error_test"]["p_value"] > 0.01
    assert v.action == "step"


def test_errors_above_the_absolute_bound_roll_back_without_a_stable_side() -> None:
    v = decide(VersionStats(), served(100, errors=6), config=CONFIG, step=0)
    assert v.action == "rollback" and "max_error_rate" in v.reason


def test_few_errors_before_min_requests_are_not_judged() -> None:
    v = decide(served(1000), served(99, errors=5), config=CONFIG, step=0)
    assert v.action == "wait"


def test_a_candidate_failing_more_than_a_sample_allows_rolls_back_early() -> None:
    v = decide(served(1000), served(20, errors=6), config=CONFIG, step=0)
    assert v.action == "rollback" and "first 20 requests" in v.reason


def test_slower_p95_rolls_back() -> None:
    v = decide(served(1000, latency=0.004), served(100, latency=0.03), config=CONFIG, step=0)
    assert v.action == "rollback" and "p95" in v.reason
    # 95 % of the way through the 2-5 ms and the 20-50 ms buckets
    assert v.details["stable"]["p95_s"] == pytest.approx(0.00485)
    assert v.details["candidate"]["p95_s"] == pytest.approx(0.0485)
    assert v.details["latency_limit_s"] == pytest.approx(0.00985)


def test_one_slow_request_among_few_does_not_roll_back() -> None:
    # 20 candidate requests, two of them caught in a 40 ms pause: its p95 is in that pause, but
    # two slow requests in 20 are well within what a version as fast as stable shows (5 %).
    candidate = served(18, latency=0.003)
    for _ in range(2):
        candidate.observe(0.04)
    v = decide(served(1000, latency=0.003), candidate, config=DeploymentConfig(
        min_requests=20), step=0)
    assert v.action != "rollback", v.reason
    assert v.details["candidate"]["p95_s"] > v.details["latency_limit_s"]
    assert v.details["latency_test"]["p_value"] > 0.01
    # ... while five such requests in 20 are a slower version.
    slower = served(15, latency=0.003)
    for _ in range(5):
        slower.observe(0.04)
    v = decide(served(1000, latency=0.003), slower, config=DeploymentConfig(min_requests=20),
               step=0)
    assert v.action == "rollback" and "of its 20 requests were slower" in v.reason


def test_count_above_reads_the_histogram() -> None:
    stats = VersionStats()
    for latency in [0.06] * 50 + [0.15] * 50:  # 50-100 ms and 100-200 ms buckets
        stats.observe(latency)
    assert stats.count_above(0.1) == pytest.approx(50)
    assert stats.count_above(0.15) == pytest.approx(25)
    assert stats.count_above(0.0) == 100 and stats.count_above(10.0) == 0


def test_p95_is_interpolated_inside_its_bucket() -> None:
    stats = VersionStats()
    for latency in [0.06] * 50 + [0.15] * 50:  # half in 50-100 ms, half in 100-200 ms
        stats.observe(latency)
    assert stats.latency_quantile(0.5) == pytest.approx(0.1)
    assert stats.latency_quantile(0.95) == pytest.approx(0.19)
    assert stats.latency_quantile(0.25) == pytest.approx(0.075)
    slow = VersionStats()
    slow.observe(60.0)  # above the last bound
    assert slow.latency_quantile(0.95) == float("inf")
    assert VersionStats().latency_quantile(0.95) is None


def test_latency_within_the_slack_passes() -> None:
    # 2 ms -> 5 ms is 2.5x, but within stable + 5 ms.
    v = decide(served(1000, latency=0.0015), served(100, latency=0.004), config=CONFIG, step=0)
    assert v.action == "step"


def test_lower_accuracy_rolls_back_once_both_have_enough_feedback() -> None:
    stable = labelled(served(1000), 400, correct=360)  # 90 %
    worse = labelled(served(100), 400, correct=300)  # 75 %
    v = decide(stable, worse, config=CONFIG, step=0)
    assert v.action == "rollback" and "accuracy" in v.reason
    assert v.details["quality_test"]["metric"] == "accuracy"
    few = labelled(served(100), 40, correct=10)  # below min_feedback: not judged yet
    assert decide(stable, few, config=CONFIG, step=0).action == "step"


def test_equal_accuracy_passes() -> None:
    stable = labelled(served(1000), 400, correct=360)
    same = labelled(served(100), 400, correct=358)
    v = decide(stable, same, config=CONFIG, step=0)
    assert v.action == "step" and v.details["quality_test"]["p_value"] > 0.01


def test_higher_mean_absolute_error_rolls_back() -> None:
    stable = regression(served(1000), [0.5, 1.5] * 50)  # MAE 1.0
    worse = regression(served(100), [1.5, 2.5] * 50)  # MAE 2.0
    v = decide(stable, worse, config=CONFIG, step=0)
    assert v.action == "rollback" and "mean absolute error" in v.reason
    similar = regression(served(100), [0.5, 1.6] * 50)
    assert decide(stable, similar, config=CONFIG, step=0).action == "step"


def test_the_tests_on_their_own() -> None:
    assert one_sided_proportion_test(0, 100, 0, 100) == 1.0
    assert one_sided_proportion_test(5, 100, 0, 0) == 1.0
    assert one_sided_proportion_test(10, 100, 40, 100) > 0.99  # a is lower, not higher
    assert one_sided_welch_test(2.0, 2.0, 2, 2.0, 2.0, 2) == 1.0
    assert one_sided_welch_test(4.0, 8.0, 2, 2.0, 2.0, 2) == 0.0  # no spread, a higher
    assert math.isclose(one_sided_welch_test(10, 60, 2, 10, 60, 2), 0.5)


def test_config_errors_name_the_field() -> None:
    for bad in ({"steps": []}, {"steps": [0, 50]}, {"steps": [50, 150]},
                {"min_requests": 0}, {"alpha": 0.7}, {"sticky_key": ""},
                {"shadow_percent": 0}, {"latency_ratio": 0.5}):
        with pytest.raises(InvalidInputError) as info:
            DeploymentConfig.from_mapping(bad)
        assert info.value.details["field"] == next(iter(bad))
    config = DeploymentConfig.from_mapping({"steps": [10, 100], "sticky_key": "user-id",
                                            "_step": {"started_at": 1.0}})
    assert config.steps == (10.0, 100.0) and config.sticky_key == "user-id"
    assert config.to_json()["_step"] == {"started_at": 1.0}
    assert DeploymentConfig.from_mapping(config.to_json()) == config
