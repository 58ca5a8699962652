"""Sets the evaluator must put far from real music, built on the run from the real clips themselves:

    noise(real)     white noise, each clip at the RMS of a real clip (so level cannot explain the distance)
    shuffled(real)  each real clip cut into `block_s` blocks played in a random order: the same timbre and
                    spectrum, no musical time (what a codec-token model that lost its structure sounds like)
"""

from __future__ import annotations

import numpy as np


def noise(real: list[np.ndarray], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for clip in real:
        rms = float(np.sqrt(np.mean(np.square(clip, dtype=np.float64)))) if len(clip) else 0.0
        out.append((rng.standard_normal(len(clip)) * rms).astype(np.float32))
    return out


def shuffled(real: list[np.ndarray], sample_rate: int, block_s: float = 0.25, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    block = max(1, int(block_s * sample_rate))
    out = []
    for clip in real:
        n = len(clip) // block
        if n < 2:
            out.append(np.asarray(clip, np.float32))
            continue
        blocks = np.asarray(clip[: n * block], np.float32).reshape(n, block)
        out.append(np.concatenate([blocks[rng.permutation(n)].reshape(-1), clip[n * block:]]).astype(np.float32))
    return out
