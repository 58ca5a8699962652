"""Synthetic music for codec tests: sums of harmonic tones with attack/decay envelopes, written as a
curated folder (clips/*.wav + manifest.parquet) in the layout `lyra curate` produces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf


def harmonic_notes(seconds: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A melody of plucked harmonic notes (random pitches, 2-6 harmonics, exponential decays)."""
    n = int(seconds * sample_rate)
    out = np.zeros(n, dtype=np.float64)
    t_note = 0.0
    while t_note < seconds:
        length = float(rng.uniform(0.15, 0.5))
        start, stop = int(t_note * sample_rate), min(n, int((t_note + length * 1.5) * sample_rate))
        t = np.arange(stop - start) / sample_rate
        f0 = 110.0 * 2 ** (rng.integers(0, 36) / 12)
        env = (1 - np.exp(-t / 0.005)) * np.exp(-t / (length * 0.5))
        note = sum((0.6 ** h) * np.sin(2 * np.pi * f0 * (h + 1) * t + rng.uniform(0, 2 * np.pi))
                   for h in range(int(rng.integers(2, 7))))
        out[start:stop] += env * note
        t_note += length
    return (0.3 * out / (np.abs(out).max() + 1e-9)).astype(np.float32)


def make_curated(root: Path, *, n_train: int = 6, n_valid: int = 2, n_test: int = 2, n_ood: int = 0,
                 seconds: float = 3.0, sample_rate: int = 24_000, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    (root / "clips").mkdir(parents=True, exist_ok=True)
    rows = []
    for split, count in (("train", n_train), ("valid", n_valid), ("test", n_test), ("ood", n_ood)):
        for i in range(count):
            clip_id = f"{split}-{i:03d}"
            sf.write(root / "clips" / f"{clip_id}.wav", harmonic_notes(seconds, sample_rate, rng), sample_rate,
                     subtype="PCM_16")
            rows.append({"clip_id": clip_id, "path": f"clips/{clip_id}.wav", "piece_id": f"{split}{i}", "split": split,
                         "duration_s": seconds, "sample_rate": sample_rate})
    pd.DataFrame(rows).to_parquet(root / "manifest.parquet")
    return root
