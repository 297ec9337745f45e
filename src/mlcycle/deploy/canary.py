"""The canary rule: from the counters of the stable and the candidate version, wait, take the
next traffic step, promote, or roll back.

:func:`decide` is a pure function of the two versions' :class:`~mlcycle.deploy.stats.VersionStats`
(summed over every worker for the current rollout), the config and where the current step began;
the controller (:class:`~mlcycle.deploy.service.DeploymentService`) applies its verdict and records
it, numbers included, in the deployment's history.

The rule, in order (the first that holds decides):

1. **Roll back on errors.** At once when the candidate has failed more requests than
   ``max_error_rate × min_requests`` (5 of 100), so a broken candidate is not kept for a whole
   sample. Once it has answered ``min_requests`` requests in this
   rollout: when its error rate exceeds ``max_error_rate`` (5 %); or when it is higher than the
   stable version's by a one-sided two-proportion z-test at ``alpha`` (0.01) *and* by at least
   ``min_error_rate_increase`` (1 percentage point).
2. **Roll back on latency.** Once both versions have answered ``min_requests`` requests: when the
   candidate's p95 latency exceeds ``max(stable p95 × latency_ratio, stable p95 +
   latency_slack_s)`` (1.5×, 5 ms) *and* more of its requests than 5 % took longer than the
   stable p95, by a one-sided binomial test at ``alpha`` (a p95 over a few dozen requests is
   about their slowest one, so one pause of the machine must not decide). Latencies are read
   from the shared histogram, interpolated inside their bucket.
3. **Roll back on quality.** When both versions have at least ``min_feedback`` (50) labelled
   answers: for labels compared by equality, when the candidate's accuracy is lower by a
   one-sided two-proportion z-test at ``alpha`` *and* by at least ``accuracy_tolerance`` (2
   points); for numeric labels, when its mean absolute error is higher by a one-sided Welch
   t-test at ``alpha`` *and* by at least ``mae_tolerance`` (2 %) of the stable version's.
4. **Step or promote** once the candidate has answered ``min_requests`` requests in the
   current step and ``min_step_seconds`` have passed since it began: to the next weight in
   ``steps``, or, at the last step, promote.
5. Otherwise **wait**; the verdict says how many requests and seconds are still needed.

A test needs both versions to have requests: with none on the stable side only the absolute
bounds (``max_error_rate``) apply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from mlcycle.deploy.config import DeploymentConfig
from mlcycle.deploy.stats import VersionStats

__all__ = ["Verdict", "decide", "one_sided_proportion_test", "one_sided_welch_test"]

Action = Literal["wait", "step", "promote", "rollback"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the rule says: ``action``, a one-line ``reason`` for people, and the numbers behind
    it in ``details`` (rates, p-values, p95s, counts), which the controller records."""

    action: Action
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


