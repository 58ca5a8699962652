"""The set-level metrics measure what they claim: KAD is 0 in expectation for two draws of one set and grows
with added noise; FAD is 0 for a set against itself; KL is 0 for equal posteriors; Vendi counts distinct clips."""

import numpy as np
import pytest

from components.evaluation.distances import fad, kad, kad_interval, tag_kl, vendi


def draws(seed: int, n: int = 60, d: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


def test_kad_is_zero_in_expectation_for_two_draws_of_one_set_and_grows_with_noise():
    same = [kad(draws(2 * i), draws(2 * i + 1)) for i in range(20)]
    spread = np.std(same) / np.sqrt(len(same))
    assert abs(np.mean(same)) < 3 * spread                  # unbiased: centred on 0, negative draws included
    assert min(same) < 0 < max(same)
    real = draws(100)
    noisy = [np.mean([kad(real, draws(200 + s) + scale * np.random.default_rng(s).normal(size=(60, 16)))
                      for s in range(3)]) for scale in (0.0, 0.5, 1.0, 2.0)]
    assert all(a < b for a, b in zip(noisy, noisy[1:])), noisy
    lo, hi = kad_interval(real, draws(300) + 1.0, n_resamples=100)
    assert 0 < lo < kad(real, draws(300) + 1.0) < hi
    # two draws of one set: the interval holds its point and 0 (a resampled clip is never paired with its own copy)
    same_lo, same_hi = kad_interval(draws(1), draws(2), n_resamples=200)
    assert same_lo < min(0.0, kad(draws(1), draws(2))) and max(0.0, kad(draws(1), draws(2))) < same_hi


def test_kad_needs_two_clips_a_set():
    with pytest.raises(ValueError, match="at least 2 clips"):
        kad(draws(0, n=1), draws(1))


def test_fad_is_zero_against_itself_and_counts_a_shift():
    x = draws(0, n=400)
    assert fad(x, x) == pytest.approx(0.0, abs=1e-6)
    assert fad(x, x + 0.5) == pytest.approx(16 * 0.25, rel=1e-6)


def test_tag_kl_is_zero_for_equal_posteriors_and_positive_otherwise():
    p = np.random.default_rng(0).uniform(0.05, 0.95, size=(10, 50))
    assert tag_kl(p, p) == pytest.approx(0.0, abs=1e-12)
    assert tag_kl(p, np.clip(p + 0.1, 0, 1)) > 0
    with pytest.raises(ValueError, match="paired"):
        tag_kl(p, p[:5])


def test_vendi_counts_distinct_clips():
    assert vendi(np.ones((8, 4))) == pytest.approx(1.0)
    assert vendi(np.eye(8)) == pytest.approx(8.0)
    assert vendi(np.repeat(np.eye(4), 2, axis=0)) == pytest.approx(4.0)


def test_kad_of_picks_weights_repeated_picks_without_pairing_a_clip_with_itself():
    from components.evaluation.distances import kad, kad_of_picks

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 6)), rng.normal(size=(30, 6))
    point, lo, hi = kad_of_picks(x, y, np.arange(30))
    assert abs(point - kad(x, y)) < 1e-9 and lo < point < hi
    # every clip picked 4 times: the same distribution, so about the same KAD (a copy paired with itself would
    # have counted 1s as agreement and pushed it up)
    repeated, _, _ = kad_of_picks(x, y, np.repeat(np.arange(30), 4))
    assert abs(repeated - point) < 0.2 * max(abs(hi - lo), 1.0)
