"""The audit's statistics: Spearman over systems with an exact permutation p-value; the detector's AUC and its
interval; the probe is fitted on one set and applied to another."""

import numpy as np

from components.audit.oraql_audit import auc_with_interval, probe_scores, spearman_exact


def test_spearman_is_exact_over_every_permutation():
    rho, p = spearman_exact(np.arange(6.0), np.arange(6.0))
    assert rho == 1.0 and abs(p - 1 / 720) < 1e-12            # only the identity ranks as high
    rho, p = spearman_exact(np.arange(6.0), -np.arange(6.0))
    assert rho == -1.0 and p == 1.0


def test_auc_reads_separable_and_chance_sets():
    rng = np.random.default_rng(0)
    real = np.r_[np.ones(40), np.zeros(40)].astype(bool)
    apart = auc_with_interval(np.r_[rng.normal(2, 1, 40), rng.normal(-2, 1, 40)], real, 200, 0)
    assert apart["auc"] > 0.95 and apart["ci95"][0] > 0.85 and apart["n_real"] == apart["n_generated"] == 40
    chance = auc_with_interval(rng.normal(size=80), real, 200, 0)
    assert chance["ci95"][0] < 0.5 < chance["ci95"][1]


def test_the_probe_learns_on_one_set_and_scores_another():
    rng = np.random.default_rng(1)
    def sets(n):
        return np.r_[rng.normal(1, 1, (n, 5)), rng.normal(-1, 1, (n, 5))], np.r_[np.ones(n), np.zeros(n)].astype(int)
    (train_x, train_y), (test_x, test_y) = sets(30), sets(30)
    scores = probe_scores(train_x, train_y, test_x)
    assert auc_with_interval(scores, test_y.astype(bool), 100, 0)["auc"] > 0.9
