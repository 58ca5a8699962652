"""Loudness normalisation, silence trimming, segmentation and clipping detection."""

from __future__ import annotations

import numpy as np
import pytest

from components.curation import dsp

SR = 24_000


@pytest.mark.parametrize("level", [0.01, 0.1, 0.5])
def test_normalisation_reaches_the_loudness_target(music, level):
    clip = music(8.0, seed=1, level=level)
    source = dsp.loudness_lufs(clip, SR)
    out = dsp.normalise_loudness(clip, source, target_lufs=-23.0, peak_ceiling_dbfs=-1.0)
    assert not out.limited_by_peak
    assert dsp.loudness_lufs(out.audio, SR) == pytest.approx(-23.0, abs=0.05)  # measured again, not trusted
    assert out.loudness_lufs == pytest.approx(-23.0, abs=1e-6)
    assert out.peak_dbfs <= -1.0


def test_peak_ceiling_wins_over_the_target_and_never_clips(music):
    # sparse clicks: huge crest factor, so reaching -14 LUFS would push the peaks far past 0 dBFS
    clip = np.zeros(SR * 4, dtype=np.float32)
    clip[::SR // 2] = 0.5
    clip += music(4.0, seed=2, level=0.001)
    source = dsp.loudness_lufs(clip, SR)
    out = dsp.normalise_loudness(clip, source, target_lufs=-14.0, peak_ceiling_dbfs=-1.0)
    assert out.limited_by_peak
    assert np.max(np.abs(out.audio)) == pytest.approx(10 ** (-1 / 20), rel=1e-4)
    assert dsp.loudness_lufs(out.audio, SR) == pytest.approx(out.loudness_lufs, abs=0.05)
    assert out.loudness_lufs < -14.0


def test_silence_is_trimmed_at_both_ends_and_the_cut_ignores_gain(music):
    tone = music(2.0, seed=3)
    audio = np.concatenate([np.zeros(SR), tone, np.zeros(int(1.5 * SR))]).astype(np.float32)
    audio += np.random.default_rng(0).normal(0, 1e-5, audio.size).astype(np.float32)  # a noise floor, not digital zero
    trim = dsp.trim_silence(audio, SR, top_db=50, pad_s=0.05)
    assert trim.start / SR == pytest.approx(1.0 - 0.05, abs=0.06)
    assert trim.stop / SR == pytest.approx(3.0 + 0.05, abs=0.06)
    quieter = dsp.trim_silence(audio * 0.01, SR, top_db=50, pad_s=0.05)
    assert (quieter.start, quieter.stop) == (trim.start, trim.stop)


@pytest.mark.parametrize("seconds, expected", [
    (25.0, [10.0, 10.0, 5.0]),   # the shorter final segment is kept: 5 s >= 2 s
    (21.0, [10.0, 10.0]),        # 1 s tail < min_clip_s: dropped
    (10.0, [10.0]),
    (3.0, [3.0]),
    (1.5, []),
])
def test_segments_have_the_configured_lengths(seconds, expected):
    bounds = dsp.segment_bounds(int(seconds * SR), SR, clip_s=10.0, min_clip_s=2.0)
    assert [(e - s) / SR for s, e in bounds] == expected
    assert all(b[0] == a[1] for a, b in zip(bounds, bounds[1:]))  # contiguous, no overlap


def test_clipping_counts_flat_runs_not_single_peaks():
    audio = np.zeros((2, 1000), dtype=np.float32)
    audio[0, 100] = 1.0                   # one full-scale sample: a peak, not clipping
    audio[1, 500:510] = -1.0              # a flat run of 10 on the other channel: clipping
    audio[0, 700:702] = 1.0               # a run of 2 (< run=3)
    mask = dsp.clipped_mask(audio, level=0.999, run=3)
    assert mask.sum() == 10 and mask[500:510].all()
