"""The seeded frames of ``bench/monitoring.py``: NumPy and pandas only, so every venv imports it.

25 columns: 20 numeric (normal, log-normal, uniform, gamma and Student-t, four of each, scaled
and offset differently) and 5 categorical with 5, 12, 20, 35 and 50 levels (Dirichlet-drawn
frequencies, so some levels are rare). The current frame is drawn from the same distributions
except for the drifted columns: four numeric columns moved by 0.1, 0.2, 0.3 and 0.5 of their
standard deviation, and one categorical column whose most frequent level gains 15 points of
share. 5 of 25 columns: exactly the 20 % at which mlcycle's dataset verdict says drift.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Numeric columns whose location moves in the current frame, by this many standard deviations.
SHIFTS = {"num_00": 0.1, "num_05": 0.2, "num_10": 0.3, "num_15": 0.5}
#: Levels of the categorical columns; ``cat_2`` drifts.
LEVELS = (5, 12, 20, 35, 50)
DRIFTED_CATEGORICAL = "cat_2"
#: Share of the mass that moves to the most frequent level of the drifted categorical column.
CATEGORICAL_SHIFT = 0.15
DRIFTED = frozenset({*SHIFTS, DRIFTED_CATEGORICAL})
NUMERIC = tuple(f"num_{i:02d}" for i in range(20))
CATEGORICAL = tuple(f"cat_{j}" for j in range(len(LEVELS)))

_FAMILIES = ("normal", "lognormal", "uniform", "gamma", "student_t")
_STD = {  # standard deviations of the unscaled draws, to shift by a fraction of one
    "normal": 1.0,
    "lognormal": float(np.sqrt((np.e**0.25 - 1) * np.e**0.25)),  # sigma 0.5
    "uniform": float(np.sqrt(1 / 12)),
    "gamma": float(np.sqrt(2.0)),  # shape 2
    "student_t": float(np.sqrt(5 / 3)),  # 5 degrees of freedom
}


def _draw(family: str, rng: np.random.Generator, n: int) -> np.ndarray:
    if family == "normal":
        return rng.normal(size=n)
    if family == "lognormal":
        return rng.lognormal(0.0, 0.5, size=n)
    if family == "uniform":
        return rng.random(n)
    if family == "gamma":
        return rng.gamma(2.0, size=n)
    return rng.standard_t(5, size=n)


def category_probabilities(seed: int = 0) -> list[np.ndarray]:
    """Each categorical column's level frequencies: fixed by *seed*, whatever the frame size."""
    rng = np.random.default_rng(seed)
    return [rng.dirichlet(np.full(k, 2.0)) for k in LEVELS]


def _drifted(p: np.ndarray) -> np.ndarray:
    q = p * (1 - CATEGORICAL_SHIFT)  # every level gives up 15 % of its share ...
    q[int(np.argmax(p))] += CATEGORICAL_SHIFT  # ... to the most frequent one
    return q


def frames(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The reference and current frames of *n* rows each."""
    rng = np.random.default_rng([seed, n])
    probabilities = category_probabilities(seed)
    sides: list[dict[str, np.ndarray]] = [{}, {}]
    for i, name in enumerate(NUMERIC):
        family = _FAMILIES[i % len(_FAMILIES)]
        scale, offset = 1.0 + (i % 7), 10.0 * (i % 3)
        for side, values in enumerate(sides):
            shift = SHIFTS.get(name, 0.0) * _STD[family] if side == 1 else 0.0
            values[name] = offset + scale * (_draw(family, rng, n) + shift)
    for j, name in enumerate(CATEGORICAL):
        labels = np.array([f"{name}_v{v:02d}" for v in range(LEVELS[j])], dtype=object)
        p = probabilities[j]
        for side, values in enumerate(sides):
            q = _drifted(p) if side == 1 and name == DRIFTED_CATEGORICAL else p
            values[name] = labels[rng.choice(labels.size, size=n, p=q)]
    return pd.DataFrame(sides[0]), pd.DataFrame(sides[1])


def undrifted_categorical(n: int, trial: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current frames of the 5 categorical columns, both drawn from the same
    frequencies: every flag on them is a false alarm."""
    rng = np.random.default_rng([seed, n, trial, 1])
    probabilities = category_probabilities(seed)
    sides: list[dict[str, np.ndarray]] = [{}, {}]
    for j, name in enumerate(CATEGORICAL):
        labels = np.array([f"{name}_v{v:02d}" for v in range(LEVELS[j])], dtype=object)
        for values in sides:
            values[name] = labels[rng.choice(labels.size, size=n, p=probabilities[j])]
    return pd.DataFrame(sides[0]), pd.DataFrame(sides[1])
