"""Best-of-n: exact selection probabilities, and a curve that reports what selection buys."""

import itertools

import numpy as np
import pytest

from components.oraql.best_of_n import selection_curve, selection_probabilities
from components.oraql.evaluate import agreement, gate_decisions, pairwise_accuracy, target_decisions
from components.oraql.config import OraqlConfig


@pytest.mark.parametrize("N, n", [(8, 1), (8, 2), (8, 4), (8, 8), (5, 3)])
def test_selection_probabilities_match_enumerating_every_subset(N, n):
    counts = np.zeros(N)
    for subset in itertools.combinations(range(N), n):
        counts[min(subset)] += 1                             # the best of a subset is its lowest rank
    assert np.allclose(selection_probabilities(N, n), counts / counts.sum())
    assert selection_probabilities(N, n).sum() == pytest.approx(1.0)


def test_curve_rises_and_below_median_selections_disappear():
    rng = np.random.default_rng(0)
    scores = rng.uniform(0, 1, (6, 8))
    judge = scores + rng.normal(0, 0.05, scores.shape)       # an evaluator that agrees with ORAQL
    curve = selection_curve(scores, [1, 2, 4, 8], judge)
    means = [r["mean"] for r in curve]
    below = [r["share_below_median"] for r in curve]
    worst = [r["worst"] for r in curve]
    assert means == sorted(means) and below == sorted(below, reverse=True) and worst == sorted(worst)
    assert curve[0]["mean"] == pytest.approx(scores.mean()) and curve[-1]["mean"] == pytest.approx(scores.max(1).mean())
    assert curve[0]["share_below_median"] == pytest.approx(0.5) and curve[-1]["share_below_median"] == 0.0
    assert curve[-1]["worst"] == pytest.approx(scores.max(1).min())
    assert curve[-1]["judge_mean"] > curve[0]["judge_mean"]
    unrelated = selection_curve(scores, [1, 8], rng.uniform(0, 1, scores.shape))
    assert abs(unrelated[-1]["judge_mean"] - unrelated[0]["judge_mean"]) < abs(curve[-1]["judge_mean"] - curve[0]["judge_mean"])


def test_pairwise_accuracy_and_gate():
    import pandas as pd

    items = pd.DataFrame({"item_id": [f"c{i // 3}|k{i % 3}" for i in range(30)], "overall": np.linspace(0, 1, 30),
                          "condition": [f"k{i % 3}" for i in range(30)], "kind": ["noise"] * 15 + ["clipping"] * 15})
    perfect = agreement(items, items["overall"].to_numpy(), held_out_type="clipping", margin=0.1, n_boot=50)
    assert perfect["spearman_clip"]["value"] == pytest.approx(1.0) and perfect["pairwise"]["value"] == 1.0
    lo, hi = perfect["spearman_clip"]["ci95"]
    assert lo <= 1.0 + 1e-9 and hi == pytest.approx(1.0)
    inverted = agreement(items, -items["overall"].to_numpy(), held_out_type="clipping", margin=0.1, n_boot=0)
    assert inverted["pairwise"]["value"] == 0.0 and inverted["held_out_spearman"]["value"] == pytest.approx(-1.0)
    # pairs closer than the margin are not ranked: (0.1, 0.15) is not a pair, (0.1, 0.3) and (0.15, 0.3) are
    assert pairwise_accuracy(np.array([0.2, 0.1, 0.3]), np.array([0.1, 0.15, 0.3]), 0.1) == 1.0
    assert pairwise_accuracy(np.array([0.2, 0.1, 0.15]), np.array([0.1, 0.15, 0.3]), 0.1) == 0.5
    cfg = OraqlConfig()
    good = {"spearman_clip": 0.85, "spearman_clip_ci95": [0.7, 0.9], "untrained_spearman_clip": 0.1,
            "pairwise_accuracy": 0.81, "pairwise_accuracy_ci95": [0.7, 0.9], "held_out_spearman": 0.7,
            "untrained_held_out_spearman": 0.1, "spearman_system": 0.9}
    assert all(gate_decisions(good, cfg).values())
    assert [k for k, ok in target_decisions(good, cfg).items() if not ok] == ["spearman_system"]
    bad = gate_decisions({**good, "spearman_clip_ci95": [0.05, 0.8]}, cfg)
    assert [k for k, ok in bad.items() if not ok] == ["per_clip_beats_untrained"]
    assert gate_decisions(good, cfg.model_copy(update={"gate_beats_untrained": False})) == {}


def test_the_conditioning_judge_scores_the_prompted_instrument():
    from components.oraql.best_of_n import JudgeEvaluator

    class FakeJudge:                  # components/judge's interface: features, log_probs, classes, sample_rate
        sample_rate = 16_000
        classes = {"instrument": ["flute", "piano"]}

        def features(self, pieces):
            return [np.array([[float(np.abs(p).mean() > 0.1)]]) for p in pieces]

        def log_probs(self, head, feats):
            return np.log(np.array([[0.9, 0.1] if f[0, 0] else [0.2, 0.8] for f in feats]))

    judge = JudgeEvaluator(FakeJudge())
    loud, quiet = np.full(24_000, 0.5, np.float32), np.full(24_000, 0.01, np.float32)
    scores = judge([loud, quiet, loud], 24_000, [{"instrument": "flute"}, {"instrument": "flute"}, {"instrument": "organ"}])
    assert scores[:2] == pytest.approx([0.9, 0.2]) and np.isnan(scores[2])


def test_the_independent_curve_follows_oraqls_picks_toward_or_away_from_real_music():
    """Candidates whose ORAQL score grows with closeness to the real set: best-of-8's picks sit nearer to it (lower
    KAD) than every candidate (best-of-1); scored the other way round, farther. Adherence is the exact expectation."""
    from components.evaluation.evaluator import Scores
    from components.evaluation.musicnn import MTT_TAGS
    from components.oraql.best_of_n import independent_curve

    rng = np.random.default_rng(0)
    P, N = 12, 8
    offset = rng.uniform(0, 3, (P, N))                                  # how far each candidate drifts
    emb = rng.normal(size=(P * N, 6)) + offset.reshape(-1, 1)
    tags = rng.uniform(0, 0.3, (P * N, len(MTT_TAGS)))
    reference = Scores(tags[:40], rng.normal(size=(40, 6)))
    instruments = ["piano"] * P
    toward = independent_curve(-offset, Scores(tags, emb), reference, instruments, [1, 2, 4, 8], seed=0)
    away = independent_curve(offset, Scores(tags, emb), reference, instruments, [1, 2, 4, 8], seed=0)
    assert [r["n"] for r in toward] == [1, 2, 4, 8]
    assert toward[-1]["kad_interval"][1] < toward[0]["kad_interval"][0]
    assert away[-1]["kad"] > away[0]["kad"]
    assert toward[0]["kad"] == away[0]["kad"] and toward[0]["n_picks"] == P * N
    assert 0.0 <= toward[0]["adherence"] <= 1.0
