"""The statistics behind drift verdicts, on NumPy arrays: no frames, no profiles, no verdicts.

A numeric sample is an ``Ecdf``: sorted values with weights. A raw column has unit weights; the
KLL sketch of a stored profile retains a few hundred items, each standing for ``2**level``
values. So one merge of two sorted runs gives Kolmogorov–Smirnov and Wasserstein-1 for either
kind of reference, and the same CDF gives PSI's bins.

A categorical sample is a vector of counts over levels aligned with the other sample's.

Every function here is checked against SciPy in ``tests/unit/test_drift.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special, stats

__all__ = [
    "KS_EXACT_MAX_N",
    "PSI_FLOOR",
    "Ecdf",
    "chi2_two_sample",
    "js_distance",
    "ks_pvalue",
    "ks_wasserstein",
    "psi",
    "psi_numeric",
]

#: PSI takes logs of shares; an empty bin counts as this share instead (Evidently and most
#: PSI write-ups use the same floor), so one new category adds at most ~0.0009 * its share.
PSI_FLOOR: Final = 1e-4


@dataclass(frozen=True, slots=True)
class Ecdf:
    """An empirical distribution: sorted finite ``values`` and their ``weights``.

    ``weights`` is ``None`` when every value weighs one (a raw sample). ``n`` is how many
    observations the distribution stands for (the sample size a test uses), ``rank_error`` a
    bound on how far its CDF may be from the data's (0 for a raw sample, the KLL sketch's
    normalised rank error for a profile).
    """

    values: NDArray[np.float64]
    weights: NDArray[np.float64] | None
    n: int
    rank_error: float = 0.0

    @classmethod
    def of_sample(cls, x: NDArray[np.float64]) -> Ecdf:
        """The ECDF of finite values *x* (sorted here; *x* is left alone)."""
        return cls(np.sort(x), None, int(x.size))

    @classmethod
    def of_kll(cls, sketch: Any, *, points: int = 1 << 14) -> Ecdf:
        """The distribution a ``datasketches.kll_doubles_sketch`` describes, as *points*
        equally spaced quantiles.

        A sketch retains a few hundred items, each standing for ``weight`` values around it.
        Read as a step function (the sketch's own ``get_cdf``), each step overstates the CDF
        by up to one item's weight, half a weight on average: a bias that puts a Wasserstein
        distance of ~0.03 standard deviations between a normal column and its own sketch. So
        each distinct item is a knot at its *mid-rank* (the mass below it plus half its own),
        items sharing a value keep the jump between them (discrete columns keep their atoms),
        and the CDF is linear between knots; the half item beyond each outermost item stays on
        it (stretching it to the exact min and max overstates heavy tails). A sketch not yet in
        estimation mode holds every value and is returned exactly.
        """
        # Items from the iterator; their masses from get_cdf, which knows each item's level
        # (the iterator reports a weight of 1 for sketches built from a sorted array).
        items = np.fromiter((item for item, _ in sketch), dtype=np.float64)
        values, ties = np.unique(items, return_counts=True)
        cdf = np.asarray(sketch.get_cdf(values.tolist(), inclusive=True))[:-1]
        if not sketch.is_estimation_mode():
            return cls(values, np.diff(cdf, prepend=0.0) * sketch.n, int(sketch.n))
        mass = np.diff(cdf, prepend=0.0)
        before = np.concatenate(([0.0], np.cumsum(mass)[:-1]))
        half_item = mass / (2 * ties)
        knots_u = np.concatenate(([0.0], np.column_stack(
            (before + half_item, before + mass - half_item)).ravel(), [1.0]))
        knots_x = np.concatenate(([values[0]], np.repeat(values, 2), [values[-1]]))
        grid = (np.arange(points) + 0.5) / points
        error = float(sketch.normalized_rank_error(False))
        return cls(np.interp(grid, knots_u, knots_x), None, int(sketch.n), error)

    def __len__(self) -> int:
        return int(self.values.size)

    def shares(self) -> NDArray[np.float64]:
        """Each value's probability mass (they sum to one)."""
        if self.weights is None:
            return np.full(self.values.size, 1.0 / self.values.size)
        return self.weights / self.weights.sum()

    def cdf(self, x: ArrayLike) -> NDArray[np.float64]:
        """The fraction of the mass at or below each of *x*."""
        below = np.searchsorted(self.values, np.asarray(x, dtype=np.float64), side="right")
        if self.weights is None:
            return below / self.values.size
        cumulative = np.concatenate(([0.0], np.cumsum(self.weights)))
        return cumulative[below] / cumulative[-1]

    def quantiles(self, q: ArrayLike) -> NDArray[np.float64]:
        """The smallest value whose CDF reaches each of *q* (numpy's ``inverted_cdf``)."""
        qs = np.asarray(q, dtype=np.float64)
        if self.weights is None:
            index = np.ceil(qs * self.values.size).astype(np.int64) - 1
        else:
            cumulative = np.cumsum(self.weights)
            index = np.searchsorted(cumulative, qs * cumulative[-1], side="left")
        return self.values[np.clip(index, 0, self.values.size - 1)]

    def std(self) -> float:
        """The population standard deviation (ddof=0) of the distribution."""
        if self.weights is None:
            return float(np.std(self.values))
        mean = float(np.average(self.values, weights=self.weights))
        return math.sqrt(float(np.average((self.values - mean) ** 2, weights=self.weights)))


def ks_wasserstein(a: Ecdf, b: Ecdf) -> tuple[float, float]:
    """The two-sample Kolmogorov–Smirnov statistic ``sup |F_a - F_b|`` and the Wasserstein-1
    distance ``∫ |F_a - F_b| dx`` of two distributions, from one merge.

    Both value arrays are sorted, so a stable argsort of their concatenation is timsort merging
    two runs: linear, no second sort. The running sum of signed masses is ``F_a - F_b`` just
    right of each pooled value; its value at the last of equal values is the CDF gap there.
    """
    pooled = np.concatenate((a.values, b.values))
    signed = np.concatenate((a.shares(), -b.shares()))
    order = np.argsort(pooled, kind="stable")
    x = pooled[order]
    del pooled
    gap = signed[order]
    del signed, order
    np.cumsum(gap, out=gap)
    np.abs(gap, out=gap)
    width = np.diff(x)
    del x
    wasserstein = float(np.dot(gap[:-1], width))
    ks = max(float(gap[:-1][width > 0].max(initial=0.0)), float(gap[-1]))
    return ks, wasserstein


#: Above this effective sample size KS p-values come from Kolmogorov's limiting distribution:
#: SciPy's finite-n ``kstwo.sf`` takes up to a second per value in the tail at n = 500,000,
#: and the two differ by under 1.5 % (relative) from n = 10,000 on.
KS_EXACT_MAX_N: Final = 10_000


def ks_pvalue(d: ArrayLike, n: ArrayLike, m: ArrayLike) -> NDArray[np.float64]:
    """Two-sided p-values of KS statistics *d* for sample sizes *n* and *m*, vectorised.

    The asymptotic test of ``scipy.stats.ks_2samp(method="asymp")``: Kolmogorov's distribution
    at the effective size ``en = round(n m / (n + m))`` (``kstwo``), and its limit
    ``kstwobign`` at ``d * sqrt(en)`` once ``en`` exceeds ``KS_EXACT_MAX_N``.
    """
    nf, mf = np.asarray(n, dtype=np.float64), np.asarray(m, dtype=np.float64)
    d_arr = np.asarray(d, dtype=np.float64)
    effective = np.round(nf * mf / (nf + mf))
    d_arr, effective = np.broadcast_arrays(d_arr, effective)
    out = np.empty(d_arr.shape)
    small = effective <= KS_EXACT_MAX_N
    out[small] = stats.kstwo.sf(d_arr[small], effective[small])
    out[~small] = stats.kstwobign.sf(d_arr[~small] * np.sqrt(effective[~small]))
    return np.clip(out, 0.0, 1.0)


def psi(p: ArrayLike, q: ArrayLike) -> float:
    """Population stability index of shares *q* (current) against *p* (reference):
    ``Σ (q - p) ln(q / p)``, empty bins counted as ``PSI_FLOOR``."""
    pa_ = np.maximum(np.asarray(p, dtype=np.float64), PSI_FLOOR)
    qa = np.maximum(np.asarray(q, dtype=np.float64), PSI_FLOOR)
    return float(np.sum((qa - pa_) * np.log(qa / pa_)))


def psi_numeric(reference: Ecdf, current: Ecdf, bins: int) -> float:
    """PSI over *bins* equal-mass bins of the reference (its quantiles are the edges).

    Bins are right-closed; the outer ones are open-ended, so no current value falls outside.
    Equal quantiles (a discrete reference) merge their bins.
    """
    edges = np.unique(reference.quantiles(np.arange(1, bins) / bins))
    p = np.diff(reference.cdf(edges), prepend=0.0, append=1.0)
    q = np.diff(current.cdf(edges), prepend=0.0, append=1.0)
    return psi(p, q)


def js_distance(a: ArrayLike, b: ArrayLike) -> float:
    """Jensen–Shannon distance (base 2, so in [0, 1]) between two count or share vectors:
    ``scipy.spatial.distance.jensenshannon(a, b, base=2)``."""
    p = np.asarray(a, dtype=np.float64)
    q = np.asarray(b, dtype=np.float64)
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)
    divergence = 0.5 * (special.rel_entr(p, m).sum() + special.rel_entr(q, m).sum())
    return math.sqrt(max(float(divergence), 0.0) / math.log(2.0))


