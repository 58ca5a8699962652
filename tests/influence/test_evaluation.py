"""Evaluation helpers: the settings split, the judge's instrument two-choice test, short target windows."""

import logging

import numpy as np
import pytest

from components.influence.evaluate import instrument_two_choice, two_choice
from components.influence.train import attach_reference, fine_tune, target_frames
from tests.influence.conftest import influence_config, synthetic_recordings, tiny_lyra


def test_eval_split_defaults_to_test_and_accepts_only_held_out_splits():
    assert influence_config().eval_split == "test"
    assert influence_config(eval_split="valid").eval_split == "valid"
    with pytest.raises(ValueError):
        influence_config(eval_split="train")


class ScriptedJudge:
    """A stand-in for the trained judge, so the pair counting is tested on known verdicts: it hears
    instrument `plays[i]` in piece i (a piece is its index as a 1-sample array)."""

    classes = {"instrument": ["piano", "flute", "organ"]}

    def __init__(self, plays):
        self.plays = plays

    def features(self, pieces):
        return [int(p[0]) for p in pieces]

    def log_probs(self, head, features):
        out = np.full((len(features), 3), np.log(0.1))
        for i, f in enumerate(features):
            out[i, self.classes["instrument"].index(self.plays[f])] = np.log(0.8)
        return out


def test_instrument_two_choice_counts_pairs_of_different_instruments():
    pieces = [np.array([i], np.float32) for i in range(3)]
    refs = ["piano", "flute", "piano"]
    # every generation plays its reference's instrument: every pair of different instruments is won
    won = instrument_two_choice(ScriptedJudge(refs), pieces, refs)
    assert (won["accuracy"], won["n_pairs"]) == (1.0, 4) and won["ci95"][0] > 0.4
    # generations that ignore the reference (all organ): no pair is won
    assert instrument_two_choice(ScriptedJudge(["organ"] * 3), pieces, refs)["accuracy"] == 0.0
    assert instrument_two_choice(None, pieces, refs) is None
    assert instrument_two_choice(ScriptedJudge(refs), pieces, ["piano"] * 3) is None      # one instrument: no pairs


def test_generations_that_ignore_the_reference_score_chance_in_two_choice():
    # identical generations: S(gen, ref_j) is the same row for every i -> exactly half the pairs are won
    sims = np.tile(np.array([0.3, 0.1, 0.7, 0.5]), (4, 1))
    assert two_choice(sims, ["a", "b", "c", "d"])["accuracy"] == 0.5


def test_fine_tuning_trains_on_target_windows_of_target_frames(tiny_codec):
    model = tiny_lyra()
    cfg = influence_config(steps=3, target_frames=6, checkpoint_every=0)
    attach_reference(model, cfg, tiny_codec)
    assert target_frames(cfg, model.config) == 6
    assert target_frames(influence_config(), model.config) == model.config.window_frames
    assert target_frames(influence_config(target_frames=10_000), model.config) == model.config.window_frames
    recs = synthetic_recordings()
    _, history = fine_tune(model, recs, recs[:3], cfg, None, logging.getLogger("test"))
    assert len(history["loss"]) == 3 and np.isfinite(history["gain_after"]["gain_early"])


def test_two_choice_interval_resamples_generations_not_pairs():
    from components.common.stats import wilson_interval
    from components.influence.evaluate import pair_accuracy

    # 8 generations, each against 7 others: 4 always win, 4 always lose. The 56 pairs are not 56
    # independent trials: the interval must be wider than a binomial one over 56 pairs.
    wins = [[True] * 7] * 4 + [[False] * 7] * 4
    out = pair_accuracy(wins)
    assert out["accuracy"] == 0.5 and out["n_pairs"] == 56 and out["n_generations"] == 8
    lo, hi = out["ci95"]
    wlo, whi = wilson_interval(28, 56)
    assert hi - lo > 1.5 * (whi - wlo)


def test_evaluator_ensemble_similarity_is_the_mean_of_its_members_cosines():
    import torch

    from components.influence.evaluator import CropEncoder, Evaluator, EvaluatorEnsemble

    sr = 24000
    members = []
    for seed in (0, 1, 2):
        torch.manual_seed(seed)
        members.append(Evaluator(CropEncoder(16).eval(), sr, 1.0, {"selected_valid_retrieval": 0.1 * seed}))
    g = np.random.default_rng(0)
    a = [g.standard_normal(sr).astype(np.float32) for _ in range(3)]
    b = [np.sin(np.arange(sr) * f / sr * 2 * np.pi).astype(np.float32) for f in (220, 330)]
    ensemble = EvaluatorEnsemble(members)
    expected = np.mean([m.similarity(a, b) for m in members], axis=0)
    np.testing.assert_allclose(ensemble.similarity(a, b), expected, atol=1e-5)
    assert not np.allclose(members[0].similarity(a, b), members[1].similarity(a, b))   # members differ
    assert ensemble.history["members_valid_retrieval"] == [0.0, 0.1, 0.2]


def test_mel_null_pairs_are_different_pieces_of_one_instrument():
    from types import SimpleNamespace as R

    from components.influence.evaluate import null_pairs

    recs = [R(piece_id="a", instrument="flute"), R(piece_id="b", instrument="flute"),
            R(piece_id="a", instrument="organ"), R(piece_id="c", instrument="guitar")]
    pairs, same = null_pairs(recs)
    assert same and sorted(pairs) == [(0, 1), (1, 0)]
    pairs, same = null_pairs([recs[0], recs[2], recs[3]])              # no instrument has two pieces
    assert not same and (0, 1) not in pairs and (0, 2) in pairs and (1, 2) in pairs
