"""Adherence read by the tagger: it falls to chance (or below) when prompts are shuffled; paired comparisons and the
tagger's per-instrument accuracy count what they are given."""

import numpy as np

from components.evaluation import adherence, controls
from components.evaluation.distances import kad_difference
from components.evaluation.musicnn import MTT_TAGS


def tags_hearing(instruments, strength, seed=0):
    """[n, 50] posteriors where the named instrument's tag is raised by `strength` over noise."""
    rng = np.random.default_rng(seed)
    tags = rng.uniform(0.0, 0.3, (len(instruments), len(MTT_TAGS)))
    for n, name in enumerate(instruments):
        tags[n, MTT_TAGS.index(adherence.INSTRUMENT_TAGS[name][0])] += strength
    return tags


INSTRUMENTS = [adherence.INSTRUMENTS[i % 6] for i in range(48)]


def test_adherence_falls_when_prompts_are_shuffled():
    tags = tags_hearing(INSTRUMENTS, 0.5)
    right = adherence.summary(tags, INSTRUMENTS)
    wrong = adherence.summary(tags, adherence.shuffled_prompts(INSTRUMENTS))
    assert right["adherence"] == 1.0 and right["top1"] == 1.0 and right["n"] == 48
    assert wrong["adherence"] < 0.5 and wrong["adherence_interval95"][1] < right["adherence_interval95"][0]
    assert all(a != b for a, b in zip(INSTRUMENTS, adherence.shuffled_prompts(INSTRUMENTS)))


def test_a_paired_comparison_finds_what_the_text_adds_and_nothing_where_it_adds_nothing():
    with_text, without = tags_hearing(INSTRUMENTS, 0.5, seed=1), tags_hearing(INSTRUMENTS, 0.0, seed=2)
    better = adherence.paired(with_text, without, INSTRUMENTS)
    assert better["p_first_better"] < 0.01 and better["difference_interval95"][0] > 0
    same = adherence.paired(without, tags_hearing(INSTRUMENTS, 0.0, seed=3), INSTRUMENTS)
    assert same["p_first_better"] > 0.01


def test_untaggable_instruments_are_left_out_and_counted():
    names = ["piano", "clarinet", "organ", "flute"]
    s = adherence.summary(tags_hearing(["piano", "piano", "piano", "flute"], 0.5), names)
    assert s["n"] == 2 and s["n_untaggable"] == 2
    acc = adherence.per_instrument_accuracy(tags_hearing(["piano", "flute", "piano"], 0.5), ["piano", "flute", "guitar"])
    assert acc["piano"] == {**acc["piano"], "n": 1, "correct": 1} and acc["guitar"]["correct"] == 0
    assert acc["guitar"]["most_said"] == "piano"


def test_kad_difference_is_zero_for_one_set_and_positive_when_the_system_moves_away():
    rng = np.random.default_rng(0)
    base, reference = rng.normal(size=(40, 8)), rng.normal(size=(40, 8))
    diff, lo, hi = kad_difference(base, base, reference)
    assert diff == 0.0 and lo == 0.0 == hi
    diff, lo, _ = kad_difference(base, base + 1.5, reference)
    assert diff > 0 and lo > 0


def test_controls_keep_length_and_level():
    rng = np.random.default_rng(0)
    real = [rng.standard_normal(16000).astype(np.float32) * 0.1, np.sin(np.arange(8000) / 5).astype(np.float32)]
    for made in (controls.noise(real), controls.shuffled(real, 16000, block_s=0.1)):
        assert [len(c) for c in made] == [len(c) for c in real]
        np.testing.assert_allclose([c.std() for c in made], [c.std() for c in real], rtol=0.05)
    assert not np.array_equal(controls.shuffled(real, 16000, block_s=0.1)[1], real[1])
