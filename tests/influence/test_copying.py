"""The copy detectors: a spliced copy of the reference is flagged, an unrelated piece is not."""

import numpy as np

from components.influence.copying import detect, longest_shared_run, mel_xcorr, ngram_hashes, shared_ngrams, splice

SR, FR = 8_000, 10.0


def test_longest_shared_run_is_the_longest_common_substring():
    assert longest_shared_run(np.array([1, 2, 3, 4, 9]), np.array([7, 2, 3, 4, 8, 1, 2])) == 3
    assert longest_shared_run(np.array([1, 1]), np.array([2, 2])) == 0


def test_silence_is_not_a_memorised_ngram():
    silence = np.full(40, 7)
    assert ngram_hashes(silence, 10) == set()
    assert shared_ngrams(np.concatenate([silence, np.arange(20)]), ngram_hashes(np.full(100, 7), 10), 10) == 0


def codes_to_audio(codes: np.ndarray) -> np.ndarray:
    """A stand-in decoder: each frame is 0.1 s of a tone pitched by codebook 0 (so copies sound like copies)."""
    hop = int(SR / FR)
    t = np.arange(hop) / SR
    return np.concatenate([0.2 * np.sin(2 * np.pi * (200 + 40 * c) * t) for c in codes[0]]).astype(np.float32)


def test_a_spliced_copy_is_flagged_and_an_unrelated_piece_is_not():
    g = np.random.default_rng(0)
    song = g.integers(0, 32, size=(4, 200))                   # a 20 s reference song
    generation = g.integers(0, 32, size=(4, 60))              # 6 s of unrelated music
    train = [g.integers(0, 32, size=(4, 300)) for _ in range(3)]
    table = set().union(*(ngram_hashes(t[0], 10) for t in train))
    kw = dict(sample_rate=SR, frame_rate=FR, ngram=10, max_run_frames=5, mel_threshold=0.9)
    clean = detect(generation, codes_to_audio(generation), song, codes_to_audio(song), table, **kw)
    assert not clean["flagged"] and clean["run_seconds"] < 0.5
    copied = splice(generation, song, int(0.1 * song.shape[1]), g)      # 10 % of the song: 2 s
    hit = detect(copied, codes_to_audio(copied), song, codes_to_audio(song), table, **kw)
    assert hit["flagged"] and hit["flag_run"] and hit["run_seconds"] >= 2.0 and hit["flag_mel"]
    memorised = splice(generation, train[1], 30, g)
    assert shared_ngrams(memorised[0], table, 10) > 0
    assert detect(memorised, codes_to_audio(memorised), song, codes_to_audio(song), table, **kw)["flag_ngram"]


def test_mel_cross_correlation_finds_a_copy_at_any_lag():
    g = np.random.default_rng(1)
    song = codes_to_audio(g.integers(0, 32, size=(1, 100)))
    other = codes_to_audio(g.integers(0, 32, size=(1, 30)))
    lagged = song[int(3.37 * SR):int(5.37 * SR)]                       # off the frame grid
    assert mel_xcorr(lagged, song, SR) > 0.9                             # measured 0.95 (0.81 unrelated)
    assert mel_xcorr(other, song, SR) < mel_xcorr(lagged, song, SR) - 0.1
