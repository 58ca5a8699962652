"""The parametric scaling law L(N, D) = E + A / N^alpha + B / D^beta, fitted to measured runs.

    N  non-embedding parameters (Kaplan et al.: the code embeddings and the K output heads,
       whose size is set by the codec's vocabulary, not the model's capacity, are left out)
    D  training tokens = frame positions seen (one position carries all K codes of a frame)
    L  held-out (valid) cross-entropy, nats per code

The fit follows Chinchilla's approach 3 (Hoffmann et al. 2022, appendix D.2): minimise a Huber
loss between log L and log of the prediction, written as a log-sum-exp so that every term stays
positive, from several starting points (the objective has local minima; see initial_guesses). Uncertainty comes
from a bootstrap over runs: resample the runs with replacement, refit, take percentiles.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
from scipy.optimize import least_squares
from scipy.special import logsumexp

# Chinchilla's Huber delta (on log-loss residuals): a few bad runs do not drag the fit
HUBER_DELTA = 1e-3


@dataclasses.dataclass(frozen=True)
class ScalingLaw:
    E: float          # irreducible loss (the data's entropy the model family cannot remove)
    A: float
    alpha: float      # how fast loss falls with parameters
    B: float
    beta: float       # how fast loss falls with tokens

    def loss(self, N, D):
        N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
        return self.E + self.A / N ** self.alpha + self.B / D ** self.beta

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _unpack(theta: np.ndarray) -> ScalingLaw:
    e, a, alpha, b, beta = theta
    return ScalingLaw(E=float(np.exp(e)), A=float(np.exp(a)), alpha=float(alpha), B=float(np.exp(b)), beta=float(beta))


def _terms(theta: np.ndarray, logN: np.ndarray, logD: np.ndarray) -> np.ndarray:
    e, a, alpha, b, beta = theta
    return np.stack([np.full_like(logN, e), a - alpha * logN, b - beta * logD])     # [3, runs]: log E, log A/N^a, log B/D^b


def _residuals(theta: np.ndarray, logN: np.ndarray, logD: np.ndarray, logL: np.ndarray) -> np.ndarray:
    return logsumexp(_terms(theta, logN, logD), axis=0) - logL


def _jacobian(theta: np.ndarray, logN: np.ndarray, logD: np.ndarray, logL: np.ndarray) -> np.ndarray:
    """d residual / d (e, a, alpha, b, beta): each term's share of the loss times its own derivative."""
    terms = _terms(theta, logN, logD)
    w = np.exp(terms - logsumexp(terms, axis=0))                                   # [3, runs] softmax
    return np.stack([w[0], w[1], -w[1] * logN, w[2], -w[2] * logD], axis=1)


_BOUNDS = ([-5.0, -10.0, 0.0, -10.0, 0.0], [5.0, 40.0, 2.0, 40.0, 2.0])
_EXPONENT_GRID = np.linspace(0.05, 1.5, 20)


def initial_guesses(N: np.ndarray, D: np.ndarray, L: np.ndarray, n: int = 4) -> list[list[float]]:
    """Starting points for the Huber fit, `n` best first.

    Chinchilla starts L-BFGS from a grid over all five parameters (thousands of fits). For fixed
    exponents the law is linear in E, A, B, so a grid over (alpha, beta) alone, each point solved
    by non-negative least squares, finds the basins in milliseconds; the Huber fit starts there.
    """
    from scipy.optimize import nnls

    scored = []
    for alpha in _EXPONENT_GRID:
        for beta in _EXPONENT_GRID:
            X = np.stack([np.ones_like(N), N ** -alpha, D ** -beta], axis=1)
            scale = X.max(axis=0)
            coef, rnorm = nnls(X / scale, L)
            E, A, B = np.maximum(coef / scale, 1e-12)
            scored.append((rnorm, [np.log(E), np.log(A), alpha, np.log(B), beta]))
    scored.sort(key=lambda item: item[0])
    return [np.clip(x, _BOUNDS[0], _BOUNDS[1]).tolist() for _, x in scored[:n]]


def fit_scaling_law(N: Sequence[float], D: Sequence[float], L: Sequence[float],
                    starts: Sequence[Sequence[float]] | None = None) -> ScalingLaw:
    """Least-squares (Huber) fit of log L; the best of several starts."""
    N, D, L = (np.asarray(x, dtype=float) for x in (N, D, L))
    if not (len(N) == len(D) == len(L)):
        raise ValueError("N, D and L must have the same length")
    if len(L) < 5:
        raise ValueError(f"fitting 5 parameters needs at least 5 runs, got {len(L)}")
    if np.any(N <= 0) or np.any(D <= 0) or np.any(L <= 0):
        raise ValueError("N, D and L must be positive")
    args = (np.log(N), np.log(D), np.log(L))
    starts = list(starts) if starts is not None else initial_guesses(N, D, L)
    best, best_cost = None, np.inf
    for x0 in starts:
        res = least_squares(_residuals, np.asarray(x0, dtype=float), jac=_jacobian, args=args, loss="huber",
                            f_scale=HUBER_DELTA, bounds=_BOUNDS, method="trf", max_nfev=1000)
        if res.cost < best_cost:
            best, best_cost = res.x, res.cost
    return _unpack(best)


def _pack(law: ScalingLaw) -> list[float]:
    return [np.log(law.E), np.log(law.A), law.alpha, np.log(law.B), law.beta]


@dataclasses.dataclass(frozen=True)
class FitWithIntervals:
    law: ScalingLaw
    intervals: dict[str, tuple[float, float]]     # parameter -> (low, high) percentile interval
    n_runs: int
    n_bootstrap: int
    confidence: float
    samples: list[ScalingLaw]                     # the bootstrap refits (for intervals on derived quantities)


def bootstrap_fit(N, D, L, n_bootstrap: int = 200, confidence: float = 0.9, seed: int = 0) -> FitWithIntervals:
    """The fit on all runs plus percentile intervals from refits on runs resampled with replacement."""
    N, D, L = (np.asarray(x, dtype=float) for x in (N, D, L))
    law = fit_scaling_law(N, D, L)
    rng = np.random.default_rng(seed)
    samples: list[ScalingLaw] = []
    for _ in range(n_bootstrap):
        idx = rng.integers(0, len(L), len(L))
        if len(np.unique(N[idx])) < 2 or len(np.unique(D[idx])) < 2:
            continue                      # a resample without two sizes and two budgets cannot separate the terms
        # a resample is close to the full data: start from the full fit and the resample's own best guesses
        starts = [_pack(law), *initial_guesses(N[idx], D[idx], L[idx], n=2)]
        samples.append(fit_scaling_law(N[idx], D[idx], L[idx], starts=starts))
    tail = 100 * (1 - confidence) / 2
    intervals = {}
    for name in ("E", "A", "alpha", "B", "beta"):
        values = np.array([getattr(s, name) for s in samples])
        intervals[name] = (float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail)))
    return FitWithIntervals(law, intervals, len(L), len(samples), confidence, samples)


def refit_with_exponents(N, D, L, alpha: float, beta: float) -> ScalingLaw:
    """E, A and B for new data with the exponents held fixed (few runs cannot pin all five).

    With fixed exponents the law is linear in (E, A, B): non-negative least squares on L itself.
    """
    from scipy.optimize import nnls

    N, D, L = (np.asarray(x, dtype=float) for x in (N, D, L))
    X = np.stack([np.ones_like(N), N ** -alpha, D ** -beta], axis=1)
    (E, A, B), _ = nnls(X, L)
    return ScalingLaw(E=float(E), A=float(A), alpha=alpha, B=float(B), beta=beta)
