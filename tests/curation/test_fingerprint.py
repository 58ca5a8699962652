"""Near-duplicate detection: the same music survives gain/resampling/codecs, different music does not match."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from components.common.audio import resample
from components.curation.config import CurationConfig
from components.curation.fingerprint import DuplicateIndex, fingerprint, from_hex, hamming_fraction, to_hex

SR = 24_000
THRESHOLD = CurationConfig().fingerprint_max_hamming


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(hamming_fraction(fingerprint(a, SR), fingerprint(b, SR)[None])[0])


def through_codec(audio: np.ndarray, rate: int, fmt: str) -> np.ndarray:
    buf = io.BytesIO()
    sf.write(buf, resample(audio, SR, rate), rate, format=fmt)
    buf.seek(0)
    decoded, sr = sf.read(buf, dtype="float32")
    return resample(decoded, sr, SR)


@pytest.mark.parametrize("variant", ["gain_-20dB", "resampled_44k1", "resampled_8k", "mp3_8k", "ogg"])
def test_same_music_is_a_near_duplicate(music, variant):
    clip = music(10.0, seed=5)
    copy = {
        "gain_-20dB": lambda: clip * 0.1,
        "resampled_44k1": lambda: resample(resample(clip, SR, 44_100), 44_100, SR),
        "resampled_8k": lambda: resample(resample(clip, SR, 8_000), 8_000, SR),
        "mp3_8k": lambda: through_codec(clip, 8_000, "MP3")[: len(clip)],
        "ogg": lambda: through_codec(clip, SR, "OGG"),
    }[variant]()
    assert distance(clip, copy) < THRESHOLD


@pytest.mark.parametrize("other_seed", [6, 7, 8])
def test_different_music_is_not_a_duplicate(music, other_seed):
    assert distance(music(10.0, seed=5), music(10.0, seed=other_seed)) > 0.35  # unrelated music sits near 0.5


def test_same_piece_on_another_instrument_is_not_a_duplicate():
    """The demo corpus renders each piece under several programs on purpose: those must all be kept."""
    from components.corpus.catalogue import Candidate
    from components.corpus.render import render_midi
    from components.corpus.score import export_midi, load_score, score_facts

    chorale = Candidate("bach", "bach/bwv88.7.mxl", None, None, None)
    score = load_score(chorale)
    facts = score_facts(score, chorale, seed=0)
    midi = export_midi(score)
    renders = {program: render_midi(midi, program, sample_rate=SR, max_s=11.0, release_s=1.0,
                                    bar_offsets_ql=facts.bar_offsets, tempo_bpm=facts.tempo_bpm)[: 10 * SR]
               for program in (0, 48, 52)}  # piano, strings, choir
    assert distance(renders[48], renders[52]) > THRESHOLD
    assert distance(renders[0], renders[48]) > THRESHOLD
    assert distance(renders[0], renders[0] * 0.3) == 0.0


def test_fingerprint_is_compact_and_round_trips_as_hex(music):
    fp = fingerprint(music(3.0, seed=1), SR)
    assert fp.dtype == np.uint8 and fp.shape == (128,)
    assert np.array_equal(from_hex(to_hex(fp)), fp)


def test_index_returns_the_kept_clip_it_matches(music):
    index = DuplicateIndex(THRESHOLD)
    a, b = music(10.0, seed=1), music(10.0, seed=2)
    assert index.match(fingerprint(a, SR)) is None
    index.add("a-000", fingerprint(a, SR))
    index.add("b-000", fingerprint(b, SR))
    kept, dist = index.match(fingerprint(resample(b, SR, 16_000), 16_000))
    assert kept == "b-000" and dist < THRESHOLD
    assert index.match(fingerprint(music(10.0, seed=3), SR)) is None
