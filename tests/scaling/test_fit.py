"""The fit recovers a known law; the recommendation follows the budget the right way."""

import numpy as np
import pytest

from components.scaling.fit import ScalingLaw, bootstrap_fit, fit_scaling_law, refit_with_exponents
from components.scaling.recommend import compute_optimal, isoflop_curve

# Chinchilla's published fit (Hoffmann et al. 2022): E 1.69, A 406.4, alpha 0.34, B 410.7, beta 0.28
TRUE = ScalingLaw(E=1.69, A=406.4, alpha=0.34, B=410.7, beta=0.28)


def synthetic_runs(law: ScalingLaw, noise: float, seed: int = 0):
    """A 4 x 4 grid of runs (N 1e6..1e9, D 1e8..1e11) with multiplicative noise on the loss."""
    N, D = (a.ravel() for a in np.meshgrid(np.geomspace(1e6, 1e9, 4), np.geomspace(1e8, 1e11, 4)))
    rng = np.random.default_rng(seed)
    return N, D, law.loss(N, D) * np.exp(rng.normal(0.0, noise, N.shape))


def test_the_fit_recovers_known_exponents_from_noiseless_power_law_data():
    law = fit_scaling_law(*synthetic_runs(TRUE, noise=0.0))
    assert law.alpha == pytest.approx(TRUE.alpha, abs=0.01)
    assert law.beta == pytest.approx(TRUE.beta, abs=0.01)
    assert law.E == pytest.approx(TRUE.E, rel=0.02)


def test_the_bootstrap_intervals_cover_the_true_exponents_under_noise():
    N, D, L = synthetic_runs(TRUE, noise=0.005, seed=1)
    fit = bootstrap_fit(N, D, L, n_bootstrap=20, confidence=0.95, seed=0)
    for name in ("alpha", "beta"):
        lo, hi = fit.intervals[name]
        assert lo <= getattr(TRUE, name) <= hi, (name, lo, hi)
        assert hi - lo < 0.3, f"{name}: interval {lo:.3f}-{hi:.3f} says nothing"
    # and a different law is told apart: its exponents fall outside the intervals
    other = fit_scaling_law(*synthetic_runs(ScalingLaw(E=1.69, A=406.4, alpha=0.6, B=410.7, beta=0.15), noise=0.0))
    assert not fit.intervals["alpha"][0] <= other.alpha <= fit.intervals["alpha"][1]


def test_the_fit_predicts_a_larger_run_it_never_saw():
    N, D, L = synthetic_runs(TRUE, noise=0.003, seed=2)
    law = fit_scaling_law(N, D, L)
    assert law.loss(1e10, 1e12) == pytest.approx(TRUE.loss(1e10, 1e12), rel=0.02)


def test_refit_with_fixed_exponents_recovers_the_coefficients():
    shifted = ScalingLaw(E=2.1, A=300.0, alpha=TRUE.alpha, B=800.0, beta=TRUE.beta)
    N, D, L = synthetic_runs(shifted, noise=0.0)
    law = refit_with_exponents(N[:6], D[:6], L[:6], TRUE.alpha, TRUE.beta)
    assert (law.E, law.A, law.B) == pytest.approx((2.1, 300.0, 800.0), rel=1e-4)


def test_too_few_runs_or_bad_values_are_refused():
    with pytest.raises(ValueError, match="at least 5 runs"):
        fit_scaling_law([1e6, 1e7], [1e9, 1e9], [3.0, 2.9])
    with pytest.raises(ValueError, match="positive"):
        fit_scaling_law([1e6] * 5, [1e9] * 4 + [0], [3.0] * 5)


def test_a_bigger_budget_buys_a_bigger_model_and_more_tokens():
    recs = [compute_optimal(TRUE, c) for c in (1e18, 1e20, 1e22, 1e24)]
    for small, big in zip(recs, recs[1:]):
        assert big.params > small.params and big.tokens > small.tokens and big.loss < small.loss
        assert 6 * big.params * big.tokens == pytest.approx(big.flops, rel=1e-9)
    # Chinchilla's law: N_opt grows as C^(beta / (alpha + beta)) = C^0.45
    growth = np.log(recs[-1].params / recs[0].params) / np.log(1e24 / 1e18)
    assert growth == pytest.approx(TRUE.beta / (TRUE.alpha + TRUE.beta), abs=1e-9)


def test_the_recommendation_is_the_minimum_of_its_isoflop_profile():
    for flops in (1e19, 1e21):
        rec = compute_optimal(TRUE, flops)
        grid = np.geomspace(rec.params / 100, rec.params * 100, 4001)
        best = grid[np.argmin(isoflop_curve(TRUE, flops, grid))]
        assert best == pytest.approx(rec.params, rel=0.01)


def test_more_data_hungry_codes_move_the_optimum_to_fewer_parameters():
    """A codec whose tokens need more data (B larger) gets a smaller model and more tokens at the same budget."""
    hungry = ScalingLaw(E=TRUE.E, A=TRUE.A, alpha=TRUE.alpha, B=4 * TRUE.B, beta=TRUE.beta)
    base, other = compute_optimal(TRUE, 1e21), compute_optimal(hungry, 1e21)
    assert other.params < base.params and other.tokens > base.tokens


def test_no_interior_optimum_is_an_error():
    with pytest.raises(ValueError, match="no interior optimum"):
        compute_optimal(ScalingLaw(E=1.0, A=0.0, alpha=0.3, B=10.0, beta=0.3), 1e20)
    with pytest.raises(ValueError, match="positive"):
        compute_optimal(TRUE, 0.0)
