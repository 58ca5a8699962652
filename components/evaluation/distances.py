"""Set-level metrics on an independent evaluator's outputs: how far generated audio is from real audio, and how
varied it is. Inputs are per-clip embeddings [n, d] or tag posteriors [n, tags] from a model none of the systems
under test saw. KAD carries a bootstrap interval over clips; FAD is shown beside it without one (a resample's
repeated clips shrink its covariances: its interval would be biased as well as its value).

    kad(x, y)              kernel audio distance: the unbiased MMD^2 between the two sets with a Gaussian kernel
                           whose bandwidth is the median pairwise distance of the pooled sets (0 in expectation
                           for two draws of one distribution; it can come out slightly negative), x 1000 as
                           the KAD paper reports it
    fad(x, y)              Frechet distance between Gaussians fitted to the two sets (biased for small n: it
                           is reported beside KAD, which is not)
    tag_kl(p, q)           mean KL divergence between paired tag posteriors, per tag as a Bernoulli (the
                           evaluator's tags are independent sigmoids, not one softmax)
    vendi(x)               Vendi score: the effective number of distinct clips, exp(entropy of the
                           eigenvalues of the cosine-similarity matrix / n); 1 = all alike, n = all orthogonal
    kad_interval(x, y)     percentile bootstrap of KAD over each set's clips (a resampled clip is never paired with
                           its own copy; the kernel's bandwidth is the full sets')
    kad_of_picks(x, y, picks)  KAD of a selection x[picks] (picks may repeat a clip: it is weighted, never paired
                           with its own copy), the kernel fixed by all of x and y so selections compare; interval
    kad_difference(a, b, y)  KAD(b, y) - KAD(a, y) for paired sets a, b (the same prompts and seeds) with one kernel,
                           and its bootstrap interval resampling the pairs together: "did b move away from y?"
"""

from __future__ import annotations

import numpy as np

KAD_SCALE = 1000.0


def _pairwise_sq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def _kernels(x: np.ndarray, y: np.ndarray, bandwidth: float | None):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"KAD needs at least 2 clips per set (got {len(x)} and {len(y)})")
    if bandwidth is None:
        pooled = np.concatenate([x, y])
        d = np.sqrt(_pairwise_sq(pooled, pooled)[np.triu_indices(len(pooled), 1)])
        bandwidth = float(np.median(d)) or 1.0
    gamma = 1.0 / (2.0 * bandwidth ** 2)
    return tuple(np.exp(-gamma * _pairwise_sq(a, b)) for a, b in ((x, x), (y, y), (x, y)))


def _mmd(kxx: np.ndarray, kyy: np.ndarray, kxy: np.ndarray, ix: np.ndarray, iy: np.ndarray) -> float:
    """Unbiased MMD^2 of the clips `ix` of x and `iy` of y (indices may repeat, as in a bootstrap resample: a
    clip is never paired with a copy of itself, which would count its self-similarity of 1 as agreement)."""
    within_x = kxx[np.ix_(ix, ix)][ix[:, None] != ix[None, :]].mean()
    within_y = kyy[np.ix_(iy, iy)][iy[:, None] != iy[None, :]].mean()
    return float(KAD_SCALE * (within_x + within_y - 2.0 * kxy[np.ix_(ix, iy)].mean()))


def kad(x: np.ndarray, y: np.ndarray, bandwidth: float | None = None) -> float:
    """Unbiased MMD^2 (x KAD_SCALE) between the rows of x [n, d] and y [m, d]; n, m >= 2."""
    kxx, kyy, kxy = _kernels(x, y, bandwidth)
    return _mmd(kxx, kyy, kxy, np.arange(len(kxx)), np.arange(len(kyy)))