def one_sided_proportion_test(hits_a: int, n_a: int, hits_b: int, n_b: int) -> float:
    """The p-value of "*a*'s rate is higher than *b*'s" by the pooled two-proportion z-test
    (1.0 when either side is empty or both rates are 0 or both 1: no evidence either way).

    >>> round(one_sided_proportion_test(30, 1000, 10, 1000), 4)
    0.0007
    """
    if n_a == 0 or n_b == 0:
        return 1.0
    pooled = (hits_a + hits_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return 1.0
    z = (hits_a / n_a - hits_b / n_b) / se
    from scipy.special import ndtr  # scipy.stats costs a second to import; this does not

    return float(ndtr(-z))


def one_sided_binomial_test(hits: int, n: int, rate: float) -> float:
    """The p-value of "the rate behind *hits* of *n* is higher than *rate*" (exact binomial
    tail; 1.0 without trials).

    >>> round(one_sided_binomial_test(10, 40, 0.05), 5)
    2e-05
    >>> round(one_sided_binomial_test(1, 15, 0.05), 2)
    0.54
    """
    if n <= 0 or hits <= 0:
        return 1.0
    from scipy.special import bdtrc  # P(X > k): the survival function, no scipy.stats import

    return float(bdtrc(min(hits, n) - 1, n, rate))


def one_sided_welch_test(sum_a: float, sq_a: float, n_a: int,
                         sum_b: float, sq_b: float, n_b: int) -> float:
    """The p-value of "*a*'s mean is higher than *b*'s" by Welch's t-test, from sums and sums of
    squares (what workers count). Needs two observations a side; 1.0 otherwise."""
    if n_a < 2 or n_b < 2:
        return 1.0
    mean_a, mean_b = sum_a / n_a, sum_b / n_b
    var_a = max(sq_a - n_a * mean_a * mean_a, 0.0) / (n_a - 1)
    var_b = max(sq_b - n_b * mean_b * mean_b, 0.0) / (n_b - 1)
    se2 = var_a / n_a + var_b / n_b
    if se2 == 0:  # no spread at all: the means speak for themselves
        return 0.0 if mean_a > mean_b else 1.0
    t = (mean_a - mean_b) / math.sqrt(se2)
    df = se2 * se2 / ((var_a / n_a) ** 2 / (n_a - 1) + (var_b / n_b) ** 2 / (n_b - 1)) \
        if var_a and var_b else (n_a - 1 if var_a else n_b - 1)
    from scipy.special import stdtr

    return float(stdtr(df, -t))


def decide(
    stable: VersionStats,
    candidate: VersionStats,
    *,
    config: DeploymentConfig,
    step: int,
    at_step_start: int = 0,
    step_seconds: float = math.inf,
) -> Verdict:
    """The rule of this module's docstring. *step* indexes ``config.steps``; *at_step_start* is
    the candidate's request count when that step began, *step_seconds* the time since.

    >>> from mlcycle.deploy.stats import VersionStats
    >>> decide(VersionStats(), VersionStats(), config=DeploymentConfig(), step=0).action
    'wait'
    """
    details: dict[str, Any] = {
        "step": step,
        "weight": config.steps[min(step, len(config.steps) - 1)],
        "stable": _summary(stable),
        "candidate": _summary(candidate),
    }
    for check in (_errors, _latency, _quality):
        verdict = check(stable, candidate, config, details)
        if verdict is not None:
            return verdict
    return _pace(candidate, config, step, at_step_start, step_seconds, details)


def _summary(s: VersionStats) -> dict[str, Any]:
    return {"requests": s.requests, "errors": s.errors, "error_rate": s.error_rate,
            "p95_s": s.latency_quantile(0.95), "feedback": s.feedback,
            "accuracy": s.accuracy, "mae": s.abs_error_sum / s.feedback if s.feedback else None}


def _errors(stable: VersionStats, cand: VersionStats, config: DeploymentConfig,
            details: dict[str, Any]) -> Verdict | None:
    budget = config.max_error_rate * config.min_requests
    if cand.requests < config.min_requests:
        if cand.errors > budget:  # already more than the whole first sample may fail
            return Verdict("rollback", f"candidate failed {cand.errors} of its first "
                           f"{cand.requests} requests: more than max_error_rate "
                           f"{config.max_error_rate:.2%} of min_requests "
                           f"({config.min_requests}) allows", details)
        return None
    if cand.error_rate > config.max_error_rate:
        return Verdict("rollback", f"candidate error rate {cand.error_rate:.2%} over "
                       f"{cand.requests} requests exceeds max_error_rate "
                       f"{config.max_error_rate:.2%}", details)
    p = one_sided_proportion_test(cand.errors, cand.requests, stable.errors, stable.requests)
    increase = cand.error_rate - stable.error_rate
    details["error_test"] = {"p_value": p, "increase": increase, "alpha": config.alpha}
    if stable.requests and p < config.alpha and increase >= config.min_error_rate_increase:
        return Verdict("rollback", f"candidate error rate {cand.error_rate:.2%} is higher than "
                       f"stable's {stable.error_rate:.2%} (one-sided z-test p={p:.2g} < "
                       f"{config.alpha:g}, +{increase:.2%} >= "
                       f"{config.min_error_rate_increase:.2%})", details)
    return None


def _latency(stable: VersionStats, cand: VersionStats, config: DeploymentConfig,
             details: dict[str, Any]) -> Verdict | None:
    if cand.requests < config.min_requests or stable.requests < config.min_requests:
        return None
    p95_s, p95_c = stable.latency_quantile(0.95), cand.latency_quantile(0.95)
    if p95_s is None or p95_c is None:  # requests counted without a latency layout
        return None
    limit = max(p95_s * config.latency_ratio, p95_s + config.latency_slack_s)
    details["latency_limit_s"] = limit
    slower = cand.count_above(p95_s)  # about 5 % of its requests if it is as fast as stable
    p = one_sided_binomial_test(round(slower), cand.requests, 0.05)
    details["latency_test"] = {"slower_than_stable_p95": slower, "p_value": p,
                               "alpha": config.alpha}
    if p95_c > limit and p < config.alpha:
        return Verdict("rollback", f"candidate p95 latency {_ms(p95_c)} exceeds {_ms(limit)} "
                       f"(stable p95 {_ms(p95_s)} x {config.latency_ratio:g}, or + "
                       f"{_ms(config.latency_slack_s)}); {slower:.0f} of its "
                       f"{cand.requests} requests were slower than the stable p95 (binomial "
                       f"test against 5 %, p={p:.2g} < {config.alpha:g})", details)
    return None


def _quality(stable: VersionStats, cand: VersionStats, config: DeploymentConfig,
             details: dict[str, Any]) -> Verdict | None:
    if stable.feedback < config.min_feedback or cand.feedback < config.min_feedback:
        return None
    if stable.abs_error_sum or cand.abs_error_sum:  # numeric labels: compare mean abs. errors
        mae_s, mae_c = stable.abs_error_sum / stable.feedback, cand.abs_error_sum / cand.feedback
        p = one_sided_welch_test(cand.abs_error_sum, cand.abs_error_sq_sum, cand.feedback,
                                 stable.abs_error_sum, stable.abs_error_sq_sum, stable.feedback)
        details["quality_test"] = {"metric": "mae", "p_value": p, "alpha": config.alpha,
                                   "increase": mae_c - mae_s}
        if p < config.alpha and mae_c - mae_s >= config.mae_tolerance * mae_s:
            return Verdict("rollback", f"candidate mean absolute error {mae_c:.4g} is higher "
                           f"than stable's {mae_s:.4g} (one-sided Welch t-test p={p:.2g} < "
                           f"{config.alpha:g}, over {cand.feedback} and {stable.feedback} "
                           "labels)", details)
        return None
    acc_s, acc_c = stable.correct / stable.feedback, cand.correct / cand.feedback
    # "candidate is less accurate" is "candidate is wrong more often".
    p = one_sided_proportion_test(cand.feedback - cand.correct, cand.feedback,
                                  stable.feedback - stable.correct, stable.feedback)
    details["quality_test"] = {"metric": "accuracy", "p_value": p, "alpha": config.alpha,
                               "decrease": acc_s - acc_c}
    if p < config.alpha and acc_s - acc_c >= config.accuracy_tolerance:
        return Verdict("rollback", f"candidate accuracy {acc_c:.2%} is lower than stable's "
                       f"{acc_s:.2%} (one-sided z-test p={p:.2g} < {config.alpha:g}, "
                       f"-{acc_s - acc_c:.2%} >= {config.accuracy_tolerance:.2%})", details)
    return None


def _pace(cand: VersionStats, config: DeploymentConfig, step: int, at_step_start: int,
          step_seconds: float, details: dict[str, Any]) -> Verdict:
    served = max(cand.requests - at_step_start, 0)
    need_requests = max(config.min_requests - served, 0)
    need_seconds = max(config.min_step_seconds - step_seconds, 0.0)
    details.update(step_requests=served, requests_needed=need_requests,
                   seconds_needed=need_seconds)
    weight = config.steps[min(step, len(config.steps) - 1)]
    if need_requests or need_seconds:
        still = [f"{need_requests} more candidate requests"] if need_requests else []
        if need_seconds:
            still.append(f"{need_seconds:.0f} more seconds")
        return Verdict("wait", f"at {weight:g}%: no regression so far; needs "
                       f"{' and '.join(still)} to move on", details)
    if step + 1 >= len(config.steps):
        return Verdict("promote", f"no regression after {cand.requests} candidate requests; "
                       f"the last step ({weight:g}%) is done", details)
    nxt = config.steps[step + 1]
    details["next_weight"] = nxt
    return Verdict("step", f"no regression after {served} candidate requests at {weight:g}%: "
                   f"moving to {nxt:g}%", details)


def _ms(seconds: float) -> str:
    return "inf" if math.isinf(seconds) else f"{seconds * 1000:.3g} ms"
