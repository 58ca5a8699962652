"""Small statistics every evaluation reports with its figures: intervals and p-values.

    wilson_interval(k, n)         95 % interval of a proportion (k successes in n)
    binomial_p_greater(k, n, p0)  one-sided p-value of k successes in n when the rate is p0
    paired_p_greater(a, b)        exact McNemar: does condition a succeed more often than b on the
                                  same items (same prompts, same seeds)? one-sided
    bootstrap_interval(x, ...)    percentile bootstrap of a statistic of samples x
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def binomial_p_greater(k: int, n: int, p0: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p0)."""
    from scipy.stats import binomtest

    if n == 0:
        return float("nan")
    return float(binomtest(int(k), int(n), float(p0), alternative="greater").pvalue)


def paired_p_greater(a_correct: np.ndarray, b_correct: np.ndarray) -> float:
    """Exact one-sided McNemar test on paired outcomes: among items where exactly one condition
    succeeds, is it `a` more often than a fair coin would make it? 1.0 when they never disagree."""
    a, b = np.asarray(a_correct, bool), np.asarray(b_correct, bool)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    if only_a + only_b == 0:
        return 1.0
    return binomial_p_greater(only_a, only_a + only_b, 0.5)


def bootstrap_interval(samples: np.ndarray, statistic: Callable[[np.ndarray], float] = np.mean,
                       n_resamples: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of `statistic` over resamples (with replacement) of the first axis."""
    x = np.asarray(samples)
    if len(x) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    stats = np.array([statistic(x[rng.integers(0, len(x), len(x))]) for _ in range(n_resamples)])
    tail = (1 - level) / 2 * 100
    return (float(np.percentile(stats, tail)), float(np.percentile(stats, 100 - tail)))