def kad_interval(x: np.ndarray, y: np.ndarray, n_resamples: int = 500, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap of KAD over each set's clips, the kernel (and its bandwidth) fixed by the full sets."""
    kxx, kyy, kxy = _kernels(x, y, None)
    rng = np.random.default_rng(seed)
    n, m = len(kxx), len(kyy)
    stats = []
    for _ in range(n_resamples):
        ix, iy = rng.integers(0, n, n), rng.integers(0, m, m)
        if len(np.unique(ix)) > 1 and len(np.unique(iy)) > 1:
            stats.append(_mmd(kxx, kyy, kxy, ix, iy))
    tail = (1 - level) / 2 * 100
    return float(np.percentile(stats, tail)), float(np.percentile(stats, 100 - tail))


def fad(x: np.ndarray, y: np.ndarray) -> float:
    """||mu_x - mu_y||^2 + Tr(S_x + S_y - 2 (S_x S_y)^1/2)."""
    from scipy import linalg

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    mu_x, mu_y = x.mean(0), y.mean(0)
    s_x, s_y = np.atleast_2d(np.cov(x, rowvar=False)), np.atleast_2d(np.cov(y, rowvar=False))
    root, _ = linalg.sqrtm(s_x @ s_y, disp=False)
    root = root.real
    return float(((mu_x - mu_y) ** 2).sum() + np.trace(s_x + s_y - 2.0 * root))


def tag_kl(p: np.ndarray, q: np.ndarray, eps: float = 1e-6) -> float:
    """Mean over clips and tags of KL(Bernoulli(p) || Bernoulli(q)) for paired posteriors p, q [n, tags]."""
    p = np.clip(np.asarray(p, np.float64), eps, 1 - eps)
    q = np.clip(np.asarray(q, np.float64), eps, 1 - eps)
    if p.shape != q.shape:
        raise ValueError(f"tag posteriors must be paired: {p.shape} vs {q.shape}")
    return float(np.mean(p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))))


def vendi(x: np.ndarray) -> float:
    """exp(-sum(l log l)) over the eigenvalues l of K / n, K the cosine similarities of the rows of x."""
    x = np.asarray(x, np.float64)
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    eig = np.linalg.eigvalsh(unit @ unit.T / len(x))
    eig = eig[eig > 1e-12]
    return float(np.exp(-(eig * np.log(eig)).sum()))


def kad_difference(a: np.ndarray, b: np.ndarray, y: np.ndarray, n_resamples: int = 500, seed: int = 0,
                   level: float = 0.95) -> tuple[float, float, float]:
    """(KAD(b, y) - KAD(a, y), interval low, high): a[i] and b[i] are paired (same prompt, same seed), so a
    resample draws pairs; one kernel (bandwidth of a, b and y pooled) serves both distances."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired sets must have one shape: {a.shape} vs {b.shape}")
    n = len(a)
    pooled = np.concatenate([a, b])
    kpp, kyy, kpy = _kernels(pooled, y, None)
    ia, ib = np.arange(n), np.arange(n) + n

    def diff(ix: np.ndarray, iy: np.ndarray) -> float:
        return _mmd(kpp, kyy, kpy, ib[ix], iy) - _mmd(kpp, kyy, kpy, ia[ix], iy)

    point = diff(np.arange(n), np.arange(len(y)))
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_resamples):
        ix, iy = rng.integers(0, n, n), rng.integers(0, len(y), len(y))
        if len(np.unique(ix)) > 1 and len(np.unique(iy)) > 1:
            stats.append(diff(ix, iy))
    tail = (1 - level) / 2 * 100
    return point, float(np.percentile(stats, tail)), float(np.percentile(stats, 100 - tail))


def kad_of_picks(x: np.ndarray, y: np.ndarray, picks: np.ndarray, n_resamples: int = 200, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float, float]:
    """(KAD(x[picks], y), interval low, high); a bootstrap resample draws from the picks and from y."""
    kxx, kyy, kxy = _kernels(x, y, None)
    picks = np.asarray(picks)
    if len(np.unique(picks)) < 2:
        raise ValueError("KAD needs at least 2 distinct picked clips")
    point = _mmd(kxx, kyy, kxy, picks, np.arange(len(y)))
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_resamples):
        ix, iy = picks[rng.integers(0, len(picks), len(picks))], rng.integers(0, len(y), len(y))
        if len(np.unique(ix)) > 1 and len(np.unique(iy)) > 1:
            stats.append(_mmd(kxx, kyy, kxy, ix, iy))
    tail = (1 - level) / 2 * 100
    return point, float(np.percentile(stats, tail)), float(np.percentile(stats, 100 - tail))
