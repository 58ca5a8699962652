"""The signal operations of curation: clipping runs, silence trimming, segmentation, loudness.

All audio is float32; `audio` is (samples,) mono unless a docstring draws (channels, samples).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
from einops import rearrange

FRAME_S = 0.05  # silence analysis frame: 50 ms (1200 samples at 24 kHz)


def clipped_mask(audio: np.ndarray, level: float, run: int) -> np.ndarray:
    """(channels, samples) -> bool (samples,): frames inside a run of >= `run` samples at |x| >= level.

    A sample counts when any channel sits on the rail; runs are what clipping leaves behind
    (a flat top), so one legitimate full-scale peak does not count.
    """
    hot = np.any(np.abs(audio) >= level, axis=0)
    if run <= 1 or not hot.any():
        return hot
    edges = np.diff(np.concatenate(([0], hot.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    long_runs = (ends - starts) >= run
    delta = np.zeros(len(hot) + 1, dtype=np.int32)
    np.add.at(delta, starts[long_runs], 1)
    np.add.at(delta, ends[long_runs], -1)
    return np.cumsum(delta[:-1]) > 0


@functools.lru_cache(maxsize=8)
def _highpass_sos(sample_rate: int, cutoff_hz: float) -> np.ndarray:
    from scipy.signal import butter

    return butter(4, cutoff_hz, btype="highpass", fs=sample_rate, output="sos")


def audible_band(audio: np.ndarray, sample_rate: int, low_hz: float) -> np.ndarray:
    """(samples,) -> (samples,) float32 without its mean and without content below `low_hz`.

    The mean goes first (a constant becomes exactly zero rather than a filter transient), then a
    zero-phase 4th-order Butterworth high-pass, so nothing moves in time (trim points stay put).
    """
    from scipy.signal import sosfiltfilt

    centred = np.asarray(audio, dtype=np.float64) - (float(np.mean(audio)) if audio.size else 0.0)
    # odd extension over 3 periods of the cut-off: the default (a few dozen samples) leaves an edge
    # transient at -42 dBFS on a sub-audible sine, loud enough to pass for sound
    pad = min(centred.size - 1, int(3 * sample_rate / low_hz))
    if pad < 1:
        return centred.astype(np.float32)
    return sosfiltfilt(_highpass_sos(sample_rate, low_hz), centred, padtype="odd", padlen=pad).astype(np.float32)


def frame_db(audio: np.ndarray, sample_rate: int, frame_s: float = FRAME_S) -> np.ndarray:
    """(samples,) -> (frames,) RMS level in dBFS of consecutive `frame_s` frames (last one partial)."""
    hop = max(1, int(round(frame_s * sample_rate)))
    n_frames = math.ceil(len(audio) / hop)
    padded = np.zeros(n_frames * hop, dtype=np.float64)
    padded[: len(audio)] = audio
    power = np.mean(np.square(rearrange(padded, "(f h) -> f h", h=hop)), axis=1)
    return 10 * np.log10(np.maximum(power, 1e-20))


@dataclasses.dataclass(frozen=True)
class Trim:
    start: int            # first kept sample
    stop: int             # one past the last kept sample
    threshold_db: float   # frames below this were treated as silence
    loudest_db: float     # RMS of the loudest frame


def trim_silence(audio: np.ndarray, sample_rate: int, *, top_db: float, pad_s: float) -> Trim:
    """Where the music starts and stops: the first/last frame within `top_db` of the loudest, padded."""
    levels = frame_db(audio, sample_rate)
    loudest = float(levels.max()) if levels.size else -200.0
    threshold = loudest - top_db
    active = np.flatnonzero(levels >= threshold)
    if active.size == 0:
        return Trim(0, 0, threshold, loudest)
    hop = int(round(FRAME_S * sample_rate))
    pad = int(round(pad_s * sample_rate))
    start = max(0, int(active[0]) * hop - pad)
    stop = min(len(audio), (int(active[-1]) + 1) * hop + pad)
    return Trim(start, stop, threshold, loudest)


def active_fraction(audio: np.ndarray, sample_rate: int, threshold_db: float) -> float:
    """Share of 50 ms frames at or above `threshold_db` (the file's trim threshold)."""
    levels = frame_db(audio, sample_rate)
    return float(np.mean(levels >= threshold_db)) if levels.size else 0.0


def segment_bounds(n_samples: int, sample_rate: int, clip_s: float, min_clip_s: float) -> list[tuple[int, int]]:
    """[(start, stop)] of non-overlapping clips; the last, shorter one only if >= min_clip_s."""
    size = int(round(clip_s * sample_rate))
    minimum = int(round(min_clip_s * sample_rate))
    bounds = [(s, min(s + size, n_samples)) for s in range(0, n_samples, size)]
    return [(s, e) for s, e in bounds if e - s >= minimum]


@functools.lru_cache(maxsize=8)
def _meter(sample_rate: int):
    import pyloudnorm

    return pyloudnorm.Meter(sample_rate)  # BS.1770-4 K-weighting, 400 ms blocks, gated


def loudness_lufs(audio: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness (LUFS); -inf when every block is under the -70 LUFS absolute gate."""
    return float(_meter(sample_rate).integrated_loudness(audio.astype(np.float64)))


def peak_db(audio: np.ndarray) -> float:
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return 20 * math.log10(peak) if peak > 0 else -math.inf


@dataclasses.dataclass(frozen=True)
class Normalised:
    audio: np.ndarray
    gain_db: float
    loudness_lufs: float     # after the gain
    peak_dbfs: float         # after the gain
    limited_by_peak: bool    # the ceiling, not the target, set the gain


def normalise_loudness(audio: np.ndarray, source_lufs: float, *, target_lufs: float,
                       peak_ceiling_dbfs: float) -> Normalised:
    """One gain that brings the clip to `target_lufs`, lowered if the peak would pass the ceiling.

    Loudness scales exactly with gain (BS.1770 is a weighted energy), so the result's loudness
    is source + gain, with no second measurement.
    """
    gain_db = target_lufs - source_lufs
    peak = peak_db(audio)
    limited = peak + gain_db > peak_ceiling_dbfs
    if limited:
        gain_db = peak_ceiling_dbfs - peak
    out = (audio * np.float32(10 ** (gain_db / 20))).astype(np.float32)
    return Normalised(out, gain_db, source_lufs + gain_db, peak + gain_db, limited)
