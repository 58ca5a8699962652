"""Synthetic music for curation tests: seeded melodies of decaying harmonic notes over a bass line."""

from __future__ import annotations

import numpy as np
import pytest


def synth_music(seconds: float, sample_rate: int = 24_000, seed: int = 0, level: float = 0.3) -> np.ndarray:
    """(samples,) float32: notes of 0.2-0.6 s from a pentatonic scale, 4 partials, exponential decay.

    Different seeds give different tunes (different fingerprints); the same seed is the same tune.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    out = np.zeros(n, dtype=np.float64)
    scale = np.array([0, 2, 4, 7, 9, 12, 14, 16])
    for voice, (base, dur_range) in enumerate(((60, (0.2, 0.6)), (43, (0.6, 1.2)))):
        t = 0.0
        while t < seconds:
            dur = rng.uniform(*dur_range)
            pitch = base + rng.choice(scale)
            freq = 440.0 * 2 ** ((pitch - 69) / 12)
            start, stop = int(t * sample_rate), min(n, int((t + dur) * sample_rate))
            k = np.arange(stop - start) / sample_rate
            envelope = np.exp(-k * rng.uniform(2, 6)) * np.minimum(1, k / 0.01)
            note = sum(np.sin(2 * np.pi * freq * h * k) / h for h in range(1, 5))
            out[start:stop] += (0.6 if voice == 0 else 0.4) * envelope * note
            t += dur
    out *= level / np.max(np.abs(out))
    return out.astype(np.float32)


@pytest.fixture
def music():
    return synth_music
