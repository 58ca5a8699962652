"""Compile the numba kernels the stages use into their packages' caches, once, at install.

librosa (beat tracking, peak picking, constant-Q: the captions) and ViSQOL (the codec evaluation)
compile their kernels on first use and cache them beside the package (`cache=True`). A fresh
environment would otherwise pay ~19 s + ~7 s inside the first demo, in every process of a stage's
pool at once (processes writing one cache together is how librosa's cache once got corrupted in
CI). `make install` runs `python -m components.warmup`.
"""

from __future__ import annotations

import time

import numpy as np


def warm_numba_caches(sample_rate: int = 24_000) -> dict[str, float]:
    """Run each kernel once on a synthetic clip (10 s of a pulsed tone); returns seconds per library."""
    from components.captioning.analysis import analyse_audio
    from components.omnicodec.visqol_score import visqol

    t = np.arange(10 * sample_rate) / sample_rate
    clip = (0.1 * np.sin(2 * np.pi * 440 * t) * (1 + np.sign(np.sin(2 * np.pi * 2 * t)))).astype(np.float32)
    seconds = {}
    started = time.monotonic()
    analyse_audio(clip, sample_rate)
    seconds["librosa"] = time.monotonic() - started
    started = time.monotonic()
    visqol(clip, 0.9 * clip, sample_rate)
    seconds["visqol"] = time.monotonic() - started
    return seconds


if __name__ == "__main__":
    took = warm_numba_caches()
    print("numba kernels cached: " + ", ".join(f"{k} {v:.1f} s" for k, v in took.items()))
