"""Music-like test signals and a tiny curated folder for ORAQL's tests.

A "melody": harmonic notes (6 partials, plucked envelope) on a random walk of a scale, with a
held bass; every clip is different but all sound alike, so damage is what separates them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

SR = 24_000
SCALE = (0, 2, 4, 5, 7, 9, 11, 12)


def note(midi: float, seconds: float, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    wave = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 7) if k * f0 < sr / 2)
    return (wave * np.minimum(t / 0.005, 1) * np.exp(-t / 0.4)).astype(np.float32)


def melody(seed: int, seconds: float = 10.0, bpm: float = 120.0, sr: int = SR) -> np.ndarray:
    rng = np.random.default_rng(seed)
    beat = 60.0 / bpm
    out = np.zeros(int(seconds * sr) + sr, dtype=np.float32)
    degree = int(rng.integers(0, len(SCALE)))
    tonic = 57 + int(rng.integers(0, 7))
    for i, start in enumerate(np.arange(0.0, seconds, beat / 2)):
        degree = int(np.clip(degree + rng.integers(-2, 3), 0, len(SCALE) - 1))
        at = int(start * sr)
        tone = note(tonic + 12 + SCALE[degree], beat)
        out[at:at + len(tone)] += tone
        if i % 4 == 0:
            bass = 0.6 * note(tonic - 12, 2 * beat)
            out[at:at + len(bass)] += bass
    out = out[:int(seconds * sr)]
    return (0.3 * out / np.abs(out).max()).astype(np.float32)


def curated_folder(root: Path, pieces: dict[str, int], clips_per_piece: int = 2, seconds: float = 10.0) -> Path:
    """A curated folder (clips/*.wav + manifest.parquet) with pieces per split, e.g. {"train": 3, ...}."""
    (root / "clips").mkdir(parents=True)
    rows = []
    for split, n in pieces.items():
        for p in range(n):
            piece = f"{split}-piece{p}"
            for c in range(clips_per_piece):
                clip_id = f"{piece}-{c:03d}"
                sf.write(root / "clips" / f"{clip_id}.wav", melody(hash((split, p, c)) % 10_000, seconds), SR,
                         subtype="PCM_16")
                rows.append({"clip_id": clip_id, "path": f"clips/{clip_id}.wav", "piece_id": piece, "split": split,
                             "sample_rate": SR, "duration_s": seconds, "tempo_bpm": 120.0, "meter": "4/4"})
    pd.DataFrame(rows).to_parquet(root / "manifest.parquet")
    return root