def chi2_two_sample(
    a: ArrayLike, b: ArrayLike, *, min_expected: float = 5.0
) -> tuple[float, int]:
    """Pearson's chi-squared statistic and degrees of freedom of the 2 x k contingency table of
    two samples' counts over the same levels (the p-value is ``scipy.stats.chi2.sf``).

    A two-sample test: both rows are samples, so the reference's frequencies carry their own
    noise. (A goodness-of-fit test against the reference's frequencies as if they were exact
    roughly doubles the statistic when both samples are the same size, which is how a tool
    comes to flag a third to nearly all undrifted columns at a nominal 5 %.)

    Levels with an expected count below *min_expected* in either row are pooled into one, so
    the chi-squared approximation holds; if that pool is still too small it joins the smallest
    level. With every expected count at least *min_expected* this equals
    ``scipy.stats.chi2_contingency(np.vstack([a, b]), correction=False)``. Fewer than two levels
    left gives ``(0.0, 0)``.
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    seen = (x + y) > 0
    x, y = x[seen], y[seen]
    nx, ny = float(x.sum()), float(y.sum())
    if nx == 0 or ny == 0:
        return 0.0, 0
    scale = min(nx, ny) / (nx + ny)  # expected count of a level in the smaller row, per unit
    small = (x + y) * scale < min_expected
    if small.any():
        x = np.append(x[~small], x[small].sum())
        y = np.append(y[~small], y[small].sum())
        if (x[-1] + y[-1]) * scale < min_expected and x.size > 1:
            smallest = int(np.argmin((x + y)[:-1]))
            x[smallest] += x[-1]
            y[smallest] += y[-1]
            x, y = x[:-1], y[:-1]
    if x.size < 2:
        return 0.0, 0
    total = x + y
    ex = total * (nx / (nx + ny))
    ey = total * (ny / (nx + ny))
    statistic = float(np.sum((x - ex) ** 2 / ex) + np.sum((y - ey) ** 2 / ey))
    return statistic, int(x.size - 1)
