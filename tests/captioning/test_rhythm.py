"""Tempo from beat tracking on click tracks and cadences of known BPM; the duple/triple guess."""

import pytest

from components.captioning.agreement import tempo_within
import numpy as np

from components.captioning.analysis import analyse_audio, tempo_envelope

from .synth import SR, bar_pattern, cadence, click_track, pad_cadence


@pytest.mark.parametrize("bpm", [60, 75, 90, 110, 128, 140])
def test_click_track_tempo(bpm):
    features = analyse_audio(click_track(bpm), SR, with_metre=False)
    assert tempo_within(features.tempo_bpm, bpm, 0.04), features.tempo_bpm
    assert features.onset_rate == pytest.approx(bpm / 60, rel=0.15)


@pytest.mark.parametrize("bpm", [70, 96, 120])
def test_cadence_tempo(bpm):
    assert tempo_within(analyse_audio(cadence(5, "major", bpm), SR).tempo_bpm, bpm, 0.04)


@pytest.mark.parametrize("beats_per_bar, expected", [(3, "triple"), (4, "duple"), (2, "duple")])
@pytest.mark.parametrize("bpm", [90, 120])
def test_metre_guess_on_accented_bars(beats_per_bar, expected, bpm):
    features = analyse_audio(bar_pattern(beats_per_bar, bpm), SR)
    assert features.metre == expected


def test_brightness_and_energy_order_signals():
    low = analyse_audio(cadence(0, "major", 60) * 1.0, SR)
    clicks = analyse_audio(click_track(150), SR)
    assert clicks.brightness_hz > low.brightness_hz          # 1-1.5 kHz blips vs piano-register chords
    assert clicks.onset_rate > low.onset_rate


@pytest.mark.parametrize("bpm", [60, 90, 110])
def test_legato_pad_tempo(bpm):
    assert tempo_within(analyse_audio(pad_cadence(4, "minor", bpm), SR, with_metre=False).tempo_bpm, bpm, 0.04)


def test_tempo_envelope_peaks_at_chord_changes():
    import librosa

    bpm, hop = 60, 512
    y = pad_cadence(0, "major", bpm)
    onset = librosa.onset.onset_strength(y=y, sr=SR, hop_length=hop)
    chroma = librosa.feature.chroma_cqt(y=y, sr=SR, hop_length=hop)
    assert tempo_envelope(onset, chroma, 0.0) is onset
    pulse = tempo_envelope(onset, chroma, 1.0)
    changes = (np.arange(1, 10) * SR * 60 / bpm / hop).round().astype(int)   # chord changes, in frames
    near = np.zeros(pulse.size, dtype=bool)
    for c in changes:
        near[max(0, c - 6):c + 7] = True                                     # within ~130 ms (attack ramp)
    assert pulse[near].mean() > 3 * pulse[~near].mean()
